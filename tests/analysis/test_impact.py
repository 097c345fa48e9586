"""Impact: time to impact, degraded windows and peaks per signal."""

from __future__ import annotations

from chaoslab.analysis import analyse
from chaoslab.testing import TimelineBuilder, experiment_spec

PHASES = {"warmup": 2, "baseline": 10, "fault": 5, "recovery": 13}


class TestTimeToImpact:
    """From the first injection to the first degraded window."""

    def test_injection_mid_window(self) -> None:
        """Injected at 12.4 s, first degraded window at 13 s: time to impact 0.6 s."""
        tl = (
            TimelineBuilder()
            .phases(**PHASES)
            .fault(injected_at_s=12.4)
            .signal("api:search", "hh hhhhhhhhhh hdddd dhhhhhhhhhhhh")
            .build()
        )
        analysis = analyse(tl, experiment_spec())
        assert analysis.impact["api:search"].time_to_impact_s == 0.6
        assert analysis.time_to_impact_s == 0.6

    def test_window_holding_the_injection_counts_as_zero(self) -> None:
        """A degraded window that holds the injection gives 0, never a negative time."""
        tl = (
            TimelineBuilder()
            .phases(**PHASES)
            .fault(injected_at_s=12.4)
            .signal("api:search", "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh")
            .build()
        )
        assert analyse(tl, experiment_spec()).impact["api:search"].time_to_impact_s == 0.0

    def test_run_time_to_impact_is_the_earliest_signal(self) -> None:
        """The run's time to impact is the minimum over all signals, expected or not."""
        tl = (
            TimelineBuilder()
            .phases(**PHASES)
            .fault()
            .signal("api:search", "hh hhhhhhhhhh hhhdd hhhhhhhhhhhhh")
            .signal("api:documents", "hh hhhhhhhhhh hdhhh hhhhhhhhhhhhh")
            .build()
        )
        analysis = analyse(tl, experiment_spec())
        assert analysis.impact["api:search"].time_to_impact_s == 3.0
        assert analysis.impact["api:documents"].time_to_impact_s == 1.0
        assert analysis.time_to_impact_s == 1.0

    def test_degraded_before_the_fault_is_not_impact(self) -> None:
        """A slow baseline window is not counted as impact; an unaffected signal has no time to impact."""
        tl = (
            TimelineBuilder().phases(**PHASES).fault().signal("api:search", "hh hhhhdhhhhh hhhhh hhhhhhhhhhhhh").build()
        )
        impact = analyse(tl, experiment_spec()).impact["api:search"]
        assert (impact.time_to_impact_s, impact.degraded_windows, impact.first_degraded_s) == (None, 0, None)


class TestSignalImpact:
    """The per-signal impact figures."""

    def test_figures(self) -> None:
        """Degraded windows, peaks, first (window start) and last (window end) degraded times."""
        tl = (
            TimelineBuilder()
            .phases(**PHASES)
            .fault()
            .signal(
                "api:search",
                "hh hhhhhhhhhh hdddd ddehhhhhhhhhh",
                override={15: {"p95_ms": 2400.0}},
            )
            .build()
        )
        impact = analyse(tl, experiment_spec()).impact["api:search"]
        assert impact.expected is True
        assert impact.degraded_windows == 7
        assert impact.peak_p95_ms == 2400.0
        assert impact.peak_error_rate == 0.5
        assert (impact.first_degraded_s, impact.last_degraded_s) == (13.0, 20.0)

    def test_expected_follows_patterns(self) -> None:
        """``expected_impact`` entries are fnmatch patterns."""
        tl = TimelineBuilder().phases(baseline=5, fault=2).fault().signal("api:search", "hhhhh hh").build()
        tl2 = TimelineBuilder().phases(baseline=5, fault=2).fault().signal("db:rows", "hhhhh hh").build()
        spec = experiment_spec(expected_impact=["api:*"])
        assert analyse(tl, spec).impact["api:search"].expected is True
        assert analyse(tl2, spec).impact["db:rows"].expected is False

    def test_expected_impact_not_seen_is_warned(self) -> None:
        """An expected signal that never degraded, and a pattern naming no signal, are warnings."""
        tl = TimelineBuilder().phases(baseline=5, fault=2, recovery=5).fault().signal("api:search", "h" * 12).build()
        analysis = analyse(tl, experiment_spec(expected_impact=["api:search", "vector:*"]))
        assert analysis.warnings == (
            "expected impact vector:* names no signal in the timeline",
            "expected impact on api:search was not observed: the fault had no visible effect on it",
        )
