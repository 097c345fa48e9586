"""Journals of schema 1 (written before true recovery times) still load, and analyse gives today's verdicts.

The fixtures are real runs of the chaoslab of schema 1 against the ground-truth target (see
``tests/fixtures/journals/README.md``), with the target's own log beside each: that chaoslab
passed both kills as "recovered in 1.0 s" and "0.6 s" although the service needed 2.5 s and
2.3 s to answer again (a 2 s budget), and read an instant recovery as 1.0 s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from chaoslab.analysis import Verdict, analyse
from chaoslab.cli import main
from chaoslab.journal import SCHEMA_VERSION, Journal, read_journal
from chaoslab.migrations import V1_TO_V2_NOTE, estimate_revert_started, migrate_v1_to_v2
from chaoslab.model.experiment import ExperimentSpec
from chaoslab.testing import experiment_spec

FIXTURES = Path(__file__).parent / "fixtures" / "journals"


def v1(name: str) -> Path:
    """A schema-1 journal fixture."""
    return FIXTURES / f"v1-{name}.json"


def ready_after_kill(name: str, journal: Journal) -> float:
    """When the target said it was ready again after the kill, in run time."""
    assert journal.t0_wall is not None
    lines = (FIXTURES / f"v1-{name}.truth.jsonl").read_text().splitlines()
    readies = [json.loads(line)["t"] - journal.t0_wall for line in lines if '"ready"' in line]
    return readies[-1]


class TestSchemaOne:
    """Real schema-1 journals, migrated."""

    @pytest.mark.parametrize("name", ["supervised-kill", "restart-after-kill", "latency"])
    def test_loads_as_the_current_schema(self, name: str) -> None:
        """Each fixture reads as schema 2 with every fault's removal and a note of the migration."""
        raw = json.loads(v1(name).read_text())
        assert raw["schema_version"] == 1 and "revert_started_s" not in raw["faults"][0]
        journal = read_journal(v1(name))
        assert journal.schema_version == SCHEMA_VERSION == 2
        assert journal.migrations == (V1_TO_V2_NOTE,)
        assert journal.to_dict()["migrations"] == [V1_TO_V2_NOTE]
        fault = journal.timeline.faults[0]
        assert fault.injected_at_s is not None and fault.revert_started_s is not None
        assert fault.reverted_at_s is not None
        assert fault.injected_at_s <= fault.revert_started_s <= fault.reverted_at_s

    @pytest.mark.parametrize(("name", "after_injection_s"), [("supervised-kill", 0.0), ("restart-after-kill", 1.0)])
    def test_kills_now_fail_their_budget(self, name: str, after_injection_s: float) -> None:
        """Schema 1 passed these kills; analysed today they fail the 2 s budget, within a window of the truth."""
        journal = read_journal(v1(name))
        assert (journal.verdict, journal.analysis.recovered) == (Verdict.PASS, True)
        fault = journal.timeline.faults[0]
        removed, injected = fault.revert_started_s, fault.injected_at_s
        assert removed is not None and injected is not None
        assert removed - injected == pytest.approx(after_injection_s, abs=1e-6)
        analysis = analyse(journal.timeline, journal.experiment)
        truth = ready_after_kill(name, journal) - removed
        assert truth > 2.0
        assert (analysis.verdict, analysis.recovered) == (Verdict.FAIL, False)
        assert analysis.recovery_observed_s is not None
        # no bins in schema 1: the instant is the start of the first healthy window after the truth
        assert truth <= analysis.recovery_observed_s <= truth + 1.0

    def test_instant_recovery_is_no_longer_a_window_late(self) -> None:
        """Schema 1 read a removed latency as recovered in 1.0 s; today it is 0 s."""
        journal = read_journal(v1("latency"))
        assert journal.analysis.recovery_time_s == pytest.approx(0.99, abs=0.01)
        analysis = analyse(journal.timeline, journal.experiment)
        assert (analysis.verdict, analysis.recovery_time_s) == (Verdict.PASS, 0.0)

    def test_analyse_command_gives_the_new_verdict(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``chaoslab analyse`` of a schema-1 kill exits 1 and says the journal recorded a pass."""
        with pytest.raises(SystemExit) as exited:
            main(["analyse", str(v1("supervised-kill"))])
        assert exited.value.code == 1
        assert "the journal recorded verdict 'pass'; recomputed 'fail'" in capsys.readouterr().err


class TestEstimate:
    """The removal of one schema-1 fault record, from the plan, the phases and the topology."""

    JOURNAL: ClassVar[dict[str, Any]] = {
        "phases": [{"name": "fault", "start_s": 12.0002, "end_s": 17.0001}],
        "topology": {
            "services": {
                "api": {"launch": {"kind": "process", "restart": "no"}},
                "web": {"launch": {"kind": "process", "restart": "on-failure"}},
                "ext": {"launch": {"kind": "external"}},
            }
        },
    }

    def estimate(self, fault: dict[str, Any], record: dict[str, Any]) -> float | None:
        """The estimate for a one-fault experiment."""
        spec = experiment_spec(faults=[fault])
        full = {"kind": fault["kind"], "target": fault["target"], "detail": {"label": f"f0-{fault['kind']}"}}
        return estimate_revert_started({**full, **record}, 0, self.JOURNAL, spec)

    def test_held_fault_is_removed_when_planned(self) -> None:
        """A toxic reverted at 17.004 s, planned off at the fault phase's end: 17.0001 s."""
        fault = {"kind": "latency", "target": "api->vector", "latency": "100ms"}
        assert self.estimate(fault, {"injected_at_s": 12.001, "reverted_at_s": 17.004}) == pytest.approx(17.0001)

    def test_aborted_run_is_removed_when_reverted(self) -> None:
        """Reverted before its planned end (an abort): the revert's own time."""
        fault = {"kind": "latency", "target": "api->vector", "latency": "100ms"}
        assert self.estimate(fault, {"injected_at_s": 12.001, "reverted_at_s": 14.2}) == 14.2

    def test_duration_and_start(self) -> None:
        """Started 1 s in, lasting 2 s: off at 15.0002 s."""
        fault = {"kind": "latency", "target": "api->vector", "latency": "1ms", "start": "1s", "duration": "2s"}
        assert self.estimate(fault, {"injected_at_s": 13.001, "reverted_at_s": 15.1}) == pytest.approx(15.0002)

    def test_kills(self) -> None:
        """Supervised or external: at the kill; kept down: at the planned restart; restart_after: that long after."""
        record = {"injected_at_s": 12.001, "reverted_at_s": 19.5}
        assert self.estimate({"kind": "process_kill", "target": "web"}, record) == 12.001
        assert self.estimate({"kind": "process_kill", "target": "ext"}, record) == 12.001
        assert self.estimate({"kind": "process_kill", "target": "api"}, record) == pytest.approx(17.0001)
        with_delay = {"kind": "process_kill", "target": "api", "restart_after": "1500ms"}
        assert self.estimate(with_delay, record) == pytest.approx(13.501)
        stop = {"kind": "process_kill", "target": "web", "signal": "SIGSTOP"}
        assert self.estimate(stop, record) == pytest.approx(17.0001)

    def test_restarts_and_policy_kills_are_removed_at_once(self) -> None:
        """A restart, and a container kill its restart policy answered, are removed when applied."""
        record = {"injected_at_s": 12.001, "reverted_at_s": 18.0}
        assert self.estimate({"kind": "process_restart", "target": "api"}, record) == 12.001
        policy = {**record, "detail": {"label": "f0-container_kill", "delivered_via": ["host_pid"]}}
        assert self.estimate({"kind": "container_kill", "target": "web"}, policy) == 12.001
        assert self.estimate({"kind": "container_kill", "target": "web"}, record) == pytest.approx(17.0001)

    def test_never_reverted_or_never_applied(self) -> None:
        """No revert: no removal; a revert without an injection: the revert's time."""
        fault = {"kind": "latency", "target": "api->vector", "latency": "1ms"}
        assert self.estimate(fault, {"injected_at_s": 12.0, "reverted_at_s": None}) is None
        assert self.estimate(fault, {"injected_at_s": None, "reverted_at_s": 12.5}) == 12.5

    def test_unreadable_experiment_keeps_the_revert_time(self) -> None:
        """A journal whose experiment no longer validates: removal = reverted_at_s."""
        journal = {
            "schema_version": 1,
            "experiment": {"name": "?"},
            "faults": [{"kind": "latency", "target": "x", "injected_at_s": 1.0, "reverted_at_s": 2.0}],
            "phases": [],
        }
        out = migrate_v1_to_v2(journal)
        assert (out["schema_version"], out["faults"][0]["revert_started_s"]) == (2, 2.0)


def test_experiment_spec_is_the_plan_source() -> None:
    """The estimate reads durations through the experiment model (``2s`` → 2.0)."""
    spec = ExperimentSpec.model_validate(json.loads(v1("restart-after-kill").read_text())["experiment"])
    assert spec.faults[0].restart_after == 1.0  # type: ignore[union-attr]
