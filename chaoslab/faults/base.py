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
from typing import Any, ClassVar, Protocol

from chaoslab.model.faults import FaultBase
from chaoslab.model.topology import TopologySpec

LedgerRecord = dict[str, Any]
"""JSON-serialisable data that identifies exactly what a fault changed."""


class ServiceControl(Protocol):
    """What process faults need from the launcher that started (or found) the services."""

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
