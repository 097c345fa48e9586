"""Where things are in a run, in window indices: baseline windows, injection, removal, judged range.

Window ``i`` covers ``[i × window_s, (i + 1) × window_s)`` of run time. A window is *in* the
baseline when it lies wholly inside the baseline phase (a window straddling the fault's start
would mix faulted samples into the baseline); the judged range (impact, cascade, SLOs) takes every
window that *overlaps* the fault or recovery phase, so a window holding the injection counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chaoslab.timeline import Timeline

EPS = 1e-9
"""Slack for float phase boundaries that sit on a window edge (0.1 × 3 is not 0.3)."""

EDGE_SLACK = 0.02
"""Fraction of a window a phase edge may miss a window edge by and still count as on it.

A real run notices a phase change a few hundred microseconds late (the engine's loop ticks), so
its baseline phase runs from 2.0002 s, not 2.0 s; window 2 is still a baseline window.
"""


def overlapping(t0_s: float, t1_s: float, window_s: float) -> range:
    """Indices of windows that overlap ``[t0_s, t1_s)``."""
    if t1_s <= t0_s:
        return range(0)
    first = max(0, math.floor(t0_s / window_s + EPS))
    return range(first, max(first, math.ceil(t1_s / window_s - EPS)))


def inside(t0_s: float, t1_s: float, window_s: float, slack: float = EDGE_SLACK) -> range:
    """Indices of windows inside ``[t0_s, t1_s)``, up to ``slack`` of a window at either edge."""
    first = max(0, math.ceil(t0_s / window_s - slack - EPS))
    return range(first, max(first, math.floor(t1_s / window_s + slack + EPS)))


def _t(t_s: float) -> float:
    return round(t_s, 6)


@dataclass(frozen=True, slots=True)
class RunFrame:
    """The run's landmarks, computed once from the timeline."""

    window_s: float
    n_windows: int
    baseline: range
    """Windows wholly inside the baseline phase (overlapping ones if none fits wholly)."""
    injected_s: float | None
    """First injection (``injected_at_s``), else the fault phase's start; None if no fault ran."""
    removed_s: float | None
    """The removal: the latest ``revert_started_s`` (the moment chaoslab stopped holding a fault;
    ``reverted_at_s`` for records without it), else the fault phase's end; None if no fault ran."""
    judged: range
    """Windows overlapping [fault start, recovery end): impact, cascade and SLOs look here."""
    after_removal: range
    """Windows from the one holding ``removed_s`` to the last ending by the end of the watch: recovery looks here.

    The window holding the removal counts: if it is healthy (the fault's last outcomes before the
    removal left it inside its band), the system recovered at the removal.

    The watch ends at the recovery phase's end or where the timeline was cut (``duration_s``),
    whichever is first. A window still open then holds only the attempts that finished early —
    the fast ones — and windows after the watch see the load winding down, so neither can prove
    health (and the engine's live check and the final analysis see the same windows).
    """

    def start_s(self, index: int) -> float:
        """Start of window ``index`` in run time."""
        return index * self.window_s

    def end_s(self, index: int) -> float:
        """End of window ``index`` in run time."""
        return (index + 1) * self.window_s

    @classmethod
    def of(cls, timeline: Timeline) -> RunFrame:
        """The frame of ``timeline``."""
        w = timeline.window_s
        if not w > 0:
            raise ValueError(f"a timeline's window_s must be positive, got {w!r}")
        # times at the journal's precision, so an offline `chaoslab analyse` sees the same numbers
        duration_s = _t(timeline.duration_s)
        phases = {p.name: (_t(p.start_s), _t(p.end_s)) for p in timeline.phases}
        last = max((win.index for s in timeline.signals.values() for win in s.windows), default=-1)
        n_windows = max(last + 1, math.floor(duration_s / w + EPS))

        baseline = range(0)
        if "baseline" in phases:
            b0, b1 = phases["baseline"]
            baseline = inside(b0, b1, w) or overlapping(b0, b1, w)

        fault = phases.get("fault")
        injections = [_t(f.injected_at_s) for f in timeline.faults if f.injected_at_s is not None]
        reverts = [_t(r) for f in timeline.faults if (r := f.removed_at_s) is not None]
        injected_s = min(injections) if injections else (fault[0] if fault else None)
        removed_s = max(reverts) if reverts else (fault[1] if fault else None)
        if injected_s is not None and removed_s is not None and removed_s < injected_s:
            removed_s = injected_s
        recovery = phases.get("recovery")

        judged = range(0)
        after_removal = range(0)
        if injected_s is not None:
            start = min(injected_s, fault[0]) if fault else injected_s
            end = recovery[1] if recovery is not None else n_windows * w
            span = overlapping(start, end, w)
            judged = range(span.start, max(span.start, min(span.stop, n_windows)))
        if removed_s is not None:
            first = max(0, math.floor(removed_s / w + EPS))
            watch_end_s = [duration_s] if duration_s > 0 else []
            if recovery is not None and recovery[1] > removed_s:
                watch_end_s.append(recovery[1])
            complete = math.floor(min(watch_end_s) / w + EPS) if watch_end_s else n_windows
            after_removal = range(first, max(first, min(n_windows, complete)))
        return cls(w, n_windows, baseline, injected_s, removed_s, judged, after_removal)
