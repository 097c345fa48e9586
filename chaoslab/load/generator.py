"""The open-loop load generator: requests go at their scheduled times, whatever the target does.

Each request's *intended* send time comes from the arrival schedule (a profile, see
:mod:`chaoslab.load.profiles`); the generator wakes in ≥ 1 ms ticks, hands every request that
is due to a connection pool (the lean HTTP/1.1 client for ``http://``, aiohttp for
``https://``), and records ``done − intended`` into the recorder. A stalled target therefore
shows up as latency, not as a lower rate (no coordinated omission); a request that waits for a
free connection carries that wait too. Requests beyond ``max_in_flight`` are not sent: they
are counted as offered but unsent, never dropped silently.

The generator watches itself: per window, how late it dispatched (lag), its process CPU and
whether it kept up; windows where it did not are flagged ``saturated`` so that nobody reads
the generator's own queue as the target's latency.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
import time
from collections import deque
from collections.abc import Mapping
from typing import Literal

import aiohttp

from chaoslab.clock import RunClock
from chaoslab.load.histogram import LatencyHistogram
from chaoslab.load.http import Exchange, HttpPool
from chaoslab.load.mix import RequestClass, compile_request, login_headers, service_of
from chaoslab.load.profiles import ArrivalSchedule, Profile, profile_from_spec
from chaoslab.load.recorder import Recorder
from chaoslab.model.experiment import LoadSpec
from chaoslab.system.transport import classify_exception
from chaoslab.timeline import ErrorClass, GeneratorWindow, SignalKind, classify_status

TICK_S = 0.001
"""The scheduler's shortest sleep: uvloop turns shorter sleeps into busy spins (docs/measurement.md)."""

MAX_SLEEP_S = 0.05
"""The scheduler's longest sleep, however far away the next request is."""

SATURATED_LAG_MS = 10.0
"""A window whose dispatch lag p99 exceeds this is flagged saturated: the generator fell behind."""

SATURATED_CPU_PERCENT = 90.0
"""A window in which the generator's process used more CPU than this is flagged saturated."""


class _GenWindow:
    """The generator's tallies for one window."""

    __slots__ = ("lag", "offered", "sent")

    def __init__(self) -> None:
        self.offered = 0
        self.sent = 0
        self.lag = LatencyHistogram(2)


class LoadGenerator:
    """An open-loop generator for one :class:`LoadSpec`, recording into a :class:`Recorder`."""

    def __init__(
        self,
        spec: LoadSpec,
        refs: Mapping[str, str],
        recorder: Recorder,
        clock: RunClock,
        *,
        seed: int | None = None,
        profile: Profile | None = None,
        client: Literal["lean", "aiohttp"] = "lean",
    ) -> None:
        self.spec = spec
        self.refs = dict(refs)
        self.recorder = recorder
        self.clock = clock
        self.window_s = recorder.window_s
        self._seed = seed if seed is not None else spec.seed
        self.rng = random.Random(self._seed)
        self._profile = profile
        self.client = client
        """``lean``: the HTTP/1.1 pool for http:// URLs (aiohttp for https://); ``aiohttp``: aiohttp for all."""
        self._classes: list[RequestClass] = []
        self._cum_weights: list[float] = []
        self._extra_headers: dict[str, str] = {}
        self._pools: dict[tuple[str, int], HttpPool] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._deadlines: dict[float, deque[Exchange]] = {}
        self._in_flight = 0
        self._gen: dict[int, _GenWindow] = {}
        self._marks: dict[int, tuple[float, float]] = {}
        self._mark_index: int | None = None
        self._finished: list[GeneratorWindow] = []
        self.max_timeout_s = max(float(r.timeout) for r in spec.mix)
        recorder.expect_latency_up_to(self.max_timeout_s)
        for request in spec.mix:
            recorder.declare(request.signal_name, kind=SignalKind.LOAD, service=service_of(request.url))

    # ----------------------------------------------------------------- setup

    async def login(self) -> dict[str, str]:
        """Run the login step (if any) and return the header to add to every request."""
        login = self.spec.login
        if login is None:
            return {}
        return await login_headers(login, self.refs)

    def _compile(self) -> None:
        self._classes = [compile_request(r, self.refs, self._extra_headers) for r in self.spec.mix]
        total = 0.0
        self._cum_weights = []
        for request in self.spec.mix:
            total += request.weight
            self._cum_weights.append(total)

    def _pick(self) -> int:
        if len(self._classes) == 1:
            return 0
        x = self.rng.random() * self._cum_weights[-1]
        return min(bisect.bisect_right(self._cum_weights, x), len(self._classes) - 1)

    # ------------------------------------------------------------------ run

    async def run(self, start_s: float, end_s: float) -> None:
        """Send the profile's requests from run offset ``start_s`` to ``end_s``, then wait for answers (bounded)."""
        if not math.isfinite(end_s) or end_s < start_s:
            raise ValueError(f"expected a finite end after the start, got {start_s}..{end_s}")
        self._extra_headers = await self.login()
        self._compile()
        profile = self._profile or profile_from_spec(self.spec.profile, self.spec.rate, begin_s=start_s)
        schedule = ArrivalSchedule(profile, start_s, end_s)
        clock = self.clock
        try:
            await clock.sleep_until_offset(start_s)
            self._window_mark(int(clock.elapsed() // self.window_s))
            while True:
                now = clock.elapsed()
                due = schedule.due(now)
                if due:
                    self._dispatch(due, now)
                self._expire(now)
                index = int(now // self.window_s)
                if index != self._mark_index:
                    self._window_mark(index)
                nxt = schedule.next_s
                if nxt == math.inf:
                    break
                # Wake at least every MAX_SLEEP_S at low rates so that timeouts and window marks stay timely.
                await asyncio.sleep(min(max(nxt - clock.elapsed(), TICK_S), MAX_SLEEP_S))
            # Drain: answers may come until the largest timeout after the last send.
            drain_until = clock.elapsed() + self.max_timeout_s + 0.05
            while self._in_flight > 0 and clock.elapsed() < drain_until:
                now = clock.elapsed()
                self._expire(now)
                index = int(now // self.window_s)
                if index != self._mark_index:
                    self._window_mark(index)
                await asyncio.sleep(0.005)
            self._expire(math.inf)
        finally:
            self._window_mark(None)
            await self._close()

    def _dispatch(self, due: list[float], now: float) -> None:
        """Hand every due request to its pool (or count it unsent), tallying per window in one pass."""
        gen = self._gen
        window_s = self.window_s
        max_in_flight = self.spec.max_in_flight
        extra = self._extra_headers
        rng = self.rng
        classes = self._classes
        lean = self.client == "lean"
        # (class, window) -> [offered, unsent]: the recorder is told once per group, not per request.
        tallies: dict[tuple[int, int], list[int]] = {}
        gw: _GenWindow | None = None
        gw_index = -1
        for intended in due:
            tag = self._pick()
            cls = classes[tag]
            index = int(intended // window_s)
            if index != gw_index:
                gw = gen.get(index)
                if gw is None:
                    gw = gen[index] = _GenWindow()
                gw_index = index
                # Due times are in order: the first of a window in this tick is its most late. Its lag,
                # counted for every request of the group, bounds theirs from above at one record per tick.
                gw.lag.record(int((now - intended) * 1e6), sum(1 for t in due if int(t // window_s) == index))
            assert gw is not None
            gw.offered += 1
            tally = tallies.get((tag, index))
            if tally is None:
                tally = tallies[(tag, index)] = [0, 0]
            tally[0] += 1
            if self._in_flight >= max_in_flight:
                tally[1] += 1
                continue
            gw.sent += 1
            exchange = Exchange(cls.payload(rng, extra), intended, intended + cls.timeout_s, tag, is_head=cls.is_head)
            self._in_flight += 1
            queue = self._deadlines.get(cls.timeout_s)
            if queue is None:
                queue = self._deadlines[cls.timeout_s] = deque()
            queue.append(exchange)
            if lean and cls.scheme == "http":
                self._pool(cls).submit(exchange)
            else:
                self._send_aiohttp(cls, exchange)
        recorder = self.recorder
        for (tag, index), (offered, unsent) in tallies.items():
            mid_s = (index + 0.5) * window_s
            if offered > unsent:
                recorder.offered(classes[tag].signal, mid_s, sent=True, count=offered - unsent)
            if unsent:
                recorder.offered(classes[tag].signal, mid_s, sent=False, count=unsent)

    def _pool(self, cls: RequestClass) -> HttpPool:
        key = (cls.host, cls.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = HttpPool(
                cls.host,
                cls.port,
                self._on_complete,
                max_connections=self.spec.connections,
                connect_timeout_s=self.max_timeout_s,
            )
        return pool

    def _on_complete(self, exchange: Exchange, status: int | None, error: ErrorClass | None) -> None:
        done = self.clock.elapsed()
        self._in_flight -= 1
        cls = self._classes[exchange.tag]
        if error is None and status is not None:
            error = classify_status(status, cls.spec.expect_status)
        self.recorder.record(cls.signal, exchange.intended_s, done, error, service=cls.service)

    def _expire(self, now: float) -> None:
        """Fail every exchange whose deadline passed (deadlines per timeout are in dispatch order)."""
        for queue in self._deadlines.values():
            while queue and (queue[0].done or queue[0].deadline_s <= now):
                exchange = queue.popleft()
                if exchange.done:
                    continue
                cls = self._classes[exchange.tag]
                pool = self._pools.get((cls.host, cls.port))
                if pool is not None:
                    pool.expire(exchange)
                else:
                    exchange.done = True
                self._in_flight -= 1
                done = min(now, exchange.deadline_s) if now != math.inf else exchange.deadline_s
                self.recorder.record(cls.signal, exchange.intended_s, done, ErrorClass.TIMEOUT, service=cls.service)

    # --------------------------------------------------------------- aiohttp

    def _send_aiohttp(self, cls: RequestClass, exchange: Exchange) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.spec.connections)
            self._session = aiohttp.ClientSession(connector=connector)
        task = asyncio.get_running_loop().create_task(self._aiohttp_one(self._session, cls, exchange))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _aiohttp_one(self, session: aiohttp.ClientSession, cls: RequestClass, exchange: Exchange) -> None:
        rng = self.rng
        url = f"{cls.scheme}://{cls.host_header}{cls.target.render(rng)}"
        status: int | None = None
        error: ErrorClass | None = None
        try:
            async with session.request(
                cls.spec.method,
                url,
                headers=cls.header_values(rng, self._extra_headers),
                data=cls.body(rng),
                timeout=aiohttp.ClientTimeout(total=max(exchange.deadline_s - self.clock.elapsed(), 0.001)),
            ) as response:
                await response.read()
                status = response.status
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every transport failure is a measured outcome, never a crash
            error = classify_exception(exc)
        if not exchange.done:
            exchange.done = True
            self._on_complete(exchange, status, error)

    # ------------------------------------------------------------ own health

    def _window_mark(self, index: int | None) -> None:
        """At the first tick of window ``index``: note CPU and wall time, close the generator windows before it."""
        cpu, wall = time.process_time(), self.clock.elapsed()
        self._mark_index = index
        if index is not None:
            self._marks.setdefault(index, (cpu, wall))
            self._gen.setdefault(index, _GenWindow())
        for i in sorted(k for k in self._gen if index is None or k < index):
            later = [k for k in self._marks if k > i]
            end = self._marks[min(later)] if later else (cpu, wall)
            self._finish(i, self._gen.pop(i), self._marks.get(i), end)
        for k in [k for k in self._marks if index is None or k < index]:
            del self._marks[k]

    def _finish(self, index: int, gw: _GenWindow, start: tuple[float, float] | None, end: tuple[float, float]) -> None:
        cpu_percent: float | None = None
        if start is not None and end[1] - start[1] >= self.window_s / 2:
            # Only over a span close to one window: a mark from a late tick would dilute a busy window.
            cpu_percent = round(100.0 * (end[0] - start[0]) / (end[1] - start[1]), 1)  # the journal's precision
        lag_p99_ms = gw.lag.value_at_percentile(99.0) / 1000.0 if gw.lag.total else 0.0
        saturated = (
            gw.sent < gw.offered
            or lag_p99_ms > SATURATED_LAG_MS
            or (cpu_percent is not None and cpu_percent > SATURATED_CPU_PERCENT)
        )
        if gw.offered:
            self._finished.append(GeneratorWindow(index, gw.offered, gw.sent, lag_p99_ms, cpu_percent, saturated))

    def generator_windows(self) -> tuple[GeneratorWindow, ...]:
        """Offered/sent/lag/CPU/saturated per window so far (closed windows, in time order)."""
        return tuple(sorted(self._finished, key=lambda g: g.index))

    async def _close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = [
    "MAX_SLEEP_S",
    "SATURATED_CPU_PERCENT",
    "SATURATED_LAG_MS",
    "TICK_S",
    "LoadGenerator",
    "classify_exception",
    "classify_status",
    "compile_request",
    "login_headers",
]
