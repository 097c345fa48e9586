"""Load profiles (arrival rate over run time) and the open-loop arrival schedule, both pure.

A profile is a small policy object with ``rate_at(t_s)`` in requests per second at run offset
``t_s``; the factories mirror the experiment file's ``profile:`` kinds. The schedule turns a
profile into intended send times: request ``n`` is due when the integral of the rate since the
load's start reaches ``n``, so a constant rate is evenly paced (as wrk2 does) and nothing about
the schedule depends on how fast the target answers (no coordinated omission).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from chaoslab.model.experiment import (
    ConstantProfile,
    ProfileSpec,
    RampProfile,
    SoakProfile,
    SpikeProfile,
    StepProfile,
)


@dataclass(frozen=True, slots=True)
class Profile:
    """An arrival rate as a function of run time: piecewise-linear multiples of a base rate.

    ``points`` are ``(t_s, multiplier)`` breakpoints in time order; before the first point the
    first multiplier holds, after the last the last one; between two points the multiplier is
    interpolated linearly when ``linear`` is set, else it jumps at each point (steps).
    """

    name: str
    base_rate: float
    points: tuple[tuple[float, float], ...]
    linear: bool = False

    def multiplier_at(self, t_s: float) -> float:
        """The multiple of the base rate at run offset ``t_s``."""
        points = self.points
        if t_s < points[0][0]:
            return points[0][1]
        previous = points[0]
        for point in points[1:]:
            if t_s < point[0]:
                if not self.linear:
                    return previous[1]
                span = point[0] - previous[0]
                frac = (t_s - previous[0]) / span if span > 0 else 1.0
                return previous[1] + (point[1] - previous[1]) * frac
            previous = point
        return previous[1]

    def rate_at(self, t_s: float) -> float:
        """Requests per second due at run offset ``t_s``."""
        return self.base_rate * self.multiplier_at(t_s)

    def time_after(self, t_s: float, count: float = 1.0) -> float:
        """The earliest time at which ``count`` requests have become due since ``t_s`` (``inf`` if never).

        Exact for piecewise-linear rates: within a linear segment the integral is quadratic.
        """
        if len(self.points) == 1:  # constant: the common case, kept cheap (it runs once per request)
            rate = self.base_rate * self.points[0][1]
            return t_s + count / rate if rate > 0 else math.inf
        remaining = count
        t = t_s
        while True:
            seg_end, rate0, slope = self._segment_at(t)
            if seg_end == math.inf:
                if rate0 <= 0:
                    return math.inf
                return t + remaining / rate0
            length = seg_end - t
            area = max(rate0 * length + slope * length * length / 2, 0.0)
            if area >= remaining and area > 0:
                disc = rate0 * rate0 + 2 * slope * remaining
                # the stable root of slope/2·x² + rate0·x − remaining = 0
                return t + 2 * remaining / (rate0 + math.sqrt(max(disc, 0.0)))
            remaining -= area
            t = seg_end

    def _segment_at(self, t_s: float) -> tuple[float, float, float]:
        """``(end_s, rate at t_s, slope in req/s²)`` of the constant or linear piece holding ``t_s``."""
        points = self.points
        for i, (at_s, multiplier) in enumerate(points):
            if t_s < at_s:
                if i == 0:
                    return at_s, self.base_rate * multiplier, 0.0
                prev_at, prev_m = points[i - 1]
                if not self.linear:
                    return at_s, self.base_rate * prev_m, 0.0
                slope = self.base_rate * (multiplier - prev_m) / (at_s - prev_at)
                return at_s, self.rate_at(t_s), slope
        return math.inf, self.base_rate * points[-1][1], 0.0

    def curve(self, start_s: float, end_s: float) -> list[tuple[float, float]]:
        """``(t_s, req/s)`` points that draw the rate over [start_s, end_s] exactly (for the report's plot).

        Steps appear as two points at the same time (the rate before and after the jump).
        """
        times = sorted({start_s, end_s, *(t for t, _ in self.points if start_s < t < end_s)})
        out: list[tuple[float, float]] = []
        for t in times:
            if not self.linear and out and t in {p for p, _ in self.points}:
                out.append((t, self.rate_at(t - 1e-12) if t > start_s else self.rate_at(t)))
            out.append((t, self.rate_at(t)))
        return out

    def expected_count(self, start_s: float, end_s: float, step_s: float = 0.001) -> float:
        """The integral of the rate over [start_s, end_s) (midpoint rule): how many requests are due."""
        total = 0.0
        t = start_s
        while t < end_s:
            dt = min(step_s, end_s - t)
            total += self.rate_at(t + dt / 2) * dt
            t += dt
        return total


def constant(rate: float) -> Profile:
    """The same rate all the time.

    >>> constant(100).rate_at(12.0)
    100.0
    """
    return Profile("constant", float(rate), ((0.0, 1.0),))


def soak(rate: float) -> Profile:
    """A constant rate meant for long runs (resource growth is what is watched).

    >>> soak(50).rate_at(3600.0)
    50.0
    """
    return Profile("soak", float(rate), ((0.0, 1.0),))


def ramp(rate: float, *, start: float, end: float, over_s: float, begin_s: float = 0.0) -> Profile:
    """From ``start`` × rate at ``begin_s`` linearly to ``end`` × rate at ``begin_s + over_s``, then level.

    >>> ramp(100, start=0.0, end=1.0, over_s=10).rate_at(5.0)
    50.0
    """
    points = ((float(begin_s), float(start)), (float(begin_s + over_s), float(end)))
    return Profile("ramp", float(rate), points, linear=True)


def step(rate: float, steps: Sequence[tuple[float, float]]) -> Profile:
    """Base rate until the first ``(at_s, multiplier)`` step, then each multiplier from its time on.

    >>> step(100, [(10, 2.0), (20, 0.5)]).rate_at(15.0)
    200.0
    """
    ordered = sorted(steps)
    return Profile("step", float(rate), ((0.0, 1.0), *((float(a), float(m)) for a, m in ordered)))


def spike(rate: float, *, multiplier: float, at_s: float, duration_s: float) -> Profile:
    """``multiplier`` × rate during [at_s, at_s + duration_s), the base rate before and after.

    >>> spike(100, multiplier=5, at_s=10, duration_s=2).rate_at(11.0)
    500.0
    """
    points = ((0.0, 1.0), (float(at_s), float(multiplier)), (float(at_s + duration_s), 1.0))
    return Profile("spike", float(rate), points)


def profile_from_spec(spec: ProfileSpec, rate: float, *, begin_s: float = 0.0) -> Profile:
    """The profile an experiment's ``load.profile`` describes; a ramp starts at the load's start ``begin_s``."""
    if isinstance(spec, ConstantProfile):
        return constant(rate)
    if isinstance(spec, SoakProfile):
        return soak(rate)
    if isinstance(spec, RampProfile):
        return ramp(rate, start=spec.start, end=spec.end, over_s=spec.over, begin_s=begin_s)
    if isinstance(spec, StepProfile):
        return step(rate, [(s.at, s.multiplier) for s in spec.steps])
    if isinstance(spec, SpikeProfile):
        return spike(rate, multiplier=spec.multiplier, at_s=spec.at, duration_s=spec.duration)
    raise TypeError(f"unknown profile {spec!r}")  # pragma: no cover - the union is closed


class ArrivalSchedule:
    """Intended send times from a profile over [start_s, end_s): pure, pulled in order with :meth:`due`.

    Request ``n`` (from 0) is due when ``n + 0.5`` requests' worth of rate has accumulated since
    ``start_s``, so a window gets exactly rate × length requests and a constant rate is evenly paced.
    """

    __slots__ = ("_n", "_next", "_rate", "end_s", "profile", "start_s")

    def __init__(self, profile: Profile, start_s: float, end_s: float) -> None:
        self.profile = profile
        self.start_s = start_s
        self.end_s = end_s
        # A constant rate is computed from the request number: no float drift over an hour of sums.
        self._rate = profile.base_rate * profile.points[0][1] if len(profile.points) == 1 else None
        self._n = 0
        if self._rate is not None:
            self._next = self._clip(start_s + 0.5 / self._rate) if self._rate > 0 else math.inf
        else:
            self._next = self._clip(profile.time_after(start_s, 0.5))

    @property
    def next_s(self) -> float:
        """The intended time of the next request (``inf`` when the schedule is exhausted)."""
        return self._next

    def due(self, upto_s: float, limit: int | None = None) -> list[float]:
        """Intended times in order that are ≤ ``upto_s`` (at most ``limit``), consumed from the schedule."""
        out: list[float] = []
        nxt = self._next
        if nxt > upto_s:
            return out
        if self._rate is not None:
            rate, start, end, n = self._rate, self.start_s, self.end_s, self._n
            while nxt <= upto_s and (limit is None or len(out) < limit):
                out.append(nxt)
                n += 1
                nxt = start + (n + 0.5) / rate
                if nxt >= end:
                    nxt = math.inf
            self._n = n
            self._next = nxt
            return out
        time_after = self.profile.time_after
        while nxt <= upto_s and (limit is None or len(out) < limit):
            out.append(nxt)
            nxt = self._clip(time_after(nxt))
        self._next = nxt
        return out

    def _clip(self, t_s: float) -> float:
        # Rounding to the nanosecond keeps float sums of 1/rate from adding a request at a boundary.
        t_s = round(t_s, 9)
        return t_s if t_s < self.end_s else math.inf
