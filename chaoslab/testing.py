"""Public test helpers: a fake clock, readable synthetic timelines, experiment builders, and fakes of
a run's collaborators (a fault driver, the system, the load, the probes).

Timelines are drawn one character per window, the same letters analysis writes in ``health``::

    from chaoslab.testing import TimelineBuilder, experiment_spec

    timeline = (
        TimelineBuilder(window_s=1.0)
        .phases(warmup=2, baseline=10, fault=5, recovery=13)   # lengths in seconds, in order
        .fault()                                               # on/off at the fault phase's edges
        .signal("api:search",    "hh hhhhhhhhhh ddddd ddhhhhhhhhhhh")
        .signal("api:documents", "hh hhhhhhhhhh hhhhh hhhhhhhhhhhhh")
        .probe("probe:vector",   "hh hhhhhhhhhh xxxxx hhhhhhhhhhhhh")
        .build()
    )
    analysis = analyse(timeline, experiment_spec(expected_impact=["api:search"]))

Spaces and ``|`` are ignored. Pure: nothing here touches the network, files or the real clock.

To test what happens *within* windows (recovery, impact and onsets located to the request),
draw a signal as traffic: requests at a steady rate whose state changes at given instants. It
goes through the real recorder, so its windows and sub-window bins are exactly what a run
records::

    timeline = (
        TimelineBuilder().phases(baseline=10, fault=5, recovery=13).fault()
        .traffic("api:search", [(0, "h"), (10.0, "d"), (17.35, "h")], rate_per_s=100)
        .build()
    )
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar

from chaoslab.analysis import analyse
from chaoslab.clock import RunClock
from chaoslab.errors import HarnessError
from chaoslab.faults.base import FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.faults.registry import FaultRegistry
from chaoslab.journal import Host, Journal
from chaoslab.load.recorder import Recorder
from chaoslab.model.experiment import ExperimentSpec
from chaoslab.model.faults import FAULT_MODELS, FaultBase
from chaoslab.model.loading import Experiment
from chaoslab.model.topology import TopologySpec
from chaoslab.run.parts import MeasureScope, RunScope
from chaoslab.timeline import (
    ErrorClass,
    Event,
    FaultRecord,
    GeneratorWindow,
    PhaseSpan,
    ResourceSample,
    Signal,
    SignalKind,
    Timeline,
    WindowStats,
)

__all__ = [
    "FakeClock",
    "FakeFaultDriver",
    "FakeLoad",
    "FakeProbes",
    "FakeRecord",
    "FakeSystem",
    "FaultCall",
    "FaultStep",
    "LoadPalette",
    "ProbePalette",
    "SystemStep",
    "TimelineBuilder",
    "TrafficPalette",
    "experiment",
    "experiment_spec",
    "sample_journal",
    "signal_windows",
]


# ---------------------------------------------------------------------------------------------
# clock


class FakeClock:
    """A :class:`chaoslab.clock.Clock` whose time moves only when told to (or, with
    ``autojump``, as soon as every task is waiting on it). Nothing sleeps for real.

    Autojump moves time to the earliest deadline after ``idle_passes`` turns of the event loop
    in which no task began a new sleep; it suits code that waits only on this clock. Code that also waits on
    real I/O (a socket, a subprocess) should use ``autojump=False`` and :meth:`advance`.

    >>> clock = FakeClock()
    >>> clock.advance(2.5)
    >>> clock.now()
    2.5
    """

    def __init__(self, start: float = 0.0, *, autojump: bool = True, idle_passes: int = 20) -> None:
        self._now = float(start)
        self.autojump = autojump
        self.idle_passes = idle_passes
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._jumper: asyncio.Task[None] | None = None
        self._registrations = 0
        self.sleeps: list[float] = []
        """Every deadline asked for, in order (to assert on a schedule)."""

    def now(self) -> float:
        """The fake time in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper that is due."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; got advance({seconds})")
        self._now += seconds
        self._wake()

    def set(self, t: float) -> None:
        """Move time forward to ``t`` and wake every sleeper that is due."""
        self.advance(max(0.0, t - self._now))

    async def sleep_until(self, deadline: float) -> None:
        """Return once the fake time reaches ``deadline`` (at once if it already has)."""
        self.sleeps.append(deadline)
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), future))
        self._registrations += 1
        if self.autojump and (self._jumper is None or self._jumper.done()):
            self._jumper = asyncio.get_running_loop().create_task(self._jump())
        await future

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of fake time."""
        await self.sleep_until(self._now + seconds)

    @property
    def pending(self) -> int:
        """How many sleepers are waiting."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def _wake(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def _jump(self) -> None:
        # Let every ready task run (and perhaps register an earlier deadline) before time jumps
        # to the earliest one; repeat while anyone sleeps.
        while self._sleepers:
            quiet = 0
            while quiet < self.idle_passes:
                seen = self._registrations
                await asyncio.sleep(0)
                quiet = quiet + 1 if self._registrations == seen else 0
            self._sleepers = [s for s in self._sleepers if not s[2].done()]
            heapq.heapify(self._sleepers)
            if not self._sleepers:
                return
            self._now = max(self._now, self._sleepers[0][0])
            self._wake()


# ---------------------------------------------------------------------------------------------
# windows and timelines


def signal_windows(
    *,
    p95_ms: Sequence[float | None],
    count: int | Sequence[int] = 20,
    errors: int | Sequence[int] = 0,
    offered: int | Sequence[int] | None = None,
    start_index: int = 0,
    window_s: float = 1.0,
    error_class: str = "http_5xx",
) -> tuple[WindowStats, ...]:
    """Windows from parallel lists (a scalar applies to every window); p50 = p95/2, p99 = 1.5 × p95.

    >>> [w.p95_ms for w in signal_windows(p95_ms=[10, 12, 800])]
    [10, 12, 800]
    """
    n = len(p95_ms)

    def each(value: int | Sequence[int] | None, default: int) -> list[int]:
        if value is None:
            return [default] * n
        if isinstance(value, int):
            return [value] * n
        if len(value) != n:
            raise ValueError(f"expected {n} values to match p95_ms, got {len(value)}")
        return list(value)

    counts = each(count, 20)
    errs = each(errors, 0)
    offers = each(offered, 0) if offered is not None else counts
    out = []
    for k in range(n):
        p95 = p95_ms[k]
        index = start_index + k
        out.append(
            WindowStats(
                index=index,
                start_s=index * window_s,
                count=counts[k],
                ok=counts[k] - errs[k],
                errors={error_class: errs[k]} if errs[k] else {},
                p50_ms=None if p95 is None or not counts[k] else p95 / 2,
                p95_ms=None if not counts[k] else p95,
                p99_ms=None if p95 is None or not counts[k] else p95 * 1.5,
                max_ms=None if p95 is None or not counts[k] else p95 * 2,
                mean_ms=None if p95 is None or not counts[k] else p95 / 2,
                offered=offers[k],
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class LoadPalette:
    """What each pattern letter means for a load signal (one request class).

    ``h`` healthy · ``d`` slow (degraded latency) · ``e`` half the attempts fail · ``x`` every
    attempt fails · ``n`` load offered but too few attempts completed · ``l`` light load (too
    few offered) · ``.`` no window at all.
    """

    count: int = 20
    healthy_p95_ms: float = 10.0
    slow_p95_ms: float = 800.0
    error_class: str = "http_5xx"
    letters: ClassVar[str] = "hdexnl."

    def window(self, letter: str, index: int, window_s: float) -> WindowStats | None:
        """The window drawn by ``letter``."""
        count, errors, p95, offered = self.count, 0, self.healthy_p95_ms, self.count
        if letter == "h":
            pass
        elif letter == "d":
            p95 = self.slow_p95_ms
        elif letter == "e":
            errors = count // 2
        elif letter == "x":
            errors = count
        elif letter == "n":
            count = 2
        elif letter == "l":
            count = offered = 2
        elif letter == ".":
            return None
        else:
            raise ValueError(f"unknown load letter {letter!r}; use one of {self.letters!r}")
        return signal_windows(
            p95_ms=[p95],
            count=count,
            errors=errors,
            offered=offered,
            start_index=index,
            window_s=window_s,
            error_class=self.error_class,
        )[0]


@dataclass(frozen=True, slots=True)
class ProbePalette:
    """What each pattern letter means for a probe signal: one probe result per window.

    ``h`` probe passed · ``x`` probe failed (refused) · ``d`` probe passed but slowly · ``.``
    no probe in the window.
    """

    healthy_ms: float = 2.0
    slow_ms: float = 900.0
    letters: ClassVar[str] = "hxd."

    def window(self, letter: str, index: int, window_s: float) -> WindowStats | None:
        """The window drawn by ``letter``."""
        if letter == ".":
            return None
        if letter not in self.letters:
            raise ValueError(f"unknown probe letter {letter!r}; use one of {self.letters!r}")
        latency = self.slow_ms if letter == "d" else self.healthy_ms
        failed = letter == "x"
        return WindowStats(
            index=index,
            start_s=index * window_s,
            count=1,
            ok=0 if failed else 1,
            errors={"refused": 1} if failed else {},
            p50_ms=latency,
            p95_ms=latency,
            p99_ms=latency,
            max_ms=latency,
            mean_ms=latency,
        )


@dataclass(frozen=True, slots=True)
class TrafficPalette:
    """What each state letter means for one request of drawn traffic.

    ``h`` answered in ``healthy_ms`` (± ``jitter``) · ``d`` answered slowly, in ``slow_ms`` ·
    ``x`` refused at once · ``e`` every other request fails (HTTP 5xx) · ``.`` nothing sent.
    """

    healthy_ms: float = 10.0
    slow_ms: float = 800.0
    jitter: float = 0.2
    """Healthy latencies vary uniformly by this fraction (seeded: the same every time)."""
    fail_every: int = 0
    """Background noise: in state ``h`` every ``fail_every``-th request fails anyway (0: none)."""
    letters: ClassVar[str] = "hdxe."

    def outcome(self, letter: str, n: int, rng: random.Random) -> tuple[float, ErrorClass | None] | None:
        """Latency (s) and error of request number ``n`` in state ``letter``; None: not sent."""
        if letter == ".":
            return None
        healthy_s = self.healthy_ms / 1000.0 * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))
        if letter == "h":
            noise = self.fail_every and n % self.fail_every == self.fail_every - 1
            return healthy_s, ErrorClass.HTTP_5XX if noise else None
        if letter == "d":
            return self.slow_ms / 1000.0, None
        if letter == "x":
            return 0.001, ErrorClass.REFUSED
        if letter == "e":
            return healthy_s, ErrorClass.HTTP_5XX if n % 2 else None
        raise ValueError(f"unknown traffic letter {letter!r}; use one of {self.letters!r}")


@dataclass(frozen=True, slots=True)
class _Traffic:
    name: str
    kind: SignalKind
    service: str | None
    states: tuple[tuple[float, str], ...]
    interval_s: float
    palette: TrafficPalette
    seed: int


def _letters(pattern: str) -> str:
    return "".join(c for c in pattern if c not in " |\n\t")


@dataclass
class TimelineBuilder:
    """Builds a :class:`~chaoslab.timeline.Timeline` from phase lengths and one letter per window."""

    window_s: float = 1.0
    load: LoadPalette = field(default_factory=LoadPalette)
    probe_palette: ProbePalette = field(default_factory=ProbePalette)
    _phases: list[PhaseSpan] = field(default_factory=list)
    _faults: list[FaultRecord] = field(default_factory=list)
    _signals: dict[str, Signal] = field(default_factory=dict)
    _events: list[Event] = field(default_factory=list)
    _resources: dict[str, tuple[ResourceSample, ...]] = field(default_factory=dict)
    _generator: tuple[GeneratorWindow, ...] = ()
    _duration_s: float | None = None
    _traffic: list[_Traffic] = field(default_factory=list)

    def phases(self, **lengths_s: float) -> TimelineBuilder:
        """Consecutive phases from t=0, lengths in seconds, in the order given (zero-length kept).

        ``.phases(warmup=2, baseline=10, fault=5, recovery=13)``
        """
        t = 0.0
        self._phases = []
        for name, length in lengths_s.items():
            self._phases.append(PhaseSpan(name, t, t + length))
            t += length
        return self

    def phase(self, name: str, start_s: float, end_s: float) -> TimelineBuilder:
        """Add one phase at explicit times."""
        self._phases.append(PhaseSpan(name, start_s, end_s))
        return self

    def fault(
        self,
        *,
        injected_at_s: float | None = None,
        reverted_at_s: float | None = None,
        kind: str = "latency",
        target: str = "api->vector",
        revert_ok: bool | None = True,
        never_injected: bool = False,
        never_reverted: bool = False,
        description: str | None = None,
        detail: Mapping[str, Any] | None = None,
        error: str | None = None,
        revert_started_s: float | None = None,
    ) -> TimelineBuilder:
        """Add a fault record; times default to the fault phase's start and end.

        ``revert_started_s`` (the removal) defaults to none recorded, which analysis reads as
        ``reverted_at_s``; set it for a revert that took time (a restart) or a fault released at once.
        """
        phase = next((p for p in self._phases if p.name == "fault"), None)
        if injected_at_s is None and not never_injected:
            injected_at_s = phase.start_s if phase else None
        if reverted_at_s is None and not never_reverted:
            reverted_at_s = phase.end_s if phase else None
        self._faults.append(
            FaultRecord(
                kind=kind,
                target=target,
                description=description if description is not None else f"{kind} on {target}",
                injected_at_s=injected_at_s,
                reverted_at_s=reverted_at_s,
                revert_ok=None if never_reverted else revert_ok,
                detail=dict(detail or {}),
                error=error,
                revert_started_s=revert_started_s,
            )
        )
        return self

    def signal(
        self,
        name: str,
        pattern: str = "",
        *,
        service: str | None = None,
        windows: Sequence[WindowStats] = (),
        override: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> TimelineBuilder:
        """A load signal drawn by ``pattern`` (see :class:`LoadPalette`) and/or explicit ``windows``.

        ``override`` replaces fields of chosen windows: ``override={31: {"p95_ms": 2400.0}}``.
        """
        return self._add(name, SignalKind.LOAD, pattern, service, windows, override, self.load)

    def probe(
        self,
        name: str,
        pattern: str = "",
        *,
        service: str | None = None,
        windows: Sequence[WindowStats] = (),
        override: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> TimelineBuilder:
        """A probe signal drawn by ``pattern`` (see :class:`ProbePalette`)."""
        if service is None and name.startswith("probe:"):
            service = name.partition(":")[2]
        return self._add(name, SignalKind.PROBE, pattern, service, windows, override, self.probe_palette)

    def event(self, t_s: float, kind: str, message: str, **data: Any) -> TimelineBuilder:
        """Add an event (a phase change, a fault action, an abort) at run time ``t_s``."""
        self._events.append(Event(t_s, kind, message, data))
        return self

    def note(self, t_s: float, author: str, text: str) -> TimelineBuilder:
        """Add an observer's note, as the engine records one."""
        return self.event(t_s, "note", f"{author}: {text}", author=author, text=text)

    def resources(self, service: str, samples: Sequence[ResourceSample]) -> TimelineBuilder:
        """Set the resource samples of ``service`` (or ``host``)."""
        self._resources[service] = tuple(samples)
        return self

    def generator(self, windows: Sequence[GeneratorWindow]) -> TimelineBuilder:
        """Set the load generator's own windows (offered, sent, lag, saturation)."""
        self._generator = tuple(windows)
        return self

    def traffic(
        self,
        name: str,
        states: Sequence[tuple[float, str]],
        *,
        rate_per_s: float = 100.0,
        service: str | None = None,
        palette: TrafficPalette | None = None,
        seed: int = 0,
    ) -> TimelineBuilder:
        """A load signal of requests at ``rate_per_s``, in state ``letter`` from each ``(time, letter)`` on.

        ``.traffic("api:search", [(0, "h"), (12.0, "x"), (17.2, "h")])``: healthy, refused from 12 s,
        healthy again from 17.2 s (see :class:`TrafficPalette`). Recorded with windows and bins.
        Requests go half an interval into each interval (at 5 ms, 15 ms, … for 100/s), so at most
        rates none sits on a bin's edge.
        """
        return self._add_traffic(name, SignalKind.LOAD, service, states, 1.0 / rate_per_s, palette, seed)

    def probe_traffic(
        self,
        name: str,
        states: Sequence[tuple[float, str]],
        *,
        interval_s: float = 0.25,
        service: str | None = None,
        palette: TrafficPalette | None = None,
    ) -> TimelineBuilder:
        """A probe signal with one result every ``interval_s``, in the states given (as :meth:`traffic`)."""
        if service is None and name.startswith("probe:"):
            service = name.partition(":")[2]
        return self._add_traffic(name, SignalKind.PROBE, service, states, interval_s, palette, 0)

    def _add_traffic(
        self,
        name: str,
        kind: SignalKind,
        service: str | None,
        states: Sequence[tuple[float, str]],
        interval_s: float,
        palette: TrafficPalette | None,
        seed: int,
    ) -> TimelineBuilder:
        ordered = tuple(sorted((float(t), letter) for t, letter in states))
        self._traffic.append(_Traffic(name, kind, service, ordered, interval_s, palette or TrafficPalette(), seed))
        return self

    def _record_traffic(self, end_s: float) -> dict[str, Signal]:
        recorder = Recorder(self.window_s, RunClock(FakeClock()), bins_from_s=0.0)
        for item in self._traffic:
            rng = random.Random(item.seed)
            recorder.declare(item.name, kind=item.kind, service=item.service)
            n = 0
            t = 0.5 * item.interval_s
            while t < end_s:
                letter = next((s for at, s in reversed(item.states) if at <= t + 1e-12), ".")
                outcome = item.palette.outcome(letter, n, rng)
                if outcome is not None:
                    latency_s, error = outcome
                    recorder.record(item.name, t, t + latency_s, error, kind=item.kind, service=item.service)
                    if item.kind is SignalKind.LOAD:
                        recorder.offered(item.name, t, sent=True)
                n += 1
                t = (n + 0.5) * item.interval_s
        signals = recorder.signals()
        return {item.name: signals[item.name] for item in self._traffic}

    def duration(self, seconds: float) -> TimelineBuilder:
        """Set the run's duration (default: the end of the last phase or window)."""
        self._duration_s = seconds
        return self

    def build(self) -> Timeline:
        """The timeline."""
        ends = [p.end_s for p in self._phases]
        ends += [(w.index + 1) * self.window_s for s in self._signals.values() for w in s.windows]
        duration = self._duration_s if self._duration_s is not None else max(ends, default=0.0)
        signals = dict(self._signals)
        if self._traffic:
            signals.update(self._record_traffic(duration))
        return Timeline(
            window_s=self.window_s,
            signals=signals,
            phases=tuple(self._phases),
            faults=tuple(self._faults),
            resources=dict(self._resources),
            events=tuple(sorted(self._events, key=lambda e: e.t_s)),
            generator=self._generator,
            duration_s=duration,
        )

    def _add(
        self,
        name: str,
        kind: SignalKind,
        pattern: str,
        service: str | None,
        windows: Sequence[WindowStats],
        override: Mapping[int, Mapping[str, Any]] | None,
        palette: LoadPalette | ProbePalette,
    ) -> TimelineBuilder:
        drawn: dict[int, WindowStats] = {}
        for index, letter in enumerate(_letters(pattern)):
            window = palette.window(letter, index, self.window_s)
            if window is not None:
                drawn[index] = window
        for window in windows:
            drawn[window.index] = window
        for index, fields in (override or {}).items():
            base = drawn.get(index) or WindowStats(index=index, start_s=index * self.window_s)
            drawn[index] = replace(base, **fields)
        self._signals[name] = Signal(name, kind, service, tuple(drawn[i] for i in sorted(drawn)))
        return self


# ---------------------------------------------------------------------------------------------
# experiments


def _deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def experiment_spec(**overrides: Any) -> ExperimentSpec:
    """A valid :class:`ExperimentSpec` for tests; keyword arguments are deep-merged over the defaults.

    Defaults: load ``api:search`` and ``api:documents`` at 20/s, phases 2s/10s/5s, one 500 ms
    latency fault on ``api->vector``, ``expected_impact: [api:search]``, recovery budget 30s with
    ``stable_for`` 5s, window 1s, ``min_samples`` 5, ``sustained`` 2s.

    >>> experiment_spec(recovery={"stable_for": "2s"}).recovery.stable_for
    2.0
    """
    base: dict[str, Any] = {
        "name": "test-experiment",
        "topology": "demo",
        "load": {
            "rate": "20/s",
            "mix": [
                {"name": "search", "signal": "api:search", "method": "POST", "url": "http://127.0.0.1:9/search"},
                {"name": "documents", "signal": "api:documents", "url": "http://127.0.0.1:9/documents/1"},
            ],
        },
        "phases": {"warmup": "2s", "baseline": "10s", "fault": "5s"},
        "faults": [{"kind": "latency", "target": "api->vector", "latency": "500ms"}],
        "steady_state": {"window": "1s", "min_samples": 5, "sustained": "2s"},
        "expected_impact": ["api:search"],
        "recovery": {"budget": "30s", "stable_for": "5s"},
    }
    return ExperimentSpec.model_validate(_deep_merge(base, overrides))


# ---------------------------------------------------------------------------------------------
# faults


class FaultStep(StrEnum):
    """A step of the fault interface, as :class:`FakeFaultDriver` records it."""

    PREPARE = "prepare"
    APPLY = "apply"
    REVERT = "revert"
    CHECK = "check_reverted"


@dataclass(frozen=True, slots=True)
class FaultCall:
    """One call the engine made on a :class:`FakeFaultDriver`."""

    method: FaultStep
    label: str
    t: float | None = None
    """The fake clock's time at the call, when the driver has a clock."""


class FakeRecord(LedgerRecord):
    """The ledger record of a fake fault: its label and target, and whether apply got through."""

    label: str
    target: str
    applied: bool = False


class FakeFaultDriver(FaultDriver[FaultBase, FakeRecord]):
    """A fault driver that changes nothing and records every call, for the engine's unit tests.

    It can be told to fail in any step: ``fail`` maps a step to how many times it raises
    (``{FaultStep.REVERT: 1}``: the first revert raises); ``still_broken`` makes ``check_reverted``
    report the fault as still there; ``takes_s`` makes a step last that long on the fake clock.
    ``holds=False`` makes its faults ones chaoslab does not hold after applying them (like a kill
    a supervisor answers): their removal is their injection. :meth:`registry` puts it in a fault
    registry for :class:`chaoslab.run.execution.Run`.

    >>> driver = FakeFaultDriver()
    >>> driver.kinds, sorted(driver.registry())
    (('latency',), ['latency'])
    """

    def __init__(
        self,
        *,
        kinds: Sequence[str] = ("latency",),
        clock: FakeClock | None = None,
        fail: Mapping[FaultStep, int] | None = None,
        still_broken: str | None = None,
        takes_s: Mapping[FaultStep, float] | None = None,
        holds: bool = True,
    ) -> None:
        self.kinds = tuple(kinds)
        self.clock = clock
        self.fail = dict(fail or {})
        self.still_broken = still_broken
        self.takes_s = dict(takes_s or {})
        self.holds_faults = holds
        self.calls: list[FaultCall] = []
        self.active: set[str] = set()
        """Labels of faults applied and not yet reverted."""

    def registry(self) -> FaultRegistry:
        """A fault registry whose one family, ``fake``, is this driver for each of its kinds."""
        family: FaultFamily[FaultBase, FakeRecord] = FaultFamily(
            name="fake", models=tuple(FAULT_MODELS[kind] for kind in self.kinds), driver=lambda: self, record=FakeRecord
        )
        return FaultRegistry([family])

    def methods(self, label: str | None = None) -> list[str]:
        """The methods called, in order (for one label, or all)."""
        return [c.method.value for c in self.calls if label is None or c.label == label]

    async def _step(self, step: FaultStep, label: str) -> None:
        self.calls.append(FaultCall(step, label, self.clock.now() if self.clock else None))
        if self.fail.get(step, 0) > 0:
            self.fail[step] -= 1
            raise RuntimeError(f"fake {step.value} of {label} failed")
        if self.takes_s.get(step):
            if self.clock is None:
                raise ValueError("takes_s needs a FakeClock to take its time on")
            await self.clock.sleep(self.takes_s[step])

    def prepare(self, fault: FaultBase, ctx: FaultContext, label: str) -> FakeRecord:
        """The ledger record: the label, kind and target."""
        self.calls.append(FaultCall(FaultStep.PREPARE, label, self.clock.now() if self.clock else None))
        if self.fail.get(FaultStep.PREPARE, 0) > 0:
            self.fail[FaultStep.PREPARE] -= 1
            raise RuntimeError(f"fake prepare of {label} failed")
        return FakeRecord(kind=fault.kind, label=label, target=fault.target)

    async def apply(self, fault: FaultBase, ctx: FaultContext, record: FakeRecord) -> FakeRecord:
        """Mark the fault active (or raise when told to fail)."""
        await self._step(FaultStep.APPLY, record.label)
        self.active.add(record.label)
        return record.but(applied=True)

    async def revert(self, record: FakeRecord, ctx: FaultContext) -> None:
        """Mark the fault inactive; idempotent (or raise when told to fail)."""
        await self._step(FaultStep.REVERT, record.label)
        self.active.discard(record.label)

    async def check_reverted(self, record: FakeRecord, ctx: FaultContext) -> str | None:
        """``still_broken`` if set, else whether the fault is still active."""
        await self._step(FaultStep.CHECK, record.label)
        if self.still_broken is not None:
            return self.still_broken
        return f"{record.label} is still applied" if record.label in self.active else None

    def holds(self, record: FakeRecord) -> bool:
        """Whether the fault stays in force until reverted (``holds`` as given)."""
        return self.holds_faults


# ---------------------------------------------------------------------------------------------
# a fake system, load and probes for the engine


def experiment(spec: ExperimentSpec | None = None, **overrides: Any) -> Experiment:
    """An :class:`Experiment` of :func:`experiment_spec` (or ``spec``) on a two-service topology.

    The topology has ``api`` and ``vector`` (external, not launched) and the link ``api->vector``.

    >>> experiment(phases={"fault": "3s"}).spec.phases.fault
    3.0
    """
    topology = TopologySpec.model_validate(
        {
            "name": "fake",
            "services": {"api": {"url": "http://127.0.0.1:9"}, "vector": {"url": "http://127.0.0.1:9"}},
            "links": {"api->vector": {"listen": "127.0.0.1:9", "upstream": "127.0.0.1:9"}},
        }
    )
    return Experiment(spec=spec or experiment_spec(**overrides), topology=topology, path=None, parameters={})


class SystemStep(StrEnum):
    """What the engine asked of a :class:`FakeSystem`."""

    START_PROXY = "start_proxy"
    START_SERVICES = "start_services"
    STOP = "stop"


class FakeSystem:
    """A system under test that starts nothing and records what the run asked of it.

    It is its own factory (``Run(system=FakeSystem())``); ``fail`` names a step that raises.
    """

    def __init__(
        self,
        *,
        toxiproxy_url: str | None = "http://127.0.0.1:9",
        fail: SystemStep | None = None,
        stop_problems: Sequence[str] = (),
    ) -> None:
        self.toxiproxy_url = toxiproxy_url
        self.fail = fail
        self.stop_problems = tuple(stop_problems)
        self.calls: list[SystemStep] = []
        self.scope: RunScope | None = None

    def __call__(self, scope: RunScope) -> FakeSystem:
        """The factory: the run hands over its scope."""
        self.scope = scope
        return self

    @property
    def services(self) -> None:
        """No service control: process faults have nothing to act on."""
        return None

    def _step(self, step: SystemStep) -> None:
        self.calls.append(step)
        if self.fail == step:
            raise HarnessError(f"fake {step.value} failed")

    async def start_proxy(self) -> str | None:
        """Record the call; the configured URL."""
        self._step(SystemStep.START_PROXY)
        return self.toxiproxy_url

    async def start_services(self) -> None:
        """Record the call."""
        self._step(SystemStep.START_SERVICES)

    def pids(self, service: str) -> list[int]:
        """No processes."""
        return []

    async def stop(self) -> list[str]:
        """Record the call; the configured problems."""
        self._step(SystemStep.STOP)
        return list(self.stop_problems)


LatencyOf = Callable[[str, float], float]
"""``(signal, intended_s) → latency in ms``."""
FailsAt = Callable[[str, float], bool]
"""``(signal, intended_s) → whether the request fails``."""


class FakeLoad:
    """A load that records answers into the run's recorder on the run clock, without a socket.

    Every ``batch_s`` of run time it records the requests due in the batch (``rate_per_s`` per
    signal), each with ``latency_ms(signal, t)`` and failing when ``fails(signal, t)``;
    ``raise_at_s`` makes it raise then (a crashed load generator). It is its own factory.
    """

    def __init__(
        self,
        *,
        signals: Sequence[str] = ("api:search", "api:documents"),
        rate_per_s: float = 20.0,
        latency_ms: LatencyOf | None = None,
        fails: FailsAt | None = None,
        raise_at_s: float | None = None,
        batch_s: float = 0.25,
    ) -> None:
        self.signals = tuple(signals)
        self.rate_per_s = rate_per_s
        self.latency_ms: LatencyOf = latency_ms or (lambda signal, t: 5.0)
        self.fails: FailsAt = fails or (lambda signal, t: False)
        self.raise_at_s = raise_at_s
        self.batch_s = batch_s
        self.scope: MeasureScope | None = None

    def __call__(self, scope: MeasureScope) -> FakeLoad:
        """The factory: the run hands over its clock and recorder."""
        self.scope = scope
        return self

    async def run(self, start_s: float, end_s: float) -> None:
        """Record answers from ``start_s`` until ``end_s``, a batch at a time."""
        assert self.scope is not None, "FakeLoad runs once the run has handed it its scope"
        clock, recorder = self.scope.clock, self.scope.recorder
        for signal in self.signals:
            recorder.declare(signal, service=signal.partition(":")[0])
        gap = 1.0 / self.rate_per_s
        due = start_s
        batch_end = start_s
        while batch_end < end_s:
            batch_end = min(end_s, batch_end + self.batch_s)
            await clock.sleep_until_offset(batch_end)
            if self.raise_at_s is not None and batch_end >= self.raise_at_s:
                raise RuntimeError(f"fake load failed at {batch_end:g}s")
            while due < batch_end:
                for signal in self.signals:
                    error = ErrorClass.HTTP_5XX if self.fails(signal, due) else None
                    recorder.offered(signal, due, sent=True)
                    done = due + self.latency_ms(signal, due) / 1000.0
                    recorder.record(signal, due, done, error, service=signal.partition(":")[0])
                due += gap

    def generator_windows(self) -> tuple[GeneratorWindow, ...]:
        """No generator figures (nothing to fall behind)."""
        return ()


class FakeProbes:
    """Probes that report what they are told: ``healthy(service, t) → bool`` (every service healthy by default)."""

    def __init__(self, healthy: Callable[[str, float], bool] | None = None) -> None:
        self.health: Callable[[str, float], bool] = healthy or (lambda service, t: True)
        self.scope: MeasureScope | None = None

    def __call__(self, scope: MeasureScope) -> FakeProbes:
        """The factory: the run hands over its clock."""
        self.scope = scope
        return self

    async def run(self, end_s: float) -> None:
        """Nothing to do until the end: health is computed when asked."""
        assert self.scope is not None
        await self.scope.clock.sleep_until_offset(end_s)

    def healthy(self, service: str) -> bool | None:
        """What the health function says now."""
        assert self.scope is not None
        return self.health(service, self.scope.clock.elapsed())


# ---------------------------------------------------------------------------------------------
# a sample journal

SAMPLE_T0_WALL = 1795418100.123
"""Unix time of the sample run's t0: 2026-11-23T07:15:00.123Z."""


def _wobble(i: int, salt: int) -> float:
    """A deterministic wobble in [0, 1): the sample has the same numbers every time."""
    return ((i * 37 + salt * 11) % 17) / 17.0


def _sample_window(
    index: int, count: int, p50_ms: float, *, errors: int = 0, offered: int | None = None
) -> WindowStats:
    return WindowStats(
        index=index,
        start_s=float(index),
        count=count,
        ok=count - errors,
        errors={"timeout": errors} if errors else {},
        p50_ms=round(p50_ms, 3),
        p95_ms=round(p50_ms * 2.4, 3),
        p99_ms=round(p50_ms * 3.6, 3),
        max_ms=round(p50_ms * 4.5, 3),
        mean_ms=round(p50_ms * 1.2, 3),
        offered=count if offered is None else offered,
    )


def sample_journal(
    *,
    cascade: bool = True,
    recovered: bool = True,
    aborted: bool = False,
    revert_failed: bool = False,
    name: str = "cascade-vector-latency",
) -> Journal:
    """A realistic journal made by the real pipeline: a timeline drawn here, analysed, wrapped in a Journal.

    A vector-latency experiment with a 1 s window: warm-up 0–2 s, baseline 2–12 s, 800 ms on
    api→vector from 12 s to 20 s, then the recovery watch. ``api:search`` is the expected impact
    and recovers 2 s after the revert; with ``cascade=True`` ``api:documents`` degrades from 13 s
    to 21 s as well (the fragile demo api), breaking its SLOs. ``recovered=False`` keeps search
    slow to the end of the 15 s budget; ``aborted=True`` has documents fail outright so that the
    abort rule stops the run at 16 s; ``revert_failed=True`` leaves the toxic in place (exit 4).
    Its verdict, bands and health are what ``chaoslab analyse`` computes from its timeline.

    >>> journal = sample_journal(cascade=True)
    >>> journal.verdict.value, [c.signal for c in journal.analysis.cascade], journal.analysis.recovery_time_s
    ('fail', ['api:documents'], 2.0)
    """
    spec = experiment_spec(
        name=name,
        description="Hypothesis: 800 ms on api→vector slows /search only; documents keep their baseline.",
        parameters={"mode": "fragile", "latency": "800ms"},
        load={
            "rate": "40/s",
            "mix": [
                {"name": "search", "signal": "api:search", "method": "POST", "url": "${service:api}/search"},
                {
                    "name": "documents",
                    "signal": "api:documents",
                    "weight": 2,
                    "url": "${service:api}/documents/{randint:1:500}",
                },
            ],
        },
        phases={"warmup": "2s", "baseline": "10s", "fault": "8s"},
        faults=[{"kind": "latency", "target": "api->vector", "latency": "800ms", "jitter": "50ms"}],
        steady_state={"slos": [{"signal": "api:documents", "p95": "500ms", "success": 0.99}]},
        recovery={"budget": "15s", "stable_for": "5s"},
        abort=[{"when": "error_rate", "signal": "api:documents", "above": 0.9, "for": "3s"}],
        runbook="runbooks/cascade-vector-latency.md",
    )
    fault_on = 12.0
    revert_s = 16.0 if aborted else 20.0
    end_s = 16.0 if aborted else (28.0 if recovered else 35.0)
    n = int(end_s)
    search_slow_until = revert_s + 2.0 if recovered else end_s
    docs_bad = (13.0, revert_s + 1.0) if cascade or aborted else (0.0, 0.0)

    search, documents = [], []
    for i in range(n):
        # the generator ramps up during the warm-up: its first window has too few samples to judge
        if fault_on <= i < search_slow_until:
            search.append(_sample_window(i, 9, 350.0 + 40 * _wobble(i, 1), offered=13))
        else:
            search.append(_sample_window(i, 3 if i == 0 else 13, 3.0 + _wobble(i, 1)))
        if docs_bad[0] <= i < docs_bad[1]:
            if aborted:  # documents time out outright: the abort rule trips after 3 s
                documents.append(_sample_window(i, 20, 1000.0, errors=20, offered=27))
            else:  # the worst window, 17 s, is the cascade's peak
                p50 = 1020.0 if i == 17 else 830.0 + 60 * _wobble(i, 2)
                documents.append(_sample_window(i, 20, p50, errors=4 if i == 17 else 3, offered=27))
        else:
            documents.append(_sample_window(i, 4 if i == 0 else 27, 2.5 + _wobble(i, 2)))

    label = "f0-latency"
    builder = (
        TimelineBuilder(window_s=1.0)
        .phase("warmup", 0.0, 2.0)
        .phase("baseline", 2.0, 12.0)
        .phase("fault", 12.0, revert_s)
        .signal("api:search", service="api", windows=search)
        .signal("api:documents", service="api", windows=documents)
        .probe("probe:vector", "h" * n)
        .probe("probe:api", "h" * n)
        .fault(
            injected_at_s=fault_on,
            reverted_at_s=revert_s,
            description="latency on api->vector (latency=0.8, jitter=0.05)",
            revert_ok=not revert_failed,
            detail={"label": label, "toxic": label, "proxy": "api-vector"},
            error="toxic f0-latency still present after revert" if revert_failed else None,
        )
        .event(0.0, "phase", "warmup started", phase="warmup")
        .event(2.0, "phase", "baseline started", phase="baseline")
        .event(12.0, "phase", "fault started", phase="fault")
        .event(12.0, "fault", f"applied {label}: latency on api->vector", label=label, action="apply")
        .note(14.5, "alice", "search is slow, as expected")
        .note(15.2, "bob", "documents timing out too <investigating>")
    )
    abort_reason = "abort condition: error rate of api:documents 100% > 90% for 3s" if aborted else None
    if aborted:
        builder.event(16.0, "abort", "error rate of api:documents 100% > 90% for 3s")
    else:
        builder.phase("recovery", 20.0, end_s).event(20.0, "phase", "recovery started", phase="recovery")
    if revert_failed:
        builder.event(revert_s, "revert_failed", f"revert of {label} failed: toxic {label} still present", label=label)
    else:
        builder.event(revert_s, "fault", f"reverted {label}", label=label, action="revert")
    if recovered and not aborted:
        builder.event(end_s, "recovered", "recovery established; ending the watch early")
    for service, cpu, rss in (("api", 12.0, 52_000_000), ("vector", 20.0, 88_000_000), ("host", 35.0, 0)):
        samples = []
        for i in range(n):
            busy = fault_on <= i < revert_s + 2
            samples.append(
                ResourceSample(
                    t_s=float(i),
                    cpu_percent=round(cpu + (25.0 if busy and service != "vector" else 0.0) + 3 * _wobble(i, 5), 2),
                    rss_bytes=rss + (6_000_000 if busy else 0) + i * 10_000 if rss else None,
                    open_fds=20 + (40 if busy and service == "api" else 0) if rss else None,
                    connections=5 + (60 if busy and service == "api" else 0) if rss else None,
                )
            )
        builder.resources(service, samples)
    saturated = (15, 16)
    builder.generator(
        [
            GeneratorWindow(
                index=i,
                offered=40,
                sent=37 if i in saturated else 40,
                lag_p99_ms=15.2 if i in saturated else 1.2,
                cpu_percent=45.0 if i in saturated else 15.0,
                saturated=i in saturated,
            )
            for i in range(n)
        ]
    )
    timeline = builder.build()
    revert_errors = (f"revert of {label} failed: toxic {label} still present after revert",) if revert_failed else ()
    analysis = analyse(timeline, spec, aborted=abort_reason, revert_failed=revert_failed)
    return Journal(
        run_id="20261123T071500-ab12cd",
        experiment=spec,
        timeline=timeline,
        analysis=analysis,
        topology={"name": "demo", "services": {"api": {}, "vector": {}, "postgres": {}}},
        parameters={"mode": "fragile", "latency": "800ms"},
        quick=True,
        started_at="2026-11-23T07:15:00.123Z",
        ended_at=f"2026-11-23T07:15:{end_s + 2.4:04.1f}00Z",
        t0_wall=SAMPLE_T0_WALL,
        host=Host(hostname="ci-runner-1", cpus=2, python="3.12.3"),
        load_profile=tuple((float(i), 40.0) for i in range(n)),
        abort_reason=abort_reason,
        revert_errors=revert_errors,
    )
