"""Verdicts and exit codes: pass, fail, aborted, error, and a failed revert."""

from __future__ import annotations

import pytest

from chaoslab.analysis import Verdict, analyse, exit_code_for
from chaoslab.testing import TimelineBuilder, experiment_spec
from chaoslab.timeline import Timeline

PHASES = {"warmup": 2, "baseline": 10, "fault": 5, "recovery": 13}


def clean() -> Timeline:
    """A run that passes: contained fault, quick recovery."""
    return (
        TimelineBuilder()
        .phases(**PHASES)
        .fault()
        .signal("api:search", "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh")
        .signal("api:documents", "hh hhhhhhhhhh hhhhh hhhhhhhhhhhhh")
        .build()
    )


def spreading() -> Timeline:
    """A run that fails: api:documents is degraded too."""
    return (
        TimelineBuilder()
        .phases(**PHASES)
        .fault()
        .signal("api:search", "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh")
        .signal("api:documents", "hh hhhhhhhhhh hdddd hhhhhhhhhhhhh")
        .build()
    )


class TestExitCodeFor:
    """The verdict → exit code table of docs/analysis.md ("Verdict and exit code")."""

    @pytest.mark.parametrize(
        ("verdict", "revert_failed", "code"),
        [
            ("pass", False, 0),
            ("fail", False, 1),
            ("aborted", False, 3),
            ("error", False, 3),
            ("pass", True, 4),
            ("fail", True, 4),
            ("aborted", True, 4),
            ("error", True, 4),
        ],
    )
    def test_table(self, verdict: str, revert_failed: bool, code: int) -> None:
        """Each verdict maps to its code; a failed revert is always 4."""
        assert exit_code_for(verdict, revert_failed) == code

    def test_unknown_verdict_is_refused(self) -> None:
        """A verdict outside the four is a programming error."""
        with pytest.raises(ValueError):
            exit_code_for("maybe")


class TestVerdict:
    """What analyse decides."""

    def test_pass(self) -> None:
        """A contained fault with recovery in budget passes with exit code 0."""
        analysis = analyse(clean(), experiment_spec())
        assert (analysis.verdict, analysis.exit_code) == (Verdict.PASS, 0)
        assert analysis.passed is True

    def test_fail(self) -> None:
        """A cascade fails with exit code 1."""
        analysis = analyse(spreading(), experiment_spec())
        assert (analysis.verdict, analysis.exit_code) == (Verdict.FAIL, 1)

    def test_aborted_wins_over_the_hypothesis(self) -> None:
        """An aborted run is "aborted" with exit 3 and the reason, even if it also cascaded."""
        analysis = analyse(spreading(), experiment_spec(), aborted="error rate of api:documents above 90% for 15s")
        assert (analysis.verdict, analysis.exit_code) == (Verdict.ABORTED, 3)
        assert analysis.reasons == ("aborted: error rate of api:documents above 90% for 15s",)
        assert len(analysis.cascade) == 1

    def test_error_wins_over_aborted(self) -> None:
        """A harness error is "error" with exit 3."""
        analysis = analyse(clean(), experiment_spec(), aborted="stop", error="probe set-up failed")
        assert (analysis.verdict, analysis.exit_code) == (Verdict.ERROR, 3)
        assert analysis.reasons == ("error: probe set-up failed",)

    def test_revert_failed_is_exit_4_whatever_the_verdict(self) -> None:
        """A failed revert keeps the verdict, adds a reason and makes the exit code 4."""
        passed = analyse(clean(), experiment_spec(), revert_failed=True)
        assert (passed.verdict, passed.exit_code) == (Verdict.PASS, 4)
        assert passed.reasons[-1] == "a revert failed: something may still be broken; run `chaoslab rollback`"
        failed = analyse(spreading(), experiment_spec(), revert_failed=True)
        assert (failed.verdict, failed.exit_code) == (Verdict.FAIL, 4)
        aborted = analyse(clean(), experiment_spec(), aborted="stop", revert_failed=True)
        assert (aborted.verdict, aborted.exit_code) == (Verdict.ABORTED, 4)

    def test_all_failures_are_reasons(self) -> None:
        """Cascade, missed recovery and a broken SLO are each a reason."""
        tl = (
            TimelineBuilder()
            .phases(**PHASES)
            .fault()
            .signal("api:search", "hh hhhhhhhhhh ddddd ddddddddddddd")
            .signal("api:documents", "hh hhhhhhhhhh hdddd hhhhhhhhhhhhh")
            .build()
        )
        spec = experiment_spec(steady_state={"slos": [{"signal": "api:documents", "p95": "100ms"}]})
        assert analyse(tl, spec).reasons == (
            "cascade: api:documents degraded from 13.0s to 17.0s (not in expected impact)",
            "not recovered within the 30s budget (no 5s of health)",
            "SLO broken: api:documents p95 < 100ms (observed 800ms)",
        )
