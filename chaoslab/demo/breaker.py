"""A circuit breaker and per-mode call policies for the demo api (pure: time is an argument).

The breaker opens after ``failure_threshold`` consecutive failures, rejects calls for
``open_for_s``, then lets one trial call through (half-open): success closes it, failure opens
it again::

    breaker = CircuitBreaker(failure_threshold=5, open_for_s=2.0)
    if breaker.allow(now):
        ...  # call, then breaker.record_success(now) or breaker.record_failure(now)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BreakerState(enum.Enum):
    """Where a circuit breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker; every method takes the current monotonic time."""

    def __init__(self, *, failure_threshold: int = 5, open_for_s: float = 2.0) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if open_for_s <= 0:
            raise ValueError(f"open_for_s must be positive, got {open_for_s}")
        self.failure_threshold = failure_threshold
        self.open_for_s = open_for_s
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    def state(self, now: float) -> BreakerState:
        """The state at ``now`` (an open breaker turns half-open once ``open_for_s`` has passed)."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if now - self._opened_at >= self.open_for_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self, now: float) -> bool:
        """Whether a call may go out now; in half-open only one trial call at a time."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self, now: float) -> None:
        """A call succeeded: close the breaker."""
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self, now: float) -> None:
        """A call failed: count it; open (or re-open) the breaker at the threshold or after a failed trial."""
        self._failures += 1
        if self._trial_in_flight or self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = now
        self._trial_in_flight = False

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._failures


class ApiMode(enum.Enum):
    """How the demo api protects itself from a slow dependency."""

    FRAGILE = "fragile"
    RESILIENT = "resilient"


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """Concurrency limits and timeouts of the api's downstream calls."""

    mode: ApiMode
    shared_limit: int | None
    vector_limit: int | None
    postgres_limit: int | None
    vector_timeout_s: float
    postgres_timeout_s: float
    bulkhead_wait_s: float
    breaker_failures: int | None
    breaker_open_s: float

    @staticmethod
    def for_mode(mode: ApiMode) -> CallPolicy:
        """The policy of a mode (see ``docs/demo.md`` for why these numbers)."""
        if mode is ApiMode.FRAGILE:
            # One limit for everything and generous timeouts: at 13 searches/s, 800 ms of vector
            # latency keeps ~11 searches in flight, more than the 8 permits, so the permit queue
            # grows and document reads wait behind slow searches.
            return CallPolicy(
                mode=mode,
                shared_limit=8,
                vector_limit=None,
                postgres_limit=None,
                vector_timeout_s=10.0,
                postgres_timeout_s=10.0,
                bulkhead_wait_s=10.0,
                breaker_failures=None,
                breaker_open_s=2.0,
            )
        # A bulkhead per dependency, timeouts a little above the healthy latency, a breaker on vector.
        return CallPolicy(
            mode=mode,
            shared_limit=None,
            vector_limit=8,
            postgres_limit=16,
            vector_timeout_s=0.3,
            postgres_timeout_s=2.0,
            bulkhead_wait_s=0.05,
            breaker_failures=5,
            breaker_open_s=2.0,
        )
