"""Impact: what the fault did to each signal, and how soon (docs/analysis.md, "Impact").

Windows from the one holding the first injection to the end of the recovery phase are looked at.
A signal's onset is when its first degradation began, located to the request around its first
degraded window (:mod:`chaoslab.analysis.locate`), never before the first injection; its time to
impact is that onset minus the first injection. The run's time to impact is the earliest over
all signals.
"""

from __future__ import annotations

from collections.abc import Mapping

from chaoslab.analysis.frame import RunFrame
from chaoslab.analysis.health import has_data
from chaoslab.analysis.locate import Locator
from chaoslab.analysis.model import Band, D, SignalImpact, rnd
from chaoslab.timeline import WindowStats


def impact_of(
    windows: Mapping[int, WindowStats],
    health: str,
    band: Band,
    frame: RunFrame,
    expected: bool,
    locator: Locator | None = None,
) -> SignalImpact:
    """The impact on one signal whose windows are ``windows`` and health string ``health``."""
    degraded = [i for i in frame.judged if health[i] == D]
    with_data = [w for i in frame.judged if has_data(w := windows.get(i), band.min_samples) and w is not None]
    p95s = [w.p95_ms for w in with_data if w.p95_ms is not None]
    rates = [r for w in with_data if (r := w.error_rate) is not None]
    time_to_impact_s: float | None = None
    onset_s: float | None = None
    if degraded:
        onset_s = locator.onset_s(degraded[0]) if locator is not None else frame.start_s(degraded[0])
        if frame.injected_s is not None:
            onset_s = max(onset_s, frame.injected_s)
            time_to_impact_s = onset_s - frame.injected_s
    return SignalImpact(
        expected=expected,
        time_to_impact_s=rnd(time_to_impact_s),
        degraded_windows=len(degraded),
        peak_p95_ms=rnd(max(p95s), 3) if p95s else None,
        peak_error_rate=rnd(max(rates)) if rates else None,
        first_degraded_s=rnd(frame.start_s(degraded[0])) if degraded else None,
        last_degraded_s=rnd(frame.end_s(degraded[-1])) if degraded else None,
        onset_s=rnd(onset_s),
    )


def earliest_impact_s(impacts: Mapping[str, SignalImpact]) -> float | None:
    """The run's time to impact: the earliest over all signals, None when nothing degraded."""
    times = [i.time_to_impact_s for i in impacts.values() if i.time_to_impact_s is not None]
    return min(times) if times else None
