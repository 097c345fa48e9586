"""``chaoslab rollback``: revert what dead runs left behind, from their ledgers.

For every ledger without an ``end`` entry whose owner process is gone: revert each fault not
known to be reverted (newest first, idempotently, checking it is gone), stop the processes the
run launched (by PID and start time, never a reused PID), remove its containers, unmount its
tmpfs mounts and delete its run directory. Runs whose owner still runs are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from chaoslab.faults import FaultContext, driver_for
from chaoslab.model.topology import TopologySpec
from chaoslab.run.ledger import Ledger, LedgerState, iter_ledgers
from chaoslab.system.containers import ContainerBackend
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


async def rollback_all(base: Path | None = None, *, force: bool = False) -> RollbackReport:
    """Roll back every dead run's leftovers under the state directory."""
    report = RollbackReport()
    for state in iter_ledgers(base):
        if state.ended:
            shutil.rmtree(state.path.parent, ignore_errors=True)
            continue
        if state.owner_alive() and not force:
            report.skipped.append(f"run {state.run_id} is still running (pid {state.header.get('pid')}); not touched")
            continue
        await rollback_run(state, report)
    return report


async def rollback_run(state: LedgerState, report: RollbackReport) -> None:
    """Revert one run's faults, stop its processes and containers, unmount, clean up."""
    run_id = state.run_id
    ledger = Ledger(state.path)
    topology: TopologySpec | None = None
    with contextlib.suppress(Exception):
        topology = TopologySpec.model_validate(state.header["topology"])
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
            refs=dict(state.header.get("refs") or {}),
            run_dir=state.header.get("run_dir"),
        )
        try:
            driver = driver_for(fault.family)
            await driver.revert(fault.record, ctx)
            problem = await driver.check_reverted(fault.record, ctx)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        ok = problem is None
        ledger.append({"type": "fault", "label": fault.label, "state": "reverted" if ok else "revert_failed"})
        report.actions.append(RollbackAction(run_id, what, ok, problem or ""))
    for proc in state.live_processes():
        pid = int(proc["pid"])
        sig = int(proc.get("stop_signal") or signal.SIGTERM)
        create_time = proc.get("create_time")
        ok = await asyncio.to_thread(stop_pid, pid, float(create_time) if create_time else None, sig=sig)
        ledger.append({"type": "process", "pid": pid, "state": "stopped" if ok else "stop_failed"})
        report.actions.append(RollbackAction(run_id, f"stop {proc.get('service', '?')} (pid {pid})", ok))
    for cid, entry in state.containers.items():
        if entry.get("state") == "removed":
            continue
        ok, detail = await asyncio.to_thread(_remove_container, cid)
        ledger.append({"type": "container", "id": cid, "state": "removed" if ok else "remove_failed"})
        report.actions.append(RollbackAction(run_id, f"remove container {entry.get('service', cid[:12])}", ok, detail))
    for path, entry in state.mounts.items():
        if entry.get("state") == "unmounted":
            continue
        result = await asyncio.to_thread(subprocess.run, ["umount", path], capture_output=True, check=False)
        stderr = result.stderr.decode(errors="replace").strip()
        ok = result.returncode == 0 or "not mounted" in stderr
        ledger.append({"type": "mount", "path": path, "state": "unmounted" if ok else "umount_failed"})
        report.actions.append(RollbackAction(run_id, f"unmount {path}", ok, "" if ok else stderr))
    run_dir = state.header.get("run_dir")
    if run_dir and Path(run_dir).name.startswith("chaoslab-"):
        shutil.rmtree(run_dir, ignore_errors=True)
    if all(a.ok for a in report.actions if a.run_id == run_id):
        ledger.close(remove=True)


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
