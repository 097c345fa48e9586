"""Applying faults and taking them off again: the one revert path of a run.

:class:`FaultStack` is an async context manager over an :class:`~contextlib.AsyncExitStack`.
Each fault is written to the ledger (``intent``, with its record) before it is applied, and its
revert is pushed on the stack at that moment; a timed revert takes it off earlier. However the
``async with`` block is left — the end of the fault phase, a verdict, an exception, an abort, a
cancellation — every fault still on is reverted, newest first, and a cancellation that arrives
while reverting waits for the revert to finish (:func:`finish_despite_cancellation`) instead of
skipping it. A revert counts only when the driver's ``check_reverted`` positively saw the fault
gone; anything else is a revert failure (exit code 4), written to the ledger so that
``chaoslab rollback`` tries again.

The stack also stamps each fault's *removal* (``revert_started_s``), the moment chaoslab stopped
holding it, from which recovery is measured: the start of its revert, before whatever the revert
then waits for (a service started again answering, a container running). A fault its driver
does not hold (:meth:`~chaoslab.faults.base.FaultDriver.holds` is False after apply: a kill a
supervisor or restart policy answers, a restart) is removed at its injection: what follows is
the system's own recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, TypeVar

from chaoslab.errors import FaultError
from chaoslab.faults.base import AnyDriver, FaultContext, LedgerRecord
from chaoslab.faults.registry import FaultRegistry
from chaoslab.plan import Plan, PlannedFault
from chaoslab.run.ledger import FaultEntry, FaultStatus
from chaoslab.run.parts import EventSink
from chaoslab.timeline import FaultRecord

T = TypeVar("T")


class FaultLedger(Protocol):
    """Where fault steps are written durably before they happen (the run's :class:`~chaoslab.run.ledger.Ledger`)."""

    def append(self, entry: FaultEntry) -> None:
        """Write one entry durably before returning."""
        ...


async def finish_despite_cancellation(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if this task is cancelled meanwhile; then re-raise the cancellation.

    A second Ctrl-C (or a test runner's timeout) while faults are being reverted must not leave a
    fault on: the revert goes on, and the cancellation is delivered once it is done.
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        break
    if cancelled:
        raise asyncio.CancelledError()
    return result


@dataclass
class AppliedFault:
    """One fault the stack applied (or tried to), and what became of it."""

    planned: PlannedFault
    family: str
    driver: AnyDriver
    record: LedgerRecord
    injected_at_s: float | None = None
    revert_started_s: float | None = None
    """The removal: when chaoslab stopped holding the fault (its revert began, or its injection if not held)."""
    reverted_at_s: float | None = None
    """When the revert (and its check) finished."""
    revert_ok: bool | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """``applied``, ``reverted`` or ``revert_failed`` (as the live view shows it)."""
        if self.reverted_at_s is None:
            return "applied"
        return "reverted" if self.revert_ok else "revert_failed"


class FaultStack:
    """The faults applied in a run; on leaving its ``async with`` block, each still on is reverted."""

    def __init__(
        self,
        *,
        drivers: FaultRegistry,
        ledger: FaultLedger,
        context: Callable[[], FaultContext],
        now: Callable[[], float],
        on_event: EventSink,
    ) -> None:
        self.drivers = drivers
        self.ledger = ledger
        self.context = context
        self.now = now
        self.on_event = on_event
        self.applied: dict[str, AppliedFault] = {}
        self.revert_errors: list[str] = []
        self.unwinding = False
        """True once the stack reverts everything on its way out."""
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> FaultStack:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.unwinding = True
        await finish_despite_cancellation(self._stack.aclose())

    async def apply(self, planned: PlannedFault) -> None:
        """Write the intent, push the revert, apply; a failed apply is reverted at once and raises FaultError."""
        fault, label = planned.fault, planned.label
        kind = self.drivers[fault.kind]
        driver = self.drivers.driver(fault.kind)
        ctx = self.context()
        record = driver.prepare(fault, ctx, label)
        applied = AppliedFault(planned=planned, family=kind.family.name, driver=driver, record=record)
        self._write(applied, FaultStatus.INTENT)
        self.applied[label] = applied
        self._stack.push_async_callback(self.revert, label)
        applied.injected_at_s = self.now()
        try:
            applied.record = await driver.apply(fault, ctx, record)
        except Exception as exc:
            applied.error = f"apply failed: {exc}"
            self.on_event("fault", f"applying {label} failed: {exc}", {"label": label})
            await self.revert(label)
            raise FaultError(f"could not apply {fault.describe()}: {exc}") from exc
        self._write(applied, FaultStatus.APPLIED)
        if not driver.holds(applied.record):
            # chaoslab holds nothing after the injection (a supervised kill, a restart): the removal
            # is the injection, and the system's coming back is its recovery
            applied.revert_started_s = applied.injected_at_s
        self.on_event("fault", f"applied {label}: {fault.describe()}", {"label": label, "action": "apply"})

    async def revert(self, label: str) -> None:
        """Revert one fault and check it is gone; idempotent (a reverted fault is left alone)."""
        applied = self.applied.get(label)
        if applied is None or applied.reverted_at_s is not None:
            return
        if applied.revert_started_s is None:
            # the removal: from here the fault is no longer held, whatever the revert then waits for
            applied.revert_started_s = self.now()
        ctx = self.context()
        problem: str | None
        try:
            await applied.driver.revert(applied.record, ctx)
            problem = await applied.driver.check_reverted(applied.record, ctx)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        applied.reverted_at_s = self.now()
        applied.revert_ok = problem is None
        with contextlib.suppress(Exception):
            applied.detail = applied.driver.detail(applied.record)
        status = FaultStatus.REVERTED if problem is None else FaultStatus.REVERT_FAILED
        self.ledger.append(FaultEntry(label=label, state=status, problem=problem))
        if problem is None:
            self.on_event("fault", f"reverted {label}", {"label": label, "action": "revert"})
        else:
            message = f"revert of {label} failed: {problem}"
            self.revert_errors.append(message)
            applied.error = problem
            self.on_event("revert_failed", message, {"label": label})

    def state_of(self, label: str) -> str:
        """``pending``, ``applied``, ``reverted`` or ``revert_failed``."""
        applied = self.applied.get(label)
        return "pending" if applied is None else applied.state

    def _write(self, applied: AppliedFault, status: FaultStatus) -> None:
        fault = applied.planned.fault
        self.ledger.append(
            FaultEntry(
                label=applied.planned.label,
                state=status,
                family=applied.family,
                kind=fault.kind,
                target=fault.target,
                record=applied.record.to_json(),
            )
        )


def fault_records(plan: Plan, applied: Mapping[str, AppliedFault]) -> tuple[FaultRecord, ...]:
    """One timeline record per planned fault, applied (``applied`` by label) or not."""
    out = []
    for planned in plan.faults:
        done = applied.get(planned.label)
        out.append(
            FaultRecord(
                kind=planned.fault.kind,
                target=planned.fault.target,
                description=planned.fault.describe(),
                injected_at_s=done.injected_at_s if done else None,
                revert_started_s=done.revert_started_s if done else None,
                reverted_at_s=done.reverted_at_s if done else None,
                revert_ok=done.revert_ok if done else None,
                detail={"label": planned.label, **(done.detail if done else {})},
                error=done.error if done else None,
            )
        )
    return tuple(out)
