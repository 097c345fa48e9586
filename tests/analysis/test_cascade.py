"""Cascade: unexpected signals degraded for a sustained stretch, in onset order."""

from __future__ import annotations

from chaoslab.analysis import Verdict, analyse
from chaoslab.analysis.cascade import stretches
from chaoslab.testing import TimelineBuilder, experiment_spec

PHASES = {"warmup": 2, "baseline": 10, "fault": 5, "recovery": 13}
SEARCH = "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh"


def builder() -> TimelineBuilder:
    """A run where the expected signal api:search is degraded during the fault."""
    return TimelineBuilder().phases(**PHASES).fault().signal("api:search", SEARCH)


class TestContained:
    """A fault that stays where it was expected."""

    def test_no_cascade_passes(self) -> None:
        """Only the expected signal degrades: no cascade, verdict pass."""
        tl = builder().signal("api:documents", "hh hhhhhhhhhh hhhhh hhhhhhhhhhhhh").build()
        analysis = analyse(tl, experiment_spec())
        assert analysis.cascade == ()
        assert analysis.verdict is Verdict.PASS

    def test_short_blip_is_not_sustained(self) -> None:
        """One degraded window (1 s) is shorter than sustained (2 s)."""
        tl = builder().signal("api:documents", "hh hhhhhhhhhh hhdhh hhhdhhhhhhhhh").build()
        assert analyse(tl, experiment_spec()).cascade == ()

    def test_healthy_window_splits_stretches(self) -> None:
        """Degraded, healthy, degraded is two one-window stretches, not a sustained one."""
        tl = builder().signal("api:documents", "hh hhhhhhhhhh hdhdh hhhhhhhhhhhhh").build()
        assert analyse(tl, experiment_spec()).cascade == ()

    def test_degraded_before_the_fault_is_not_cascade(self) -> None:
        """A sustained stretch in the baseline is not part of the fault's spread."""
        tl = builder().signal("api:documents", "hh hhhdddhhhh hhhhh hhhhhhhhhhhhh").build()
        assert analyse(tl, experiment_spec()).cascade == ()

    def test_expected_pattern_covers_signals(self) -> None:
        """``expected_impact: [api:*]`` lets api:documents degrade."""
        tl = builder().signal("api:documents", "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh").build()
        assert analyse(tl, experiment_spec(expected_impact=["api:*"])).cascade == ()


class TestSpread:
    """A fault that spreads to signals outside the expected impact."""

    def test_entries_in_onset_order_with_onset_peak_end(self) -> None:
        """probe:postgres fails from 13 s, api:documents degrades 14-19 s with a peak at 15 s."""
        tl = (
            builder()
            .signal(
                "api:documents",
                "hh hhhhhhhhhh hhddd dddhhhhhhhhhh",
                override={15: {"p95_ms": 2400.0, "errors": {"http_5xx": 4}}},
            )
            .probe("probe:postgres", "hh hhhhhhhhhh hxxxh hhhhhhhhhhhhh")
            .build()
        )
        analysis = analyse(tl, experiment_spec())
        assert [c.to_dict() for c in analysis.cascade] == [
            {
                "signal": "probe:postgres",
                "service": "postgres",
                "onset_s": 13.0,
                "peak_s": 13.0,
                "peak": {"p95_ms": 2.0, "error_rate": 1.0},
                "end_s": 16.0,
            },
            {
                "signal": "api:documents",
                "service": "api",
                "onset_s": 14.0,
                "peak_s": 15.0,
                "peak": {"p95_ms": 2400.0, "error_rate": 0.2},
                "end_s": 20.0,
            },
        ]
        assert analysis.verdict is Verdict.FAIL
        assert analysis.reasons[:2] == (
            "cascade: probe:postgres degraded from 13.0s to 16.0s (not in expected impact)",
            "cascade: api:documents degraded from 14.0s to 20.0s (not in expected impact)",
        )

    def test_exactly_sustained_counts(self) -> None:
        """Two degraded windows are 2 s: sustained."""
        tl = builder().signal("api:documents", "hh hhhhhhhhhh hhhdd hhhhhhhhhhhhh").build()
        [entry] = analyse(tl, experiment_spec()).cascade
        assert (entry.onset_s, entry.end_s) == (15.0, 17.0)

    def test_sustained_setting(self) -> None:
        """With sustained 3 s, two degraded windows are not a cascade."""
        tl = builder().signal("api:documents", "hh hhhhhhhhhh hhhdd hhhhhhhhhhhhh").build()
        assert analyse(tl, experiment_spec(steady_state={"sustained": "3s"})).cascade == ()

    def test_no_data_gaps_do_not_end_a_stretch(self) -> None:
        """A probe failing every other window (no result between) is degraded for 3 s."""
        tl = builder().probe("probe:vector", "hh hhhhhhhhhh hx.xh hhhhhhhhhhhhh").build()
        [entry] = analyse(tl, experiment_spec()).cascade
        assert (entry.signal, entry.onset_s, entry.peak_s, entry.end_s) == ("probe:vector", 13.0, 13.0, 16.0)

    def test_end_is_the_last_sustained_stretch(self) -> None:
        """Two sustained stretches: onset of the first, end of the second; a later blip is ignored."""
        tl = builder().signal("api:documents", "hh hhhhhhhhhh hddhd dhhhhhdhhhhhh").build()
        [entry] = analyse(tl, experiment_spec()).cascade
        assert (entry.onset_s, entry.end_s) == (13.0, 18.0)

    def test_service_guessed_from_the_name(self) -> None:
        """A load signal without a service is attributed to the part before the colon."""
        tl = builder().signal("vector:raw", "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh").build()
        [entry] = analyse(tl, experiment_spec()).cascade
        assert entry.service == "vector"

    def test_same_onset_sorted_by_name(self) -> None:
        """Signals degrading in the same window are listed by name."""
        tl = (
            builder()
            .signal("api:b", "hh hhhhhhhhhh hddhh hhhhhhhhhhhhh")
            .signal("api:a", "hh hhhhhhhhhh hddhh hhhhhhhhhhhhh")
            .build()
        )
        assert [c.signal for c in analyse(tl, experiment_spec()).cascade] == ["api:a", "api:b"]


class TestStretches:
    """The stretch finder."""

    def test_stretches(self) -> None:
        """Degraded windows joined across no-data, split by healthy ones."""
        assert stretches("hddnndhdhnd", range(11)) == [(1, 5), (7, 7), (10, 10)]
        assert stretches("hddnndhdhnd", range(3, 8)) == [(5, 5), (7, 7)]
