"""Cascade: signals outside the expected impact that were degraded for a sustained stretch.

Over the windows of the fault and recovery phases, a *stretch* is a sequence of degraded windows
separated only by no-data windows (a hung dependency leaves gaps, and a probe may run less often
than windows); a healthy window ends it. A stretch is *sustained* when it spans at least
``steady_state.sustained`` (from the start of its first window to the end of its last). For each
signal with a sustained stretch the entry gives the onset (start of the first sustained stretch),
the end (end of the last one) and the peak: the window between them that is furthest outside the
band. Entries are sorted by onset — the order in which the failure spread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from chaoslab.analysis.frame import EPS, RunFrame
from chaoslab.analysis.health import badness
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
    return CascadeEntry(
        signal=signal,
        service=service,
        onset_s=rnd(frame.start_s(onset)) or 0.0,
        peak_s=rnd(frame.start_s(peak_index)) or 0.0,
        peak_p95_ms=rnd(peak.p95_ms, 3),
        peak_error_rate=rnd(peak.error_rate),
        end_s=rnd(frame.end_s(end)) or 0.0,
    )


def in_onset_order(entries: Iterable[CascadeEntry]) -> tuple[CascadeEntry, ...]:
    """Entries sorted by onset, then signal name: the order of spread."""
    return tuple(sorted(entries, key=lambda e: (e.onset_s, e.signal)))
