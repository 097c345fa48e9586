"""Baselines: median window percentiles, pooled error rate, and the instability warning."""

from __future__ import annotations

from chaoslab.analysis import BandSource, analyse
from chaoslab.testing import TimelineBuilder, experiment_spec, signal_windows

# 2s warm-up, 10s baseline (windows 2-11), 5s fault (12-16), 13s recovery (17-29)
PHASES = {"warmup": 2, "baseline": 10, "fault": 5, "recovery": 13}
CALM = "hh hhhhhhhhhh hhhhh hhhhhhhhhhhhh"


def timeline_with(name: str, p95s: list[float | None], errors: list[int] | None = None, count: int = 20):
    """A run whose signal ``name`` has the given window p95s in the baseline and is healthy elsewhere."""
    windows = signal_windows(p95_ms=p95s, errors=errors or 0, count=count, start_index=2)
    return (
        TimelineBuilder()
        .phases(**PHASES)
        .fault()
        .signal(name, "hh .......... hhhhh hhhhhhhhhhhhh", windows=windows)
        .build()
    )


class TestBaselineStatistics:
    """The numbers a baseline reports."""

    def test_percentiles_are_medians_of_window_percentiles(self) -> None:
        """p95 is the median of the baseline windows' p95s (one odd window does not move it)."""
        p95s: list[float | None] = [10.0, 12.0, 11.0, 9.0, 10.0, 13.0, 11.0, 10.0, 12.0, 30.0]
        analysis = analyse(timeline_with("api:search", p95s), experiment_spec())
        base = analysis.baseline["api:search"]
        assert base.windows == 10
        assert base.samples == 200
        assert base.p95_ms == 11.0
        assert base.p50_ms == 5.5
        assert base.p99_ms == 16.5
        assert base.throughput == 20.0

    def test_error_rate_is_pooled(self) -> None:
        """The error rate is all errors over all attempts of the baseline windows."""
        errors = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        analysis = analyse(timeline_with("api:search", [10.0] * 10, errors), experiment_spec())
        assert analysis.baseline["api:search"].error_rate == 0.005

    def test_windows_below_min_samples_are_left_out(self) -> None:
        """Windows with fewer than min_samples attempts do not count in the baseline."""
        tl = (
            TimelineBuilder().phases(**PHASES).fault().signal("api:search", "hh hhnnhhhhhh hhhhh hhhhhhhhhhhhh").build()
        )
        base = analyse(tl, experiment_spec()).baseline["api:search"]
        assert (base.windows, base.samples) == (8, 160)

    def test_baseline_windows_must_lie_inside_the_phase(self) -> None:
        """A window straddling the baseline's end (into the fault) is not part of the baseline."""
        tl = (
            TimelineBuilder()
            .phase("baseline", 0.0, 10.5)
            .phase("fault", 10.5, 15.0)
            .fault()
            .signal("api:search", "hhhhhhhhhh dhhhhhhhhh")
            .build()
        )
        base = analyse(tl, experiment_spec()).baseline["api:search"]
        assert base.windows == 10
        assert base.p95_ms == 10.0

    def test_phase_edges_noticed_late_still_count(self) -> None:
        """A baseline phase from 2.0002 s to 8.0001 s (a real run's loop ticks) holds windows 2-7."""
        tl = (
            TimelineBuilder()
            .phase("warmup", 0.0005, 2.0002)
            .phase("baseline", 2.0002, 8.0001)
            .phase("fault", 8.0001, 11.0)
            .fault(injected_at_s=8.014)
            .signal("api:search", "hh hhhhhh ddd", override={8: {"p95_ms": 5000.0}})
            .build()
        )
        base = analyse(tl, experiment_spec()).baseline["api:search"]
        assert (base.windows, base.p95_ms) == (6, 10.0)


class TestStability:
    """When a baseline is flagged unstable."""

    def test_steady_baseline_is_stable(self) -> None:
        """Small window-to-window variation gives a stable baseline and no warning."""
        analysis = analyse(timeline_with("api:search", [10.0, 11.0] * 5), experiment_spec(expected_impact=[]))
        assert analysis.baseline["api:search"].stable is True
        assert analysis.baseline["api:search"].warning is None
        assert analysis.warnings == ()

    def test_varying_p95_is_unstable(self) -> None:
        """Window p95s alternating 10 ms and 40 ms spread 120% (IQR 30 / median 25): unstable, with a warning."""
        analysis = analyse(timeline_with("api:search", [10.0, 40.0] * 5), experiment_spec())
        base = analysis.baseline["api:search"]
        assert base.stable is False
        assert base.warning == "baseline of api:search is unstable: p95 varies 120% between windows"
        assert base.warning in analysis.warnings

    def test_one_odd_window_is_not_instability(self) -> None:
        """Nine windows at 10 ms and one at 40 ms (inside the band) is a stable baseline."""
        base = analyse(timeline_with("api:search", [10.0] * 9 + [40.0]), experiment_spec()).baseline["api:search"]
        assert (base.stable, base.warning) == (True, None)

    def test_moderate_spread_is_tolerated(self) -> None:
        """p95s of 10, 20, 30 and 40 ms spread 88% (IQR 17.5 / median 20): normal noise, no warning."""
        p95s: list[float | None] = [10.0, 20.0, 30.0, 40.0, 10.0, 20.0, 30.0, 40.0, 10.0, 20.0]
        base = analyse(timeline_with("api:search", p95s), experiment_spec()).baseline["api:search"]
        assert (base.stable, base.warning) == (True, None)

    def test_baseline_windows_outside_their_own_band_are_unstable(self) -> None:
        """Two of ten baseline windows failing half their requests lie outside the derived band."""
        errors = [0, 10, 0, 0, 0, 10, 0, 0, 0, 0]
        base = analyse(timeline_with("api:search", [10.0] * 10, errors), experiment_spec()).baseline["api:search"]
        assert base.error_rate == 0.1
        assert base.stable is False
        assert base.warning == "baseline of api:search is unstable: 2 of 10 baseline windows are outside its band"

    def test_too_few_windows_is_unstable(self) -> None:
        """A baseline of two windows with data is not trusted."""
        tl = (
            TimelineBuilder().phases(**PHASES).fault().signal("api:search", "hh hhllllllll hhhhh hhhhhhhhhhhhh").build()
        )
        base = analyse(tl, experiment_spec()).baseline["api:search"]
        assert base.windows == 2
        assert base.stable is False
        assert base.warning == "baseline of api:search has only 2 window(s) with data"

    def test_no_baseline_data(self) -> None:
        """A signal with no baseline data gets null statistics, a warning and a band without a latency limit."""
        tl = TimelineBuilder().phases(**PHASES).fault().signal("api:rare", "ll llllllllll hhhhh hhhhhhhhhhhhh").build()
        analysis = analyse(tl, experiment_spec())
        base = analysis.baseline["api:rare"]
        assert (base.windows, base.samples, base.p95_ms, base.error_rate, base.throughput) == (0, 0, None, None, None)
        assert base.warning == "no baseline data for api:rare (no baseline window had 5+ samples)"
        band = analysis.bands["api:rare"]
        assert (band.p95_max_ms, band.error_rate_max, band.source) == (None, 0.01, BandSource.NO_BASELINE)
