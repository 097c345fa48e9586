"""CPU and memory pressure: real burner processes on the host and inside a real container, bounded and reverted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest

from chaoslab.errors import FaultError
from chaoslab.faults.base import FaultContext
from chaoslab.faults.pressure import (
    BURNER_CODE,
    PressureDriver,
    PressureRecord,
    burner_argv,
    burner_lifetime_s,
    burner_plan,
    check_memory_fits,
    demux_text,
)
from chaoslab.faults.registry import builtin_registry
from chaoslab.model.faults import CpuPressureFault, MemoryPressureFault
from chaoslab.model.topology import TopologySpec
from tests.conftest import free_port

MIB = 1024 * 1024


def host_ctx() -> FaultContext:
    """A context whose topology has one local (non-container) service."""
    topology = TopologySpec.model_validate({"name": "t", "services": {"local": {}}})
    return FaultContext(topology=topology, run_id="r1")


def container_ctx(container: Any) -> FaultContext:
    """A context whose service ``web`` is the given container (by name)."""
    topology = TopologySpec.model_validate({"name": "t", "services": {"web": {"container": {"name": container.name}}}})
    return FaultContext(topology=topology, run_id="r1")


def cpu_share(pids: list[int], interval_s: float = 1.0) -> list[float]:
    """The CPU use of each process over ``interval_s``, in percent of one core."""
    procs = [psutil.Process(pid) for pid in pids]
    for proc in procs:
        proc.cpu_percent(None)
    time.sleep(interval_s)
    return [proc.cpu_percent(None) for proc in procs]


def runnable_samples(pid: int, samples: int = 5) -> int:
    """How many of ``samples`` looks (50 ms apart) find the process running or runnable, not sleeping."""
    proc = psutil.Process(pid)
    count = 0
    for _ in range(samples):
        count += proc.status() == psutil.STATUS_RUNNING
        time.sleep(0.05)
    return count


def assert_burning(pids: list[int]) -> None:
    """Each process uses CPU and is runnable nearly always — what a busy loop does and a sleeper does not.

    On an idle machine a busy loop takes a whole core; on a shared 2-core machine under load it
    gets less, so the share threshold is low and the runnable state carries the proof.
    """
    shares = cpu_share(pids)
    assert all(share > 10.0 for share in shares), shares
    assert all(runnable_samples(pid) >= 4 for pid in pids)


def gone(pid: int, create_time: float | None = None) -> bool:
    """True when no live process has this PID (and start time)."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.01:
            return True
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout_s: float = 10.0) -> float:
    """Wait until process ``pid`` is gone; the seconds it took."""
    started = time.monotonic()
    while not gone(pid):
        assert time.monotonic() - started < timeout_s, f"process {pid} still runs after {timeout_s}s"
        time.sleep(0.05)
    return time.monotonic() - started


class TestPlanning:
    """The pure parts: burner counts, lifetimes, the memory safety check, the command line."""

    def test_one_burner_per_core(self) -> None:
        """cpu_pressure with 3 cores plans 3 CPU burner processes; memory_pressure plans one holder of the size."""
        assert burner_plan(CpuPressureFault(kind="cpu_pressure", target="host", cores=3)) == [("cpu", 0)] * 3
        memory = MemoryPressureFault.model_validate({"kind": "memory_pressure", "target": "host", "size": "64MiB"})
        assert burner_plan(memory) == [("memory", 67108864)]

    def test_lifetime_is_bounded(self) -> None:
        """A burner lives at most the fault duration plus 60 s, or an hour when the fault has no duration."""
        assert burner_lifetime_s(10.0) == 70.0
        assert burner_lifetime_s(None) == 3600.0

    def test_memory_beyond_headroom_is_refused(self) -> None:
        """Holding more than 90 % of the available memory is a FaultError naming both sizes."""
        check_memory_fits(900, 1000)
        with pytest.raises(FaultError, match="memory_pressure size 901 bytes is more than 90% of the 1000 bytes"):
            check_memory_fits(901, 1000)

    def test_marker_is_the_last_argument(self) -> None:
        """The burner command line carries mode, amount, lifetime, parent and the marker, in that order."""
        argv = burner_argv("/py", "cpu", 0, 70.0, 42, "m-1")
        assert argv == ["/py", "-c", BURNER_CODE, "cpu", "0", "70", "42", "m-1"]

    def test_attach_stream_frames_are_dropped(self) -> None:
        """Docker's 8-byte stream headers are removed from an exec's output, across stdout and stderr frames."""
        frames = b"\x01\x00\x00\x00\x00\x00\x00\x03rea" + b"\x02\x00\x00\x00\x00\x00\x00\x03dy\n"
        assert demux_text(frames) == "ready\n"
        assert demux_text(frames[:12]) == "rea"

    def test_registered_for_its_family(self) -> None:
        """Both pressure kinds resolve to this driver."""
        registry = builtin_registry()
        assert isinstance(registry.driver("cpu_pressure"), PressureDriver)
        assert isinstance(registry.driver("memory_pressure"), PressureDriver)

    def test_unknown_service_is_refused(self) -> None:
        """A target that is neither host nor a topology service is a FaultError."""
        with pytest.raises(FaultError, match="service 'nope' is not in topology 't'"):
            PressureDriver().prepare(CpuPressureFault(kind="cpu_pressure", target="nope"), host_ctx(), "c")


@pytest.mark.integration
class TestBurnerBounds:
    """A burner never outlives its lifetime or its parent."""

    def test_exits_after_its_lifetime(self) -> None:
        """A CPU burner with a 0.5 s lifetime exits by itself, status 0."""
        argv = burner_argv(sys.executable, "cpu", 0, 0.5, -1, "chaoslab-test-lifetime")
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def test_exits_when_its_stdin_closes(self) -> None:
        """Closing the burner's stdin (what chaoslab's death does) makes it exit at once."""
        argv = burner_argv(sys.executable, "cpu", 0, 60.0, -1, "chaoslab-test-stdin")
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdin is not None
        try:
            assert proc.stdout.readline() == b"ready\n"
            proc.stdin.close()
            assert proc.wait(timeout=5) == 0
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()


CHILD_SCRIPT = """
import asyncio, json, sys
from chaoslab.faults.base import FaultContext
from chaoslab.faults.pressure import PressureDriver
from chaoslab.model.faults import CpuPressureFault
from chaoslab.model.topology import TopologySpec

async def main():
    target, name = sys.argv[1], sys.argv[2]
    services = {"web": {"container": {"name": name}}} if name else {"local": {}}
    ctx = FaultContext(topology=TopologySpec.model_validate({"name": "t", "services": services}), run_id="child")
    driver = PressureDriver()
    fault = CpuPressureFault(kind="cpu_pressure", target=target, cores=1)
    record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "orphan"))
    print(json.dumps(record.to_json()), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


class ChaoslabChild:
    """Another chaoslab process that applies cpu_pressure (cores=1) and holds it until killed."""

    def __init__(self, target: str, container_name: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_SCRIPT, target, container_name], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.kill()
            pytest.fail("the child printed no record")
        self.record = PressureRecord.from_json(json.loads(line))

    def kill(self) -> None:
        """SIGKILL the child (like kill -9 of a run) and reap it."""
        self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def run_child_and_kill(target: str, container_name: str) -> PressureRecord:
    """Run a chaoslab process that applies cpu_pressure, SIGKILL it, and return the ledger record it printed."""
    child = ChaoslabChild(target, container_name)
    child.kill()
    return child.record


@pytest.mark.integration
class TestHostPressure:
    """Pressure on this host."""

    async def test_cpu_burners_use_cpu_and_revert_kills_them(self) -> None:
        """Two CPU burners each keep a core busy; after revert neither PID exists."""
        driver, ctx = PressureDriver(), host_ctx()
        fault = CpuPressureFault(kind="cpu_pressure", target="host", cores=2, duration=30.0)
        record = driver.prepare(fault, ctx, "cpu")
        assert record.where == "host"
        record = await driver.apply(fault, ctx, record)
        try:
            pids = [p.pid for p in record.processes]
            assert len(pids) == 2
            assert all(record.marker in psutil.Process(pid).cmdline() for pid in pids)
            await asyncio.to_thread(assert_burning, pids)
            assert await driver.check_reverted(record, ctx) == f"burner process(es) {pids} still run"
        finally:
            await driver.revert(record, ctx)
        assert all(gone(p.pid, p.create_time) for p in record.processes)
        assert await driver.check_reverted(record, ctx) is None
        await driver.revert(record, ctx)  # idempotent

    async def test_memory_holder_is_resident_and_freed(self) -> None:
        """A 64 MiB memory_pressure holder has at least 64 MiB resident; revert ends it."""
        driver, ctx = PressureDriver(), host_ctx()
        fault = MemoryPressureFault.model_validate({"kind": "memory_pressure", "target": "local", "size": "64MiB"})
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "mem"))
        try:
            (entry,) = record.processes
            assert psutil.Process(entry.pid).memory_info().rss >= 64 * MIB
            assert driver.detail(record) == {"where": "host", "burners": 1, "size_bytes": 67108864}
        finally:
            await driver.revert(record, ctx)
        assert gone(entry.pid, entry.create_time)

    async def test_revert_from_another_process(self) -> None:
        """A rollback in another process kills the burner from the ledger record alone (PID + start time)."""
        child = await asyncio.to_thread(ChaoslabChild, "host", "")
        try:
            (entry,) = child.record.processes
            assert not gone(entry.pid, entry.create_time)
            await PressureDriver().revert(child.record, host_ctx())
            assert await asyncio.to_thread(wait_gone, entry.pid, 5.0) < 5.0
            assert await PressureDriver().check_reverted(child.record, host_ctx()) is None
        finally:
            child.kill()

    async def test_revert_of_a_half_applied_fault_finds_burners_by_marker(self) -> None:
        """A burner whose PID never reached the record (apply failed half-way) is found by its marker and killed."""
        record = PressureDriver().prepare(CpuPressureFault(kind="cpu_pressure", target="host"), host_ctx(), "half")
        argv = burner_argv(sys.executable, "cpu", 0, 60.0, -1, record.marker)
        stray = await asyncio.to_thread(subprocess.Popen, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert stray.stdout is not None and stray.stdout.readline() == b"ready\n"
            assert (
                await PressureDriver().check_reverted(record, host_ctx())
                == f"burner process(es) {[stray.pid]} still run"
            )
            await PressureDriver().revert(record, host_ctx())
            assert stray.wait(timeout=5) == -9
            assert await PressureDriver().check_reverted(record, host_ctx()) is None
        finally:
            for stream in (stray.stdin, stray.stdout):
                if stream is not None:
                    stream.close()
            if stray.poll() is None:
                stray.kill()
                stray.wait()

    async def test_memory_beyond_the_host_is_refused(self) -> None:
        """64 GiB on a machine with less available is refused before any burner starts."""
        driver, ctx = PressureDriver(), host_ctx()
        fault = MemoryPressureFault.model_validate(
            {"kind": "memory_pressure", "target": "host", "size": "64GiB", "cap": "64GiB"}
        )
        record = driver.prepare(fault, ctx, "huge")
        with pytest.raises(FaultError, match="memory_pressure size 68719476736 bytes is more than 90% of the"):
            await driver.apply(fault, ctx, record)
        assert await driver.check_reverted(record, ctx) is None

    def test_burner_dies_with_a_killed_chaoslab(self) -> None:
        """When the chaoslab process that started a burner is SIGKILLed, the burner exits by itself."""
        record = run_child_and_kill("host", "")
        (entry,) = record.processes
        assert wait_gone(entry.pid, 5.0) < 5.0


@pytest.mark.integration
@pytest.mark.docker
class TestContainerPressure:
    """Pressure inside a service's container (docker exec of the bind-mounted Python)."""

    async def test_cpu_in_container(self, http_container: Any, docker_client: Any) -> None:
        """A CPU burner exec'd in the container burns a core in that container; revert leaves none."""
        container = http_container(free_port())
        driver, ctx = PressureDriver(docker_client), container_ctx(container)
        fault = CpuPressureFault(kind="cpu_pressure", target="web", cores=1, duration=30.0)
        record = driver.prepare(fault, ctx, "cpu")
        assert (record.where, record.container_id) == ("container", container.id)
        record = await driver.apply(fault, ctx, record)
        try:
            (entry,) = record.processes
            host_pid = entry.host_pid
            assert host_pid in [int(row[1]) for row in container.top()["Processes"]]
            await asyncio.to_thread(assert_burning, [host_pid])
            assert await driver.check_reverted(record, ctx) == (
                f"1 burner process(es) still run in container {container.name}"
            )
        finally:
            await driver.revert(record, ctx)
        assert gone(host_pid)
        assert await driver.check_reverted(record, ctx) is None
        container.reload()
        assert container.status == "running"

    async def test_memory_in_container(self, http_container: Any, docker_client: Any) -> None:
        """A 32 MiB holder in the container has at least 32 MiB resident; revert ends it."""
        container = http_container(free_port())
        driver, ctx = PressureDriver(docker_client), container_ctx(container)
        fault = MemoryPressureFault.model_validate({"kind": "memory_pressure", "target": "web", "size": "32MiB"})
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "mem"))
        try:
            host_pid = record.processes[0].host_pid
            assert psutil.Process(host_pid).memory_info().rss >= 32 * MIB
        finally:
            await driver.revert(record, ctx)
        assert gone(host_pid)

    async def test_revert_from_another_process(self, http_container: Any, docker_client: Any) -> None:
        """A rollback in another process kills the exec'd burner by its marker, from the ledger record alone."""
        container = http_container(free_port())
        child = await asyncio.to_thread(ChaoslabChild, "web", container.name)
        try:
            host_pid = child.record.processes[0].host_pid
            assert not gone(host_pid)
            driver, ctx = PressureDriver(docker_client), container_ctx(container)
            await driver.revert(child.record, ctx)
            assert gone(host_pid)
            assert await driver.check_reverted(child.record, ctx) is None
        finally:
            child.kill()

    async def test_memory_beyond_the_host_is_refused_in_a_container(
        self, http_container: Any, docker_client: Any
    ) -> None:
        """A container on this host shares its memory: 64 GiB is refused before any burner starts."""
        container = http_container(free_port())
        driver, ctx = PressureDriver(docker_client), container_ctx(container)
        fault = MemoryPressureFault.model_validate(
            {"kind": "memory_pressure", "target": "web", "size": "64GiB", "cap": "64GiB"}
        )
        record = driver.prepare(fault, ctx, "huge")
        with pytest.raises(FaultError, match="memory_pressure size 68719476736 bytes is more than 90% of the"):
            await driver.apply(fault, ctx, record)
        assert await driver.check_reverted(record, ctx) is None

    def test_container_burner_dies_with_a_killed_chaoslab(self, http_container: Any) -> None:
        """When chaoslab is SIGKILLed, the exec'd burner sees its attach stream close and exits."""
        container = http_container(free_port())
        record = run_child_and_kill("web", container.name)
        host_pid = record.processes[0].host_pid
        assert wait_gone(host_pid, 5.0) < 5.0
