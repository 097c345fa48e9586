"""CPU and memory pressure: burner processes on the host or inside a service's container.

``cpu_pressure`` starts one busy-looping **process** per core (threads would share one GIL and
burn a single core); ``memory_pressure`` starts one process that holds ``size`` bytes of touched
pages. Where they run:

- target ``host``, or a service that runs as a local process → on this host;
- a service that runs in a container → inside it, ``docker exec`` of the bind-mounted Python
  (the container backend mounts it at the same path).

Every burner is bounded three ways, so none outlives the run even after ``kill -9`` of chaoslab:
its stdin is a pipe (or the exec's attach socket) held by chaoslab, and EOF makes it exit; on
the host it also exits when its parent PID changes; and it always exits after a hard maximum
lifetime. The ledger records the burners' PIDs and start times (host) or the container id and
a unique marker argument on the exec'd command lines (container), and revert kills exactly those.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import docker
import docker.errors
import psutil
from pydantic import BaseModel, ConfigDict

from chaoslab.errors import FaultError, RevertError
from chaoslab.faults.base import FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.faults.container import ContainerDriver, ContainerState
from chaoslab.model.faults import CpuPressureFault, FaultBase, MemoryPressureFault
from chaoslab.system.containers import connect
from chaoslab.system.processes import same_process

DEFAULT_MAX_LIFETIME_S = 3600.0
"""Hard lifetime of a burner whose fault has no duration (the run reverts it long before)."""
LIFETIME_MARGIN_S = 60.0
"""Added to a fault's duration for its burners' hard lifetime: revert normally comes first."""
READY_TIMEOUT_S = 60.0
"""How long a burner may take to start (and to touch all its memory)."""
KILL_WAIT_S = 10.0
"""How long revert waits for killed burners to be gone."""
MEMORY_HEADROOM = 0.9
"""memory_pressure on the host refuses a size above this share of the available memory."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

BURNER_CODE = r"""
import os, sys, threading, time
mode, amount, lifetime_s, parent = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
def watch_stdin():
    # chaoslab holds the other end; EOF means it is gone (or revert closed it).
    try:
        while sys.stdin.buffer.read1(65536):
            pass
    except Exception:
        pass
    os._exit(0)
def watch_parent_and_lifetime():
    deadline = time.monotonic() + lifetime_s
    while time.monotonic() < deadline:
        if parent > 0 and os.getppid() != parent:
            os._exit(0)
        time.sleep(0.2)
    os._exit(0)
threading.Thread(target=watch_stdin, daemon=True).start()
threading.Thread(target=watch_parent_and_lifetime, daemon=True).start()
if mode == "memory":
    held = bytearray(b"\x01") * amount  # filled, so every page is touched and resident
sys.stdout.write("ready\n")
sys.stdout.flush()
if mode == "cpu":
    while True:
        pass
while True:
    time.sleep(3600)
"""
"""The burner program, run with ``python -c``; argv: mode amount lifetime_s parent_pid marker."""

KILLER_CODE = r"""
import os, signal, sys, time
marker = os.environ["CHAOSLAB_MARKER"].encode()
def matching():
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as fh:
                    if marker in fh.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                pass
    return found
if sys.argv[1] == "kill":
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pids = matching()
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
print(len(matching()))
"""
"""Run inside a container: kills (``kill``) or counts (``count``) processes carrying the marker."""


class Where(StrEnum):
    """Where burners run (the value is kept in the ledger)."""

    HOST = "host"
    CONTAINER = "container"


def burner_lifetime_s(duration_s: float | None) -> float:
    """The hard lifetime of a burner: the fault's duration plus a margin, else the default."""
    if duration_s is None:
        return DEFAULT_MAX_LIFETIME_S
    return float(duration_s) + LIFETIME_MARGIN_S


def burner_argv(python: str, mode: str, amount: int, lifetime_s: float, parent_pid: int, marker: str) -> list[str]:
    """The command line of one burner (the marker makes it findable and nothing else)."""
    return [python, "-c", BURNER_CODE, mode, str(amount), f"{lifetime_s:g}", str(parent_pid), marker]


def burner_plan(fault: FaultBase) -> list[tuple[str, int]]:
    """(mode, amount) per burner process: one per CPU core, or one memory holder."""
    if isinstance(fault, CpuPressureFault):
        return [("cpu", 0)] * fault.cores
    if isinstance(fault, MemoryPressureFault):
        return [("memory", int(fault.size))]
    raise FaultError(f"the pressure driver does not handle {fault.kind!r}")


def check_memory_fits(size: int, available: int) -> None:
    """Refuse to hold more than :data:`MEMORY_HEADROOM` of the available memory (the host must survive)."""
    if size > available * MEMORY_HEADROOM:
        raise FaultError(
            f"memory_pressure size {size} bytes is more than {MEMORY_HEADROOM:.0%} of the "
            f"{available} bytes available; lower 'size'"
        )


def demux_text(raw: bytes) -> str:
    """Text of a non-TTY docker attach stream (8-byte frame headers dropped)."""
    out = bytearray()
    pos = 0
    while pos + 8 <= len(raw):
        size = int.from_bytes(raw[pos + 4 : pos + 8], "big")
        out += raw[pos + 8 : pos + 8 + size]
        pos += 8 + size
    return out.decode(errors="replace")


PressureFault = CpuPressureFault | MemoryPressureFault
"""The faults this family applies."""


class Burner(BaseModel):
    """One burner process: its PID and start time on the host, or its exec id (and host PID) in a container."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    pid: int | None = None
    create_time: float | None = None
    exec_id: str | None = None
    host_pid: int | None = None


class PressureRecord(LedgerRecord):
    """Where the burners of a pressure fault run, the marker on their command lines, and the burners."""

    target: str
    label: str
    marker: str
    """A random argument on every burner's command line: finds exactly these and no other."""
    burners: int
    lifetime_s: float
    where: Where = Where.HOST
    processes: tuple[Burner, ...] = ()
    size_bytes: int | None = None
    cores: int | None = None
    container_id: str | None = None
    container_name: str | None = None
    python: str | None = None
    """The Python run inside the container (bind-mounted at the same path)."""


@dataclass
class _Live:
    """What this process holds for running burners: Popen objects and attach sockets (never serialised)."""

    popens: list[subprocess.Popen[bytes]] = field(default_factory=list)
    sockets: list[Any] = field(default_factory=list)


# Burners started by this process, by marker: the stdin pipes/sockets that keep them alive.
_LIVE: dict[str, _Live] = {}


class PressureDriver(FaultDriver[PressureFault, PressureRecord]):
    """cpu_pressure and memory_pressure, on the host or inside a service's container."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        """The engine client, connected on first use (host pressure never needs one)."""
        if self._client is None:
            self._client = connect()
        return self._client

    # where ---------------------------------------------------------------------------------

    def _container_of(self, service_name: str, ctx: FaultContext) -> tuple[str, str] | None:
        """(id, name) of the running container of a containerised service; None for a host service."""
        service = ctx.topology.services.get(service_name)
        if service is None:
            known = ", ".join(sorted(ctx.topology.services)) or "none"
            raise FaultError(f"service {service_name!r} is not in topology {ctx.topology.name!r} (services: {known})")
        if service.launch.kind != "container" and service.container is None:
            return None
        running = [
            c
            for c in ContainerDriver(self.client).containers_of(service_name, ctx)
            if c.status == ContainerState.RUNNING
        ]
        if not running:
            raise FaultError(f"the container of service {service_name!r} is not running")
        return str(running[0].id), str(running[0].name)

    # FaultDriver ---------------------------------------------------------------------------

    def prepare(self, fault: PressureFault, ctx: FaultContext, label: str) -> PressureRecord:
        """Decide where the burners run and the marker that names them; nothing is started yet."""
        plan = burner_plan(fault)
        marker = _UNSAFE.sub("-", f"chaoslab-burner-{ctx.run_id}-{label}-{uuid.uuid4().hex[:8]}")
        record = PressureRecord(
            kind=fault.kind,
            target=fault.target,
            label=label,
            marker=marker,
            burners=len(plan),
            lifetime_s=burner_lifetime_s(fault.duration),
            size_bytes=int(fault.size) if isinstance(fault, MemoryPressureFault) else None,
            cores=fault.cores if isinstance(fault, CpuPressureFault) else None,
        )
        if fault.target != "host":
            found = self._container_of(fault.target, ctx)
            if found is not None:
                record = record.but(
                    where=Where.CONTAINER, container_id=found[0], container_name=found[1], python=sys.executable
                )
        return record

    async def apply(self, fault: PressureFault, ctx: FaultContext, record: PressureRecord) -> PressureRecord:
        """Start the burners and wait until each one is burning (memory touched); record them."""
        plan = burner_plan(fault)
        if isinstance(fault, MemoryPressureFault) and (record.where == Where.HOST or _engine_is_local()):
            # A container without a memory limit takes from this host's memory just the same.
            check_memory_fits(int(fault.size), psutil.virtual_memory().available)
        live = _LIVE.setdefault(record.marker, _Live())
        try:
            if record.where == Where.HOST:
                processes = await self._start_on_host(plan, record, live)
            else:
                processes = await self._start_in_container(plan, record, live)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.revert(record, ctx)
            raise
        return record.but(processes=tuple(processes))

    async def _start_on_host(self, plan: list[tuple[str, int]], record: PressureRecord, live: _Live) -> list[Burner]:
        processes = await asyncio.to_thread(_spawn_host_burners, plan, record, live)
        for popen in live.popens:
            assert popen.stdout is not None
            try:
                line = await asyncio.wait_for(asyncio.to_thread(popen.stdout.readline), READY_TIMEOUT_S)
            except TimeoutError:
                raise FaultError(f"a {record.kind} burner was not ready within {READY_TIMEOUT_S:g}s") from None
            popen.stdout.close()
            if line.strip() != b"ready":
                raise FaultError(f"a {record.kind} burner did not start (exit code {popen.poll()})")
        return processes

    async def _start_in_container(
        self, plan: list[tuple[str, int]], record: PressureRecord, live: _Live
    ) -> list[Burner]:
        return await asyncio.to_thread(self._exec_burners, plan, record, live)

    def _exec_burners(self, plan: list[tuple[str, int]], record: PressureRecord, live: _Live) -> list[Burner]:
        api = self.client.api
        processes: list[Burner] = []
        for mode, amount in plan:
            argv = burner_argv(str(record.python), mode, amount, record.lifetime_s, -1, record.marker)
            try:
                exec_id = api.exec_create(record.container_id, argv, stdin=True, stdout=True, stderr=True)["Id"]
                attached = api.exec_start(exec_id, socket=True)
            except docker.errors.APIError as exc:
                raise FaultError(f"starting a burner in container {record.container_name} failed: {exc}") from None
            live.sockets.append(attached)
            raw_socket = _raw_socket(attached)
            raw_socket.settimeout(READY_TIMEOUT_S)
            received = b""
            while "ready" not in demux_text(received):
                try:
                    chunk = raw_socket.recv(4096)
                except OSError as exc:  # a timeout included
                    raise FaultError(
                        f"a {record.kind} burner in container {record.container_name} did not get ready: {exc}"
                    ) from None
                if not chunk:
                    raise FaultError(
                        f"a {record.kind} burner in container {record.container_name} exited before it was "
                        f"ready: {demux_text(received).strip()[-300:]!r}"
                    )
                received += chunk
            host_pid = int(api.exec_inspect(exec_id).get("Pid") or 0)
            processes.append(Burner(exec_id=exec_id, host_pid=host_pid))
        return processes

    async def revert(self, record: PressureRecord, ctx: FaultContext) -> None:
        """Kill exactly the recorded burners (PID + start time, or marker inside the container); idempotent."""
        live = _LIVE.pop(record.marker, None)
        try:
            if record.where == Where.CONTAINER:
                await asyncio.to_thread(self._kill_in_container, record)
            else:
                await asyncio.to_thread(self._kill_on_host, record, live)
        finally:
            if live is not None:
                await asyncio.to_thread(_release, live)

    def _kill_on_host(self, record: PressureRecord, live: _Live | None) -> None:
        victims: list[psutil.Process] = []
        targets = [
            proc
            for entry in record.processes
            if entry.pid is not None and (proc := same_process(entry.pid, entry.create_time)) is not None
        ]
        # Burners started by an apply that failed half-way are not in the record yet; the marker is
        # a random token on their command lines, so matching it finds exactly those and no other.
        targets += _marked_processes(record.marker, exclude={p.pid for p in targets})
        for proc in targets:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
                victims.append(proc)
        if live is not None:
            for popen in live.popens:
                # Popen.kill is a no-op once it has been reaped, and reaping avoids zombies.
                with contextlib.suppress(ProcessLookupError):
                    popen.kill()
                popen.wait(timeout=10)
        deadline = time.monotonic() + KILL_WAIT_S
        alive = [p for p in victims if not _dead(p)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.02)
            alive = [p for p in alive if not _dead(p)]
        if alive:
            raise RevertError(f"burner process(es) {[p.pid for p in alive]} survived SIGKILL")

    def _kill_in_container(self, record: PressureRecord) -> None:
        if not record.container_id:
            return
        count = self._run_killer(record, "kill")
        if count not in (None, 0):
            raise RevertError(f"{count} burner process(es) still run in container {record.container_name}")

    def _run_killer(self, record: PressureRecord, mode: str) -> int | None:
        """Kill or count the marked processes inside the container; None when it no longer runs."""
        if not record.container_id:
            return None
        try:
            container = self.client.containers.get(record.container_id)
        except docker.errors.NotFound:
            return None
        if container.status != ContainerState.RUNNING:
            # Stopped (its processes died with it) — or paused: then they are frozen and harmless
            # until it is unpaused, when their closed stdin makes them exit.
            return None if container.status != ContainerState.PAUSED else -1
        result = container.exec_run(
            [record.python or sys.executable, "-c", KILLER_CODE, mode],
            environment={"CHAOSLAB_MARKER": record.marker},
        )
        output = result.output.decode(errors="replace").strip() if isinstance(result.output, bytes) else ""
        if result.exit_code != 0 or not output.isdigit():
            raise RevertError(f"could not {mode} burners in container {record.container_name}: {output[-300:]}")
        return int(output)

    async def check_reverted(self, record: PressureRecord, ctx: FaultContext) -> str | None:
        """None when no recorded burner runs any more."""
        if record.where == Where.CONTAINER:
            count = await asyncio.to_thread(self._run_killer, record, "count")
            if count == -1:
                return f"container {record.container_name} is paused; its burners cannot be checked"
            if count:
                return f"{count} burner process(es) still run in container {record.container_name}"
            return None
        alive = [
            entry.pid
            for entry in record.processes
            if entry.pid is not None and same_process(entry.pid, entry.create_time) is not None
        ]
        alive += [p.pid for p in _marked_processes(record.marker, exclude=set(alive))]
        return f"burner process(es) {alive} still run" if alive else None

    def detail(self, record: PressureRecord) -> dict[str, Any]:
        """Where the burners ran, how many, and how much memory they held."""
        detail: dict[str, Any] = {"where": record.where.value, "burners": len(record.processes)}
        if record.size_bytes is not None:
            detail["size_bytes"] = record.size_bytes
        if record.container_name:
            detail["container"] = record.container_name
        return detail


def _engine_is_local() -> bool:
    """Whether the Docker engine runs on this host (a unix socket), so its containers share our memory."""
    return (os.environ.get("DOCKER_HOST") or "unix://").startswith("unix://")


def _marked_processes(marker: str, exclude: set[int]) -> list[psutil.Process]:
    """Live processes of this host whose command line has ``marker`` as one of its arguments."""
    if not marker.startswith("chaoslab-burner-"):
        return []
    found: list[psutil.Process] = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if proc.pid not in exclude and marker in (proc.info.get("cmdline") or []) and not _dead(proc):
                found.append(proc)
    return found


def _dead(proc: psutil.Process) -> bool:
    """Gone, or a zombie (dead; its parent — maybe another chaoslab process — has not reaped it yet)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _release(live: _Live) -> None:
    """Close the stdin pipes and attach sockets (burners still alive see EOF and exit)."""
    for popen in live.popens:
        for stream in (popen.stdin, popen.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=10)
    for attached in live.sockets:
        # Close the raw socket too: closing only the SocketIO wrapper keeps the connection open.
        with contextlib.suppress(Exception):
            _raw_socket(attached).close()
        with contextlib.suppress(Exception):
            attached.close()


def _spawn_host_burners(plan: list[tuple[str, int]], record: PressureRecord, live: _Live) -> list[Burner]:
    """Start one burner process per plan entry on this host; their PIDs and start times."""
    processes: list[Burner] = []
    for mode, amount in plan:
        argv = burner_argv(sys.executable, mode, amount, record.lifetime_s, os.getpid(), record.marker)
        # A new session: a Ctrl-C meant for chaoslab must not reach the burners before revert does.
        popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
        )
        live.popens.append(popen)
        processes.append(Burner(pid=popen.pid, create_time=psutil.Process(popen.pid).create_time()))
    return processes


FAMILY: FaultFamily[PressureFault, PressureRecord] = FaultFamily(
    name="pressure",
    models=(CpuPressureFault, MemoryPressureFault),
    driver=PressureDriver,
    record=PressureRecord,
)
"""CPU and memory pressure on the host or inside a service's container."""


def _raw_socket(attached: Any) -> socket.socket:
    """The socket under docker's attach stream (``exec_start(socket=True)`` wraps it in a SocketIO)."""
    raw = getattr(attached, "_sock", attached)
    if not isinstance(raw, socket.socket):
        raise FaultError(f"unsupported docker attach stream {type(attached).__name__} (use a unix or tcp engine URL)")
    return raw
