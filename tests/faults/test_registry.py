"""The fault registry: one mapping of kind → model → driver → record, built from the families' declarations."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path
from typing import Any, Literal

import pytest

from chaoslab.errors import FaultError, SpecError
from chaoslab.faults.base import FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.faults.container import ContainerRecord, ContainerTarget
from chaoslab.faults.disk import DiskFillDriver, DiskFillRecord
from chaoslab.faults.process import ProcessRecord
from chaoslab.faults.registry import BUILTIN_FAMILIES, FaultRegistry, LedgerRecordError, builtin_registry
from chaoslab.faults.toxiproxy import ToxiproxyDriver, ToxiproxyRecord
from chaoslab.model.faults import BUILTIN_FAULT_MODELS, FAULT_MODELS, FaultBase, LatencyFault
from chaoslab.model.loading import Experiment, load_experiment
from chaoslab.model.schema import experiment_json_schema


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
        assert "tc_netem" not in builtin_registry()
        assert builtin_registry().get("tc_netem") is None


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


def _process(kind: str, **fields: Any) -> ProcessRecord:
    return ProcessRecord.model_validate({"kind": kind, "service": "web", "key": "k", "signal": "SIGKILL", **fields})


def _container(kind: str, delivered_via: str | None = None, **fields: Any) -> ContainerRecord:
    target = ContainerTarget(id="c1", name="web-1", restart_policy="always", delivered_via=delivered_via)
    return ContainerRecord.model_validate(
        {"kind": kind, "target": "web", "label": "f0", "containers": (target,), **fields}
    )


class TestHolds:
    """holds(record) is part of every family's driver: whether chaoslab keeps the fault on until it reverts it."""

    @pytest.mark.parametrize(
        ("record", "held"),
        [
            (_process("process_kill", launched=True), True),  # only chaoslab starts it again: held until revert
            (_process("process_kill", launched=True, supervised=True), False),  # the launcher's supervisor answers
            (_process("process_kill", launched=False), False),  # not chaoslab's: its own supervisor answers
            (_process("process_kill", launched=True, supervised=True, signal="SIGSTOP"), True),  # stopped until SIGCONT
            (_process("process_freeze", signal="SIGSTOP"), True),
            (_process("process_restart", signal="SIGTERM", launched=True), False),
            (_container("container_kill", "host_pid", signal="SIGKILL"), False),  # the restart policy answers
            (_container("container_kill", "api", signal="SIGKILL"), True),  # a manual stop: chaoslab starts it
            (_container("container_kill", "host_pid", signal="SIGSTOP"), True),
            (_container("container_restart"), False),
            (_container("container_stop"), True),
            (_container("container_pause"), True),
        ],
        ids=lambda v: v.kind if isinstance(v, LedgerRecord) else str(v),
    )
    def test_builtin_drivers_through_the_registry(self, record: LedgerRecord, held: bool) -> None:
        """The registry's driver for the record's kind says whether the fault is held after apply."""
        assert builtin_registry().driver(record.kind).holds(record) is held

    def test_a_toxic_is_held(self) -> None:
        """A toxic stays until chaoslab deletes it."""
        record = ToxiproxyRecord(kind="latency", link="a->b", proxy="a->b", url="http://127.0.0.1:8474")
        assert builtin_registry().driver("latency").holds(record) is True

    def test_a_family_from_elsewhere_holds_by_default(self) -> None:
        """A driver that does not say otherwise holds its faults (recovery counts from its revert)."""
        family: FaultFamily[_NoteFault, _NoteRecord] = FaultFamily(
            name="note", models=(_NoteFault,), driver=_NoteDriver, record=_NoteRecord
        )
        registry = FaultRegistry([*BUILTIN_FAMILIES, family])
        assert registry.driver("note").holds(_NoteRecord(kind="note", note="x")) is True


class TestValidationAndSchema:
    """Validation and ``chaoslab schema`` accept the fault models the registry hands them."""

    EXPERIMENT = """
name: noted
topology: {topology}
load:
  rate: 10/s
  mix:
    - {{name: a, url: "http://127.0.0.1:9/a"}}
faults:
  - kind: {kind}
    target: api
"""

    def registry(self) -> FaultRegistry:
        """The built-in families and the note family."""
        family: FaultFamily[_NoteFault, _NoteRecord] = FaultFamily(
            name="note", models=(_NoteFault,), driver=_NoteDriver, record=_NoteRecord
        )
        return FaultRegistry([*BUILTIN_FAMILIES, family])

    def load(self, tmp_path: Path, kind: str, registry: FaultRegistry | None) -> Experiment:
        """An experiment with one fault of ``kind`` on a one-service topology."""
        (tmp_path / "topology.yaml").write_text("name: t\nservices:\n  api: {url: 'http://127.0.0.1:9'}\n")
        path = tmp_path / "experiment.yaml"
        path.write_text(self.EXPERIMENT.format(topology=tmp_path / "topology.yaml", kind=kind))
        return load_experiment(path, fault_models=registry.models() if registry is not None else None)

    def test_a_registered_family_validates(self, tmp_path: Path) -> None:
        """A kind the registry knows is validated into its model."""
        exp = self.load(tmp_path, "note", self.registry())
        assert isinstance(exp.spec.faults[0], _NoteFault)

    def test_without_it_the_kind_is_unknown_in_one_line(self, tmp_path: Path) -> None:
        """The built-in models alone refuse it, naming file, line, field and the kinds they know."""
        with pytest.raises(SpecError) as caught:
            self.load(tmp_path, "note", None)
        message = caught.value.one_line()
        assert "experiment.yaml:9: faults.0.kind: unknown fault kind 'note'" in message
        assert "note" not in message.split("expected one of:")[-1]

    def test_an_unknown_kind_lists_the_registered_ones(self, tmp_path: Path) -> None:
        """With the note family registered, the list of kinds in the message includes it."""
        with pytest.raises(SpecError, match=r"expected one of: .*\bnote\b"):
            self.load(tmp_path, "nope", self.registry())

    def test_the_schema_has_the_registered_kinds(self) -> None:
        """``chaoslab schema`` built from the registry offers every kind it knows, and only those."""
        builtin = experiment_json_schema(builtin_registry().models())
        assert builtin == experiment_json_schema()
        with_note = json.dumps(experiment_json_schema(self.registry().models()))
        assert '"const": "note"' in with_note
        assert '"const": "note"' not in json.dumps(builtin)


class TestDocExamples:
    """The examples in the fault modules' docstrings hold."""

    @pytest.mark.parametrize("module", ["chaoslab.faults.pool", "chaoslab.faults.disk"])
    def test_doctests_pass(self, module: str) -> None:
        """Every doctest example of the module gives the output it shows."""
        result = doctest.testmod(importlib.import_module(module))
        assert (result.failed, result.attempted > 0) == (0, True)
