"""The public test helpers: FakeClock, timeline builders, experiment_spec, FakeFaultDriver."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from chaoslab.clock import RunClock
from chaoslab.faults.base import FaultContext
from chaoslab.model.topology import TopologySpec
from chaoslab.testing import (
    FakeClock,
    FakeFaultDriver,
    FakeRecord,
    FaultStep,
    TimelineBuilder,
    experiment_spec,
    signal_windows,
)
from chaoslab.timeline import GeneratorWindow, ResourceSample, SignalKind, Timeline


class TestFakeClock:
    """A clock that moves only when told to, or when every task waits on it."""

    def test_advance_and_set(self) -> None:
        """advance adds, set moves forward to a time."""
        clock = FakeClock(start=10.0)
        clock.advance(2.5)
        assert clock.now() == 12.5
        clock.set(20.0)
        assert clock.now() == 20.0

    def test_time_never_goes_back(self) -> None:
        """A negative advance is refused; set to an earlier time does nothing."""
        clock = FakeClock(start=5.0)
        with pytest.raises(ValueError, match="forward"):
            clock.advance(-1.0)
        clock.set(1.0)
        assert clock.now() == 5.0

    async def test_autojump_wakes_sleepers_in_deadline_order(self) -> None:
        """Tasks sleeping to 5 s and 2 s wake in deadline order, each at its deadline, without real waiting."""
        clock = FakeClock()
        woke: list[tuple[str, float]] = []

        async def sleeper(name: str, deadline: float) -> None:
            await clock.sleep_until(deadline)
            woke.append((name, clock.now()))

        await asyncio.gather(sleeper("late", 5.0), sleeper("early", 2.0), sleeper("hour", 3600.0))
        assert woke == [("early", 2.0), ("late", 5.0), ("hour", 3600.0)]
        assert clock.sleeps == [5.0, 2.0, 3600.0]

    async def test_periodic_tasks_interleave_in_time_order(self) -> None:
        """Two loops ticking every 0.25 s and 0.4 s see their ticks in time order, at exact times."""
        clock = FakeClock()
        ticks: list[tuple[float, str]] = []

        async def every(period: float, name: str) -> None:
            deadline = period
            while deadline <= 1.0:
                await clock.sleep_until(deadline)
                ticks.append((clock.now(), name))
                deadline += period

        await asyncio.gather(every(0.25, "fast"), every(0.4, "slow"))
        assert ticks == [(0.25, "fast"), (0.4, "slow"), (0.5, "fast"), (0.75, "fast"), (0.8, "slow"), (1.0, "fast")]

    async def test_due_deadline_returns_at_once(self) -> None:
        """Sleeping until a time already reached does not move the clock."""
        clock = FakeClock(start=3.0)
        await clock.sleep_until(1.0)
        assert clock.now() == 3.0

    async def test_manual_mode_waits_for_advance(self) -> None:
        """Without autojump a sleeper wakes only when the test advances time far enough."""
        clock = FakeClock(autojump=False)
        task = asyncio.create_task(clock.sleep(1.0))
        await asyncio.sleep(0)
        clock.advance(0.5)
        await asyncio.sleep(0)
        assert not task.done()
        assert clock.pending == 1
        clock.advance(0.5)
        await task
        assert clock.now() == 1.0

    async def test_run_clock_on_a_fake_base(self) -> None:
        """RunClock measures run offsets on a FakeClock."""
        clock = FakeClock(start=100.0)
        run = RunClock(clock)
        await run.sleep_until_offset(7.5)
        assert (clock.now(), run.elapsed()) == (107.5, 7.5)


class TestSignalWindows:
    """Windows from parallel lists."""

    def test_fields(self) -> None:
        """Counts, errors, percentiles derived from the p95, and start times from the index."""
        w = signal_windows(p95_ms=[10.0, 800.0], errors=[0, 5], start_index=3, window_s=0.5)
        assert [(x.index, x.start_s, x.count, x.ok, x.error_rate, x.p95_ms) for x in w] == [
            (3, 1.5, 20, 20, 0.0, 10.0),
            (4, 2.0, 20, 15, 0.25, 800.0),
        ]
        assert (w[1].p50_ms, w[1].p99_ms, w[1].errors) == (400.0, 1200.0, {"http_5xx": 5})

    def test_length_mismatch_is_refused(self) -> None:
        """A list that does not match p95_ms in length is an error."""
        with pytest.raises(ValueError, match="expected 2 values"):
            signal_windows(p95_ms=[1.0, 2.0], count=[20])


class TestTimelineBuilder:
    """Timelines drawn with letters."""

    def test_load_letters(self) -> None:
        """Each load letter draws its window; spaces and bars are ignored; '.' leaves a gap."""
        tl = TimelineBuilder().signal("api:search", "hd ex|nl.").build()
        windows = {w.index: w for w in tl.signals["api:search"].windows}
        assert sorted(windows) == [0, 1, 2, 3, 4, 5]
        assert [
            (windows[i].count, windows[i].error_count, windows[i].p95_ms, windows[i].offered) for i in range(6)
        ] == [
            (20, 0, 10.0, 20),
            (20, 0, 800.0, 20),
            (20, 10, 10.0, 20),
            (20, 20, 10.0, 20),
            (2, 0, 10.0, 20),
            (2, 0, 10.0, 2),
        ]

    def test_probe_letters(self) -> None:
        """Probe windows hold one result: passed, failed (refused) or slow; the service comes from the name."""
        tl = TimelineBuilder().probe("probe:vector", "hxd.").build()
        signal = tl.signals["probe:vector"]
        assert (signal.kind, signal.service) == (SignalKind.PROBE, "vector")
        assert [(w.count, w.errors, w.p95_ms) for w in signal.windows] == [
            (1, {}, 2.0),
            (1, {"refused": 1}, 2.0),
            (1, {}, 900.0),
        ]

    def test_unknown_letter_is_refused(self) -> None:
        """A letter outside the palette says which letters exist."""
        with pytest.raises(ValueError, match="unknown load letter 'q'"):
            TimelineBuilder().signal("api:search", "hq")

    def test_phases_faults_and_duration(self) -> None:
        """Phases follow each other from 0; the fault defaults to the fault phase's edges."""
        tl = TimelineBuilder().phases(warmup=2, baseline=10, fault=5, recovery=13).fault().build()
        assert [(p.name, p.start_s, p.end_s) for p in tl.phases] == [
            ("warmup", 0.0, 2.0),
            ("baseline", 2.0, 12.0),
            ("fault", 12.0, 17.0),
            ("recovery", 17.0, 30.0),
        ]
        [fault] = tl.faults
        assert (fault.kind, fault.target, fault.injected_at_s, fault.reverted_at_s, fault.revert_ok) == (
            "latency",
            "api->vector",
            12.0,
            17.0,
            True,
        )
        assert tl.duration_s == 30.0

    def test_never_reverted_fault(self) -> None:
        """A fault that never came off has no revert time and no revert result."""
        tl = TimelineBuilder().phases(fault=5).fault(never_reverted=True).build()
        assert (tl.faults[0].reverted_at_s, tl.faults[0].revert_ok) == (None, None)

    def test_override_and_explicit_windows(self) -> None:
        """override changes fields of chosen windows; explicit windows replace drawn ones."""
        tl = (
            TimelineBuilder()
            .signal("api:search", "hhh", override={1: {"p95_ms": 2400.0}}, windows=signal_windows(p95_ms=[50.0]))
            .build()
        )
        assert [w.p95_ms for w in tl.signals["api:search"].windows] == [50.0, 2400.0, 10.0]

    def test_journal_round_trip(self) -> None:
        """A built timeline survives the journal's serialisation unchanged."""
        tl = (
            TimelineBuilder(window_s=0.5)
            .phases(baseline=2, fault=1)
            .fault()
            .signal("api:search", "hhhe d.")
            .probe("probe:api", "hh.x xh")
            .build()
        )
        assert Timeline.from_journal_parts(tl.to_journal_parts()) == tl

    def test_events_notes_resources_and_generator(self) -> None:
        """Events come out in time order (notes as the engine writes them); resources and generator windows are kept."""
        tl = (
            TimelineBuilder()
            .phases(baseline=2, fault=1)
            .fault(detail={"label": "f0-latency"}, revert_ok=False, error="toxic still there")
            .note(2.5, "alice", "slow")
            .event(2.0, "fault", "applied f0-latency", label="f0-latency")
            .resources("api", [ResourceSample(t_s=0.0, cpu_percent=12.5)])
            .generator([GeneratorWindow(index=0, offered=10, sent=9, lag_p99_ms=3.0, saturated=True)])
            .build()
        )
        assert [(e.t_s, e.kind, e.message, dict(e.data)) for e in tl.events] == [
            (2.0, "fault", "applied f0-latency", {"label": "f0-latency"}),
            (2.5, "note", "alice: slow", {"author": "alice", "text": "slow"}),
        ]
        assert (tl.faults[0].detail, tl.faults[0].revert_ok, tl.faults[0].error) == (
            {"label": "f0-latency"},
            False,
            "toxic still there",
        )
        assert tl.resources["api"][0].cpu_percent == 12.5
        assert tl.generator[0].saturated is True
        assert Timeline.from_journal_parts(tl.to_journal_parts()) == tl

    def test_traffic_is_recorded_with_windows_and_bins(self) -> None:
        """Traffic at 100/s: healthy windows of 100 requests, refused ones all failing, a bin per request."""
        tl = (
            TimelineBuilder()
            .phases(baseline=3, fault=1)
            .traffic("api:search", [(0, "h"), (3.0, "x")])
            .probe_traffic("probe:api", [(0, "h"), (2.0, "x")], interval_s=0.5)
            .build()
        )
        search = tl.signals["api:search"]
        assert [(w.count, w.error_count, w.offered) for w in search.windows] == [(100, 0, 100)] * 3 + [(100, 100, 100)]
        assert search.windows[0].p95_ms is not None and 10.0 <= search.windows[0].p95_ms <= 12.0
        assert search.bins is not None and len(search.bins) == 400
        probe = tl.signals["probe:api"]
        assert (probe.kind, probe.service) == (SignalKind.PROBE, "api")
        assert [w.error_count for w in probe.windows] == [0, 0, 2, 2]
        assert Timeline.from_journal_parts(tl.to_journal_parts()) == tl

    def test_unknown_traffic_letter_is_refused(self) -> None:
        """A state letter outside the palette is a ValueError naming it."""
        with pytest.raises(ValueError, match="unknown traffic letter 'q'"):
            TimelineBuilder().phases(baseline=1).traffic("s", [(0, "q")]).build()


class TestExperimentSpec:
    """A valid experiment for tests."""

    def test_defaults(self) -> None:
        """The defaults the analysis tests rely on."""
        spec = experiment_spec()
        assert spec.signal_names() == ("api:search", "api:documents")
        assert spec.expected_impact == ("api:search",)
        assert (spec.recovery.budget, spec.recovery.stable_for) == (30.0, 5.0)
        assert (spec.steady_state.window, spec.steady_state.min_samples, spec.steady_state.sustained) == (1.0, 5, 2.0)

    def test_overrides_are_deep_merged(self) -> None:
        """Overriding one nested field keeps its siblings."""
        spec = experiment_spec(recovery={"stable_for": "2s"}, steady_state={"slos": [{"signal": "api:x", "p95": "1s"}]})
        assert (spec.recovery.budget, spec.recovery.stable_for) == (30.0, 2.0)
        assert spec.steady_state.min_samples == 5
        assert spec.steady_state.slos[0].p95 == 1.0

    def test_invalid_override_is_refused(self) -> None:
        """The result is validated like an experiment file."""
        with pytest.raises(ValidationError):
            experiment_spec(steady_state={"window": "10ms"})


def context() -> FaultContext:
    """A fault context with a one-service topology."""
    topology = TopologySpec.model_validate({"name": "t", "services": {"api": {}}})
    return FaultContext(topology=topology, run_id="run-1")


class TestFakeFaultDriver:
    """A fault driver that records calls and changes nothing."""

    async def test_records_the_lifecycle(self) -> None:
        """prepare, apply, revert and check are recorded in order; the fault is gone after revert."""
        clock = FakeClock(start=4.0)
        driver = FakeFaultDriver(clock=clock)
        fault = experiment_spec().faults[0]
        ctx = context()
        record = driver.prepare(fault, ctx, "f1")
        assert record == FakeRecord(kind="latency", label="f1", target="api->vector")
        record = await driver.apply(fault, ctx, record)
        assert record.applied is True
        assert driver.active == {"f1"}
        assert await driver.check_reverted(record, ctx) == "f1 is still applied"
        clock.advance(1.0)
        await driver.revert(record, ctx)
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        assert driver.methods() == ["prepare", "apply", "check_reverted", "revert", "revert", "check_reverted"]
        assert [c.t for c in driver.calls] == [4.0, 4.0, 4.0, 5.0, 5.0, 5.0]

    @pytest.mark.parametrize("step", list(FaultStep))
    async def test_any_step_fails_on_demand(self, step: FaultStep) -> None:
        """fail={step: 1} makes that step raise once, then work."""
        fault = experiment_spec().faults[0]
        ctx = context()
        driver = FakeFaultDriver(fail={step: 1})
        calls = {
            FaultStep.PREPARE: lambda: asyncio.sleep(0, driver.prepare(fault, ctx, "f1")),
            FaultStep.APPLY: lambda: driver.apply(fault, ctx, FakeRecord(kind="latency", label="f1", target="t")),
            FaultStep.REVERT: lambda: driver.revert(FakeRecord(kind="latency", label="f1", target="t"), ctx),
            FaultStep.CHECK: lambda: driver.check_reverted(FakeRecord(kind="latency", label="f1", target="t"), ctx),
        }
        with pytest.raises(RuntimeError, match=f"fake {step.value} of f1 failed"):
            await calls[step]()
        await calls[step]()
        assert driver.methods() == [step.value, step.value]

    async def test_still_broken_and_slow_steps(self) -> None:
        """still_broken is reported by the check; takes_s makes a step last on the fake clock."""
        clock = FakeClock()
        fault = experiment_spec().faults[0]
        ctx = context()
        stuck = FakeFaultDriver(clock=clock, still_broken="toxic still present", takes_s={FaultStep.REVERT: 2.5})
        record = await stuck.apply(fault, ctx, stuck.prepare(fault, ctx, "f2"))
        await stuck.revert(record, ctx)
        assert clock.now() == 2.5
        assert stuck.active == set()
        assert await stuck.check_reverted(record, ctx) == "toxic still present"

    async def test_holds(self) -> None:
        """Its faults are held by default; holds=False makes them ones removed at their injection."""
        fault = experiment_spec().faults[0]
        ctx = context()
        for holds in (True, False):
            driver = FakeFaultDriver(holds=holds)
            record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "f1"))
            assert driver.holds(record) is holds
            assert driver.registry().driver("latency").holds(record) is holds

    def test_kinds_and_registry(self) -> None:
        """The driver claims latency by default, or the kinds it is given, in a registry of its own."""
        assert FakeFaultDriver().kinds == ("latency",)
        driver = FakeFaultDriver(kinds=["process_kill", "disk_fill"])
        registry = driver.registry()
        assert sorted(registry) == ["disk_fill", "process_kill"]
        assert registry.driver("disk_fill") is driver
        assert registry.family_of("process_kill") == "fake"


class TestPublicApi:
    """The names tests import from chaoslab.testing."""

    def test_all(self) -> None:
        """``__all__`` pins the public helpers; each is importable."""
        import chaoslab.testing as testing

        assert sorted(testing.__all__) == [
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
        assert all(hasattr(testing, name) for name in testing.__all__)
