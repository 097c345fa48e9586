"""Absolute SLOs judged over the fault and recovery windows."""

from __future__ import annotations

from typing import Any

from chaoslab.analysis import Analysis, Verdict, analyse
from chaoslab.testing import TimelineBuilder, experiment_spec

PHASES = {"warmup": 2, "baseline": 10, "fault": 5, "recovery": 13}


def run(documents: str, slos: list[dict[str, Any]], override: dict[int, dict[str, Any]] | None = None) -> Analysis:
    """Analyse a run with api:documents drawn by ``documents`` and the given SLOs."""
    tl = (
        TimelineBuilder()
        .phases(**PHASES)
        .fault()
        .signal("api:search", "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh")
        .signal("api:documents", documents, override=override)
        .build()
    )
    return analyse(tl, experiment_spec(steady_state={"slos": slos}))


CALM = "hh hhhhhhhhhh hhhhh hhhhhhhhhhhhh"


class TestLatencyObjectives:
    """p95 / p99 below a limit in every window with data."""

    def test_held(self) -> None:
        """A calm signal holds p95 < 500ms; observed is the worst window."""
        analysis = run(CALM, [{"signal": "api:documents", "p95": "500ms"}])
        assert [s.to_dict() for s in analysis.slos] == [
            {"signal": "api:documents", "objective": "p95 < 500ms", "observed": "10ms", "ok": True}
        ]
        assert analysis.verdict is Verdict.PASS
        assert analysis.reasons[-1] == "all 1 SLO objective(s) held"

    def test_breach_fails(self) -> None:
        """One window at 2400 ms breaks p95 < 500ms: verdict fail."""
        analysis = run(CALM, [{"signal": "api:documents", "p95": "500ms"}], override={18: {"p95_ms": 2400.0}})
        assert [(s.observed, s.ok) for s in analysis.slos] == [("2400ms", False)]
        assert analysis.verdict is Verdict.FAIL
        assert "SLO broken: api:documents p95 < 500ms (observed 2400ms)" in analysis.reasons

    def test_baseline_windows_are_not_judged(self) -> None:
        """A slow window in the baseline does not break the SLO."""
        analysis = run(CALM, [{"signal": "api:documents", "p95": "500ms"}], override={5: {"p95_ms": 2400.0}})
        assert analysis.slos[0].ok is True

    def test_p99(self) -> None:
        """p99 is judged on the window p99s (here 1.5 × 10 ms)."""
        analysis = run(CALM, [{"signal": "api:documents", "p99": "14ms"}])
        assert [(s.objective, s.observed, s.ok) for s in analysis.slos] == [("p99 < 14ms", "15ms", False)]


class TestSuccessObjective:
    """success ≥ Y %, pooled over the judged windows."""

    def test_pooled_success(self) -> None:
        """2 errors in 18 windows × 20 attempts is 99.44%: holds 99%, breaks 99.5%."""
        override = {13: {"errors": {"http_5xx": 1}}, 20: {"errors": {"http_5xx": 1}}}
        analysis = run(
            CALM,
            [{"signal": "api:documents", "success": "99%"}, {"signal": "api:documents", "success": "99.5%"}],
            override=override,
        )
        assert [(s.objective, s.observed, s.ok) for s in analysis.slos] == [
            ("success ≥ 99%", "99.44%", True),
            ("success ≥ 99.5%", "99.44%", False),
        ]

    def test_both_objectives_of_one_slo(self) -> None:
        """An SLO with p95 and success gives one result per objective."""
        analysis = run(CALM, [{"signal": "api:documents", "p95": "1s", "success": "99.5%"}])
        assert [s.objective for s in analysis.slos] == ["p95 < 1s", "success ≥ 99.5%"]
        assert all(s.ok for s in analysis.slos)


class TestSignalsNamed:
    """Which signals an SLO applies to."""

    def test_pattern_applies_to_each_match(self) -> None:
        """``api:*`` judges api:search and api:documents separately."""
        analysis = run(CALM, [{"signal": "api:*", "p95": "500ms"}])
        assert [(s.signal, s.observed, s.ok) for s in analysis.slos] == [
            ("api:search", "800ms", False),
            ("api:documents", "10ms", True),
        ]

    def test_unknown_signal_fails_with_a_warning(self) -> None:
        """An SLO naming no signal does not hold and is warned about."""
        analysis = run(CALM, [{"signal": "api:documnets", "p95": "500ms"}])
        assert [(s.observed, s.ok) for s in analysis.slos] == [("no such signal", False)]
        assert "SLO on api:documnets names no signal in the timeline" in analysis.warnings

    def test_no_data_does_not_hold(self) -> None:
        """A signal with no judged data cannot show the objective held."""
        analysis = run("hh hhhhhhhhhh lllll lllllllllllll", [{"signal": "api:documents", "success": "99%"}])
        assert [(s.observed, s.ok) for s in analysis.slos] == [("no data", False)]
