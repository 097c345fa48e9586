"""Recovery time: from fault removal to the start of the first lasting run of health, located to the request.

Windows from the one holding the removal (see :class:`~chaoslab.analysis.frame.RunFrame`) are
scanned. A window is *healthy across all signals* when

- no signal is degraded in it,
- no load signal that had load is without data: a load window with fewer than ``min_samples``
  completed attempts while at least ``min_samples`` were offered breaks the run (requests were
  due but did not complete — a hung service looks like this); a load window that was simply not
  offered enough requests (or is absent) is neutral,
- a probe window without a result is neutral (probes may run less often than windows), and
- at least one signal is healthy in it (a window where nothing was measured proves nothing).

The run must last ``stable_for`` (``ceil(stable_for / window_s)`` windows, at least one), must be
fully observed, and every probe that reported after the removal must report healthy at least once
within it. That decides *whether* (and from which window) the system recovered; *when* is located
to the request (:mod:`chaoslab.analysis.locate`): for each signal that was unhealthy in the window
before the run, the moment its outcomes turned good; the recovery instant is the latest of those
and the removal. Recovery time = that instant − removal; it is within the budget or the system did
not recover in time (the observed time is still reported).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaoslab.analysis.frame import EPS, RunFrame
from chaoslab.analysis.health import has_data
from chaoslab.analysis.locate import Locator
from chaoslab.analysis.model import D, H, N
from chaoslab.timeline import SignalKind, WindowStats


@dataclass(frozen=True, slots=True)
class Track:
    """One signal as recovery sees it: its kind, windows, health string, minimum samples and locator."""

    name: str
    kind: SignalKind
    windows: Mapping[int, WindowStats]
    health: str
    min_samples: int
    locator: Locator | None = None
    """Locates when the signal turned healthy (window edges without one)."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """The first lasting run of health after the removal: its first window and the located instant."""

    window: int
    at_s: float
    """When recovery began (never before the removal)."""


def _blocks(track: Track, index: int) -> bool:
    state = track.health[index]
    if state == D:
        return True
    if state == N and track.kind is SignalKind.LOAD:
        window = track.windows.get(index)
        return window is not None and window.offered >= track.min_samples
    return False


def window_ok(tracks: Sequence[Track], index: int) -> bool:
    """Whether window ``index`` is healthy across all signals (see the module docstring)."""
    if any(_blocks(t, index) for t in tracks):
        return False
    return any(t.health[index] == H for t in tracks)


def stable_windows(stable_for_s: float, window_s: float) -> int:
    """How many consecutive windows make ``stable_for_s``."""
    return max(1, math.ceil(stable_for_s / window_s - EPS))


def recovery_start(tracks: Sequence[Track], frame: RunFrame, stable_for_s: float) -> int | None:
    """Index of the first window of the first lasting healthy run after the removal, else None."""
    if frame.removed_s is None or not tracks:
        return None
    need = stable_windows(stable_for_s, frame.window_s)
    probes = [
        t
        for t in tracks
        if t.kind is SignalKind.PROBE and any(has_data(t.windows.get(i), t.min_samples) for i in frame.after_removal)
    ]
    index = frame.after_removal.start
    stop = frame.after_removal.stop
    while index < stop:
        if not window_ok(tracks, index):
            index += 1
            continue
        end = index
        while end < stop and window_ok(tracks, end):
            end += 1
        # [index, end) is a maximal healthy segment; it is established at the later of its
        # stable_for mark and the first healthy result of every probe
        established = index + need - 1
        for probe in probes:
            first_h = next((i for i in range(index, end) if probe.health[i] == H), None)
            established = max(established, end if first_h is None else first_h)
        if established < end:
            return index
        index = end
    return None


def recovery_of(tracks: Sequence[Track], frame: RunFrame, stable_for_s: float) -> Recovery | None:
    """The first lasting healthy run after the removal, with its instant located to the request."""
    start = recovery_start(tracks, frame, stable_for_s)
    if start is None or frame.removed_s is None:
        return None
    removed = frame.removed_s
    at = removed
    blockers = [t for t in tracks if start > 0 and _blocks(t, start - 1)]
    for track in blockers:
        if track.health[start - 1] == D and track.locator is not None:
            at = max(at, track.locator.recovered_s(start, removed))
        else:
            # requests were due but did not complete: nothing shows when that ended but the run
            at = max(at, frame.start_s(start))
    if not blockers and start > frame.after_removal.start:
        # the window before the run proved nothing healthy (nothing measured in it)
        at = max(at, frame.start_s(start))
    return Recovery(start, at)
