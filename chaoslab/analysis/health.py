"""Judging one window of one signal against its band: healthy, degraded or no data.

A window with fewer than ``min_samples`` completed attempts (or no window at all) is "no data",
never "healthy". Probe signals take ``min_samples = 1``: a probe runs a few times per window at
most, so the experiment's ``min_samples`` (meant for load) would make every probe window empty.
"""

from __future__ import annotations

from collections.abc import Mapping

from chaoslab.analysis.model import Band, D, H, Health, N
from chaoslab.timeline import Signal, SignalKind, WindowStats

PROBE_MIN_SAMPLES = 1
"""Minimum probe results in a window for it to be judged."""


def min_samples_for(signal: Signal, min_samples: int) -> int:
    """The minimum sample count that applies to ``signal``'s windows."""
    return PROBE_MIN_SAMPLES if signal.kind is SignalKind.PROBE else min_samples


def window_map(signal: Signal) -> dict[int, WindowStats]:
    """The signal's windows by index."""
    return {w.index: w for w in signal.windows}


def has_data(window: WindowStats | None, min_samples: int) -> bool:
    """Whether ``window`` holds enough completed attempts to be judged."""
    return window is not None and window.count >= min_samples


def judge(window: WindowStats | None, band: Band) -> Health:
    """How ``window`` stands against ``band``."""
    return Health(char_of(window, band))


def char_of(window: WindowStats | None, band: Band) -> str:
    """:func:`judge` as its health character (``h``, ``d``, ``n``), without the enum's cost."""
    if window is None or window.count < band.min_samples:
        return N
    return D if badness(window, band) > 1.0 else H


def badness(window: WindowStats, band: Band) -> float:
    """How far outside its band a window is: the larger of p95/limit and error rate/limit (>1 = degraded)."""
    worst = 0.0
    limit_ms, p95_ms = band.p95_max_ms, window.p95_ms
    if limit_ms is not None and p95_ms is not None:
        # at the journal's precision (3 decimals), so an offline re-analysis judges alike
        p95_ms = round(p95_ms, 3)
        worst = p95_ms / limit_ms if limit_ms > 0 else float("inf")
    errors = sum(window.errors.values()) if window.errors else 0
    if errors and window.count:
        rate = errors / window.count
        # an error-rate limit of 0 means any error degrades the window
        worst = max(worst, rate / band.error_rate_max if band.error_rate_max > 0 else float("inf"))
    return worst


def health_string(windows: Mapping[int, WindowStats], band: Band, n_windows: int) -> str:
    """One character per window index 0 … n_windows-1: ``h``, ``d`` or ``n``."""
    return "".join([char_of(windows.get(i), band) for i in range(n_windows)])
