"""The launcher: dependency order, real processes, supervision, tmpfs mounts, stopping by PID."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import psutil
import pytest

from chaoslab.errors import HarnessError, SpecError
from chaoslab.model.topology import TopologySpec
from chaoslab.run.ledger import Ledger, read_ledger
from chaoslab.system.launcher import Launcher, topological_order
from tests.conftest import free_port
from tests.run.harness import TARGET


def topology(services: dict[str, object], links: dict[str, object] | None = None) -> TopologySpec:
    """A topology from plain data."""
    return TopologySpec.model_validate({"name": "t", "services": services, "links": links or {}})


def target_service(port: int, control: Path, **launch: object) -> dict[str, object]:
    """The ground-truth target as a launched process service."""
    return {
        "launch": {
            "kind": "process",
            "command": [sys.executable, str(TARGET), "--port", str(port), "--control", str(control)],
            **launch,
        },
        "url": f"http://127.0.0.1:{port}",
        "probe": {"type": "http", "url": f"http://127.0.0.1:{port}/health"},
    }


class TestTopologicalOrder:
    """Services start after what they depend on."""

    def test_dependencies_first(self) -> None:
        """api depends on db and vector: both come before it."""
        topo = topology(
            {"api": {"depends_on": ["db", "vector"]}, "vector": {"depends_on": ["db"]}, "db": {}},
        )
        assert topological_order(topo) == ["db", "vector", "api"]

    def test_cycles_are_refused(self) -> None:
        """A depends_on cycle is a one-line SpecError naming it."""
        topo = topology({"a": {"depends_on": ["b"]}, "b": {"depends_on": ["a"]}})
        with pytest.raises(SpecError, match="depends_on cycle a → b → a"):
            topological_order(topo)


@pytest.mark.integration
class TestLauncher:
    """Starting, supervising and stopping real processes."""

    async def test_start_supervise_and_stop(self, tmp_path: Path) -> None:
        """A killed on-failure service is restarted and healthy again; stop_all ends it by PID."""
        port = free_port()
        topo = topology({"target": target_service(port, tmp_path / "c.json", restart="on-failure")})
        ledger = Ledger.create("run1", base=tmp_path / "state")
        events: list[str] = []
        launcher = Launcher(
            topo,
            run_id="run1",
            run_dir=tmp_path / "run",
            refs={},
            ledger=ledger,
            on_event=lambda kind, message, data: events.append(kind),
        )
        try:
            await launcher.start_services()
            [pid] = launcher.pids("target")
            assert launcher.is_supervised("target")
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                await asyncio.sleep(0.05)
                if launcher.pids("target") and launcher.pids("target") != [pid]:
                    break
            await launcher.wait_healthy("target", timeout_s=10)
            [new_pid] = launcher.pids("target")
            assert new_pid != pid
            assert "service_restart" in events
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/a") as resp:
                assert resp.status == 200
        finally:
            problems = await launcher.stop_all()
        assert problems == []
        assert not psutil.pid_exists(new_pid) or psutil.Process(new_pid).status() == psutil.STATUS_ZOMBIE
        state = read_ledger(ledger.path)
        assert state.live_processes() == []
        assert {p.pid for p in state.processes.values()} >= {pid, new_pid}

    async def test_a_service_that_dies_at_start_is_reported(self, tmp_path: Path) -> None:
        """A process that exits during start-up fails the launch with its log's last lines."""
        topo = topology(
            {
                "bad": {
                    "launch": {
                        "kind": "process",
                        "command": [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
                    },
                    "probe": {"type": "tcp", "address": f"127.0.0.1:{free_port()}"},
                }
            }
        )
        launcher = Launcher(topo, run_id="r", run_dir=tmp_path, refs={})
        try:
            with pytest.raises(HarnessError, match=r"service bad exited during start-up \(exit code 3\): boom"):
                await launcher.start_services()
        finally:
            await launcher.stop_all()

    async def test_ensure_running_restarts_an_unsupervised_service(self, tmp_path: Path) -> None:
        """ensure_running starts a killed service that has no supervisor."""
        port = free_port()
        topo = topology({"target": target_service(port, tmp_path / "c.json")})
        launcher = Launcher(topo, run_id="r", run_dir=tmp_path, refs={})
        try:
            await launcher.start_services()
            [pid] = launcher.pids("target")
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.3)
            assert launcher.pids("target") == []
            await launcher.ensure_running("target")
            assert launcher.pids("target") and launcher.pids("target") != [pid]
        finally:
            await launcher.stop_all()

    @pytest.mark.skipif(os.geteuid() != 0, reason="tmpfs mounts need root")
    async def test_tmpfs_paths_are_mounted_and_unmounted(self, tmp_path: Path) -> None:
        """A path listed under tmpfs is a small tmpfs while the service runs, and unmounted after."""
        port = free_port()
        data = tmp_path / "data"
        spec = target_service(port, tmp_path / "c.json")
        spec["paths"] = {"data": str(data)}
        spec["tmpfs"] = {"data": "4MiB"}
        launcher = Launcher(topology({"target": spec}), run_id="r", run_dir=tmp_path / "run", refs={})
        try:
            await launcher.start_services()
            usage = psutil.disk_usage(str(data))
            assert usage.total == 4 * 1024 * 1024
            assert any(p.mountpoint == str(data) for p in psutil.disk_partitions(all=True))
        finally:
            await launcher.stop_all()
        assert not any(p.mountpoint == str(data) for p in psutil.disk_partitions(all=True))
