"""Tolerance bands: what counts as healthy for each signal (docs/analysis.md, "Tolerance band").

For a signal with a baseline, with the experiment's ``steady_state.band`` (or the ``bands`` entry
that matches the signal; keys may be fnmatch patterns such as ``api:*``)::

    p95 limit        = p95_max                      if given, else
                       max(p95_factor × baseline p95, baseline p95 + p95_margin)
    error-rate limit = error_rate_max               if given, else
                       baseline error rate + error_rate_margin

A ``bands`` entry only overrides the fields it sets; the others come from ``band``. An exact key
wins over patterns; among patterns the first one written wins. Without baseline data the latency
limit is ``p95_max`` or none (latency is not judged) and the error-rate limit is counted from 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase

from chaoslab.analysis.model import Band, BandSource, BaselineStats, rnd
from chaoslab.model.experiment import BandSpec, SteadyStateSpec


def band_spec_for(signal: str, steady: SteadyStateSpec) -> tuple[BandSpec, bool]:
    """The band settings for ``signal``, and whether a ``bands`` entry matched."""
    override = steady.bands.get(signal)
    if override is None:
        override = next((spec for key, spec in steady.bands.items() if fnmatchcase(signal, key)), None)
    if override is None:
        return steady.band, False
    merged = steady.band.model_copy(update={k: getattr(override, k) for k in override.model_fields_set})
    return merged, True


def band_for(signal: str, baseline: BaselineStats, steady: SteadyStateSpec, min_samples: int) -> Band:
    """The tolerance band of ``signal`` from its baseline and the experiment's settings."""
    spec, overridden = band_spec_for(signal, steady)
    p95_max_ms: float | None
    if spec.p95_max is not None:
        p95_max_ms = spec.p95_max * 1000.0
    elif baseline.p95_ms is not None:
        p95_max_ms = max(spec.p95_factor * baseline.p95_ms, baseline.p95_ms + spec.p95_margin * 1000.0)
    else:
        p95_max_ms = None
    if spec.error_rate_max is not None:
        error_rate_max = spec.error_rate_max
    else:
        error_rate_max = min(1.0, (baseline.error_rate or 0.0) + spec.error_rate_margin)
    if overridden:
        source = BandSource.OVERRIDE
    elif baseline.windows == 0:
        source = BandSource.NO_BASELINE
    else:
        source = BandSource.BASELINE
    return Band(
        p95_max_ms=rnd(p95_max_ms, 3),
        error_rate_max=rnd(error_rate_max) or 0.0,
        min_samples=min_samples,
        source=source,
    )


def bands_for(
    baselines: Mapping[str, BaselineStats], steady: SteadyStateSpec, min_samples: Mapping[str, int]
) -> dict[str, Band]:
    """Bands for every signal with a baseline entry."""
    return {name: band_for(name, stats, steady, min_samples[name]) for name, stats in baselines.items()}
