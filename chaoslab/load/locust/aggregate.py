"""Per-window, per-request-class tallies: built on the workers, replayed into the harness's Recorder.

Pure (no Locust import): the plugin uses :class:`WindowTally` and :func:`classify_outcome`
inside the Locust processes, the harness uses :class:`SwarmCollector`. A batch crosses the
process boundary as plain lists (Locust's messages are msgpack, whose maps want string keys)::

    [signal, window_index, [[latency_us, count], ...], ok, {error_class: count}]

Latencies are kept in chaoslab's HDR histogram on the worker (3 significant figures) and
replayed value by value into the :class:`~chaoslab.load.recorder.Recorder`, so the timeline,
analysis and reports are built exactly as with the built-in generator.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from chaoslab.load.histogram import LatencyHistogram
from chaoslab.load.recorder import Recorder
from chaoslab.timeline import ErrorClass, GeneratorWindow, classify_status

SATURATED_CPU_PERCENT = 90.0
"""A window in which a worker used more CPU than this is flagged saturated (Locust warns at 90 % too)."""

Record = list[Any]
"""``[signal, window_index, [[latency_us, count], ...], ok, {error_class: count}]``."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and exceptions held in its args (requests wraps urllib3's)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(a for a in current.args if isinstance(a, BaseException))


def classify_exception(exc: BaseException) -> ErrorClass:
    """The error class of a transport failure, from the exception types and texts of its chain."""
    chain = list(_chain(exc))
    text = " ".join(f"{type(e).__name__} {e}" for e in chain).lower()
    if any(isinstance(e, TimeoutError) for e in chain) or "timeout" in text or "timed out" in text:
        return ErrorClass.TIMEOUT
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        return ErrorClass.REFUSED
    reset_words = ("reset", "remotedisconnected", "brokenpipe", "broken pipe", "connection aborted", "closed")
    if any(isinstance(e, ConnectionResetError | BrokenPipeError) for e in chain) or any(w in text for w in reset_words):
        return ErrorClass.RESET
    return ErrorClass.TRANSPORT


def classify_outcome(
    status: int | None, exception: BaseException | None, expect: Sequence[int] = ()
) -> ErrorClass | None:
    """How one Locust request ended: None for success, else its error class.

    An HTTP status decides first; a request that got an acceptable status but was still marked
    failed (a ``catch_response`` check in the user's locustfile) counts as ``check``. Without a
    status (Locust reports 0 for transport failures) the exception decides.
    """
    if status:
        if exception is None and not expect and status < 400:
            return None  # the common case, first: this runs once per request on the workers
        error = classify_status(status, expect)
        if error is None and exception is not None:
            return ErrorClass.CHECK
        return error
    if exception is None:
        return None
    return classify_exception(exception)


class _Cell:
    """One (signal, window) on a worker: latencies, successes and errors since the last drain."""

    __slots__ = ("errors", "hist", "ok")

    def __init__(self) -> None:
        self.hist = LatencyHistogram(3)
        self.ok = 0
        self.errors: dict[str, int] = {}


class WindowTally:
    """Worker-side tallies keyed by (signal, window of the request's start on the run clock)."""

    def __init__(self, t0_wall: float, window_s: float) -> None:
        if window_s <= 0:
            raise ValueError(f"expected a positive window, got {window_s}")
        self.t0_wall = t0_wall
        self.window_s = window_s
        self._cells: dict[tuple[str, int], _Cell] = {}
        self.count = 0

    def window_of(self, start_wall: float) -> int:
        """The window index of a request that started at wall time ``start_wall``."""
        return math.floor((start_wall - self.t0_wall) / self.window_s)

    def add(self, signal: str, start_wall: float, latency_ms: float, error: ErrorClass | None) -> None:
        """Count one finished request."""
        key = (signal, self.window_of(start_wall))
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = _Cell()
        cell.hist.record(int(latency_ms * 1000.0))
        if error is None:
            cell.ok += 1
        else:
            cell.errors[error.value] = cell.errors.get(error.value, 0) + 1
        self.count += 1

    def drain(self) -> list[Record]:
        """Everything counted since the last drain, as records; the tally starts empty again."""
        cells, self._cells = self._cells, {}
        return [
            [signal, index, [[v, c] for v, c in cell.hist.buckets()], cell.ok, cell.errors]
            for (signal, index), cell in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        ]


@dataclass(frozen=True, slots=True)
class CpuSample:
    """A worker's process CPU over a span of run time."""

    worker: str
    from_s: float
    to_s: float
    cpu_s: float

    @property
    def percent(self) -> float:
        """CPU used over the span, in percent of one core."""
        span = self.to_s - self.from_s
        return 100.0 * self.cpu_s / span if span > 0 else 0.0


class _GenTally:
    __slots__ = ("cpu_percent", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.cpu_percent: float | None = None


class SwarmCollector:
    """Harness side: replays the workers' records into the Recorder and keeps the swarm's own health per window."""

    def __init__(self, recorder: Recorder, window_s: float) -> None:
        self.recorder = recorder
        self.window_s = window_s
        self.requests = 0
        self.cpu_s = 0.0
        """CPU seconds the workers reported, all together."""
        self.workers: set[str] = set()
        self._gen: dict[int, _GenTally] = {}

    def _tally(self, index: int) -> _GenTally:
        tally = self._gen.get(index)
        if tally is None:
            tally = self._gen[index] = _GenTally()
        return tally

    def add_records(self, records: Iterable[Record], worker: str = "") -> int:
        """Record every request of the batch into its window; returns how many requests it held."""
        if worker:
            self.workers.add(worker)
        recorder = self.recorder
        window_s = self.window_s
        total = 0
        for signal, index, buckets, _ok, errors in records:
            intended_s = (int(index) + 0.5) * window_s
            # Errors take the first samples: which latency belonged to which outcome does not change the
            # window's statistics (the histogram holds every attempt, ok and errors are counts).
            pending = [(ErrorClass(name), int(n)) for name, n in dict(errors).items() if int(n) > 0]
            count = 0
            for value_us, n in buckets:
                # + 0.5 µs: the recorder truncates (done − intended) × 1e6, float error must not lose a µs
                done_s = intended_s + (int(value_us) + 0.5) / 1e6
                for _ in range(int(n)):
                    error: ErrorClass | None = None
                    if pending:
                        error, left = pending[-1]
                        if left <= 1:
                            pending.pop()
                        else:
                            pending[-1] = (error, left - 1)
                    recorder.record(signal, intended_s, done_s, error)
                    count += 1
            if count:
                recorder.offered(signal, intended_s, sent=True, count=count)
                self._tally(int(index)).requests += count
            total += count
        self.requests += total
        return total

    def add_cpu(self, sample: CpuSample) -> None:
        """Note a worker's CPU; the window holding the span's middle keeps the busiest worker's figure."""
        if sample.to_s <= sample.from_s:
            return
        self.cpu_s += sample.cpu_s
        index = math.floor((sample.from_s + sample.to_s) / 2 / self.window_s)
        tally = self._tally(index)
        percent = round(sample.percent, 1)
        tally.cpu_percent = percent if tally.cpu_percent is None else max(tally.cpu_percent, percent)

    def generator_windows(self) -> tuple[GeneratorWindow, ...]:
        """Requests and the busiest worker's CPU per window; saturated when a worker ran out of CPU."""
        out = []
        for index in sorted(self._gen):
            tally = self._gen[index]
            if index < 0:
                continue
            saturated = tally.cpu_percent is not None and tally.cpu_percent > SATURATED_CPU_PERCENT
            # A closed-loop swarm sends what it offers: lag is not defined for it (0).
            out.append(GeneratorWindow(index, tally.requests, tally.requests, 0.0, tally.cpu_percent, saturated))
        return tuple(out)
