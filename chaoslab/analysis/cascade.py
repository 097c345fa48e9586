"""Cascade: signals outside the expected impact that were degraded for a sustained stretch.

Over the windows of the fault and recovery phases, a *stretch* is a sequence of degraded windows
separated only by no-data windows (a hung dependency leaves gaps, and a probe may run less often
than windows); a healthy window ends it. A stretch is *sustained* when it spans at least
``steady_state.sustained`` (from the start of its first window to the end of its last). For each
signal with a sustained stretch the entry gives the onset (when the first sustained stretch
began), the end (when the last one ended), both located to the request around the stretch's
first and last degraded windows (:mod:`chaoslab.analysis.locate`; an onset is never before the
first injection), and the peak: the window between them that is furthest outside the band.
Entries are sorted by onset — the order in which the failure spread, resolved to the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chaoslab.analysis.frame import EPS, RunFrame
from chaoslab.analysis.health import badness
from chaoslab.analysis.locate import Locator
from chaoslab.analysis.model import Band, CascadeEntry, D, H, rnd
from chaoslab.timeline import WindowStats


def stretches(health: str, indices: range) -> list[tuple[int, int]]:
    """Degraded stretches within ``indices`` as (first, last) degraded window indices."""
    out: list[tuple[int, int]] = []
    first: int | None = None
    last = -1
    for i in indices:
        state = health[i]
        if state == D:
            if first is None:
                first = i
            last = i
        elif state == H and first is not None:
            out.append((first, last))
            first = None
    if first is not None:
        out.append((first, last))
    return out


def cascade_of(
    signal: str,
    service: str | None,
    windows: Mapping[int, WindowStats],
    health: str,
    band: Band,
    frame: RunFrame,
    sustained_s: float,
    locator: Locator | None = None,
) -> CascadeEntry | None:
    """The cascade entry of one (unexpected) signal, or None when it held."""
    sustained = [
        (a, b) for a, b in stretches(health, frame.judged) if frame.end_s(b) - frame.start_s(a) >= sustained_s - EPS
    ]
    if not sustained:
        return None
    onset, end = sustained[0][0], sustained[-1][1]
    peak_index = onset
    peak_score = -1.0
    for i in range(onset, end + 1):
        window = windows.get(i)
        if window is None or health[i] != D:
            continue
        score = badness(window, band)
        if score > peak_score:
            peak_index, peak_score = i, score
    peak = windows[peak_index]
    onset_s, end_s = frame.start_s(onset), frame.end_s(end)
    if locator is not None:
        onset_s, end_s = locator.onset_s(onset), locator.end_s(end)
    if frame.injected_s is not None:
        onset_s = max(onset_s, frame.injected_s)
    return CascadeEntry(
        signal=signal,
        service=service,
        onset_s=rnd(onset_s) or 0.0,
        peak_s=rnd(frame.start_s(peak_index)) or 0.0,
        peak_p95_ms=rnd(peak.p95_ms, 3),
        peak_error_rate=rnd(peak.error_rate),
        end_s=rnd(max(end_s, onset_s)) or 0.0,
    )


def in_onset_order(entries: Iterable[CascadeEntry]) -> tuple[CascadeEntry, ...]:
    """Entries sorted by onset, then signal name: the order of spread."""
    return tuple(sorted(entries, key=lambda e: (e.onset_s, e.signal)))
