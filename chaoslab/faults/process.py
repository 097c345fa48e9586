"""Process faults on a local service: kill with a signal, freeze (SIGSTOP/SIGCONT), restart.

The target service is resolved to PIDs by the launcher (:class:`ServiceControl`) or by the
topology's ``process`` match (a pidfile or an exact command line) — never by a broad name
match. ``prepare`` records each PID with its start time, so the ledger is complete before a
single signal is sent and a later rollback never signals a process that reuses a PID.

Ledger record (:class:`ProcessRecord`)::

    {"kind": "process_freeze", "service": "api", "key": "chaoslab-<run>-<label>",
     "processes": [{"pid": 4242, "create_time": 1763881234.5}], "signal": "SIGSTOP",
     "restart_after_s": null, "supervised": true, "launched": true, "signalled": [4242]}
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

import psutil

from chaoslab.errors import FaultError, RevertError
from chaoslab.faults.base import FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.faults.resolve import run_label, service_pids, service_spec
from chaoslab.model.faults import ProcessFreezeFault, ProcessKillFault, ProcessRestartFault
from chaoslab.system.processes import ProcessRef, matched_pids, process_tree

ProcessFault = ProcessKillFault | ProcessFreezeFault | ProcessRestartFault
"""The faults this family applies."""

# How long a revert of a kill waits for an outside supervisor (systemd, a container runtime)
# to bring back a service that chaoslab cannot start itself.
EXTERNAL_RESTART_WAIT_S = 10.0

STOP_SIGNALS = ("SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU")
"""Signals that stop rather than end a process: such a "kill" is held until SIGCONT."""


class ProcessRecord(LedgerRecord):
    """The processes of a service a fault signals, named by PID and start time before any signal."""

    service: str
    key: str
    """``chaoslab-<run>-<label>``: names the fault (older chaoslab keyed a pending restart by it)."""
    processes: tuple[ProcessRef, ...] = ()
    signal: str
    restart_after_s: float | None = None
    supervised: bool = False
    """Whether chaoslab's launcher restarts the service when it dies."""
    launched: bool = False
    """Whether chaoslab launched the service (a rollback then stops it rather than start it)."""
    signalled: tuple[int, ...] = ()
    """PIDs the signal actually reached."""


def _send(refs: list[ProcessRef], signum: int) -> list[int]:
    """Send ``signum`` to each still-identical process; the PIDs actually signalled."""
    sent: list[int] = []
    for ref in refs:
        proc = ref.process()
        if proc is None:
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signum)
            sent.append(ref.pid)
    return sent


async def _wait_stopped(refs: list[ProcessRef], timeout_s: float = 2.0) -> None:
    """Signals are delivered asynchronously; return once every live recorded process is stopped."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = False
        for ref in refs:
            proc = ref.process()
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc is not None and proc.status() not in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
                    pending = True
        if not pending:
            return
        await asyncio.sleep(0.01)


def _alive(pids: list[int]) -> list[int]:
    alive: list[int] = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def _running_pids(ctx: FaultContext, service: str) -> list[int]:
    if ctx.services is not None:
        return _alive(ctx.services.pids(service))
    return _alive(matched_pids(service_spec(ctx, service), ctx.refs))


class ProcessDriver(FaultDriver[ProcessFault, ProcessRecord]):
    """Kill, freeze or restart the processes of a local service."""

    def __init__(self, external_restart_wait_s: float = EXTERNAL_RESTART_WAIT_S) -> None:
        self.external_restart_wait_s = external_restart_wait_s

    def prepare(self, fault: ProcessFault, ctx: FaultContext, label: str) -> ProcessRecord:
        """Resolve the service to processes now, so the record names them before any signal."""
        if not isinstance(fault, ProcessKillFault | ProcessFreezeFault | ProcessRestartFault):
            raise FaultError(f"the process driver cannot apply {type(fault).__name__}")
        pids = service_pids(ctx, fault.target)
        if not pids:
            raise FaultError(f"service {fault.target!r} has no running process to act on")
        # A freeze must stop the workers too, or they keep serving; kills and restarts act on the
        # main processes and leave their children to them (as a supervisor would).
        if isinstance(fault, ProcessFreezeFault):
            refs = process_tree(pids)
        else:
            refs = [ref for ref in (ProcessRef.of(pid) for pid in pids) if ref is not None]
        if not refs:
            raise FaultError(f"service {fault.target!r} has no running process to act on")
        if isinstance(fault, ProcessKillFault):
            signal_name, restart_after = fault.signal, fault.restart_after
        else:
            signal_name, restart_after = ("SIGSTOP" if isinstance(fault, ProcessFreezeFault) else "SIGTERM"), None
        return ProcessRecord(
            kind=fault.kind,
            service=fault.target,
            key=run_label(ctx, label),
            processes=tuple(refs),
            signal=signal_name,
            restart_after_s=restart_after,
            supervised=bool(ctx.services is not None and ctx.services.is_supervised(fault.target)),
            launched=ctx.services is not None and service_spec(ctx, fault.target).launch.kind != "external",
        )

    async def apply(self, fault: ProcessFault, ctx: FaultContext, record: ProcessRecord) -> ProcessRecord:
        """Send the signal (or restart through the launcher); ``restart_after`` is left to the plan's revert."""
        kind = record.kind
        refs = list(record.processes)
        if kind == "process_restart":
            if ctx.services is None:
                raise FaultError(
                    f"process_restart of {record.service!r} needs chaoslab's launcher; "
                    "use process_kill for a service started outside chaoslab"
                )
            await ctx.services.restart(record.service)
            return record.but(signalled=tuple(ref.pid for ref in refs))
        signum = int(getattr(signal, record.signal))
        sent = _send(refs, signum)
        if not sent:
            raise FaultError(f"every recorded process of {record.service!r} is gone; nothing to signal")
        record = record.but(signalled=tuple(sent))
        if signum == signal.SIGSTOP:
            await _wait_stopped(refs)
        # restart_after is the fault's duration: the plan reverts the kill then (see chaoslab.plan)
        return record

    async def revert(self, record: ProcessRecord, ctx: FaultContext) -> None:
        """Thaw frozen processes; make sure a killed or restarted service runs again."""
        kind = record.kind
        if kind == "process_freeze" or record.signal in STOP_SIGNALS:
            _send(list(record.processes), signal.SIGCONT)
            if kind == "process_freeze":
                return
        service = record.service
        if ctx.services is None and record.launched:
            # A rollback after the run died: the run's own launcher is gone and the rollback stops
            # the services it launched, so there is nothing to start again.
            return
        if ctx.services is not None:
            try:
                await ctx.services.ensure_running(service)
            except Exception as exc:
                raise RevertError(f"service {service!r} could not be started again: {exc}") from exc
            return
        # Started outside chaoslab: only its own supervisor can bring it back; wait for it.
        deadline = time.monotonic() + self.external_restart_wait_s
        while time.monotonic() < deadline:
            if _running_pids(ctx, service):
                return
            await asyncio.sleep(0.2)
        raise RevertError(
            f"service {service!r} is not running and chaoslab did not launch it, so it cannot start it; "
            "start it by hand"
        )

    async def check_reverted(self, record: ProcessRecord, ctx: FaultContext) -> str | None:
        """No recorded process still stopped; after a kill or restart, the service runs."""
        stopped: list[int] = []
        for ref in record.processes:
            proc = ref.process()
            if proc is None:
                continue
            try:
                if proc.status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
                    stopped.append(ref.pid)
            except psutil.NoSuchProcess:
                continue
        if stopped:
            return f"process(es) {', '.join(map(str, stopped))} of {record.service!r} are still stopped"
        launched_by_dead_run = ctx.services is None and record.launched
        if record.kind != "process_freeze" and not launched_by_dead_run and not _running_pids(ctx, record.service):
            return f"service {record.service!r} is not running"
        return None

    def detail(self, record: ProcessRecord) -> dict[str, Any]:
        """Which PIDs were signalled, with which signal."""
        return {"signal": record.signal, "pids": list(record.signalled)}

    def holds(self, record: ProcessRecord) -> bool:
        """A freeze is held until thawed, and so is a kill of a service only chaoslab starts again.

        A kill that chaoslab's supervisor (``launch.restart``) or the service's own supervisor (a
        service chaoslab did not launch) answers, and a restart, are over once applied: the
        service's coming back is its recovery.
        """
        if record.kind == "process_freeze" or record.signal in STOP_SIGNALS:
            return True
        if record.kind == "process_kill":
            return record.launched and not record.supervised
        return False


FAMILY: FaultFamily[ProcessFault, ProcessRecord] = FaultFamily(
    name="process",
    models=(ProcessKillFault, ProcessFreezeFault, ProcessRestartFault),
    driver=ProcessDriver,
    record=ProcessRecord,
)
"""Kill, freeze and restart a local service's processes."""
