"""``chaoslab rollback``: revert what dead runs left behind, from their ledgers.

For every ledger without an ``end`` entry whose owner process is gone: revert each fault not
known to be reverted (newest first, idempotently, checking it is gone), stop the processes the
run launched (by PID and start time, never a reused PID), remove its containers, unmount its
tmpfs mounts and delete its run directory. Runs whose owner still runs are left alone.

A fault's record is read back through the fault registry (its family's record type). A record
this version cannot read — written by another chaoslab, or damaged — is not guessed at: the
action fails, names the fault, says why, and the ledger is kept for a later rollback or a
revert by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from chaoslab.faults.base import FaultContext
from chaoslab.faults.registry import FaultRegistry, builtin_registry
from chaoslab.model.topology import TopologySpec
from chaoslab.run.ledger import FaultEntry, FaultStatus, Ledger, LedgerState, iter_ledgers
from chaoslab.system.containers import ContainerBackend
from chaoslab.system.entries import (
    ContainerEntry,
    ContainerStatus,
    MountEntry,
    MountStatus,
    ProcessEntry,
    ProcessStatus,
)
from chaoslab.system.processes import stop_pid


@dataclass
class RollbackAction:
    """One thing rollback did (or failed to do)."""

    run_id: str
    what: str
    ok: bool
    detail: str = ""


@dataclass
class RollbackReport:
    """Everything rollback did, and whether it all worked."""

    actions: list[RollbackAction] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every action succeeded."""
        return all(a.ok for a in self.actions)


async def rollback_all(
    base: Path | None = None, *, force: bool = False, registry: FaultRegistry | None = None
) -> RollbackReport:
    """Roll back every dead run's leftovers under the state directory."""
    registry = registry or builtin_registry()
    report = RollbackReport()
    for state in iter_ledgers(base):
        if state.ended:
            shutil.rmtree(state.path.parent, ignore_errors=True)
            continue
        if state.owner_alive() and not force:
            report.skipped.append(f"run {state.run_id} is still running (pid {state.header.pid}); not touched")
            continue
        await rollback_run(state, report, registry)
    return report


async def rollback_run(state: LedgerState, report: RollbackReport, registry: FaultRegistry | None = None) -> None:
    """Revert one run's faults, stop its processes and containers, unmount, clean up."""
    registry = registry or builtin_registry()
    run_id = state.run_id
    ledger = Ledger(state.path)
    if state.unreadable:
        lines = ", ".join(map(str, state.unreadable[:5]))
        report.actions.append(
            RollbackAction(
                run_id,
                f"read the ledger {state.path}",
                False,
                f"line(s) {lines} cannot be read by this chaoslab; what they record may still need undoing by hand",
            )
        )
    topology: TopologySpec | None = None
    with contextlib.suppress(Exception):
        topology = TopologySpec.model_validate(state.header.topology)
    for fault in state.pending_faults():
        what = f"revert {fault.label} ({fault.kind} on {fault.target})"
        if topology is None:
            report.actions.append(RollbackAction(run_id, what, False, "the ledger has no readable topology"))
            continue
        ctx = FaultContext(
            topology=topology,
            run_id=run_id,
            toxiproxy_url=state.toxiproxy_url,
            services=None,
            refs=dict(state.header.refs or {}),
            run_dir=state.header.run_dir,
        )
        problem = await revert_from_ledger(fault, ctx, registry)
        ok = problem is None
        status = FaultStatus.REVERTED if ok else FaultStatus.REVERT_FAILED
        ledger.append(FaultEntry(label=fault.label, state=status, problem=problem))
        report.actions.append(RollbackAction(run_id, what, ok, problem or ""))
    for proc in state.live_processes():
        sig = proc.stop_signal or int(signal.SIGTERM)
        ok = await asyncio.to_thread(stop_pid, proc.pid, proc.create_time, sig=sig)
        ledger.append(ProcessEntry(pid=proc.pid, state=ProcessStatus.STOPPED if ok else ProcessStatus.STOP_FAILED))
        report.actions.append(RollbackAction(run_id, f"stop {proc.service or '?'} (pid {proc.pid})", ok))
    for container in state.live_containers():
        ok, detail = await asyncio.to_thread(_remove_container, container.id)
        removed = ContainerStatus.REMOVED if ok else ContainerStatus.REMOVE_FAILED
        ledger.append(ContainerEntry(id=container.id, state=removed))
        what = f"remove container {container.service or container.id[:12]}"
        report.actions.append(RollbackAction(run_id, what, ok, detail))
    for mount in state.live_mounts():
        path = mount.path
        result = await asyncio.to_thread(subprocess.run, ["umount", path], capture_output=True, check=False)
        stderr = result.stderr.decode(errors="replace").strip()
        ok = result.returncode == 0 or "not mounted" in stderr
        ledger.append(MountEntry(path=path, state=MountStatus.UNMOUNTED if ok else MountStatus.UMOUNT_FAILED))
        report.actions.append(RollbackAction(run_id, f"unmount {path}", ok, "" if ok else stderr))
    run_dir = state.header.run_dir
    if run_dir and Path(run_dir).name.startswith("chaoslab-"):
        shutil.rmtree(run_dir, ignore_errors=True)
    if all(a.ok for a in report.actions if a.run_id == run_id):
        ledger.close(remove=True)


async def revert_from_ledger(fault: FaultEntry, ctx: FaultContext, registry: FaultRegistry) -> str | None:
    """Revert one fault from its ledger entry and check it is gone; None when it is, else why not."""
    kind = fault.kind
    if kind is None or kind not in registry:
        # a ledger from before kinds were recorded names only the family: take the family's first kind
        family = registry.families.get(fault.family or "")
        if family is None:
            return f"no fault driver for kind {kind!r} (family {fault.family!r}) in this chaoslab; revert it by hand"
        kind = family.kinds[0]
    if not fault.record:
        return "the ledger has no record of what the fault changed; check by hand"
    try:
        record = registry.read_record(kind, fault.record)
        driver = registry.driver(kind)
        await driver.revert(record, ctx)
        return await driver.check_reverted(record, ctx)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _remove_container(container_id: str) -> tuple[bool, str]:
    try:
        backend = ContainerBackend()
        try:
            backend.stop_and_remove(container_id)
        finally:
            backend.close()
    except Exception as exc:
        return False, str(exc)
    return True, ""
