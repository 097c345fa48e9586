"""Target resolution shared by the fault drivers: service and link lookups, safe names, PIDs.

Everything here is pure or reads only local process state (``psutil``); nothing is changed.
Processes are identified by PID *and* start time, so that a rollback run long after the fault
never signals a process that merely reuses a recorded PID.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from chaoslab.errors import FaultError, SafetyError
from chaoslab.faults.base import FaultContext
from chaoslab.model.loading import resolve_runtime_refs
from chaoslab.model.topology import LinkSpec, ServiceSpec

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# Start times from psutil are floats rounded to clock ticks; two reads of the same process agree
# to well within this, while a reused PID starts at least a tick later.
CREATE_TIME_TOLERANCE_S = 0.01


def safe_name(text: str) -> str:
    """``text`` reduced to characters safe in file names, toxic names and application names."""
    return _UNSAFE.sub("-", text).strip("-") or "fault"


def run_label(ctx: FaultContext, label: str, max_len: int = 200) -> str:
    """``chaoslab-<run_id>-<label>``: the unique per-run prefix of everything a fault creates."""
    return f"chaoslab-{safe_name(ctx.run_id)}-{safe_name(label)}"[:max_len]


def with_refs(ctx: FaultContext, text: str) -> str:
    """``text`` with its ``${run_dir}``-style references replaced by the run's values."""
    return resolve_runtime_refs(text, ctx.refs) if "${" in text else text


def service_spec(ctx: FaultContext, name: str) -> ServiceSpec:
    """The topology's service ``name``, or a :class:`SafetyError` naming the known ones."""
    service = ctx.topology.services.get(name)
    if service is None:
        known = ", ".join(sorted(ctx.topology.services)) or "none"
        raise SafetyError(f"service {name!r} is not in topology {ctx.topology.name!r} (services: {known})")
    return service


def link_spec(ctx: FaultContext, name: str) -> LinkSpec:
    """The topology's link ``name``, or a :class:`SafetyError` naming the known ones."""
    link = ctx.topology.links.get(name)
    if link is None:
        known = ", ".join(sorted(ctx.topology.links)) or "none"
        raise SafetyError(f"link {name!r} is not in topology {ctx.topology.name!r} (links: {known})")
    return link


def proxy_name(ctx: FaultContext, link: str) -> str:
    """The Toxiproxy proxy that carries ``link``: its ``proxy_name`` or the link name itself."""
    return link_spec(ctx, link).proxy_name or link


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
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None

    def process(self) -> psutil.Process | None:
        """The live process this refers to, or None when it is gone (or the PID was reused)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > CREATE_TIME_TOLERANCE_S:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None


def _pidfile_pid(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def matched_pids(service: ServiceSpec, ctx: FaultContext | None = None) -> list[int]:
    """PIDs of a service found through its topology ``process`` match (pidfile or exact cmdline)."""
    match = service.process
    if match is None:
        return []
    if match.pidfile is not None:
        pid = _pidfile_pid(with_refs(ctx, match.pidfile) if ctx is not None else match.pidfile)
        return [pid] if pid is not None and psutil.pid_exists(pid) else []
    wanted = [with_refs(ctx, arg) for arg in match.cmdline] if ctx is not None else list(match.cmdline)
    found: list[int] = []
    for proc in psutil.process_iter(["cmdline"]):
        # Exact, whole-command-line equality: never a substring or process-name match.
        if proc.info["cmdline"] == wanted:
            found.append(proc.pid)
    return found


def service_pids(ctx: FaultContext, name: str) -> list[int]:
    """PIDs of a service: from the launcher when it knows the service, else the topology's match."""
    service = service_spec(ctx, name)
    if ctx.services is not None:
        pids = ctx.services.pids(name)
        if pids:
            return pids
    if service.process is None and ctx.services is None:
        raise FaultError(
            f"service {name!r} has no process to act on: chaoslab did not launch it and its topology "
            "entry has no 'process' match (pidfile or cmdline)"
        )
    return matched_pids(service, ctx)


def process_tree(pids: list[int]) -> list[ProcessRef]:
    """References of ``pids`` and all their descendants, parents first, without duplicates."""
    refs: list[ProcessRef] = []
    seen: set[int] = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            family = [proc, *proc.children(recursive=True)]
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        for member in family:
            if member.pid in seen:
                continue
            ref = ProcessRef.of(member.pid)
            if ref is not None:
                seen.add(member.pid)
                refs.append(ref)
    return refs
