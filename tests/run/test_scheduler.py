"""The scheduler: a pure decision of what is due at run time t, given the plan and the progress."""

from __future__ import annotations

from dataclasses import replace

from chaoslab.plan import Plan, build_plan
from chaoslab.run.scheduler import (
    ApplyFault,
    BeginPhase,
    CheckAbortRules,
    CheckRecovery,
    EndPhase,
    Progress,
    Publish,
    ReadNotes,
    RevertFault,
    Scheduler,
    Step,
    Watch,
)
from chaoslab.testing import experiment


def plan(**overrides: object) -> Plan:
    """Phases 2s / 10s / 5s, recovery watch 35s; one fault for the whole fault phase unless overridden."""
    return build_plan(experiment(**overrides))


def kinds(step: Step) -> list[str]:
    """The action types of a step, by name."""
    return [type(a).__name__ for a in step.actions]


def run_until(scheduler: Scheduler, end_s: float, *, tick_s: float = 0.1) -> list[tuple[float, object]]:
    """Step from 0 until ``end_s`` following the sleeps; every (t, action) except the routine ones."""
    routine = (Watch, CheckAbortRules, ReadNotes, Publish, CheckRecovery)
    progress = scheduler.start()
    t = 0.0
    seen: list[tuple[float, object]] = []
    while t <= end_s:
        step = scheduler.step(progress, t)
        progress = step.progress
        seen.extend((round(t, 6), a) for a in step.actions if not isinstance(a, routine))
        if step.done:
            break
        assert step.sleep_until_s is not None
        t = step.sleep_until_s
    return seen


class TestStep:
    """What one step decides."""

    def test_the_first_step_begins_the_warmup(self) -> None:
        """At t=0: the warm-up begins; the watch, notes and a first snapshot, but no abort rules yet."""
        p = plan()
        step = Scheduler(p).step(Progress(), 0.0)
        assert step.actions == (BeginPhase(p.phases[0]), Watch(), ReadNotes(), Publish(p.phases[0], 2.0))
        assert step.sleep_until_s == 0.1

    def test_a_phase_boundary_ends_one_phase_and_begins_the_next_then_applies(self) -> None:
        """At the fault phase's start the baseline ends, the fault phase begins, and the due fault is applied."""
        p = plan()
        baseline, fault_phase = p.phases[1], p.phases[2]
        progress = Progress(phase_index=1, last_publish_s=11.9)
        step = Scheduler(p).step(progress, 12.0)
        assert step.actions[:3] == (EndPhase(baseline), BeginPhase(fault_phase), ApplyFault(p.faults[0]))
        assert kinds(step)[3:] == ["Watch", "CheckAbortRules", "ReadNotes"]
        assert step.progress.applied == {"f0-latency"}

    def test_a_fault_is_applied_once(self) -> None:
        """The next step does not apply it again."""
        p = plan()
        scheduler = Scheduler(p)
        first = scheduler.step(Progress(phase_index=2), 12.0)
        again = scheduler.step(first.progress, 12.1)
        assert not any(isinstance(a, ApplyFault) for a in again.actions)

    def test_a_fault_is_reverted_when_its_duration_is_up(self) -> None:
        """A 2 s fault starting 1 s into the fault phase is reverted at 15 s, once."""
        fault = {"kind": "latency", "target": "api->vector", "latency": "1s", "start": "1s", "duration": "2s"}
        p = plan(faults=[fault])
        scheduler = Scheduler(p)
        progress = Progress(phase_index=2, applied=frozenset({"f0-latency"}))
        assert not any(isinstance(a, RevertFault) for a in scheduler.step(progress, 14.9).actions)
        step = scheduler.step(progress, 15.0)
        assert RevertFault(p.faults[0]) in step.actions
        assert not any(isinstance(a, RevertFault) for a in scheduler.step(step.progress, 15.1).actions)

    def test_a_look_after_the_whole_fault_window_applies_then_reverts(self) -> None:
        """A step that comes late (a blocked loop) applies the fault, then reverts it, never the other way."""
        p = plan()
        step = Scheduler(p).step(Progress(phase_index=3), 20.0)
        faults = [a for a in step.actions if isinstance(a, ApplyFault | RevertFault)]
        assert faults == [ApplyFault(p.faults[0]), RevertFault(p.faults[0])]

    def test_the_next_look_is_exactly_when_a_fault_is_due(self) -> None:
        """Between ticks, the loop wakes at a fault's apply or revert time, not up to a tick late."""
        fault = {"kind": "latency", "target": "api->vector", "latency": "1s", "start": "0.25s", "duration": "1s"}
        p = plan(faults=[fault])
        scheduler = Scheduler(p)
        assert scheduler.step(Progress(phase_index=2), 12.2).sleep_until_s == 12.25
        applied = Progress(phase_index=2, applied=frozenset({"f0-latency"}))
        assert scheduler.step(applied, 13.2).sleep_until_s == 13.25

    def test_sleep_until_the_next_tick_or_the_phase_end(self) -> None:
        """The loop looks again one tick later, but never past the end of the phase."""
        scheduler = Scheduler(plan(), tick_s=0.5)
        assert scheduler.step(Progress(phase_index=0), 1.2).sleep_until_s == 1.7
        assert scheduler.step(Progress(phase_index=0), 1.8).sleep_until_s == 2.0

    def test_snapshots_every_half_second(self) -> None:
        """Publish is due once publish_every_s has passed since the last one."""
        scheduler = Scheduler(plan())
        step = scheduler.step(Progress(phase_index=1, last_publish_s=3.0), 3.4)
        assert not any(isinstance(a, Publish) for a in step.actions)
        step = scheduler.step(step.progress, 3.5)
        assert Publish(plan().phases[1], 8.5) in step.actions
        assert step.progress.last_publish_s == 3.5

    def test_recovery_is_checked_once_per_window(self) -> None:
        """In the recovery watch, CheckRecovery comes every recovery_check_every_s."""
        scheduler = Scheduler(plan(), recovery_check_every_s=1.0)
        step = scheduler.step(Progress(phase_index=3), 17.0)
        assert CheckRecovery() in step.actions
        step = scheduler.step(step.progress, 17.5)
        assert CheckRecovery() not in step.actions
        assert CheckRecovery() in scheduler.step(step.progress, 18.0).actions

    def test_a_recovery_seen_ends_the_watch_early(self) -> None:
        """After recovered(), the next step ends the recovery phase early and the run's timed part is done."""
        p = plan()
        scheduler = Scheduler(p)
        progress = scheduler.recovered(Progress(phase_index=3, applied=frozenset({"f0-latency"})), 22.0)
        step = scheduler.step(progress, 22.0)
        assert step.actions == (EndPhase(p.phases[3], early=True),)
        assert step.done

    def test_the_last_phase_ending_is_the_end(self) -> None:
        """At the recovery watch's longest end the run's timed part is over."""
        p = plan()
        step = Scheduler(p).step(Progress(phase_index=3), p.max_duration_s)
        assert step.actions == (EndPhase(p.phases[3]),)
        assert step.done and step.sleep_until_s is None

    def test_pure(self) -> None:
        """The same plan, progress and time give the same step; the progress given is not changed."""
        p = plan()
        progress = Progress(phase_index=2, last_publish_s=1.0)
        before = replace(progress)
        assert Scheduler(p).step(progress, 12.3) == Scheduler(p).step(progress, 12.3)
        assert progress == before


class TestWholeRun:
    """Following the sleeps from t=0 gives the plan's timeline."""

    def test_phases_and_fault_in_order(self) -> None:
        """Phase changes at 2, 12, 17, 52; the fault on at 12 and off at 17 (the first look of the recovery)."""
        p = plan()
        seen = run_until(Scheduler(p), 60.0)
        assert [(t, type(a).__name__, getattr(getattr(a, "phase", None), "name", None)) for t, a in seen] == [
            (0.0, "BeginPhase", "warmup"),
            (2.0, "EndPhase", "warmup"),
            (2.0, "BeginPhase", "baseline"),
            (12.0, "EndPhase", "baseline"),
            (12.0, "BeginPhase", "fault"),
            (12.0, "ApplyFault", None),
            (17.0, "EndPhase", "fault"),
            (17.0, "BeginPhase", "recovery"),
            (17.0, "RevertFault", None),
            (52.0, "EndPhase", "recovery"),
        ]

    def test_two_faults_each_at_its_time(self) -> None:
        """Staggered faults are applied and reverted at their own times."""
        p = plan(
            faults=[
                {"kind": "latency", "target": "api->vector", "latency": "1s", "duration": "3s"},
                {"kind": "latency", "target": "api->vector", "latency": "1s", "start": "1s", "duration": "1s"},
            ]
        )
        seen = [(t, type(a).__name__, a.fault.label) for t, a in run_until(Scheduler(p), 60.0) if hasattr(a, "fault")]
        assert seen == [
            (12.0, "ApplyFault", "f0-latency"),
            (13.0, "ApplyFault", "f1-latency"),
            (14.0, "RevertFault", "f1-latency"),
            (15.0, "RevertFault", "f0-latency"),
        ]
