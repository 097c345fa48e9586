"""Tolerance bands: derived from the baseline, overridden per signal (exact keys and fnmatch patterns)."""

from __future__ import annotations

from typing import Any

from chaoslab.analysis.bands import band_for
from chaoslab.analysis.model import BandSource, BaselineStats
from chaoslab.model.experiment import SteadyStateSpec


def baseline(p95_ms: float | None, error_rate: float | None = 0.0) -> BaselineStats:
    """A baseline with the given p95 and error rate."""
    windows = 0 if p95_ms is None else 10
    return BaselineStats(windows, windows * 20, None, p95_ms, None, error_rate, None, True)


def steady(**fields: Any) -> SteadyStateSpec:
    """Steady-state settings as an experiment file would give them."""
    return SteadyStateSpec.model_validate(fields)


class TestDerivedBand:
    """The default band: p95 ≤ max(factor × baseline, baseline + margin); error rate ≤ baseline + margin."""

    def test_fast_signal_gets_the_margin(self) -> None:
        """A 10 ms baseline p95 gives max(20, 60) = 60 ms; error rate 0 gives 1%."""
        band = band_for("api:search", baseline(10.0), steady(), 5)
        assert (band.p95_max_ms, band.error_rate_max, band.min_samples) == (60.0, 0.01, 5)
        assert band.source is BandSource.BASELINE

    def test_slow_signal_gets_the_factor(self) -> None:
        """A 100 ms baseline p95 gives max(200, 150) = 200 ms."""
        assert band_for("api:search", baseline(100.0), steady(), 5).p95_max_ms == 200.0

    def test_baseline_error_rate_is_added_to(self) -> None:
        """A 2% baseline error rate with the default 1-point margin allows 3%."""
        assert band_for("api:search", baseline(10.0, 0.02), steady(), 5).error_rate_max == 0.03

    def test_default_band_settings_apply_to_every_signal(self) -> None:
        """``band`` changes the derivation for signals without their own entry."""
        spec = steady(band={"p95_factor": 3, "p95_margin": "10ms", "error_rate_margin": "5%"})
        band = band_for("api:search", baseline(100.0, 0.0), spec, 5)
        assert (band.p95_max_ms, band.error_rate_max) == (300.0, 0.05)

    def test_no_baseline_means_no_latency_limit(self) -> None:
        """Without baseline data latency is not judged and errors are counted from zero."""
        band = band_for("api:rare", baseline(None, None), steady(), 5)
        assert (band.p95_max_ms, band.error_rate_max, band.source) == (None, 0.01, BandSource.NO_BASELINE)


class TestOverrides:
    """``steady_state.bands``: per-signal settings, by exact name or fnmatch pattern."""

    def test_exact_override_sets_absolute_limits(self) -> None:
        """``p95_max`` and ``error_rate_max`` replace the derived limits."""
        spec = steady(bands={"api:search": {"p95_max": "1s", "error_rate_max": "5%"}})
        band = band_for("api:search", baseline(10.0), spec, 5)
        assert (band.p95_max_ms, band.error_rate_max, band.source) == (1000.0, 0.05, BandSource.OVERRIDE)

    def test_override_keeps_the_fields_it_does_not_set(self) -> None:
        """An entry setting only ``p95_max`` keeps the default band's error-rate margin (here 2%)."""
        spec = steady(band={"error_rate_margin": "2%"}, bands={"api:search": {"p95_max": "300ms"}})
        band = band_for("api:search", baseline(10.0, 0.0), spec, 5)
        assert (band.p95_max_ms, band.error_rate_max) == (300.0, 0.02)

    def test_pattern_key_matches(self) -> None:
        """A key ``api:*`` applies to ``api:documents`` and not to ``probe:api``."""
        spec = steady(bands={"api:*": {"p95_factor": 4, "p95_margin": 0}})
        assert band_for("api:documents", baseline(100.0), spec, 5).p95_max_ms == 400.0
        other = band_for("probe:api", baseline(100.0), spec, 1)
        assert (other.p95_max_ms, other.source) == (200.0, BandSource.BASELINE)

    def test_exact_key_wins_over_pattern(self) -> None:
        """An exact key is used even when a pattern written before it also matches."""
        spec = steady(bands={"api:*": {"p95_max": "5s"}, "api:search": {"p95_max": "2s"}})
        assert band_for("api:search", baseline(10.0), spec, 5).p95_max_ms == 2000.0

    def test_first_matching_pattern_wins(self) -> None:
        """Among patterns, the first one written applies."""
        spec = steady(bands={"api:s*": {"p95_max": "3s"}, "api:*": {"p95_max": "5s"}})
        assert band_for("api:search", baseline(10.0), spec, 5).p95_max_ms == 3000.0
        assert band_for("api:documents", baseline(10.0), spec, 5).p95_max_ms == 5000.0

    def test_override_without_baseline(self) -> None:
        """A ``p95_max`` override judges latency even with no baseline data."""
        spec = steady(bands={"api:rare": {"p95_max": "250ms"}})
        band = band_for("api:rare", baseline(None, None), spec, 5)
        assert (band.p95_max_ms, band.error_rate_max, band.source) == (250.0, 0.01, BandSource.OVERRIDE)
