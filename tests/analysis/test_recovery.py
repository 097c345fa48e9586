"""Recovery time: from fault removal to the first run of healthy windows lasting stable_for."""

from __future__ import annotations

from typing import Any

from chaoslab.analysis import Analysis, Verdict, analyse
from chaoslab.analysis.recovery import stable_windows
from chaoslab.testing import TimelineBuilder, experiment_spec

# windows: 0-1 warm-up, 2-11 baseline, 12-16 fault (removed at 17 s), 17-29 recovery
PHASES = {"warmup": 2, "baseline": 10, "fault": 5, "recovery": 13}
BEFORE = "hh hhhhhhhhhh ddddd "


def run(after: str, *, probe: str | None = None, documents: str | None = None, **spec: Any) -> Analysis:
    """Analyse a run whose api:search shows ``after`` after the fault phase."""
    builder = TimelineBuilder().phases(**PHASES).fault().signal("api:search", BEFORE + after)
    if documents is not None:
        builder.signal("api:documents", "hh hhhhhhhhhh hhhhh " + documents)
    if probe is not None:
        builder.probe("probe:vector", "hh hhhhhhhhhh xxxxx " + probe)
    return analyse(builder.build(), experiment_spec(**spec))


class TestRecoveryTime:
    """When recovery starts."""

    def test_recovered(self) -> None:
        """Degraded 2 s past removal, then healthy: recovery 2 s, 7 s from injection, verdict pass."""
        analysis = run("ddhhhhhhhhhhh")
        assert (analysis.recovery_time_s, analysis.recovery_from_injection_s) == (2.0, 7.0)
        assert analysis.recovered is True
        assert analysis.verdict is Verdict.PASS
        assert analysis.reasons == ("no cascade", "recovered in 2.0s (budget 30s)")

    def test_immediate_recovery_is_zero(self) -> None:
        """Healthy from the first window after removal: recovery time 0."""
        assert run("hhhhhhhhhhhhh").recovery_time_s == 0.0

    def test_short_healthy_blip_does_not_count(self) -> None:
        """Three healthy windows then degraded again is not recovery with stable_for 5 s."""
        analysis = run("dhhhddhhhhhhh")
        assert analysis.recovery_time_s == 6.0

    def test_run_exactly_stable_for_long_counts(self) -> None:
        """Five healthy windows make 5 s of health."""
        assert run("dddddddhhhhhd").recovery_time_s == 7.0

    def test_run_one_window_short_does_not_count(self) -> None:
        """Four healthy windows at the end of the data are not 5 s of health."""
        analysis = run("dddddddddhhhh")
        assert (analysis.recovery_time_s, analysis.recovered) == (None, False)

    def test_stable_for_is_configurable(self) -> None:
        """With stable_for 3 s a three-window blip is recovery."""
        assert run("dhhhddhhhhhhh", recovery={"stable_for": "3s"}).recovery_time_s == 1.0

    def test_window_holding_the_removal_counts(self) -> None:
        """Reverted at 16.5 s into a healthy window: recovered at the removal (0 s), not a window later."""
        tl = (
            TimelineBuilder()
            .phases(**PHASES)
            .fault(reverted_at_s=16.5)
            .signal("api:search", "hh hhhhhhhhhh hhhhh hhhhhhhhhhhhh")
            .build()
        )
        analysis = analyse(tl, experiment_spec())
        assert (analysis.recovery_time_s, analysis.removed_at_s, analysis.recovered_at_s) == (0.0, 16.5, 16.5)

    def test_degraded_window_holding_the_removal_is_skipped(self) -> None:
        """Reverted at 16.5 s into a degraded window: without bins, recovery starts at the next window (0.5 s)."""
        tl = (
            TimelineBuilder()
            .phases(**PHASES)
            .fault(reverted_at_s=16.5)
            .signal("api:search", "hh hhhhhhhhhh hhhhd hhhhhhhhhhhhh")
            .build()
        )
        assert analyse(tl, experiment_spec()).recovery_time_s == 0.5

    def test_latest_revert_is_the_removal(self) -> None:
        """With two faults, recovery is counted from the later revert (18 s)."""
        tl = (
            TimelineBuilder()
            .phases(**PHASES)
            .fault(reverted_at_s=15.0)
            .fault(target="api->postgres", reverted_at_s=18.0)
            .signal("api:search", "hh hhhhhhhhhh dddhh ddhhhhhhhhhhh")
            .build()
        )
        analysis = analyse(tl, experiment_spec())
        assert (analysis.recovery_time_s, analysis.recovery_from_injection_s) == (1.0, 7.0)


class TestCutTimelines:
    """Timelines cut while the watch runs (the engine's live recovery check)."""

    def test_open_window_does_not_count(self) -> None:
        """A window still open at the cut (12-13 s, cut at 12.5 s) is not part of a healthy run."""
        tl = TimelineBuilder().phases(baseline=5, fault=2).fault().signal("api:search", "hhhhh dd hhhhh h")
        assert analyse(tl.duration(12.5).build(), experiment_spec()).recovery_time_s == 0.0
        analysis = analyse(tl.duration(12.5).build(), experiment_spec(recovery={"stable_for": "6s"}))
        assert analysis.recovery_time_s is None
        analysis = analyse(tl.duration(13.0).build(), experiment_spec(recovery={"stable_for": "6s"}))
        assert analysis.recovery_time_s == 0.0

    def test_windows_after_the_watch_do_not_count(self) -> None:
        """Windows after the recovery phase ended (load winding down) are not part of a healthy run."""
        tl = (
            TimelineBuilder()
            .phases(baseline=5, fault=2, recovery=3.03)
            .fault()
            .signal("api:search", "hhhhh dd hhh hh")
            .duration(12.2)
        )
        analysis = analyse(tl.build(), experiment_spec(recovery={"stable_for": "3s"}))
        assert analysis.recovery_time_s == 0.0
        analysis = analyse(tl.build(), experiment_spec(recovery={"stable_for": "4s"}))
        assert analysis.recovery_time_s is None


class TestNotRecovered:
    """No lasting health within the budget."""

    def test_degraded_to_the_end(self) -> None:
        """Still degraded when the run ends: null recovery time, fail with the reason."""
        analysis = run("ddddddddddddd")
        assert (analysis.recovery_time_s, analysis.recovery_from_injection_s, analysis.recovered) == (None, None, False)
        assert analysis.verdict is Verdict.FAIL
        assert analysis.exit_code == 1
        assert analysis.reasons == ("not recovered within the 30s budget (no 5s of health)",)

    def test_recovery_after_the_budget(self) -> None:
        """Health from 8 s after removal with a 5 s budget fails; the observed 8 s is still reported."""
        analysis = run("ddddddddhhhhh", recovery={"budget": "5s"})
        assert (analysis.recovery_time_s, analysis.recovered, analysis.recovery_observed_s) == (None, False, 8.0)
        assert analysis.reasons == ("not recovered within the 5s budget (recovered after 8.0s)",)

    def test_recovery_at_the_budget_counts(self) -> None:
        """A run starting exactly at the budget counts."""
        assert run("dddddhhhhhhhh", recovery={"budget": "5s"}).recovery_time_s == 5.0


class TestAcrossSignals:
    """Recovery needs every signal healthy; no-data windows are treated by kind."""

    def test_every_signal_must_be_healthy(self) -> None:
        """Recovery starts when the last signal is healthy again."""
        analysis = run("hhhhhhhhhhhhh", documents="hhhddhhhhhhhh", expected_impact=["api:*"])
        assert analysis.recovery_time_s == 5.0

    def test_load_without_completions_breaks_a_run(self) -> None:
        """A load window with requests offered but too few completed (a hung service) is not healthy."""
        assert run("hhnhhhhhhhhhh").recovery_time_s == 3.0

    def test_light_load_window_is_neutral(self) -> None:
        """A window that was simply offered few requests neither breaks nor counts against a run."""
        assert run("hhlhhhhhhhhhh", documents="hhhhhhhhhhhhh").recovery_time_s == 0.0

    def test_window_where_nothing_is_measured_is_not_healthy(self) -> None:
        """A window where every signal is light counts as no evidence of health."""
        assert run("hhlhhhhhhhhhh").recovery_time_s == 3.0

    def test_probe_gaps_are_neutral(self) -> None:
        """A probe reporting every other window does not break the run."""
        assert run("hhhhhhhhhhhhh", probe="h.h.h.h.h.h.h").recovery_time_s == 0.0

    def test_failing_probe_breaks_the_run(self) -> None:
        """A failing probe keeps recovery from starting."""
        assert run("hhhhhhhhhhhhh", probe="xxhhhhhhhhhhh").recovery_time_s == 2.0

    def test_probe_must_confirm_within_the_run(self) -> None:
        """A probe that failed after removal and then fell silent never confirms recovery."""
        analysis = run("hhhhhhhhhhhhh", probe="x............")
        assert analysis.recovery_time_s is None


class TestStableWindows:
    """stable_for in windows."""

    def test_rounds_up(self) -> None:
        """5 s of 1 s windows is 5; 0.25 s of 0.1 s windows is 3; anything below a window is 1."""
        assert (stable_windows(5.0, 1.0), stable_windows(0.25, 0.1), stable_windows(0.3, 0.1)) == (5, 3, 3)
        assert stable_windows(0.1, 1.0) == 1
