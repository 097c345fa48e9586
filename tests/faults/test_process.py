"""Process faults against real child processes (``python -m http.server``) and a real launcher."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from chaoslab.errors import FaultError, RevertError, SafetyError
from chaoslab.faults import FaultContext
from chaoslab.faults.process import ProcessDriver, ProcessRecord
from chaoslab.model.faults import ProcessFreezeFault, ProcessKillFault, ProcessRestartFault
from chaoslab.model.topology import LaunchSpec, ProcessMatch, ServiceSpec, TopologySpec
from tests.conftest import free_port
from tests.faults.services import LocalServices, accepts, http_server_command, wait_accepting

pytestmark = pytest.mark.integration


def topology(**services: ServiceSpec) -> TopologySpec:
    """A topology of the given services (``web`` by default)."""
    return TopologySpec(name="t", services=services or {"web": ServiceSpec()})


async def answers(port: int, timeout_s: float = 0.5) -> bool:
    """Whether an HTTP GET to 127.0.0.1:port gets a response within the timeout."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(f"http://127.0.0.1:{port}/") as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def eventually(predicate: object, timeout_s: float = 5.0) -> bool:
    """Poll an async predicate until it holds or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.05)
    return False


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child process (Popen returns at once; it does not block the event loop)."""
    return subprocess.Popen(args, **kwargs)


@pytest.fixture
async def services() -> AsyncIterator[LocalServices]:
    """A launcher with one running service, ``web``."""
    launcher = LocalServices()
    launcher.add("web")
    try:
        yield launcher
    finally:
        await launcher.unwatch()
        launcher.stop_all()


@pytest.fixture
def external() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """An HTTP server started outside any launcher (found by pidfile or command line)."""
    port = free_port()
    proc = subprocess.Popen(http_server_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_accepting(port)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(5)


class TestProcessFreeze:
    """process_freeze: SIGSTOP the service's processes, SIGCONT on revert."""

    async def test_freeze_stops_answers_and_revert_resumes_them(self, services: LocalServices) -> None:
        """While frozen the server answers nothing; after revert it answers and the check passes."""
        ctx = FaultContext(topology=topology(), run_id="r1", services=services)
        driver = ProcessDriver()
        fault = ProcessFreezeFault(kind="process_freeze", target="web")
        record = driver.prepare(fault, ctx, "freeze")
        pid = services.pids("web")[0]
        assert record.processes[0].pid == pid
        record = await driver.apply(fault, ctx, record)
        assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
        assert not await answers(services.ports["web"])
        assert await driver.check_reverted(record, ctx) == f"process(es) {pid} of 'web' are still stopped"
        await driver.revert(record, ctx)
        await driver.revert(record, ctx)
        assert await answers(services.ports["web"])
        assert await driver.check_reverted(record, ctx) is None
        assert services.pids("web") == [pid]

    async def test_rollback_from_another_process_after_kill_9(self, services: LocalServices, tmp_path: Path) -> None:
        """A harness killed with SIGKILL after freezing leaves a record that thaws the service from here."""
        record_file = tmp_path / "record.json"
        pid = services.pids("web")[0]
        script = textwrap.dedent(
            f"""
            import asyncio, json, time
            from chaoslab.faults import FaultContext
            from chaoslab.faults.process import ProcessDriver
            from chaoslab.model.faults import ProcessFreezeFault
            from chaoslab.model.topology import LaunchSpec, ProcessMatch, ServiceSpec, TopologySpec
            match = ProcessMatch(pidfile={str(tmp_path / "pid")!r})
            topo = TopologySpec(name="t", services={{"web": ServiceSpec(process=match)}})
            ctx = FaultContext(topology=topo, run_id="r2")
            fault = ProcessFreezeFault(kind="process_freeze", target="web")
            driver = ProcessDriver()
            record = driver.prepare(fault, ctx, "f")
            open({str(record_file)!r}, "w").write(json.dumps(record.to_json()))
            asyncio.run(driver.apply(fault, ctx, record))
            print("applied", flush=True)
            time.sleep(60)
            """
        )
        (tmp_path / "pid").write_text(str(pid))
        harness = spawn([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=os.getcwd())
        try:
            assert harness.stdout is not None
            assert harness.stdout.readline().strip() == b"applied"
        finally:
            harness.kill()
            harness.wait(5)
            if harness.stdout is not None:
                harness.stdout.close()
        assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
        record = ProcessRecord.from_json(json.loads(record_file.read_text()))
        ctx = FaultContext(topology=topology(), run_id="r2")
        driver = ProcessDriver()
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        assert await answers(services.ports["web"])

    async def test_revert_never_signals_a_reused_pid(self, services: LocalServices) -> None:
        """A recorded PID whose start time differs (a reused PID) is left alone by revert."""
        pid = services.pids("web")[0]
        os.kill(pid, signal.SIGSTOP)
        assert await eventually(lambda: asyncio.sleep(0, psutil.Process(pid).status() == psutil.STATUS_STOPPED))
        real = psutil.Process(pid).create_time()
        record = ProcessRecord.from_json(
            {
                "kind": "process_freeze",
                "service": "web",
                "key": "k",
                "processes": [{"pid": pid, "create_time": real - 100.0}],
                "signal": "SIGSTOP",
            }
        )
        ctx = FaultContext(topology=topology(), run_id="r3", services=services)
        await ProcessDriver().revert(record, ctx)
        assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
        os.kill(pid, signal.SIGCONT)

    async def test_freeze_includes_child_processes(self, tmp_path: Path) -> None:
        """Workers forked by the service are frozen and thawed with it."""
        script = (
            "import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
        )
        parent = spawn([sys.executable, "-c", script])
        try:
            child: list[psutil.Process] = []
            deadline = time.monotonic() + 5
            while not child and time.monotonic() < deadline:
                child = psutil.Process(parent.pid).children()
                await asyncio.sleep(0.02)
            (tmp_path / "pid").write_text(str(parent.pid))
            topo = topology(web=ServiceSpec(process=ProcessMatch(pidfile=str(tmp_path / "pid"))))
            ctx = FaultContext(topology=topo, run_id="r4")
            driver = ProcessDriver()
            fault = ProcessFreezeFault(kind="process_freeze", target="web")
            record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "f"))
            assert sorted(record.signalled) == sorted([parent.pid, child[0].pid])
            assert child[0].status() == psutil.STATUS_STOPPED
            await driver.revert(record, ctx)
            assert child[0].status() != psutil.STATUS_STOPPED
            assert await driver.check_reverted(record, ctx) is None
        finally:
            for proc in psutil.Process(parent.pid).children(recursive=True):
                proc.kill()
            parent.kill()
            parent.wait(5)


class TestProcessKill:
    """process_kill: signal the service; the launcher, restart_after or revert brings it back."""

    async def test_kill_then_revert_starts_it_again(self, services: LocalServices) -> None:
        """SIGKILL leaves the service down until revert, which starts a new process that answers."""
        ctx = FaultContext(topology=topology(), run_id="k1", services=services)
        driver = ProcessDriver()
        fault = ProcessKillFault(kind="process_kill", target="web")
        old = services.pids("web")[0]
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "kill"))
        assert record.signal == "SIGKILL"
        assert await eventually(lambda: asyncio.sleep(0, not accepts(services.ports["web"])))
        assert await driver.check_reverted(record, ctx) == "service 'web' is not running"
        await driver.revert(record, ctx)
        assert services.pids("web") != [old]
        assert await answers(services.ports["web"])
        assert await driver.check_reverted(record, ctx) is None
        assert services.starts["web"] == 2

    async def test_restart_after_is_left_to_the_revert(self, services: LocalServices) -> None:
        """restart_after is the kill's duration (the plan reverts then): the service stays down until revert."""
        launch = LaunchSpec(kind="process", command=tuple(http_server_command(services.ports["web"])))
        ctx = FaultContext(topology=topology(web=ServiceSpec(launch=launch)), run_id="k2", services=services)
        driver = ProcessDriver()
        fault = ProcessKillFault(kind="process_kill", target="web", signal="TERM", restart_after="200ms")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "kill"))
        assert (record.signal, record.restart_after_s, driver.holds(record)) == ("SIGTERM", 0.2, True)
        await asyncio.sleep(0.5)
        assert services.starts["web"] == 1
        await driver.revert(record, ctx)
        assert services.starts["web"] == 2
        assert await answers(services.ports["web"])

    async def test_supervised_service_is_restarted_by_the_launcher(self, services: LocalServices) -> None:
        """A supervised service comes back by itself; revert finds it running and starts nothing."""
        services.supervised = True
        await services.watch()
        ctx = FaultContext(topology=topology(), run_id="k3", services=services)
        driver = ProcessDriver()
        fault = ProcessKillFault(kind="process_kill", target="web")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "kill"))
        assert (record.supervised, driver.holds(record)) == (True, False)
        assert await eventually(lambda: asyncio.sleep(0, services.starts["web"] == 2))
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        assert services.starts["web"] == 2

    async def test_rollback_of_a_launched_service_does_not_wait_for_it(self, services: LocalServices) -> None:
        """After the run died, the rollback (no launcher) of a kill of a service the run launched is a no-op."""
        launch = LaunchSpec(kind="process", command=tuple(http_server_command(services.ports["web"])))
        topo = topology(web=ServiceSpec(launch=launch))
        ctx = FaultContext(topology=topo, run_id="k5", services=services)
        driver = ProcessDriver()
        fault = ProcessKillFault(kind="process_kill", target="web")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "kill"))
        assert record.launched is True
        rollback_ctx = FaultContext(topology=topo, run_id="k5")
        await ProcessDriver().revert(record, rollback_ctx)
        assert await ProcessDriver().check_reverted(record, rollback_ctx) is None
        assert await eventually(lambda: asyncio.sleep(0, services.pids("web") == []))
        assert services.starts["web"] == 1

    async def test_external_service_that_stays_dead_fails_revert(
        self, external: tuple[subprocess.Popen[bytes], int]
    ) -> None:
        """A service chaoslab did not launch and nobody restarts makes revert raise RevertError."""
        proc, _port = external
        topo = topology(web=ServiceSpec(process=ProcessMatch(cmdline=tuple(proc.args))))  # type: ignore[arg-type]
        ctx = FaultContext(topology=topo, run_id="k4")
        driver = ProcessDriver(external_restart_wait_s=0.3)
        fault = ProcessKillFault(kind="process_kill", target="web")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "kill"))
        assert record.signalled == (proc.pid,)
        proc.wait(5)
        with pytest.raises(RevertError, match="cannot start it"):
            await driver.revert(record, ctx)


class TestProcessRestart:
    """process_restart: the launcher stops and starts the service."""

    async def test_restart_gives_a_new_process(self, services: LocalServices) -> None:
        """After the fault the service runs under a new PID and answers."""
        ctx = FaultContext(topology=topology(), run_id="p1", services=services)
        driver = ProcessDriver()
        fault = ProcessRestartFault(kind="process_restart", target="web")
        old = services.pids("web")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "restart"))
        assert services.pids("web") != old
        assert services.starts["web"] == 2
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        assert await answers(services.ports["web"])

    async def test_restart_without_launcher_is_refused(self, external: tuple[subprocess.Popen[bytes], int]) -> None:
        """Without a launcher there is nothing to start the service again, so apply refuses."""
        proc, _port = external
        topo = topology(web=ServiceSpec(process=ProcessMatch(cmdline=tuple(proc.args))))  # type: ignore[arg-type]
        ctx = FaultContext(topology=topo, run_id="p2")
        driver = ProcessDriver()
        fault = ProcessRestartFault(kind="process_restart", target="web")
        with pytest.raises(FaultError, match="needs chaoslab's launcher"):
            await driver.apply(fault, ctx, driver.prepare(fault, ctx, "restart"))
        assert proc.poll() is None


class TestProcessResolution:
    """How a service name becomes PIDs: launcher, pidfile, exact command line — nothing broader."""

    def test_exact_cmdline_matches_and_a_near_miss_does_not(
        self, external: tuple[subprocess.Popen[bytes], int]
    ) -> None:
        """The full command line matches; the same command with another port matches nothing."""
        proc, port = external
        driver = ProcessDriver()
        fault = ProcessFreezeFault(kind="process_freeze", target="web")
        exact = topology(web=ServiceSpec(process=ProcessMatch(cmdline=tuple(proc.args))))  # type: ignore[arg-type]
        record = driver.prepare(fault, FaultContext(topology=exact, run_id="x"), "f")
        assert [p.pid for p in record.processes] == [proc.pid]
        near = topology(web=ServiceSpec(process=ProcessMatch(cmdline=tuple(http_server_command(port + 1)))))
        with pytest.raises(FaultError, match="no running process"):
            driver.prepare(fault, FaultContext(topology=near, run_id="x"), "f")

    def test_unknown_service_is_a_safety_error(self) -> None:
        """A target the topology does not name is refused before anything happens."""
        fault = ProcessFreezeFault(kind="process_freeze", target="db")
        with pytest.raises(SafetyError, match="service 'db' is not in topology 't'"):
            ProcessDriver().prepare(fault, FaultContext(topology=topology(), run_id="x"), "f")

    def test_service_without_launcher_or_match_is_refused(self) -> None:
        """A service with neither a launcher nor a process match cannot be resolved to PIDs."""
        fault = ProcessKillFault(kind="process_kill", target="web")
        with pytest.raises(FaultError, match="no 'process' match"):
            ProcessDriver().prepare(fault, FaultContext(topology=topology(), run_id="x"), "f")

    def test_bad_signal_is_a_one_line_validation_error(self) -> None:
        """An unknown signal name is rejected by the spec model with a message naming it."""
        with pytest.raises(ValueError, match="expected a signal name like SIGKILL or SIGTERM, got 'SIGFOO'"):
            ProcessKillFault(kind="process_kill", target="web", signal="SIGFOO")
