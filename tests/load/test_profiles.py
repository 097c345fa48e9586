"""Profiles (rate over run time) and the arrival schedule: pure, no clock."""

from __future__ import annotations

import math

import pytest

from chaoslab.load.profiles import ArrivalSchedule, constant, profile_from_spec, ramp, soak, spike, step
from chaoslab.model.experiment import LoadSpec


def _load(profile: dict[str, object]) -> LoadSpec:
    return LoadSpec.model_validate({"rate": "100/s", "profile": profile, "mix": [{"name": "a", "url": "http://x/"}]})


class TestProfiles:
    def test_constant_rate_is_the_same_at_every_time(self) -> None:
        """A constant profile gives its rate before, at and long after the start."""
        profile = constant(50)
        assert [profile.rate_at(t) for t in (-1.0, 0.0, 3600.0)] == [50.0, 50.0, 50.0]

    def test_soak_is_a_constant_rate(self) -> None:
        """A soak profile holds its rate for an hour."""
        assert soak(20).rate_at(3600.0) == 20.0

    def test_ramp_interpolates_then_holds(self) -> None:
        """A ramp from 0.1× to 1× over 10 s is at 0.55× half-way and 1× afterwards."""
        profile = ramp(100, start=0.1, end=1.0, over_s=10)
        assert profile.rate_at(0.0) == pytest.approx(10.0)
        assert profile.rate_at(5.0) == pytest.approx(55.0)
        assert profile.rate_at(30.0) == pytest.approx(100.0)

    def test_ramp_starts_at_its_begin_time(self) -> None:
        """A ramp that begins at run offset 4 s holds its start multiple until then."""
        profile = ramp(100, start=0.0, end=1.0, over_s=10, begin_s=4.0)
        assert profile.rate_at(2.0) == 0.0
        assert profile.rate_at(9.0) == pytest.approx(50.0)

    def test_step_changes_at_each_step(self) -> None:
        """Steps at 10 s (2×) and 20 s (0.5×) give 100, 200 and 50 req/s."""
        profile = step(100, [(20, 0.5), (10, 2.0)])
        assert [profile.rate_at(t) for t in (5.0, 10.0, 19.9, 20.0, 99.0)] == [100.0, 200.0, 200.0, 50.0, 50.0]

    def test_spike_returns_to_the_base_rate(self) -> None:
        """A 5× spike from 10 s for 2 s is 500 req/s inside and 100 req/s before and after."""
        profile = spike(100, multiplier=5, at_s=10, duration_s=2)
        assert [profile.rate_at(t) for t in (9.99, 10.0, 11.99, 12.0)] == [100.0, 500.0, 500.0, 100.0]

    def test_profiles_from_the_experiment_file(self) -> None:
        """Each ``profile:`` kind of the experiment file builds the matching factory."""
        cases = {
            "constant": ({"kind": "constant"}, 30.0, 100.0),
            "soak": ({"kind": "soak"}, 30.0, 100.0),
            "ramp": ({"kind": "ramp", "start": 0.0, "end": 1.0, "over": "10s"}, 5.0, 50.0),
            "step": ({"kind": "step", "steps": [{"at": "5s", "multiplier": 3}]}, 6.0, 300.0),
            "spike": ({"kind": "spike", "multiplier": 4, "at": "2s", "duration": "1s"}, 2.5, 400.0),
        }
        for name, (spec, t_s, expected) in cases.items():
            load = _load(spec)
            profile = profile_from_spec(load.profile, load.rate)
            assert profile.name == name
            assert profile.rate_at(t_s) == pytest.approx(expected)

    def test_curve_draws_steps_and_ramps(self) -> None:
        """A spike's curve jumps at its edges; a ramp's curve is its two corners plus the ends."""
        assert spike(100, multiplier=5, at_s=10, duration_s=2).curve(0, 20) == [
            (0, 100.0),
            (10, 100.0),
            (10, 500.0),
            (12, 500.0),
            (12, 100.0),
            (20, 100.0),
        ]
        assert ramp(100, start=0.1, end=1.0, over_s=10, begin_s=2).curve(0, 20) == [
            (0, 10.0),
            (2.0, 10.0),
            (12.0, 100.0),
            (20, 100.0),
        ]

    def test_expected_count_integrates_the_rate(self) -> None:
        """A ramp from 0 to 100 req/s over 10 s makes 500 requests due."""
        assert ramp(100, start=0.0, end=1.0, over_s=10).expected_count(0.0, 10.0) == pytest.approx(500.0)

    def test_time_after_crosses_segments(self) -> None:
        """At 100 req/s then 200 req/s from 1 s, the 150th request after 0.5 s is due at 1.5 s."""
        profile = step(100, [(1.0, 2.0)])
        assert profile.time_after(0.5, 150) == pytest.approx(1.5)

    def test_time_after_a_zero_rate_forever_is_never(self) -> None:
        """With the rate at 0 for good, no further request is ever due."""
        assert step(100, [(1.0, 0.0)]).time_after(2.0) == math.inf


class TestArrivalSchedule:
    def test_constant_rate_is_evenly_paced(self) -> None:
        """10 req/s over one second is ten requests, 100 ms apart, half a gap in."""
        schedule = ArrivalSchedule(constant(10), 0.0, 1.0)
        assert schedule.due(5.0) == pytest.approx([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95])
        assert schedule.next_s == math.inf

    def test_due_only_returns_what_is_due(self) -> None:
        """Pulling up to 0.3 s gives three requests and leaves the fourth as next."""
        schedule = ArrivalSchedule(constant(10), 0.0, 1.0)
        assert schedule.due(0.3) == pytest.approx([0.05, 0.15, 0.25])
        assert schedule.next_s == pytest.approx(0.35)
        assert schedule.due(0.3) == []

    def test_limit_caps_one_pull(self) -> None:
        """A limit of 2 returns two due requests and keeps the rest."""
        schedule = ArrivalSchedule(constant(100), 0.0, 1.0)
        assert len(schedule.due(1.0, limit=2)) == 2
        assert len(schedule.due(1.0)) == 98

    def test_count_matches_the_rate_over_a_long_run(self) -> None:
        """2,000 req/s for 60 s is exactly 120,000 intended send times."""
        schedule = ArrivalSchedule(constant(2000), 5.0, 65.0)
        assert len(schedule.due(100.0)) == 120_000

    def test_spike_count_per_window(self) -> None:
        """A 5× spike of 100 req/s for one second puts 500 requests in that second and 100 in the others."""
        times = ArrivalSchedule(spike(100, multiplier=5, at_s=1, duration_s=1), 0.0, 3.0).due(3.0)
        per_second = [sum(1 for t in times if i <= t < i + 1) for i in range(3)]
        assert per_second == [100, 500, 100]

    def test_ramp_from_zero_counts_the_integral(self) -> None:
        """A ramp 0→100 req/s over 10 s schedules 500 requests, sparse at first."""
        times = ArrivalSchedule(ramp(100, start=0.0, end=1.0, over_s=10), 0.0, 10.0).due(10.0)
        assert len(times) == 500
        assert sum(1 for t in times if t < 1.0) == 5

    def test_pause_sends_nothing(self) -> None:
        """A step to 0× between 1 s and 2 s leaves that second empty."""
        times = ArrivalSchedule(step(100, [(1.0, 0.0), (2.0, 1.0)]), 0.0, 3.0).due(3.0)
        assert [sum(1 for t in times if i <= t < i + 1) for i in range(3)] == [100, 0, 100]

    def test_schedule_starts_at_the_load_start(self) -> None:
        """A schedule from run offset 7 s has no request before 7 s."""
        times = ArrivalSchedule(constant(4), 7.0, 8.0).due(10.0)
        assert times == pytest.approx([7.125, 7.375, 7.625, 7.875])


class TestDocstringExamples:
    def test_factory_examples_hold(self) -> None:
        """The two-line example in each factory's docstring gives the value it shows."""
        import doctest

        import chaoslab.load.profiles as profiles

        assert doctest.testmod(profiles) == doctest.TestResults(failed=0, attempted=5)
