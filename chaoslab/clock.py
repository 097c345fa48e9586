"""The one monotonic clock that load, probes and fault actions share."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """A monotonic clock in seconds, and a way to sleep on it."""

    def now(self) -> float:
        """Seconds on the monotonic clock (arbitrary origin)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return at or after ``deadline`` (on this clock)."""
        ...


class MonotonicClock:
    """The real clock: ``time.perf_counter`` (65 ns per call, ~80 ns steps here)."""

    def now(self) -> float:
        """``time.perf_counter()``."""
        return time.perf_counter()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``deadline``; never for less than the event loop can schedule."""
        delay = deadline - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


class RunClock:
    """Seconds since the run's start (``t0``), on a base clock."""

    def __init__(self, base: Clock | None = None) -> None:
        self.base: Clock = base or MonotonicClock()
        self.t0 = self.base.now()

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return self.base.now() - self.t0

    def at(self, t_s: float) -> float:
        """The base-clock time of run offset ``t_s``."""
        return self.t0 + t_s

    async def sleep_until_offset(self, t_s: float) -> None:
        """Sleep until run offset ``t_s``."""
        await self.base.sleep_until(self.t0 + t_s)
