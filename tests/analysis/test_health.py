"""Judging windows: healthy, degraded, or no data below the minimum sample count."""

from __future__ import annotations

from chaoslab.analysis import analyse
from chaoslab.analysis.health import judge
from chaoslab.analysis.model import Band, BandSource, Health
from chaoslab.testing import TimelineBuilder, experiment_spec, signal_windows
from chaoslab.timeline import WindowStats

BAND = Band(p95_max_ms=60.0, error_rate_max=0.01, min_samples=5, source=BandSource.BASELINE)


def window(count: int = 20, p95_ms: float = 10.0, errors: int = 0) -> WindowStats:
    """One window with the given count, p95 and error count."""
    return signal_windows(p95_ms=[p95_ms], count=count, errors=errors)[0]


class TestJudge:
    """One window against its band."""

    def test_inside_band_is_healthy(self) -> None:
        """A p95 and error rate within the limits is healthy."""
        assert judge(window(), BAND) is Health.HEALTHY

    def test_at_the_limit_is_healthy(self) -> None:
        """The limits are inclusive: p95 = 60 ms is still healthy."""
        assert judge(window(p95_ms=60.0), BAND) is Health.HEALTHY

    def test_slow_window_is_degraded(self) -> None:
        """A p95 above the limit degrades the window."""
        assert judge(window(p95_ms=60.5), BAND) is Health.DEGRADED

    def test_errors_above_the_limit_degrade(self) -> None:
        """One error in 20 attempts (5%) is above a 1% limit."""
        assert judge(window(errors=1), BAND) is Health.DEGRADED

    def test_too_few_samples_is_no_data(self) -> None:
        """Four attempts with min_samples 5 is no data, even when all four failed."""
        assert judge(window(count=4, errors=4), BAND) is Health.NO_DATA
        assert judge(window(count=5, errors=5), BAND) is Health.DEGRADED

    def test_missing_window_is_no_data(self) -> None:
        """A window that is not there is no data, never healthy."""
        assert judge(None, BAND) is Health.NO_DATA

    def test_no_latency_limit_judges_errors_only(self) -> None:
        """A band without a p95 limit ignores latency."""
        band = Band(None, 0.01, 5, BandSource.NO_BASELINE)
        assert judge(window(p95_ms=5000.0), band) is Health.HEALTHY
        assert judge(window(errors=1), band) is Health.DEGRADED


class TestHealthStrings:
    """The per-signal health strings of an analysis."""

    def test_one_character_per_window_for_every_signal(self) -> None:
        """Every signal's string covers windows 0 to the last one, absent windows as ``n``."""
        tl = (
            TimelineBuilder()
            .phases(warmup=1, baseline=5, fault=2, recovery=4)
            .fault()
            .signal("api:search", "h hhhhh dd hhhh")
            .signal("api:documents", "h hhhnh hh hh..")
            .build()
        )
        health = analyse(tl, experiment_spec()).health
        assert health == {"api:search": "hhhhhhddhhhh", "api:documents": "hhhhnhhhhhnn"}

    def test_probe_windows_need_one_result(self) -> None:
        """A probe window with a single result is judged (min_samples does not apply to probes)."""
        tl = (
            TimelineBuilder()
            .phases(baseline=5, fault=2, recovery=3)
            .fault()
            .probe("probe:vector", "hhhhh xx h.h")
            .build()
        )
        analysis = analyse(tl, experiment_spec())
        assert analysis.health["probe:vector"] == "hhhhhddhnh"
        assert analysis.bands["probe:vector"].min_samples == 1

    def test_min_samples_comes_from_the_experiment(self) -> None:
        """With min_samples 25, windows of 20 attempts are no data."""
        tl = TimelineBuilder().phases(baseline=3, fault=1).fault().signal("api:search", "hhh h").build()
        analysis = analyse(tl, experiment_spec(steady_state={"min_samples": 25}))
        assert analysis.health["api:search"] == "nnnn"
