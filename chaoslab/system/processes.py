"""Processes of the system under test: identity by PID *and* start time, stopping, finding, ports.

A PID alone does not name a process: the kernel reuses numbers. Everything chaoslab records
about a process (in a run's ledger, in the demo's state file, in a fault's record) is a PID
with its start time, and every later action first checks, through :func:`same_process`, that
the PID still belongs to the process that was recorded — so a rollback run long after a fault
never signals a stranger that merely got the same number.

Also here: the protocols the lower layers take instead of importing the run — what a process
fault needs from the launcher (:class:`ServiceControl`) and where a part writes what it started
(:class:`LedgerWriter`).
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

from chaoslab.model.loading import resolve_runtime_refs
from chaoslab.model.topology import ServiceSpec
from chaoslab.system.entries import SystemEntry

CREATE_TIME_TOLERANCE_S = 0.01
"""Start times from psutil are floats rounded to clock ticks; two reads of the same process agree
to well within this, while a reused PID starts at least a tick later."""


class LedgerWriter(Protocol):
    """Where a part that starts processes or containers records them first (the run's ledger)."""

    def append(self, entry: SystemEntry) -> None:
        """Write one entry durably before returning."""
        ...


class ServiceControl(Protocol):
    """What process faults and probes need from the launcher that started (or found) the services."""

    def pids(self, service: str) -> list[int]:
        """PIDs of the service's main process(es), empty when it is not running."""
        ...

    def is_supervised(self, service: str) -> bool:
        """Whether the launcher restarts the service by itself when it dies."""
        ...

    async def restart(self, service: str) -> None:
        """Stop (if running) and start the service again; returns once it is healthy or raises."""
        ...

    async def ensure_running(self, service: str) -> None:
        """Start the service if it is not running; returns once it is healthy or raises."""
        ...


def process_identity(pid: int) -> float | None:
    """The start time of a PID (to tell it from a later process reusing the number); None if gone."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def same_process(pid: int, create_time: float | None) -> psutil.Process | None:
    """The live, non-zombie process ``pid`` if it is still the one that started at ``create_time``.

    None when it is gone, a zombie, or the PID now belongs to a later process. Without a recorded
    start time (``None``) any live process with the PID is taken to be it.
    """
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > CREATE_TIME_TOLERANCE_S:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.NoSuchProcess:  # ZombieProcess is a NoSuchProcess too
        return None


@dataclass(frozen=True, slots=True)
class ProcessRef:
    """One process as recorded in a ledger: its PID and the start time that makes it unique."""

    pid: int
    create_time: float

    def to_json(self) -> dict[str, Any]:
        """Plain data for the ledger."""
        return {"pid": self.pid, "create_time": self.create_time}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRef:
        """Back from ledger data."""
        return cls(pid=int(data["pid"]), create_time=float(data["create_time"]))

    @classmethod
    def of(cls, pid: int) -> ProcessRef | None:
        """The reference of a live process, or None when there is no such process."""
        try:
            return cls(pid=pid, create_time=psutil.Process(pid).create_time())
        except psutil.NoSuchProcess:
            return None

    def process(self) -> psutil.Process | None:
        """The live process this refers to, or None when it is gone (or the PID was reused)."""
        return same_process(self.pid, self.create_time)


def stop_pid(pid: int, create_time: float | None, *, sig: int = signal.SIGTERM, timeout_s: float = 8.0) -> bool:
    """Stop one process we started, by PID, only if it is still the same process. True if gone."""
    try:
        proc = same_process(pid, create_time)
        if proc is None:
            return True  # gone, or the PID was reused by something that is not ours: leave it alone
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGCONT)  # a frozen process cannot act on SIGTERM
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False
    return True


def process_tree(pids: list[int]) -> list[ProcessRef]:
    """References of ``pids`` and all their descendants, parents first, without duplicates."""
    refs: list[ProcessRef] = []
    seen: set[int] = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            family = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for member in family:
            if member.pid in seen:
                continue
            ref = ProcessRef.of(member.pid)
            if ref is not None:
                seen.add(member.pid)
                refs.append(ref)
    return refs


def _pidfile_pid(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def matched_pids(service: ServiceSpec, refs: Mapping[str, str] | None = None) -> list[int]:
    """PIDs of a service found through its topology ``process`` match (pidfile or exact cmdline).

    ``refs`` resolves ``${run_dir}``-style references in the pidfile path and the command line.
    """

    def resolved(text: str) -> str:
        return resolve_runtime_refs(text, refs) if refs is not None and "${" in text else text

    match = service.process
    if match is None:
        return []
    if match.pidfile is not None:
        pid = _pidfile_pid(resolved(match.pidfile))
        return [pid] if pid is not None and psutil.pid_exists(pid) else []
    wanted = [resolved(arg) for arg in match.cmdline]
    found: list[int] = []
    for proc in psutil.process_iter(["cmdline"]):
        # Exact, whole-command-line equality: never a substring or process-name match.
        if proc.info["cmdline"] == wanted:
            found.append(proc.pid)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
