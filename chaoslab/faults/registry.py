"""The fault registry: the one mapping of fault kind → model → driver → ledger record type.

It is built from the families' own declarations (each family module's ``FAMILY``, a
:class:`~chaoslab.faults.base.FaultFamily`), never from a list kept beside them. The engine takes
its drivers from here, ``chaoslab rollback`` reads ledger records back with its record types,
and validation and ``chaoslab schema`` take their fault models from it::

    registry = builtin_registry()
    registry.model("latency")                  # LatencyFault
    registry.driver("latency")                 # the ToxiproxyDriver instance
    registry.read_record("latency", data)      # a ToxiproxyRecord from ledger JSON

Families outside chaoslab come through the ``chaoslab.faults`` entry-point group
(:data:`ENTRY_POINT_GROUP`, ``name = "package.module:FAMILY"``), each declared the same way as
the built-in ones, which are listed in :data:`BUILTIN_FAMILIES`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from chaoslab.errors import FaultError
from chaoslab.faults import container, disk, pool, pressure, process, toxiproxy
from chaoslab.faults.base import AnyDriver, FaultFamily, LedgerRecord
from chaoslab.model.faults import FaultBase, kind_of

ENTRY_POINT_GROUP = "chaoslab.faults"
"""The entry-point group a fault family is registered under (``name = "module:FAMILY"``)."""

BUILTIN_FAMILIES: tuple[FaultFamily[Any, Any], ...] = (
    toxiproxy.FAMILY,
    process.FAMILY,
    container.FAMILY,
    pool.FAMILY,
    disk.FAMILY,
    pressure.FAMILY,
)
"""The families chaoslab ships, one module each."""


class LedgerRecordError(FaultError):
    """A ledger record this chaoslab cannot read back (another version wrote it, or it is damaged)."""


class UnknownFaultKind(FaultError, KeyError):
    """A fault kind no registered family declares (a ``KeyError`` too, as a mapping's missing key is)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class FaultKind:
    """One fault kind: its model and the family (driver, record type) it belongs to."""

    kind: str
    model: type[FaultBase]
    family: FaultFamily[Any, Any]


class FaultRegistry(Mapping[str, FaultKind]):
    """Fault kind → :class:`FaultKind`, built from family declarations; one driver instance per family."""

    def __init__(self, families: Iterable[FaultFamily[Any, Any]]) -> None:
        self.families: dict[str, FaultFamily[Any, Any]] = {}
        self._kinds: dict[str, FaultKind] = {}
        self._drivers: dict[str, AnyDriver] = {}
        for family in families:
            if family.name in self.families:
                raise ValueError(f"fault family {family.name!r} is declared twice")
            self.families[family.name] = family
            for model in family.models:
                if not (isinstance(model, type) and issubclass(model, FaultBase)):
                    raise TypeError(f"family {family.name!r}: {model!r} is not a fault model (a FaultBase)")
                kind = kind_of(model)
                if kind in self._kinds:
                    other = self._kinds[kind].family.name
                    raise ValueError(f"fault kind {kind!r} is declared by both {other!r} and {family.name!r}")
                self._kinds[kind] = FaultKind(kind, model, family)

    def __getitem__(self, kind: str) -> FaultKind:
        try:
            return self._kinds[kind]
        except KeyError:
            known = ", ".join(sorted(self._kinds))
            raise UnknownFaultKind(f"no fault driver for kind {kind!r} (known: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def model(self, kind: str) -> type[FaultBase]:
        """The model of a fault kind."""
        return self[kind].model

    def models(self) -> tuple[type[FaultBase], ...]:
        """Every fault model, in declaration order (what validation and the schema accept)."""
        return tuple(entry.model for entry in self._kinds.values())

    def family_of(self, kind: str) -> str:
        """The name of the family a kind belongs to."""
        return self[kind].family.name

    def driver(self, kind: str) -> AnyDriver:
        """The driver of a kind's family (made on first use, then shared by the family's kinds)."""
        family = self[kind].family
        driver = self._drivers.get(family.name)
        if driver is None:
            driver = self._drivers[family.name] = family.driver()
        return driver

    def drivers(self) -> dict[str, AnyDriver]:
        """Fault kind → driver, for the engine."""
        return {kind: self.driver(kind) for kind in self._kinds}

    def read_record(self, kind: str, data: Mapping[str, Any]) -> LedgerRecord:
        """A ledger record of ``kind`` back from its JSON; a one-line :class:`LedgerRecordError` if unreadable."""
        record_type: type[LedgerRecord] = self[kind].family.record
        try:
            return record_type.from_json(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(record)'}: {err['msg']}" for err in exc.errors()[:3]
            )
            raise LedgerRecordError(
                f"the {kind} record cannot be read by this chaoslab ({record_type.__name__}: {problems})"
            ) from None


@functools.cache
def builtin_registry() -> FaultRegistry:
    """The registry of the families chaoslab ships."""
    return FaultRegistry(BUILTIN_FAMILIES)
