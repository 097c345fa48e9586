"""The engine, driven by fakes: a fault comes off on every way out, in milliseconds.

Each test builds a whole :class:`Run` from ``chaoslab.testing`` fakes — the fake clock (time jumps
as soon as every task waits on it), a fake fault driver, a fake system, load and probes — with
the real scheduler, fault stack, recorder, analysis and ledger. The experiment: warm-up 0–2 s,
baseline 2–12 s, a latency fault 12–17 s, then the recovery watch (up to 52 s, ending once
``stable_for`` 5 s of health is seen).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaoslab.analysis import Analysis, Verdict
from chaoslab.faults.base import FaultContext
from chaoslab.journal import Journal, read_journal
from chaoslab.model.experiment import ExperimentSpec
from chaoslab.plan import build_plan
from chaoslab.report.live_state import LiveState
from chaoslab.run.execution import Offload, Run, on_loop
from chaoslab.run.ledger import FaultStatus, Ledger, read_ledger, runs_dir
from chaoslab.run.notes import NotesFile, active_run_file, append_note
from chaoslab.run.observers import ActiveRunMarker, RunInfo, RunObserver
from chaoslab.testing import (
    FakeClock,
    FakeFaultDriver,
    FakeLoad,
    FakeProbes,
    FakeRecord,
    FakeSystem,
    FaultStep,
    SystemStep,
    experiment,
    experiment_spec,
)
from chaoslab.timeline import Event, Timeline

pytestmark = pytest.mark.timeout(20)


class Recorded(RunObserver):
    """An observer that keeps everything it is told."""

    def __init__(self) -> None:
        self.hooks: list[str] = []
        self.events: list[Event] = []
        self.states: list[LiveState] = []
        self.journal: Journal | None = None

    def on_start(self, run: RunInfo) -> None:
        self.hooks.append("start")

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_state(self, state: LiveState) -> None:
        self.states.append(state)

    def on_stopped(self) -> None:
        self.hooks.append("stopped")

    def on_finish(self, journal: Journal) -> None:
        self.hooks.append("finish")
        self.journal = journal


@dataclass
class World:
    """A run's fakes, its ledger directory, and the run."""

    tmp: Path
    clock: FakeClock = field(default_factory=FakeClock)
    driver: FakeFaultDriver | None = None
    system: FakeSystem = field(default_factory=FakeSystem)
    load: FakeLoad = field(default_factory=FakeLoad)
    probes: FakeProbes = field(default_factory=FakeProbes)
    observer: Recorded = field(default_factory=Recorded)

    def __post_init__(self) -> None:
        if self.driver is None:
            self.driver = FakeFaultDriver(clock=self.clock)

    def run(
        self,
        spec: ExperimentSpec | None = None,
        *,
        observers: tuple[RunObserver, ...] = (),
        abort: asyncio.Event | None = None,
        analyser: Any = None,
        notes: NotesFile | None = None,
        offload: Offload = on_loop,
    ) -> Run:
        """A run of ``spec`` (default: experiment_spec()) wired to this world's fakes.

        The live recovery check's analysis runs on the loop (``on_loop``), so that no fake time
        passes during it and every instant below is exact; ``offload`` says otherwise.
        """
        assert self.driver is not None
        extra: dict[str, Any] = {"analyser": analyser} if analyser is not None else {}
        return Run(
            build_plan(experiment(spec or experiment_spec())),
            run_id="r1",
            ledger=Ledger.create("r1", base=self.tmp / "state"),
            clock=self.clock,
            drivers=self.driver.registry(),
            system=self.system,
            load=self.load,
            probes=self.probes,
            observers=(self.observer, *observers),
            notes=notes,
            abort=abort,
            run_dir=self.tmp,
            journal_path=self.tmp / "journal.json",
            offload=offload,
            **extra,
        )

    def ledger(self) -> Path:
        """The run's ledger file."""
        return runs_dir(self.tmp / "state") / "r1" / "ledger.jsonl"

    def fault_calls(self) -> list[tuple[str, float | None]]:
        """(step, fake time) of every call on the fault driver."""
        assert self.driver is not None
        return [(c.method.value, c.t) for c in self.driver.calls]


@pytest.fixture
def world(tmp_path: Path) -> World:
    """Fresh fakes."""
    return World(tmp_path)


def slow_search(t_from: float, t_to: float, ms: float = 300.0) -> Callable[[str, float], float]:
    """api:search answers in ``ms`` from ``t_from`` to ``t_to``, everything else in 5 ms."""
    return lambda signal, t: ms if signal == "api:search" and t_from <= t < t_to else 5.0


def assert_fault_came_off(world: World) -> None:
    """The fake fault is no longer active, and the driver's last calls were a revert and its check."""
    assert world.driver is not None
    assert world.driver.active == set()
    assert world.driver.methods()[-2:] == ["revert", "check_reverted"]


class TestPass:
    """Everything as planned."""

    async def test_a_passing_run(self, world: World) -> None:
        """Pass (exit 0): the fault on at 12 s, off at 17 s, the watch ends at 22 s; the system started and stopped."""
        world.load = FakeLoad(latency_ms=slow_search(12.0, 17.0))
        journal = await world.run().execute()
        assert (journal.verdict, journal.exit_code) == (Verdict.PASS, 0)
        assert world.fault_calls() == [("prepare", 12.0), ("apply", 12.0), ("revert", 17.0), ("check_reverted", 17.0)]
        assert world.system.calls == [SystemStep.START_PROXY, SystemStep.START_SERVICES, SystemStep.STOP]
        (fault,) = journal.timeline.faults
        assert (fault.injected_at_s, fault.reverted_at_s, fault.revert_ok) == (12.0, 17.0, True)
        phases = [(p.name, p.start_s, round(p.end_s, 6)) for p in journal.timeline.phases]
        assert phases == [
            ("warmup", 0.0, 2.0),
            ("baseline", 2.0, 12.0),
            ("fault", 12.0, 17.0),
            ("recovery", 17.0, 22.0),
        ]
        assert journal.analysis.recovery_time_s == 0.0
        assert journal.revert_errors == ()

    async def test_the_journal_is_written_and_the_ledger_removed(self, world: World) -> None:
        """A clean run leaves its journal and no ledger (nothing to roll back)."""
        journal = await world.run().execute()
        assert read_journal(world.tmp / "journal.json").verdict == journal.verdict
        assert not world.ledger().exists()

    async def test_the_ledger_has_the_intent_before_the_apply(self, world: World) -> None:
        """When the driver applies, the ledger already holds the fault's intent with its record."""
        seen: list[tuple[FaultStatus, dict[str, Any] | None]] = []
        ledger_path = world.ledger()

        class Peeking(FakeFaultDriver):
            async def apply(self, fault: Any, ctx: FaultContext, record: FakeRecord) -> FakeRecord:
                entry = read_ledger(ledger_path).faults["f0-latency"]
                seen.append((entry.state, dict(entry.record or {})))
                return await super().apply(fault, ctx, record)

        world.driver = Peeking(clock=world.clock)
        await world.run().execute()
        assert seen == [
            (FaultStatus.INTENT, {"kind": "latency", "label": "f0-latency", "target": "api->vector", "applied": False})
        ]

    async def test_observers_follow_the_run(self, world: World) -> None:
        """start → events (phases, apply, revert, recovered) and snapshots → stopped → finish, with the journal."""
        journal = await world.run().execute()
        observer = world.observer
        assert observer.hooks == ["start", "stopped", "finish"]
        assert observer.journal is journal
        kinds = [(e.kind, e.data.get("phase") or e.data.get("action")) for e in observer.events]
        assert kinds == [
            ("phase", "warmup"),
            ("phase", "baseline"),
            ("phase", "fault"),
            ("fault", "apply"),
            ("phase", "recovery"),
            ("fault", "revert"),
            ("recovered", None),
        ]
        assert {s.phase for s in observer.states} == {"warmup", "baseline", "fault", "recovery"}
        during = [s for s in observer.states if 12.0 < s.t_s < 17.0]
        assert during and all(s.faults[0].state == "applied" for s in during)


class TestRemoval:
    """Recovery counts from the removal: when the revert began, or the injection for a fault not held."""

    async def test_the_removal_is_when_the_revert_begins(self, world: World) -> None:
        """A revert waiting 3 s (a service starting again): removal 17 s, reverted 20 s; recovery counts from 17 s."""
        world.driver = FakeFaultDriver(clock=world.clock, takes_s={FaultStep.REVERT: 3.0})
        world.load = FakeLoad(latency_ms=slow_search(12.0, 19.0))
        journal = await world.run().execute()
        (fault,) = journal.timeline.faults
        assert (fault.injected_at_s, fault.revert_started_s, fault.reverted_at_s) == (12.0, 17.0, 20.0)
        assert journal.analysis.removed_at_s == 17.0
        # search turned fast at 19 s: 2 s after the removal (from the end of the revert it would read 0 s)
        assert journal.analysis.recovery_time_s == pytest.approx(2.0, abs=0.05)
        assert journal.verdict == Verdict.PASS

    async def test_a_fault_not_held_is_removed_at_its_injection(self, world: World) -> None:
        """holds() False (a kill a supervisor answers): removal = injection 12 s; the 3 s outage is the recovery."""
        world.driver = FakeFaultDriver(clock=world.clock, holds=False)
        world.load = FakeLoad(fails=lambda signal, t: signal == "api:search" and 12.0 <= t < 15.0)
        journal = await world.run().execute()
        (fault,) = journal.timeline.faults
        assert (fault.injected_at_s, fault.revert_started_s, fault.reverted_at_s) == (12.0, 12.0, 17.0)
        assert journal.analysis.removed_at_s == 12.0
        assert journal.analysis.recovery_time_s == pytest.approx(3.0, abs=0.05)
        assert ("revert", 17.0) in world.fault_calls()  # still reverted (and checked) at the end of the phase
        assert_fault_came_off(world)

    async def test_a_recovery_after_the_budget_fails_and_ends_the_watch(self, world: World) -> None:
        """Not held, search down 12–16 s, budget 2 s: fail, recovered after 4 s; the watch stops once that is seen."""
        world.driver = FakeFaultDriver(clock=world.clock, holds=False)
        world.load = FakeLoad(fails=lambda signal, t: signal == "api:search" and 12.0 <= t < 16.0)
        spec = experiment_spec(recovery={"budget": "2s", "stable_for": "2s"})
        journal = await world.run(spec).execute()
        analysis = journal.analysis
        assert (journal.verdict, analysis.recovered) == (Verdict.FAIL, False)
        assert analysis.recovery_observed_s == pytest.approx(4.0, abs=0.05)
        assert any("not recovered within the 2s budget (recovered after 4.0s)" in r for r in analysis.reasons)
        (recovery,) = [p for p in journal.timeline.phases if p.name == "recovery"]
        # planned to last budget + stable_for (to 21 s); the late recovery is established at 18 s
        assert recovery.end_s == pytest.approx(18.0, abs=1e-6)
        assert [e.kind for e in journal.timeline.events].count("recovered") == 1


class TestRecoveryCheckOffload:
    """The live recovery check's analysis runs where ``offload`` says: a worker thread by default."""

    async def test_the_check_goes_through_offload(self, world: World) -> None:
        """Every check of the watch is handed to offload; the verdict is the same as on the loop."""
        handed: list[float] = []

        async def counting(analysis: Callable[[], Analysis]) -> Analysis:
            handed.append(world.clock.now())
            return await on_loop(analysis)

        journal = await world.run(offload=counting).execute()
        assert journal.verdict == Verdict.PASS
        # one check a window from the watch's start, the last one seeing stable_for (5 s) of health
        assert handed == pytest.approx([17.0, 18.0, 19.0, 20.0, 21.0, 22.0])

    async def test_in_a_worker_thread(self, world: World) -> None:
        """With asyncio.to_thread (the default) the run ends the same way; only the watch's end may move."""
        world.load = FakeLoad(latency_ms=slow_search(12.0, 17.0))
        journal = await world.run(offload=asyncio.to_thread).execute()
        assert (journal.verdict, journal.analysis.recovery_time_s) == (Verdict.PASS, 0.0)
        assert world.fault_calls() == [("prepare", 12.0), ("apply", 12.0), ("revert", 17.0), ("check_reverted", 17.0)]
        # fake time may pass while the thread analyses (every other task waits on the clock)
        assert journal.timeline.phases[-1].name == "recovery"
        assert journal.timeline.phases[-1].end_s >= 22.0
        assert [e.kind for e in journal.timeline.events].count("recovered") == 1


class TestVerdictFail:
    """The system did not hold up: the verdict fails, and the fault still comes off on time."""

    async def test_a_cascade_fails_the_run(self, world: World) -> None:
        """documents degrade with search (not expected): fail (exit 1), the fault off at 17 s."""
        world.load = FakeLoad(latency_ms=lambda signal, t: 800.0 if 12.0 <= t < 17.0 else 5.0)
        journal = await world.run().execute()
        assert (journal.verdict, journal.exit_code) == (Verdict.FAIL, 1)
        assert [c.signal for c in journal.analysis.cascade] == ["api:documents"]
        assert ("revert", 17.0) in world.fault_calls()
        assert_fault_came_off(world)


class TestExceptions:
    """An exception in any phase: the run ends with an error (exit 3) and no fault stays on."""

    @pytest.mark.parametrize("step", [SystemStep.START_PROXY, SystemStep.START_SERVICES])
    async def test_launch_fails(self, world: World, step: SystemStep) -> None:
        """Nothing was applied, the system is stopped, the error is the verdict's reason."""
        world.system = FakeSystem(fail=step)
        journal = await world.run().execute()
        assert (journal.verdict, journal.exit_code) == (Verdict.ERROR, 3)
        assert journal.error == f"fake {step.value} failed"
        assert world.fault_calls() == []
        assert world.system.calls[-1] == SystemStep.STOP
        assert journal.timeline.faults[0].injected_at_s is None

    @pytest.mark.parametrize(("raise_at_s", "phase"), [(1.0, "warmup"), (5.0, "baseline")])
    async def test_before_the_fault(self, world: World, raise_at_s: float, phase: str) -> None:
        """A crash of the load before the fault phase: no fault ever applied; the phase ends where it stopped."""
        world.load = FakeLoad(raise_at_s=raise_at_s)
        journal = await world.run().execute()
        assert journal.exit_code == 3
        assert journal.error is not None and journal.error.startswith("load failed: RuntimeError")
        assert world.fault_calls() == []
        assert journal.timeline.phases[-1].name == phase
        assert journal.timeline.phases[-1].end_s == pytest.approx(raise_at_s, abs=0.11)

    async def test_during_the_fault_phase(self, world: World) -> None:
        """A crash at 14 s: the fault comes off right then, checked gone."""
        world.load = FakeLoad(raise_at_s=14.0)
        journal = await world.run().execute()
        assert journal.exit_code == 3
        assert world.fault_calls()[-2:] == [
            ("revert", pytest.approx(14.0, abs=0.11)),
            ("check_reverted", pytest.approx(14.0, abs=0.11)),
        ]
        assert journal.timeline.faults[0].revert_ok is True
        assert_fault_came_off(world)

    async def test_during_the_recovery_watch(self, world: World) -> None:
        """A crash at 19 s, after the timed revert: the fault was off at 17 s and is not reverted twice."""
        world.load = FakeLoad(raise_at_s=19.0, latency_ms=slow_search(12.0, 30.0))
        journal = await world.run().execute()
        assert journal.exit_code == 3
        assert [m for m, _ in world.fault_calls()].count("revert") == 1
        assert journal.timeline.faults[0].reverted_at_s == 17.0

    async def test_prepare_fails(self, world: World) -> None:
        """A fault that cannot even be prepared was never applied: nothing to revert, an error."""
        world.driver = FakeFaultDriver(clock=world.clock, fail={FaultStep.PREPARE: 1})
        journal = await world.run().execute()
        assert journal.exit_code == 3
        assert world.fault_calls() == [("prepare", 12.0)]

    async def test_apply_fails(self, world: World) -> None:
        """A failed apply is reverted at once (it may have half happened) and the run stops with an error."""
        world.driver = FakeFaultDriver(clock=world.clock, fail={FaultStep.APPLY: 1})
        journal = await world.run().execute()
        assert journal.exit_code == 3
        assert journal.error is not None and "could not apply latency on api->vector" in journal.error
        assert [m for m, _ in world.fault_calls()] == ["prepare", "apply", "revert", "check_reverted"]
        assert journal.timeline.faults[0].error == "apply failed: fake apply of f0-latency failed"
        assert not world.ledger().exists()

    async def test_revert_fails(self, world: World) -> None:
        """A revert that raises is a revert failure (exit 4); the ledger stays for chaoslab rollback."""
        world.driver = FakeFaultDriver(clock=world.clock, fail={FaultStep.REVERT: 1})
        journal = await world.run().execute()
        assert journal.exit_code == 4
        assert journal.revert_errors == ("revert of f0-latency failed: RuntimeError: fake revert of f0-latency failed",)
        state = read_ledger(world.ledger())
        assert [(f.label, f.state) for f in state.pending_faults()] == [("f0-latency", FaultStatus.REVERT_FAILED)]
        assert state.ended

    async def test_a_revert_not_seen_to_work_is_a_failure(self, world: World) -> None:
        """check_reverted still seeing the fault is a revert failure too: never reported as reverted."""
        world.driver = FakeFaultDriver(clock=world.clock, still_broken="toxic still on the proxy")
        journal = await world.run().execute()
        assert journal.exit_code == 4
        assert journal.timeline.faults[0].revert_ok is False
        assert journal.revert_errors == ("revert of f0-latency failed: toxic still on the proxy",)

    async def test_analysis_fails(self, world: World) -> None:
        """An analysis that raises gives an unjudged journal (exit 3); the fault was off anyway."""

        def broken(timeline: Timeline, spec: ExperimentSpec, **kwargs: Any) -> Analysis:
            raise ZeroDivisionError("no windows")

        journal = await world.run(analyser=broken).execute()
        assert (journal.verdict, journal.exit_code) == (Verdict.ERROR, 3)
        assert journal.error == "analysis failed: ZeroDivisionError('no windows')"
        assert_fault_came_off(world)

    async def test_report_writing_fails(self, world: World) -> None:
        """An observer failing at the end (a report writer) changes neither the verdict nor the journal."""

        class BrokenReports(RunObserver):
            def on_finish(self, journal: Journal) -> None:
                raise OSError("disk full")

        journal = await world.run(observers=(BrokenReports(),)).execute()
        assert journal.exit_code == 0
        assert read_journal(world.tmp / "journal.json").exit_code == 0
        assert world.observer.hooks == ["start", "stopped", "finish"]

    async def test_an_observer_failing_all_along_changes_nothing(self, world: World) -> None:
        """Every hook raising: the run, its faults and its verdict are the same."""

        class Broken(RunObserver):
            def on_start(self, run: RunInfo) -> None:
                raise RuntimeError("start")

            def on_event(self, event: Event) -> None:
                raise RuntimeError("event")

            def on_state(self, state: LiveState) -> None:
                raise RuntimeError("state")

        journal = await world.run(observers=(Broken(),)).execute()
        assert journal.exit_code == 0
        assert [m for m, _ in world.fault_calls()] == ["prepare", "apply", "revert", "check_reverted"]

    async def test_stopping_the_system_fails(self, world: World) -> None:
        """What could not be stopped is recorded as a cleanup event."""
        world.system = FakeSystem(stop_problems=["stopping api: still running"])
        journal = await world.run().execute()
        assert [e.message for e in journal.timeline.events if e.kind == "cleanup"] == ["stopping api: still running"]


class TestAborts:
    """Abort rules and the game-day leader stop the run; faults come off; exit 3."""

    async def test_an_abort_rule(self, world: World) -> None:
        """documents failing from 13 s trips 'error rate > 50% for 2s' near 16 s; the fault comes off then."""
        world.load = FakeLoad(fails=lambda signal, t: signal == "api:documents" and t >= 13.0)
        spec = experiment_spec(abort=[{"when": "error_rate", "signal": "api:documents", "above": 0.5, "for": "2s"}])
        journal = await world.run(spec).execute()
        assert (journal.verdict, journal.exit_code) == (Verdict.ABORTED, 3)
        assert journal.abort_reason is not None and journal.abort_reason.startswith(
            "abort condition: error rate of api:documents"
        )
        (revert_t,) = [t for m, t in world.fault_calls() if m == "revert"]
        assert revert_t is not None and 15.0 <= revert_t < 17.0
        assert_fault_came_off(world)

    async def test_the_game_day_leader_aborts(self, world: World) -> None:
        """The abort event set right after the fault is applied stops the run within a tick."""
        abort = asyncio.Event()

        class Leader(RunObserver):
            def on_event(self, event: Event) -> None:
                if event.data.get("action") == "apply":
                    abort.set()

        journal = await world.run(observers=(Leader(),), abort=abort).execute()
        assert journal.abort_reason == "aborted by the game-day leader"
        assert journal.exit_code == 3
        assert world.fault_calls()[-2][0] == "revert"
        assert world.fault_calls()[-2][1] == pytest.approx(12.0, abs=0.11)


class TestCancellation:
    """Cancellation and signals: the revert always runs to its end."""

    async def test_cancelled_from_outside(self, world: World) -> None:
        """Cancelling the task running the run: the fault comes off, the journal is written, then CancelledError."""
        run = world.run()
        task = asyncio.create_task(run.execute())
        await wait_for(lambda: world.driver is not None and bool(world.driver.active))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert_fault_came_off(world)
        assert read_journal(world.tmp / "journal.json").abort_reason == "cancelled"
        assert world.system.calls[-1] == SystemStep.STOP

    async def test_interrupted_like_sigint(self, world: World) -> None:
        """interrupt() (what the SIGINT handler calls) aborts the run: exit 3, fault off, journal returned."""
        run = world.run()
        task = asyncio.create_task(run.execute())
        await wait_for(lambda: world.driver is not None and bool(world.driver.active))
        assert run.interrupt("interrupted by SIGINT") is True
        assert run.interrupt("interrupted by SIGINT") is False  # only the first one stops the run
        journal = await task
        assert (journal.abort_reason, journal.exit_code) == ("interrupted by SIGINT", 3)
        assert_fault_came_off(world)

    async def test_cancelled_again_while_reverting(self, world: World) -> None:
        """A revert taking 3 s is cancelled twice more (Ctrl-C, Ctrl-C): it still finishes, and is checked."""
        world.driver = FakeFaultDriver(clock=world.clock, takes_s={FaultStep.REVERT: 3.0})
        run = world.run()
        task = asyncio.create_task(run.execute())
        await wait_for(lambda: world.driver is not None and bool(world.driver.active))
        task.cancel()
        await wait_for(lambda: world.driver is not None and "revert" in world.driver.methods())
        assert run.interrupt("interrupted by SIGINT") is False  # nothing may cut a revert short
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert_fault_came_off(world)
        (fault,) = read_journal(world.tmp / "journal.json").timeline.faults
        assert fault.revert_ok is True
        assert fault.reverted_at_s is not None and fault.reverted_at_s - fault.injected_at_s == pytest.approx(
            3.0, abs=0.2
        )

    async def test_interrupted_during_a_timed_revert(self, world: World) -> None:
        """A signal while the timed revert at 17 s runs cancels it; the fault stack reverts again, to the end."""
        world.driver = FakeFaultDriver(clock=world.clock, takes_s={FaultStep.REVERT: 2.0})
        run = world.run()
        task = asyncio.create_task(run.execute())
        await wait_for(lambda: world.driver is not None and "revert" in world.driver.methods())
        assert run.interrupt("interrupted by SIGTERM") is True
        journal = await task
        assert journal.abort_reason == "interrupted by SIGTERM"
        assert [m for m, _ in world.fault_calls()] == ["prepare", "apply", "revert", "revert", "check_reverted"]
        assert_fault_came_off(world)
        assert journal.timeline.faults[0].revert_ok is True


class TestSeveralFaults:
    """Faults still on at the way out come off newest first."""

    async def test_reverse_order_on_the_way_out(self, world: World) -> None:
        """Two faults on when the load crashes at 14 s: f1 is reverted before f0."""
        world.load = FakeLoad(raise_at_s=14.0)
        spec = experiment_spec(
            faults=[
                {"kind": "latency", "target": "api->vector", "latency": "100ms"},
                {"kind": "latency", "target": "api->vector", "latency": "200ms", "start": "1s"},
            ]
        )
        await world.run(spec).execute()
        assert world.driver is not None
        reverts = [c.label for c in world.driver.calls if c.method == FaultStep.REVERT]
        assert reverts == ["f1-latency", "f0-latency"]
        assert world.driver.active == set()


class TestNotes:
    """Observers' notes (``chaoslab note``) are read into the timeline while the run goes on."""

    async def test_a_note_becomes_an_event(self, world: World) -> None:
        """With the active-run marker up, a note reaches the journal with its author; the marker goes at the end."""
        state = world.tmp / "state"
        notes = NotesFile(runs_dir(state) / "r1" / "notes.jsonl")

        class Alice(RunObserver):
            def on_event(self, event: Event) -> None:
                if event.data.get("action") == "apply":
                    append_note("search is slow", author="alice", base=state)

        journal = await world.run(observers=(ActiveRunMarker(state), Alice()), notes=notes).execute()
        (note,) = [e for e in journal.timeline.events if e.kind == "note"]
        assert (note.message, note.data) == ("alice: search is slow", {"author": "alice", "text": "search is slow"})
        assert note.t_s == pytest.approx(12.0, abs=0.2)  # read on the next tick, dated by its wall time
        assert not active_run_file(state).exists()


async def wait_for(predicate: Callable[[], bool], turns: int = 100_000) -> None:
    """Yield to the loop until ``predicate`` holds (the fake clock moves meanwhile)."""
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")
