"""The circuit breaker and the api's call policies (pure, with explicit times)."""

from __future__ import annotations

import pytest

from chaoslab.demo.breaker import ApiMode, BreakerState, CallPolicy, CircuitBreaker


class TestCircuitBreaker:
    """Consecutive-failure breaker with an open period and one half-open trial."""

    def test_stays_closed_below_the_threshold(self) -> None:
        """Four failures in a row with a threshold of five leave the breaker closed."""
        breaker = CircuitBreaker(failure_threshold=5, open_for_s=2.0)
        for t in range(4):
            breaker.record_failure(float(t))
        assert breaker.state(4.0) is BreakerState.CLOSED
        assert breaker.allow(4.0)

    def test_opens_at_the_threshold_and_rejects(self) -> None:
        """The fifth consecutive failure opens it; calls are refused for the open period."""
        breaker = CircuitBreaker(failure_threshold=5, open_for_s=2.0)
        for t in range(5):
            breaker.record_failure(10.0 + t * 0.1)
        assert breaker.state(10.5) is BreakerState.OPEN
        assert not breaker.allow(12.39)

    def test_a_success_resets_the_count(self) -> None:
        """Failures separated by a success do not add up."""
        breaker = CircuitBreaker(failure_threshold=3, open_for_s=1.0)
        breaker.record_failure(0.0)
        breaker.record_failure(0.1)
        breaker.record_success(0.2)
        breaker.record_failure(0.3)
        assert breaker.consecutive_failures == 1
        assert breaker.state(0.3) is BreakerState.CLOSED

    def test_half_open_lets_one_trial_through(self) -> None:
        """After the open period exactly one call is allowed until it reports back."""
        breaker = CircuitBreaker(failure_threshold=1, open_for_s=2.0)
        breaker.record_failure(0.0)
        assert breaker.state(2.0) is BreakerState.HALF_OPEN
        assert breaker.allow(2.0)
        assert not breaker.allow(2.1)

    def test_successful_trial_closes(self) -> None:
        """A successful trial closes the breaker and lets every call through."""
        breaker = CircuitBreaker(failure_threshold=1, open_for_s=2.0)
        breaker.record_failure(0.0)
        assert breaker.allow(2.5)
        breaker.record_success(2.6)
        assert breaker.state(2.6) is BreakerState.CLOSED
        assert breaker.allow(2.6) and breaker.allow(2.6)

    def test_failed_trial_reopens_for_a_full_period(self) -> None:
        """A failed trial opens the breaker again, counted from the trial's failure."""
        breaker = CircuitBreaker(failure_threshold=3, open_for_s=2.0)
        for t in (0.0, 0.1, 0.2):
            breaker.record_failure(t)
        assert breaker.allow(2.2)
        breaker.record_failure(2.5)
        assert breaker.state(4.4) is BreakerState.OPEN
        assert breaker.state(4.5) is BreakerState.HALF_OPEN

    @pytest.mark.parametrize(("threshold", "open_for_s"), [(0, 1.0), (3, 0.0)])
    def test_rejects_bad_settings(self, threshold: int, open_for_s: float) -> None:
        """A threshold below one or a non-positive open period is refused."""
        with pytest.raises(ValueError):
            CircuitBreaker(failure_threshold=threshold, open_for_s=open_for_s)


class TestCallPolicy:
    """The numbers behind fragile and resilient mode."""

    def test_fragile_shares_one_limit_with_long_timeouts(self) -> None:
        """Fragile: one limit of 8 for both dependencies, 10 s timeouts, no breaker."""
        policy = CallPolicy.for_mode(ApiMode.FRAGILE)
        assert (policy.shared_limit, policy.vector_limit, policy.postgres_limit) == (8, None, None)
        assert (policy.vector_timeout_s, policy.postgres_timeout_s) == (10.0, 10.0)
        assert policy.breaker_failures is None

    def test_resilient_has_bulkheads_short_timeouts_and_a_breaker(self) -> None:
        """Resilient: separate limits, a 300 ms vector timeout, a breaker after 5 failures."""
        policy = CallPolicy.for_mode(ApiMode.RESILIENT)
        assert (policy.shared_limit, policy.vector_limit, policy.postgres_limit) == (None, 8, 16)
        assert policy.vector_timeout_s == 0.3
        assert (policy.breaker_failures, policy.breaker_open_s) == (5, 2.0)
