"""The fault registry: one mapping of kind → model → driver → record, built from the families' declarations."""

from __future__ import annotations

import doctest
import importlib
from typing import Any, Literal

import pytest

from chaoslab.errors import FaultError
from chaoslab.faults.base import FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.faults.disk import DiskFillDriver, DiskFillRecord
from chaoslab.faults.registry import BUILTIN_FAMILIES, FaultRegistry, LedgerRecordError, builtin_registry
from chaoslab.faults.toxiproxy import ToxiproxyDriver, ToxiproxyRecord
from chaoslab.model.faults import BUILTIN_FAULT_MODELS, FAULT_MODELS, FaultBase, LatencyFault


class TestBuiltinRegistry:
    """The families chaoslab ships, each declared by its own module."""

    def test_every_model_has_exactly_one_family(self) -> None:
        """The registry's kinds are exactly the model layer's built-in kinds, each with its own model."""
        registry = builtin_registry()
        assert sorted(registry) == sorted(FAULT_MODELS)
        assert set(registry.models()) == set(BUILTIN_FAULT_MODELS)
        assert all(registry.model(kind) is FAULT_MODELS[kind] for kind in registry)

    def test_families_declare_themselves(self) -> None:
        """Each family module's FAMILY names its kinds, its driver and its record type."""
        assert [f.name for f in BUILTIN_FAMILIES] == ["toxiproxy", "process", "container", "pool", "disk", "pressure"]
        registry = builtin_registry()
        assert registry.family_of("link_down") == "toxiproxy"
        assert isinstance(registry.driver("latency"), ToxiproxyDriver)
        assert registry["latency"].family.record is ToxiproxyRecord
        assert registry["disk_fill"].family.kinds == ("disk_fill",)

    def test_one_driver_per_family(self) -> None:
        """The kinds of a family share one driver instance; drivers() maps every kind."""
        registry = FaultRegistry(BUILTIN_FAMILIES)
        assert registry.driver("latency") is registry.driver("bandwidth")
        drivers = registry.drivers()
        assert sorted(drivers) == sorted(FAULT_MODELS)
        assert isinstance(drivers["disk_fill"], DiskFillDriver)

    def test_an_unknown_kind_names_the_known_ones(self) -> None:
        """Asking for a kind nobody declares is a FaultError listing what is known."""
        with pytest.raises(FaultError, match=r"no fault driver for kind 'tc_netem' \(known: bandwidth, "):
            builtin_registry().driver("tc_netem")


class TestRecords:
    """Ledger records go to JSON and back through the registry."""

    def test_a_record_reads_back_as_its_family_type(self) -> None:
        """A record's JSON, read back by kind, is an equal record of the family's type."""
        record = DiskFillRecord(kind="disk_fill", service="s", path="/p", fill_dir="/p/.chaoslab-fill-x", cap=10)
        back = builtin_registry().read_record("disk_fill", record.to_json())
        assert back == record
        assert type(back) is DiskFillRecord

    def test_a_record_of_the_previous_version_reads_back(self) -> None:
        """A toxic record as version 1 wrote it (no was_enabled, extra keys) still reads."""
        old = {
            "kind": "latency",
            "link": "api->db",
            "proxy": "api->db",
            "url": "http://127.0.0.1:8474",
            "toxics": [{"name": "chaoslab-r-f0-downstream", "type": "latency", "stream": "downstream",
                        "toxicity": 1.0, "attributes": {"latency": 800, "jitter": 0}}],
            "added": ["chaoslab-r-f0-downstream"],
            "something_new": 1,
        }  # fmt: skip
        record = builtin_registry().read_record("latency", old)
        assert isinstance(record, ToxiproxyRecord)
        assert [t.name for t in record.toxics] == ["chaoslab-r-f0-downstream"]
        assert record.was_enabled is None

    def test_an_unreadable_record_says_why_in_one_line(self) -> None:
        """A record missing what revert needs is a LedgerRecordError naming the field, never a guess."""
        with pytest.raises(LedgerRecordError) as caught:
            builtin_registry().read_record("disk_fill", {"kind": "disk_fill", "service": "s"})
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith("the disk_fill record cannot be read by this chaoslab (DiskFillRecord: path: ")
        assert "fill_dir" in message


class _NoteRecord(LedgerRecord):
    note: str


class _NoteFault(FaultBase):
    kind: Literal["note"]


class _NoteDriver(FaultDriver[_NoteFault, _NoteRecord]):
    def prepare(self, fault: _NoteFault, ctx: FaultContext, label: str) -> _NoteRecord:
        return _NoteRecord(kind=fault.kind, note=label)

    async def apply(self, fault: _NoteFault, ctx: FaultContext, record: _NoteRecord) -> _NoteRecord:
        return record

    async def revert(self, record: _NoteRecord, ctx: FaultContext) -> None:
        return None


class TestFamiliesFromElsewhere:
    """A family declared outside chaoslab (as a plugin's module would) registers the same way."""

    def test_a_new_family_joins_the_builtin_ones(self) -> None:
        """Model, driver and record of a one-module family are found by its kind."""
        family: FaultFamily[_NoteFault, _NoteRecord] = FaultFamily(
            name="note", models=(_NoteFault,), driver=_NoteDriver, record=_NoteRecord
        )
        registry = FaultRegistry([*BUILTIN_FAMILIES, family])
        assert registry.model("note") is _NoteFault
        assert isinstance(registry.driver("note"), _NoteDriver)
        assert registry.read_record("note", {"kind": "note", "note": "x"}) == _NoteRecord(kind="note", note="x")

    def test_a_kind_declared_twice_is_refused(self) -> None:
        """Two families claiming one kind is an error naming both."""
        clash: FaultFamily[Any, Any] = FaultFamily(
            name="mine", models=(LatencyFault,), driver=ToxiproxyDriver, record=ToxiproxyRecord
        )
        with pytest.raises(ValueError, match="'latency' is declared by both 'toxiproxy' and 'mine'"):
            FaultRegistry([*BUILTIN_FAMILIES, clash])

    def test_a_model_without_a_literal_kind_is_refused(self) -> None:
        """A fault model must say its kind as a Literal, or the registry cannot key it."""

        class Vague(FaultBase):
            kind: str

        vague: FaultFamily[Any, Any] = FaultFamily(
            name="vague", models=(Vague,), driver=_NoteDriver, record=_NoteRecord
        )
        with pytest.raises(TypeError, match="Vague must declare its kind as `kind: Literal"):
            FaultRegistry([vague])


class TestDocExamples:
    """The examples in the fault modules' docstrings hold."""

    @pytest.mark.parametrize("module", ["chaoslab.faults.pool", "chaoslab.faults.disk"])
    def test_doctests_pass(self, module: str) -> None:
        """Every doctest example of the module gives the output it shows."""
        result = doctest.testmod(importlib.import_module(module))
        assert (result.failed, result.attempted > 0) == (0, True)
