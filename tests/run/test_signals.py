"""Faults always come off: SIGINT, SIGTERM, and kill -9 followed by `chaoslab rollback`.

The run here uses an external Toxiproxy-compatible server, an external victim service and a
tmpfs owned by the test, so that after the harness is gone the test can still look: no toxic
left on the proxy, no frozen process, no fill file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml

from tests.conftest import free_port
from tests.run.harness import TARGET, groundtruth, write_experiment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the disk fill runs on a tmpfs this test mounts (root)"),
]


@dataclass
class World:
    """What the test owns: a Toxiproxy server, a victim process, a tmpfs, and the files of the run."""

    toxiproxy_url: str
    victim: subprocess.Popen[bytes]
    tmpfs: Path
    experiment: Path
    state_dir: Path
    target_port: int

    def toxics(self) -> list[dict[str, object]]:
        """All toxics on all proxies of the server."""
        with urllib.request.urlopen(f"{self.toxiproxy_url}/proxies", timeout=2) as resp:
            proxies = json.load(resp)
        return [t for p in proxies.values() for t in p["toxics"]]

    def victim_status(self) -> str:
        """psutil's status of the victim process."""
        return str(psutil.Process(self.victim.pid).status())

    def fill_used(self) -> int:
        """Bytes used on the tmpfs."""
        return int(psutil.disk_usage(str(self.tmpfs)).used)

    def launched_target(self) -> list[int]:
        """PIDs of target processes the run launched (identified by their unique port argument)."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            if str(TARGET) in cmd and str(self.target_port) in cmd:
                found.append(proc.pid)
        return found

    def all_applied(self) -> bool:
        """Whether every fault is in place."""
        try:
            return bool(self.toxics()) and self.victim_status() == "stopped" and self.fill_used() > 2 * 1024 * 1024
        except OSError:
            return False


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """An external Toxiproxy server, a victim service with a pidfile, and an 8 MiB tmpfs."""
    tp_port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "chaoslab", "--quiet", "toxiproxy", "--host", "127.0.0.1", "--port", str(tp_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    victim_port = free_port()
    victim = subprocess.Popen(
        [sys.executable, str(TARGET), "--port", str(victim_port), "--control", str(tmp_path / "none.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pidfile = tmp_path / "victim.pid"
    pidfile.write_text(str(victim.pid))
    tmpfs = tmp_path / "fs"
    tmpfs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(tmpfs)], check=True)
    url = f"http://127.0.0.1:{tp_port}"
    try:
        _wait(lambda: _answers(f"{url}/version"), 15, "the Toxiproxy server")
        gt = groundtruth(tmp_path)
        topo = {
            "name": "signals",
            "toxiproxy": url,
            "services": {
                "target": {
                    "launch": {
                        "kind": "process",
                        "command": [sys.executable, str(TARGET), "--port", str(gt.port), "--control", str(gt.control)],
                    },
                    "url": f"http://127.0.0.1:{gt.port}",
                    "probe": {"type": "http", "url": f"http://127.0.0.1:{gt.port}/health"},
                },
                "victim": {
                    "url": f"http://127.0.0.1:{victim_port}",
                    "process": {"pidfile": str(pidfile)},
                    "paths": {"data": str(tmpfs)},
                },
            },
            "links": {"client->target": {"listen": f"127.0.0.1:{gt.link_port}", "upstream": f"127.0.0.1:{gt.port}"}},
        }
        (tmp_path / "topology.yaml").write_text(yaml.safe_dump(topo))
        experiment = write_experiment(
            gt,
            phases={"warmup": "1s", "baseline": "2s", "fault": "40s"},
            faults=[
                {"kind": "latency", "target": "client->target", "latency": "300ms"},
                {"kind": "process_freeze", "target": "victim"},
                {
                    "kind": "disk_fill",
                    "target": "victim",
                    "path": "data",
                    "until_free": "1MiB",
                    "cap": "6MiB",
                    "chunk": "1MiB",
                },
            ],
        )
        yield World(url, victim, tmpfs, experiment, tmp_path / "state", gt.port)
    finally:
        with _suppress():
            os.kill(victim.pid, signal.SIGCONT)
        victim.terminate()
        victim.wait(10)
        subprocess.run(["umount", str(tmpfs)], check=False)
        server.terminate()
        server.wait(10)


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _start_run(world: World, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CHAOSLAB_STATE_DIR": str(world.state_dir)}
    with (tmp_path / "run.log").open("wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chaoslab",
                "run",
                str(world.experiment),
                "--report-dir",
                str(tmp_path / "report"),
                "--no-html",
                "--no-live",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _assert_clean(world: World) -> None:
    assert world.toxics() == []
    assert world.victim_status() != "stopped"
    assert world.fill_used() < 1024 * 1024
    assert world.launched_target() == []


class TestFaultsAlwaysComeOff:
    """Every way out of a run leaves the system as it was."""

    @pytest.mark.parametrize(
        ("signum", "times"),
        [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGINT, 3)],
        ids=["sigint", "sigterm", "sigint-thrice"],
    )
    def test_a_signal_reverts_everything_and_exits_3(
        self, world: World, tmp_path: Path, signum: int, times: int
    ) -> None:
        """SIGINT or SIGTERM mid-fault (repeated Ctrl-C too): exit 3, aborted, no toxic, no frozen process, no fill."""
        run = _start_run(world, tmp_path)
        try:
            _wait(world.all_applied, 60, "all three faults to be applied")
            for _ in range(times):
                run.send_signal(signum)
                time.sleep(0.05)  # the later ones land while faults are being reverted
            run.wait(60)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 3, (tmp_path / "run.log").read_text(errors="replace")[-2000:]
        _assert_clean(world)
        journal = json.loads((tmp_path / "report" / "journal.json").read_text())
        assert journal["verdict"] == "aborted"
        assert signal.Signals(signum).name in journal["abort_reason"]
        assert all(f["revert_ok"] for f in journal["faults"])

    def test_kill_9_then_rollback_reverts_everything(self, world: World, tmp_path: Path) -> None:
        """After kill -9 the faults stay; `chaoslab rollback` removes the toxic, thaws, unfills, stops the target."""
        run = _start_run(world, tmp_path)
        try:
            _wait(world.all_applied, 60, "all three faults to be applied")
            run.kill()
            run.wait(10)
        finally:
            if run.poll() is None:
                run.kill()
        assert world.all_applied()  # nothing reverted it: the harness died
        assert world.launched_target() != []
        env = {**os.environ, "CHAOSLAB_STATE_DIR": str(world.state_dir)}
        result = subprocess.run(
            [sys.executable, "-m", "chaoslab", "rollback"], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "revert f0-latency" in result.stdout
        _assert_clean(world)
        again = subprocess.run(
            [sys.executable, "-m", "chaoslab", "rollback"], env=env, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 0 and "nothing to roll back" in again.stdout
