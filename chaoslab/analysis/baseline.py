"""The baseline of a signal: its statistics over the baseline phase, and whether they are stable.

Only baseline windows with at least ``min_samples`` attempts count. Latency percentiles are the
**median of the window percentiles** (p50 of the window p50s, and so on): the band is compared with
one window's p95 at a time, so the baseline is "a typical window", and the median keeps one
unlucky window (a GC pause, a cold cache) from moving the band. The error rate is pooled (all
errors / all attempts) and throughput is attempts per second over the windows with data.

A baseline is *unstable* (a warning, not a failure) when it has fewer than
:data:`MIN_STABLE_WINDOWS` windows with data, when the window p95s spread by more than
:data:`UNSTABLE_P95_SPREAD` (interquartile range / median: robust, like the median itself, so one
odd window does not flag a baseline), or when more than
:data:`UNSTABLE_SELF_DEGRADED` of the baseline's own windows fall outside the band derived from it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import replace

from chaoslab.analysis.health import has_data, judge
from chaoslab.analysis.model import Band, BaselineStats, Health, rnd
from chaoslab.timeline import WindowStats

MIN_STABLE_WINDOWS = 3
"""Fewer baseline windows with data than this and the baseline is not trusted."""

UNSTABLE_P95_SPREAD = 1.0
"""Interquartile range / median of the window p95s above which the baseline is unstable.

A window's p95 over a few dozen requests is close to its maximum, so window-to-window spreads
of 40-90 % are normal on a busy machine; the band copes with them (factor 2 or +50 ms). Only a
spread wider than the median itself says the baseline is not a steady state."""

UNSTABLE_SELF_DEGRADED = 0.1
"""Fraction of baseline windows outside their own band above which the baseline is unstable."""


def _ms(values: Sequence[float | None]) -> list[float]:
    """Latencies present, at the journal's precision (so offline re-analysis computes alike)."""
    return [round(v, 3) for v in values if v is not None]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def baseline_of(windows: Mapping[int, WindowStats], indices: range, min_samples: int, window_s: float) -> BaselineStats:
    """Statistics over the windows at ``indices`` that hold at least ``min_samples`` attempts."""
    used = [w for i in indices if has_data(w := windows.get(i), min_samples) and w is not None]
    samples = sum(w.count for w in used)
    errors = sum(w.error_count for w in used)
    return BaselineStats(
        windows=len(used),
        samples=samples,
        p50_ms=rnd(_median(_ms([w.p50_ms for w in used])), 3),
        p95_ms=rnd(_median(_ms([w.p95_ms for w in used])), 3),
        p99_ms=rnd(_median(_ms([w.p99_ms for w in used])), 3),
        error_rate=rnd(errors / samples) if samples else None,
        throughput=rnd(samples / (len(used) * window_s)) if used else None,
        stable=False,
    )


def assess_stability(
    name: str, stats: BaselineStats, windows: Mapping[int, WindowStats], indices: range, band: Band
) -> BaselineStats:
    """``stats`` with ``stable`` and ``warning`` filled in (see the module docstring)."""
    if stats.windows == 0:
        return replace(
            stats,
            stable=False,
            warning=f"no baseline data for {name} (no baseline window had {band.min_samples}+ samples)",
        )
    if stats.windows < MIN_STABLE_WINDOWS:
        return replace(
            stats,
            stable=False,
            warning=f"baseline of {name} has only {stats.windows} window(s) with data",
        )
    used = [w for i in indices if has_data(w := windows.get(i), band.min_samples) and w is not None]
    p95s = _ms([w.p95_ms for w in used])
    if len(p95s) >= 2:
        q1, _, q3 = statistics.quantiles(p95s, n=4, method="inclusive")
        median = statistics.median(p95s)
        spread = (q3 - q1) / median if median > 0 else 0.0
        if spread > UNSTABLE_P95_SPREAD:
            return replace(
                stats,
                stable=False,
                warning=f"baseline of {name} is unstable: p95 varies {spread * 100:.0f}% between windows",
            )
    outside = sum(1 for w in used if judge(w, band) is Health.DEGRADED)
    if outside > UNSTABLE_SELF_DEGRADED * len(used):
        return replace(
            stats,
            stable=False,
            warning=f"baseline of {name} is unstable: {outside} of {len(used)} baseline windows are outside its band",
        )
    return replace(stats, stable=True, warning=None)
