"""The leak check: RSS growth from the end of the baseline to the end of the run."""

from __future__ import annotations

from chaoslab.analysis import analyse
from chaoslab.analysis.resources import judge_rss_growth
from chaoslab.testing import TimelineBuilder, experiment_spec
from chaoslab.timeline import PhaseSpan, ResourceSample, Timeline

MIB = 1024 * 1024
BASELINE = PhaseSpan("baseline", 0.0, 30.0)


def series(*points: tuple[float, int]) -> tuple[ResourceSample, ...]:
    """Samples from (t_s, rss MiB) pairs."""
    return tuple(ResourceSample(t_s=t, rss_bytes=mib * MIB) for t, mib in points)


class TestRssGrowth:
    """One result per service, judged against the limit."""

    def test_growth_under_the_limit_holds(self) -> None:
        """100 → 104 MiB is +4.0%: within a 5% limit."""
        results, warnings = judge_rss_growth(
            {"api": series((22, 100), (26, 100), (29, 100), (40, 103), (50, 104), (60, 104), (70, 104))}, BASELINE, 0.05
        )
        assert [(r.signal, r.objective, r.observed, r.ok) for r in results] == [
            ("resources:api", "RSS growth < 5%", "+4.0%", True)
        ]
        assert warnings == []

    def test_a_leak_breaks_it(self) -> None:
        """100 → 120 MiB is +20.0%: the objective is broken."""
        results, _ = judge_rss_growth(
            {"vector": series((25, 100), (28, 100), (50, 110), (60, 118), (70, 120), (80, 120))}, BASELINE, 0.05
        )
        assert (results[0].observed, results[0].ok) == ("+20.0%", False)

    def test_samples_early_in_the_baseline_are_not_the_reference(self) -> None:
        """Start-up growth in the first two thirds of the baseline is not counted as a leak."""
        results, _ = judge_rss_growth(
            {"api": series((1, 50), (10, 80), (25, 100), (28, 100), (40, 100), (50, 101), (60, 101))}, BASELINE, 0.05
        )
        assert (results[0].observed, results[0].ok) == ("+1.0%", True)

    def test_the_host_is_not_judged_and_missing_data_is_said(self) -> None:
        """The host series is skipped; a service with too few samples fails with 'no data' and a warning."""
        results, warnings = judge_rss_growth({"host": series((25, 1000)), "db": series((25, 10))}, BASELINE, 0.05)
        assert [(r.signal, r.observed, r.ok) for r in results] == [("resources:db", "no data", False)]
        assert warnings == ["RSS growth of db cannot be judged: too few resource samples"]


class TestInTheVerdict:
    """With steady_state.max_rss_growth set, a leak fails the run like a broken SLO."""

    def test_a_leak_fails_an_otherwise_passing_run(self) -> None:
        """Healthy signals, recovered, but the api grew 20%: fail, exit 1; the same run without the leak passes."""
        base = (
            TimelineBuilder().phases(baseline=10, fault=5, recovery=10).fault().signal("api:search", "h" * 25).build()
        )
        spec = experiment_spec(expected_impact=["api:search"], steady_state={"max_rss_growth": "5%"})

        def with_rss(*points: tuple[float, int]) -> Timeline:
            return Timeline(
                window_s=base.window_s,
                signals=base.signals,
                phases=base.phases,
                faults=base.faults,
                resources={"api": series(*points)},
            )

        leaking = analyse(with_rss((8, 100), (9, 100), (20, 110), (22, 120), (23, 120), (24, 120)), spec)
        assert leaking.verdict.value == "fail" and leaking.exit_code == 1
        assert [s.observed for s in leaking.slos if s.signal == "resources:api"] == ["+20.0%"]
        steady = analyse(with_rss((8, 100), (9, 100), (20, 100), (22, 101), (23, 101), (24, 101)), spec)
        assert steady.verdict.value == "pass"
