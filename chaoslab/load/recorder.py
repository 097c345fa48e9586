"""The recorder: per signal and per window, an HDR latency histogram and counts of outcomes.

Every attempt (a load request or a probe) is recorded once it ends, into the window of its
*intended* start time, with latency ``done − intended`` (coordinated-omission correct: a
request that waited for a stalled server, or for a free connection, carries that wait).
A window stays open for ``grace_s`` after it ends so that slow answers still land in it; then
its histogram is reduced to a :class:`~chaoslab.timeline.WindowStats` and reused, so the
windows' memory depends on the number of signals and on ``grace_s / window_s``, never on the
run's length.

From ``bins_from_s`` on, every attempt also goes into a *bin* of its window (≈ 10 ms, see
:mod:`chaoslab.bins`), which analysis uses to locate recovery, impact and onsets to the request.
A closed window's bins are kept as compact bytes (a few bytes per request), so they grow with
the judged part of the run; the engine starts them shortly before the fault phase.
"""

from __future__ import annotations

import math

from chaoslab.bins import Bin, BinSeries, bins_per_window
from chaoslab.clock import RunClock
from chaoslab.load.histogram import LatencyHistogram
from chaoslab.timeline import ErrorClass, Signal, SignalKind, WindowStats

DEFAULT_GRACE_S = 10.0
"""How long after its end a window accepts late answers before it is reduced to statistics."""


class _OpenBin:
    """Mutable tallies of one bin of an open window."""

    __slots__ = ("count", "errors", "hist")

    def __init__(self, hist: LatencyHistogram) -> None:
        self.hist = hist
        self.count = 0
        self.errors = 0


class _OpenWindow:
    """Mutable tallies of one window of one signal while answers may still arrive."""

    __slots__ = ("bins", "errors", "hist", "offered", "ok", "unsent")

    def __init__(self, hist: LatencyHistogram) -> None:
        self.hist = hist
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.offered = 0
        self.unsent = 0
        self.bins: dict[int, _OpenBin] = {}


class _SignalState:
    """One signal's open windows, its reduced (closed) ones, and the closed windows' bins as bytes."""

    __slots__ = ("bin_data", "closed", "kind", "last_bin", "last_closed", "name", "open", "service")

    def __init__(self, name: str, kind: SignalKind, service: str | None) -> None:
        self.name = name
        self.kind = kind
        self.service = service
        self.open: dict[int, _OpenWindow] = {}
        self.closed: dict[int, WindowStats] = {}
        self.bin_data = bytearray()
        """Records of closed windows' bins (the :mod:`chaoslab.bins` format), in time order."""
        self.last_bin = 0
        """The bin index of the last record in ``bin_data`` (records are coded as steps from it)."""
        self.last_closed = -1
        """The highest closed window index."""


def _encode_bin(out: bytearray, index: int, count: int, errors: int, hist: LatencyHistogram, previous: int) -> int:
    """Append one bin record (see :mod:`chaoslab.bins`) coded from ``previous``; returns its index."""
    Bin(index, count, errors, hist.snapshot()).encode_into(out, previous)
    return index


def _encode_window_bins(out: bytearray, window: _OpenWindow, previous: int) -> int:
    """Append the records of every bin of ``window`` in order; returns the last index written."""
    for index in sorted(window.bins):
        item = window.bins[index]
        previous = _encode_bin(out, index, item.count, item.errors, item.hist, previous)
    return previous


def _stats(index: int, window_s: float, w: _OpenWindow) -> WindowStats:
    """Reduce an open window to its statistics (latencies in ms).

    Values are rounded to the journal's precision (µs times, µs latencies) here, once, so that
    a saved journal loads back equal to the timeline that was recorded.
    """
    hist = w.hist
    start_s = round(index * window_s, 6)
    count = w.ok + sum(w.errors.values())
    if hist.total:
        p50, p95, p99 = hist.percentiles(50.0, 95.0, 99.0)
        return WindowStats(
            index=index,
            start_s=start_s,
            count=count,
            ok=w.ok,
            errors=dict(w.errors),
            p50_ms=p50 / 1000.0,
            p95_ms=p95 / 1000.0,
            p99_ms=p99 / 1000.0,
            max_ms=hist.max_us / 1000.0,
            mean_ms=round(hist.mean_us / 1000.0, 3),
            offered=w.offered,
            unsent=w.unsent,
        )
    return WindowStats(
        index=index,
        start_s=index * window_s,
        count=count,
        ok=w.ok,
        errors=dict(w.errors),
        offered=w.offered,
        unsent=w.unsent,
    )


class Recorder:
    """HDR histograms per (signal, window) on the run clock; the source of the Timeline's signals."""

    def __init__(
        self,
        window_s: float,
        clock: RunClock,
        *,
        grace_s: float = DEFAULT_GRACE_S,
        significant_figures: int = 3,
        bins_from_s: float | None = 0.0,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"expected a positive window, got {window_s}")
        self.window_s = window_s
        self.clock = clock
        self.grace_s = grace_s
        self._figures = significant_figures
        self.bins_from_s = bins_from_s
        """Attempts intended from this run time on are also kept in bins (None: never)."""
        self.bins_per_window = bins_per_window(window_s)
        self.bin_s = window_s / self.bins_per_window
        self._signals: dict[str, _SignalState] = {}
        self._free: list[LatencyHistogram] = []
        self._next_sweep_s = -math.inf
        self.late = 0
        """Answers that arrived after their window was closed (counted, latency not in percentiles)."""

    def expect_latency_up_to(self, latency_s: float) -> None:
        """Keep windows open long enough for answers that may take ``latency_s`` (e.g. the largest timeout)."""
        self.grace_s = max(self.grace_s, latency_s + self.window_s)

    def _state(self, signal: str, kind: SignalKind, service: str | None) -> _SignalState:
        state = self._signals.get(signal)
        if state is None:
            state = self._signals[signal] = _SignalState(signal, kind, service)
        elif service is not None and state.service is None:
            state.service = service
        return state

    def _open(self, state: _SignalState, index: int) -> _OpenWindow | None:
        """The open window ``index`` of a signal (created on demand), or None when it was already closed."""
        window = state.open.get(index)
        if window is None:
            if index in state.closed:
                return None
            hist = self._free.pop() if self._free else LatencyHistogram(self._figures)
            window = state.open[index] = _OpenWindow(hist)
        return window

    def record(
        self,
        signal: str,
        intended_s: float,
        done_s: float,
        error: ErrorClass | None,
        *,
        kind: SignalKind = SignalKind.LOAD,
        service: str | None = None,
    ) -> None:
        """Record one finished attempt: latency ``done_s − intended_s`` into the window of ``intended_s``."""
        state = self._signals.get(signal) or self._state(signal, kind, service)
        index = int(intended_s // self.window_s)
        window = state.open.get(index) or self._open(state, index)
        latency_us = int((done_s - intended_s) * 1e6)
        if window is None:
            self._record_late(state, index, error, intended_s)
        else:
            window.hist.record(latency_us)
            if error is None:
                window.ok += 1
            else:
                errors = window.errors
                errors[error.value] = errors.get(error.value, 0) + 1
            if self.bins_from_s is not None and intended_s >= self.bins_from_s:
                item = self._bin(window, index, intended_s)
                item.hist.record(latency_us)
                item.count += 1
                item.errors += error is not None
        if done_s >= self._next_sweep_s:
            self._sweep(done_s)

    def bin_index(self, window_index: int, intended_s: float) -> int:
        """The bin of an attempt intended at ``intended_s`` in window ``window_index`` (bins tile windows exactly)."""
        k = self.bins_per_window
        offset = int((intended_s - window_index * self.window_s) / self.bin_s)
        return window_index * k + min(k - 1, max(0, offset))

    def _bin(self, window: _OpenWindow, index: int, intended_s: float) -> _OpenBin:
        key = self.bin_index(index, intended_s)
        item = window.bins.get(key)
        if item is None:
            hist = self._free.pop() if self._free else LatencyHistogram(self._figures)
            item = window.bins[key] = _OpenBin(hist)
        return item

    def _record_late(self, state: _SignalState, index: int, error: ErrorClass | None, intended_s: float) -> None:
        """Count an answer for a closed window (its latency was longer than the grace, so max is unknown)."""
        self.late += 1
        if self.bins_from_s is not None and intended_s >= self.bins_from_s:
            # a record of its own for the bin (counted, no latency): readers add a bin's records up
            empty = self._free.pop() if self._free else LatencyHistogram(self._figures)
            state.last_bin = _encode_bin(
                state.bin_data, self.bin_index(index, intended_s), 1, int(error is not None), empty, state.last_bin
            )
            self._free.append(empty)
        old = state.closed[index]
        errors = dict(old.errors)
        if error is not None:
            errors[error.value] = errors.get(error.value, 0) + 1
        state.closed[index] = WindowStats(
            index=old.index,
            start_s=old.start_s,
            count=old.count + 1,
            ok=old.ok + (error is None),
            errors=errors,
            p50_ms=old.p50_ms,
            p95_ms=old.p95_ms,
            p99_ms=old.p99_ms,
            max_ms=old.max_ms,
            mean_ms=old.mean_ms,
            offered=old.offered,
            unsent=old.unsent,
        )

    def offered(self, signal: str, intended_s: float, *, sent: bool, count: int = 1) -> None:
        """Count ``count`` requests due in the window of ``intended_s``; ``sent=False``: they could not be sent."""
        state = self._signals.get(signal) or self._state(signal, SignalKind.LOAD, None)
        index = int(intended_s // self.window_s)
        window = state.open.get(index) or self._open(state, index)
        if window is None:
            return
        window.offered += count
        if not sent:
            window.unsent += count

    def declare(self, signal: str, *, kind: SignalKind = SignalKind.LOAD, service: str | None = None) -> None:
        """Make a signal known before its first sample (so it appears even if nothing is ever recorded)."""
        self._state(signal, kind, service)

    def _sweep(self, now_s: float) -> None:
        """Reduce every window that ended more than ``grace_s`` before ``now_s`` to statistics."""
        self._next_sweep_s = now_s + self.window_s
        limit = int((now_s - self.grace_s) // self.window_s)  # windows with index < limit have ended + grace
        for state in self._signals.values():
            if not state.open:
                continue
            for index in sorted(i for i in state.open if i < limit):
                window = state.open.pop(index)
                state.closed[index] = _stats(index, self.window_s, window)
                state.last_closed = max(state.last_closed, index)
                state.last_bin = _encode_window_bins(state.bin_data, window, state.last_bin)
                window.hist.reset()
                self._free.append(window.hist)
                for item in window.bins.values():
                    item.hist.reset()
                    self._free.append(item.hist)

    def window_stats(self, signal: str, index: int) -> WindowStats | None:
        """Statistics of one window of one signal so far (None for an unknown signal)."""
        state = self._signals.get(signal)
        if state is None:
            return None
        if index in state.closed:
            return state.closed[index]
        window = state.open.get(index)
        if window is None:
            return WindowStats(index=index, start_s=round(index * self.window_s, 6))
        return _stats(index, self.window_s, window)

    def latest(self, now_s: float) -> dict[str, WindowStats]:
        """The last complete window before ``now_s``, per signal (empty stats when it saw nothing)."""
        self._sweep(now_s)
        index = int(now_s // self.window_s) - 1
        out: dict[str, WindowStats] = {}
        for name in self._signals:
            stats = self.window_stats(name, index)
            if stats is not None:
                out[name] = stats
        return out

    def signals(self, upto_s: float | None = None) -> dict[str, Signal]:
        """Every signal with its windows so far (those starting before ``upto_s`` when given), in time order."""
        now_s = self.clock.elapsed()
        self._sweep(now_s)
        out: dict[str, Signal] = {}
        for name, state in self._signals.items():
            indices = sorted({*state.closed, *state.open})
            if upto_s is not None:
                indices = [i for i in indices if i * self.window_s < upto_s]
            windows = tuple(
                state.closed[i] if i in state.closed else _stats(i, self.window_s, state.open[i]) for i in indices
            )
            out[name] = Signal(
                name=name, kind=state.kind, service=state.service, windows=windows, bins=self._bins_of(state, upto_s)
            )
        return out

    def _bins_of(self, state: _SignalState, upto_s: float | None) -> BinSeries | None:
        """The signal's bins so far (of windows starting before ``upto_s`` when given), or None without bins."""
        if self.bins_from_s is None:
            return None
        data = bytearray(state.bin_data)
        previous = state.last_bin
        for index in sorted(state.open):
            if upto_s is None or index * self.window_s < upto_s:
                previous = _encode_window_bins(data, state.open[index], previous)
        series = BinSeries(self.bin_s, bytes(data), self._figures)
        if upto_s is not None and state.last_closed * self.window_s >= upto_s:
            # closed windows at or after the cut (only when asked about the past): leave their bins out
            stop = int(upto_s // self.window_s) * self.bins_per_window
            series = BinSeries.build(self.bin_s, [b for b in series if b.index < stop], self._figures)
        return series

    def open_windows(self) -> int:
        """How many (signal, window) histograms are held open now (bounded by signals × grace / window)."""
        return sum(len(s.open) for s in self._signals.values())
