"""The fault interface: how the run engine applies, reverts and checks a fault of any kind.

A :class:`FaultDriver` handles one family of fault kinds. The engine calls, in order:

1. ``prepare(fault, ctx, label)`` — pure-ish: returns the **ledger record** (plain JSON data)
   that is written to disk *before* anything is touched. It must be enough for ``revert`` to
   undo the fault from another process (``chaoslab rollback`` after ``kill -9``): names of
   toxics to delete, paths of fill files, the PIDs and start times of processes to thaw, ...
2. ``apply(fault, ctx, record)`` — does it; returns the record, possibly completed (e.g. the
   PIDs of burner processes), which the engine writes to the ledger again.
3. ``revert(record, ctx)`` — idempotent; works from the record alone; safe to call when apply
   failed half-way or never ran.
4. ``check_reverted(record, ctx)`` — ``None`` when the fault is really gone, else a one-line
   description of what is still wrong.

Revert failures raise; the engine reports them (exit code 4), never swallows them.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chaoslab.model.faults import FaultBase
from chaoslab.model.topology import TopologySpec
from chaoslab.system.processes import ServiceControl

LedgerRecord = dict[str, Any]
"""JSON-serialisable data that identifies exactly what a fault changed."""


@dataclass(frozen=True, slots=True)
class FaultContext:
    """Everything a fault needs at run time (or at rollback time, rebuilt from the ledger)."""

    topology: TopologySpec
    run_id: str
    toxiproxy_url: str | None = None
    services: ServiceControl | None = None
    refs: Mapping[str, str] = field(default_factory=dict)
    run_dir: str | None = None


class FaultDriver(abc.ABC):
    """Applies, reverts and checks one family of fault kinds."""

    kinds: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def prepare(self, fault: FaultBase, ctx: FaultContext, label: str) -> LedgerRecord:
        """The ledger record to write before applying (must identify what will change)."""

    @abc.abstractmethod
    async def apply(self, fault: FaultBase, ctx: FaultContext, record: LedgerRecord) -> LedgerRecord:
        """Apply the fault; return the (possibly completed) ledger record."""

    @abc.abstractmethod
    async def revert(self, record: LedgerRecord, ctx: FaultContext) -> None:
        """Undo the fault from its record; idempotent."""

    async def check_reverted(self, record: LedgerRecord, ctx: FaultContext) -> str | None:
        """None when the fault is really gone, else what is still wrong."""
        return None

    def detail(self, record: LedgerRecord) -> dict[str, Any]:
        """Figures worth reporting (connections taken, bytes written), from the record."""
        return {}
