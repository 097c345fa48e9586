"""The fault interface: how the run engine applies, reverts and checks a fault of any kind.

A fault family is one module that declares what it provides in a :class:`FaultFamily`: its fault
models (the pydantic models of its kinds), its :class:`FaultDriver` and its ledger record type
(a :class:`LedgerRecord`). :mod:`chaoslab.faults.registry` builds the one mapping kind → model →
driver → record from those declarations. A driver is generic in its fault and record types,
``FaultDriver[F, R]``, and the engine calls, in order:

1. ``prepare(fault, ctx, label)`` — returns the **ledger record** ``R`` that is written to disk
   *before* anything is touched. It must be enough for ``revert`` to undo the fault from another
   process (``chaoslab rollback`` after ``kill -9``): names of toxics to delete, paths of fill
   files, the PIDs and start times of processes to thaw, ...
2. ``apply(fault, ctx, record)`` — does it; returns the record, possibly completed (e.g. the
   PIDs of burner processes), which the engine writes to the ledger again.
3. ``revert(record, ctx)`` — idempotent; works from the record alone; safe to call when apply
   failed half-way or never ran.
4. ``check_reverted(record, ctx)`` — ``None`` when the fault is really gone, else a one-line
   description of what is still wrong.

``holds(record)`` (on the applied record) says whether chaoslab keeps the fault in force after
``apply`` until it reverts it (a toxic, a freeze, a service it keeps down). A fault it does not
hold — a kill that a supervisor or restart policy answers, a restart — is removed the moment it
is applied: what follows is the system's own recovery, measured from then (the fault stack sets
``revert_started_s`` to the injection). For a held fault the removal is the moment its revert
begins, whatever the revert then waits for.

Revert failures raise; the engine reports them (exit code 4), never swallows them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from chaoslab.model.faults import FaultBase, kind_of
from chaoslab.model.topology import TopologySpec
from chaoslab.system.processes import ServiceControl


class LedgerRecord(BaseModel):
    """What one fault changes, as a family's driver records it: frozen, written to the ledger as JSON.

    Subclasses add their fields. Unknown keys are ignored when a record is read back, so a ledger
    written by another chaoslab version can still be reverted when the fields it needs are there.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: str
    """The fault kind the record belongs to."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data for the ledger."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Back from ledger data (raises pydantic's ``ValidationError`` when fields are missing)."""
        return cls.model_validate(dict(data))

    def but(self, **changes: Any) -> Self:
        """A copy with ``changes``, validated like the original."""
        return self.model_validate({**self.model_dump(), **changes})


F = TypeVar("F", bound=FaultBase)
R = TypeVar("R", bound=LedgerRecord)


@dataclass(frozen=True, slots=True)
class FaultContext:
    """Everything a fault needs at run time (or at rollback time, rebuilt from the ledger)."""

    topology: TopologySpec
    run_id: str
    toxiproxy_url: str | None = None
    services: ServiceControl | None = None
    refs: Mapping[str, str] = field(default_factory=dict)
    run_dir: str | None = None


class FaultDriver(abc.ABC, Generic[F, R]):
    """Applies, reverts and checks the faults of one family: fault models ``F``, ledger records ``R``."""

    @abc.abstractmethod
    def prepare(self, fault: F, ctx: FaultContext, label: str) -> R:
        """The ledger record to write before applying (must identify what will change)."""

    @abc.abstractmethod
    async def apply(self, fault: F, ctx: FaultContext, record: R) -> R:
        """Apply the fault; return the (possibly completed) ledger record."""

    @abc.abstractmethod
    async def revert(self, record: R, ctx: FaultContext) -> None:
        """Undo the fault from its record; idempotent."""

    async def check_reverted(self, record: R, ctx: FaultContext) -> str | None:
        """None when the fault is really gone, else what is still wrong."""
        return None

    def detail(self, record: R) -> dict[str, Any]:
        """Figures worth reporting (connections taken, bytes written), from the record."""
        return {}

    def holds(self, record: R) -> bool:
        """Whether the fault stays in force after apply until chaoslab reverts it (most faults do)."""
        return True


@dataclass(frozen=True, slots=True)
class FaultFamily(Generic[F, R]):
    """What a fault family module declares: its fault models, its driver and its ledger record type.

    One module per family (built in, or a plugin found by the ``chaoslab.faults`` entry point)::

        FAMILY = FaultFamily(name="disk", models=(DiskFillFault,), driver=DiskFillDriver, record=DiskFillRecord)
    """

    name: str
    """The family's name (``toxiproxy``, ``disk``, ...), written to the ledger beside each fault."""
    models: tuple[type[F], ...]
    """The fault models of its kinds, each with a ``kind: Literal[...]`` field."""
    driver: Callable[[], FaultDriver[F, R]]
    """Makes the family's driver (usually the driver class itself)."""
    record: type[R]
    """The ledger record type its driver writes and reads back."""

    @property
    def kinds(self) -> tuple[str, ...]:
        """The fault kinds of the family, in declaration order."""
        return tuple(kind_of(model) for model in self.models)


AnyDriver = FaultDriver[Any, Any]
"""A driver of any family, as the engine holds it."""

__all__ = ["AnyDriver", "FaultContext", "FaultDriver", "FaultFamily", "LedgerRecord"]
