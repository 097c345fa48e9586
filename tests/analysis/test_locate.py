"""Instants located to the request: recovery, impact and onsets from sub-window bins, not window edges."""

from __future__ import annotations

import math
import random

import pytest

from chaoslab.analysis import Verdict, analyse
from chaoslab.analysis.locate import Cells, change_point
from chaoslab.testing import TimelineBuilder, TrafficPalette, experiment_spec

# windows of 1 s: 0-1 warm-up, 2-11 baseline, 12-16 fault, 17-29 recovery watch. Traffic at 100/s
# sends at 5 ms, 15 ms, ...: a located instant is the start of the 10 ms bin of the first request of
# the new state (or, for a probe's recovery, of the bin after its last failure).
PHASES = {"warmup": 2, "baseline": 10, "fault": 5, "recovery": 13}


def cells(pattern: str, per_cell: int = 4) -> Cells:
    """Cells drawn one letter each: ``g`` all good, ``b`` all bad, ``.`` empty, ``1`` one bad of ``per_cell``."""
    counts = tuple(0 if c == "." else per_cell for c in pattern)
    bads = tuple({"g": 0, "b": per_cell, ".": 0, "1": 1}[c] for c in pattern)
    return Cells(first=100, bin_s=0.01, counts=counts, bads=bads)


class TestChangePoint:
    """The most likely single change in the share of bad outcomes."""

    def test_clean_step_is_exact(self) -> None:
        """Good then bad: the onset is the first bad cell; bad then good: the end is the first good cell."""
        assert change_point(cells("gggggbbbbb"), worse_after=True) == 5
        assert change_point(cells("bbbbbbbggg"), worse_after=False) == 7

    def test_outliers_do_not_move_it(self) -> None:
        """One bad cell in 30 good ones after a recovery leaves the change where the bad run ended."""
        pattern = "bbbbbbbbbb" + "gggggg1ggggggggg1ggggggggggggg"
        assert change_point(cells(pattern), worse_after=False) == 10

    def test_empty_cells_go_to_the_old_state_or_the_new(self) -> None:
        """Across a gap, ``latest`` picks the first outcome of the new state, else right after the old one."""
        assert change_point(cells("bbbb...ggg"), worse_after=False) == 7
        assert change_point(cells("bbbb...ggg"), worse_after=False, latest=False) == 4

    def test_no_change_in_that_direction(self) -> None:
        """A signal that only got worse has no end; one with a single side of data has no change."""
        assert change_point(cells("ggggbbbb"), worse_after=False) is None
        assert change_point(cells("....bbbb"), worse_after=True) is None

    def test_partial_degradation(self) -> None:
        """A step from no failures to one in four is found at the step."""
        assert change_point(cells("gggggggg11111111"), worse_after=True) == 8


def tl(**signals: list[tuple[float, str]]) -> TimelineBuilder:
    """A builder with the standard phases, one fault reverted at 17 s, and load signals as traffic."""
    builder = TimelineBuilder().phases(**PHASES)
    for name, states in signals.items():
        builder.traffic(name.replace("_", ":"), states)
    return builder


class TestRecoveryToTheRequest:
    """Recovery time from the removal to the first request of the lasting healthy run."""

    def test_latency_removed_recovers_at_once(self) -> None:
        """Slow until the removal at 17.003 s, fast from the next request: recovery 0 s, not 1 s."""
        builder = tl(api_search=[(0, "h"), (12.0, "d"), (17.003, "h")], api_documents=[(0, "h")])
        analysis = analyse(builder.fault(reverted_at_s=17.003).build(), experiment_spec())
        assert (analysis.recovery_time_s, analysis.recovered_at_s) == (0.0, 17.003)

    def test_tail_after_removal_is_measured_to_the_request(self) -> None:
        """Failing until 19.232 s after a removal at 17.0 s: recovery 2.23 s (the first good request's bin), not 3 s."""
        builder = tl(api_search=[(0, "h"), (12.0, "x"), (19.232, "h")], api_documents=[(0, "h")])
        analysis = analyse(builder.fault().build(), experiment_spec())
        assert analysis.recovery_time_s == pytest.approx(2.23, abs=1e-6)
        assert analysis.verdict is Verdict.PASS

    def test_latest_signal_decides(self) -> None:
        """Two signals recover at 18.31 s and 18.62 s: recovery is counted to the later."""
        builder = tl(
            api_search=[(0, "h"), (12.0, "x"), (18.31, "h")],
            api_documents=[(0, "h"), (12.0, "d"), (18.62, "h")],
        )
        analysis = analyse(builder.fault().build(), experiment_spec(expected_impact=["api:*"]))
        assert analysis.recovery_time_s == pytest.approx(1.62, abs=1e-6)

    def test_probe_recovers_right_after_its_last_failure(self) -> None:
        """Probe results at …, 18.375 s (failed), 18.625 s (passed): recovery right after the failure, 1.38 s."""
        builder = tl(api_search=[(0, "h")]).probe_traffic("probe:vector", [(0, "h"), (12.0, "x"), (18.6, "h")])
        analysis = analyse(builder.fault().build(), experiment_spec())
        assert analysis.recovery_time_s == pytest.approx(1.38, abs=1e-6)

    def test_load_pins_what_a_probe_only_bounds(self) -> None:
        """Load failing until 18.572 s and a probe until 18.6 s: recovery at the load's first good request."""
        builder = tl(api_search=[(0, "h"), (12.0, "x"), (18.572, "h")]).probe_traffic(
            "probe:api", [(0, "h"), (12.0, "x"), (18.6, "h")]
        )
        analysis = analyse(builder.fault().build(), experiment_spec())
        assert analysis.recovery_time_s == pytest.approx(1.57, abs=1e-6)

    def test_background_failures_do_not_move_it(self) -> None:
        """With one request in 37 failing all along (inside a 5 % band), a recovery at 18.302 s still reads 1.3 s."""
        builder = TimelineBuilder().phases(**PHASES).fault()
        builder.traffic("api:search", [(0, "h"), (12.0, "x"), (18.302, "h")], palette=TrafficPalette(fail_every=37))
        spec = experiment_spec(steady_state={"band": {"error_rate_margin": "5%"}})
        analysis = analyse(builder.build(), spec)
        assert analysis.baseline["api:search"].error_rate == pytest.approx(1 / 37, abs=0.002)
        assert analysis.recovery_time_s == pytest.approx(1.3, abs=1e-6)

    def test_supervised_kill_counts_from_the_kill(self) -> None:
        """A kill answered by a supervisor (removal = injection at 12 s), refused for 3.2 s, fails a 2 s budget."""
        builder = tl(api_search=[(0, "h"), (12.0, "x"), (15.2, "h")])
        builder.fault(kind="process_kill", target="api", revert_started_s=12.0, reverted_at_s=17.0)
        analysis = analyse(builder.build(), experiment_spec(recovery={"budget": "2s", "stable_for": "3s"}))
        assert (analysis.recovered, analysis.recovery_time_s) == (False, None)
        assert analysis.recovery_observed_s == pytest.approx(3.2, abs=1e-6)
        assert analysis.verdict is Verdict.FAIL
        assert analysis.reasons == ("not recovered within the 2s budget (recovered after 3.2s)",)

    def test_restart_counts_from_the_start_of_the_revert(self) -> None:
        """A service kept down until 17 s whose restart takes 2.65 s: recovery 2.65 s from the revert's start."""
        builder = tl(api_search=[(0, "h"), (12.0, "x"), (19.65, "h")])
        builder.fault(kind="process_kill", target="api", revert_started_s=17.0, reverted_at_s=19.7)
        analysis = analyse(builder.build(), experiment_spec(recovery={"budget": "2s", "stable_for": "3s"}))
        assert analysis.recovery_observed_s == pytest.approx(2.65, abs=1e-6)
        assert (analysis.removed_at_s, analysis.verdict) == (17.0, Verdict.FAIL)


class TestOnsetsToTheRequest:
    """Time to impact and the order of spread, resolved within a window."""

    def test_time_to_impact_is_located(self) -> None:
        """Injected at 12 s, degraded from 12.432 s: time to impact 0.43 s, not 0 (the window's start)."""
        builder = tl(api_search=[(0, "h"), (12.432, "x"), (17.0, "h")])
        analysis = analyse(builder.fault().build(), experiment_spec())
        assert analysis.time_to_impact_s == pytest.approx(0.43, abs=1e-6)
        assert analysis.impact["api:search"].onset_s == pytest.approx(12.43)
        assert analysis.impact["api:search"].first_degraded_s == 12.0

    def test_two_signals_120ms_apart_in_one_window_are_ordered(self) -> None:
        """c degrades at 13.30 s and b at 13.42 s (one window): the cascade lists c then b, at their instants.

        By window, both would start at 13 s and be listed by name (b first).
        """
        builder = tl(
            api_a=[(0, "h"), (12.0, "x"), (17.0, "h")],
            api_b=[(0, "h"), (13.422, "x"), (17.502, "h")],
            api_c=[(0, "h"), (13.302, "d"), (17.802, "h")],
        )
        analysis = analyse(builder.fault().build(), experiment_spec(expected_impact=["api:a"]))
        assert [c.signal for c in analysis.cascade] == ["api:c", "api:b"]
        assert [c.onset_s for c in analysis.cascade] == pytest.approx([13.30, 13.42])
        assert [c.end_s for c in analysis.cascade] == pytest.approx([17.8, 17.5])

    def test_onset_is_never_before_the_injection(self) -> None:
        """A signal already failing before the injection at 12.5 s has its onset at the injection."""
        builder = tl(api_search=[(0, "h"), (12.302, "x"), (17.0, "h")])
        analysis = analyse(builder.fault(injected_at_s=12.5).build(), experiment_spec())
        assert (analysis.time_to_impact_s, analysis.impact["api:search"].onset_s) == (0.0, 12.5)


def first_request_at(t_s: float, rate: float) -> float:
    """When the first request at or after ``t_s`` goes, for traffic at ``rate`` (half an interval in)."""
    return (math.ceil(t_s * rate - 0.5) + 0.5) / rate


@pytest.mark.parametrize("seed", range(24))
def test_random_steps_are_located_to_the_first_request(seed: int) -> None:
    """For random failure and latency steps, impact and recovery are within a bin of the first request after the truth.

    A bin holding outcomes of both states is given to one side or the other, whichever is likelier.
    """
    rng = random.Random(seed)
    rate = rng.choice([40.0, 100.0, 250.0])
    onset = 12.0 + rng.uniform(0.0, 3.0)
    healed = 17.0 + rng.uniform(0.0, 4.0)
    letter = rng.choice("xd")
    builder = TimelineBuilder().phases(**PHASES).fault()
    builder.traffic("api:search", [(0, "h"), (onset, letter), (healed, "h")], rate_per_s=rate, seed=seed)
    analysis = analyse(builder.build(), experiment_spec(recovery={"stable_for": "3s"}))
    assert analysis.time_to_impact_s is not None and analysis.recovery_time_s is not None
    for located, truth in ((12.0 + analysis.time_to_impact_s, onset), (17.0 + analysis.recovery_time_s, healed)):
        first = first_request_at(truth, rate)
        assert abs(located - first) <= 0.01 + 1e-6, (located, truth, first)
