"""The abort monitor: when a rule has been breached for long enough, and not before."""

from __future__ import annotations

from pydantic import TypeAdapter

from chaoslab.model.experiment import AbortSpec
from chaoslab.run.abort import AbortMonitor

RULES = TypeAdapter(list[AbortSpec])


def monitor(*rules: dict[str, object]) -> AbortMonitor:
    """A monitor for rules written as in an experiment file."""
    return AbortMonitor(RULES.validate_python(list(rules)))


class TestAbortMonitor:
    """Rules trip after their `for` duration of continuous breach."""

    def test_error_rate_trips_after_its_duration(self) -> None:
        """An error rate above the limit for the whole `for` window trips; a shorter breach does not."""
        m = monitor({"when": "error_rate", "signal": "api:*", "above": "50%", "for": "2s"})
        quiet = {"health": {}, "disk_used": {}}
        assert m.observe(10.0, error_rates={"api:docs": 0.9}, **quiet) is None  # type: ignore[arg-type]
        assert m.observe(11.0, error_rates={"api:docs": 0.9}, **quiet) is None  # type: ignore[arg-type]
        reason = m.observe(12.0, error_rates={"api:docs": 0.9}, **quiet)  # type: ignore[arg-type]
        assert reason == "error rate of api:docs 90% > 50% for 2s"

    def test_a_healthy_observation_resets_the_clock(self) -> None:
        """A window back under the limit restarts the breach timer."""
        m = monitor({"when": "error_rate", "above": "50%", "for": "2s"})
        quiet = {"health": {}, "disk_used": {}}
        m.observe(10.0, error_rates={"x": 0.9}, **quiet)  # type: ignore[arg-type]
        m.observe(11.0, error_rates={"x": 0.1}, **quiet)  # type: ignore[arg-type]
        assert m.observe(12.5, error_rates={"x": 0.9}, **quiet) is None  # type: ignore[arg-type]
        assert m.observe(14.5, error_rates={"x": 0.9}, **quiet) is not None  # type: ignore[arg-type]

    def test_signals_outside_the_pattern_are_ignored(self) -> None:
        """A rule for api:documents ignores other signals' errors."""
        m = monitor({"when": "error_rate", "signal": "api:documents", "above": "10%", "for": "0.5s"})
        assert m.observe(0.0, error_rates={"api:search": 1.0}, health={}, disk_used={}) is None
        assert m.observe(9.0, error_rates={"api:search": 1.0}, health={}, disk_used={}) is None

    def test_no_data_is_not_a_breach(self) -> None:
        """A window without samples (error rate None) does not count toward an abort."""
        m = monitor({"when": "error_rate", "above": "10%", "for": "1s"})
        assert m.observe(0.0, error_rates={"x": None}, health={}, disk_used={}) is None
        assert m.observe(5.0, error_rates={"x": None}, health={}, disk_used={}) is None

    def test_unhealthy_service(self) -> None:
        """A service whose probe fails for `for` trips; unknown health (None) does not."""
        m = monitor({"when": "unhealthy", "service": "vector", "for": "3s"})
        assert m.observe(0.0, error_rates={}, health={"vector": None}, disk_used={}) is None
        assert m.observe(1.0, error_rates={}, health={"vector": False}, disk_used={}) is None
        assert m.observe(4.0, error_rates={}, health={"vector": False}, disk_used={}) == "vector unhealthy for 3s"

    def test_host_disk(self) -> None:
        """A filesystem above its limit trips at once when `for` is 0."""
        m = monitor({"when": "host_disk", "path": "/", "above": "95%"})
        assert m.observe(0.0, error_rates={}, health={}, disk_used={"/": 0.5}) is None
        assert m.observe(1.0, error_rates={}, health={}, disk_used={"/": 0.97}) == ("filesystem of / 97.0% used > 95%")
