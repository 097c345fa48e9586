"""One execution of a plan: the engine's loop, built from its collaborators.

:class:`Run` takes everything it talks to as a keyword argument — the clock, the fault drivers,
the system, the load, the probes, the observers (:mod:`chaoslab.run.parts`) — so that a test
drives a whole run with fakes (:mod:`chaoslab.testing`) and :mod:`chaoslab.run.engine` wires the
real ones. What is due when is decided by the pure :class:`~chaoslab.run.scheduler.Scheduler`;
the loop here only acts. Faults are applied and reverted by the fault stack
(:mod:`chaoslab.run.injection`), which reverts every fault still on, on every way out.

The live recovery check (does what is measured so far already show recovery?) analyses the run
so far. That analysis is pure but not instant, and the load generator and the probes share the
event loop, where a stall would delay requests and bias the very figures being judged; so a run
hands it to ``offload`` — a worker thread (:func:`asyncio.to_thread`) by default, or
:func:`on_loop`, inline, which keeps a run under a fake clock exactly reproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from chaoslab.analysis import Analysis, analyse, unjudged
from chaoslab.clock import Clock, RunClock
from chaoslab.errors import AbortError, ChaoslabError, HarnessError
from chaoslab.faults.base import FaultContext
from chaoslab.faults.registry import FaultRegistry
from chaoslab.journal import Host, Journal, write_journal
from chaoslab.load.profiles import profile_from_spec
from chaoslab.load.recorder import Recorder
from chaoslab.log import get_logger
from chaoslab.model.experiment import ExperimentSpec, HostDiskAbort
from chaoslab.plan import Plan, PlannedPhase
from chaoslab.report.live_state import FaultState, LiveState
from chaoslab.run.abort import AbortMonitor
from chaoslab.run.injection import FaultStack, fault_records, finish_despite_cancellation
from chaoslab.run.ledger import Ledger, ToxiproxyEntry
from chaoslab.run.observers import Observers, RunInfo, RunObserver
from chaoslab.run.parts import (
    LoadFactory,
    LoadSource,
    MeasureScope,
    NoteSource,
    ProbeFactory,
    ProbeSource,
    ResourceFactory,
    ResourceSource,
    RunScope,
    SystemFactory,
    SystemUnderTest,
)
from chaoslab.run.scheduler import (
    TICK_S,
    Action,
    ApplyFault,
    BeginPhase,
    CheckAbortRules,
    CheckRecovery,
    EndPhase,
    Publish,
    ReadNotes,
    RevertFault,
    Scheduler,
    Watch,
)
from chaoslab.run.wiring import host_disk_used
from chaoslab.timeline import Event, PhaseSpan, Signal, Timeline

log = get_logger("engine")


class Analyser(Protocol):
    """Judges a timeline against its experiment (:func:`chaoslab.analysis.analyse`)."""

    def __call__(
        self,
        timeline: Timeline,
        spec: ExperimentSpec,
        *,
        aborted: str | None = None,
        revert_failed: bool = False,
        error: str | None = None,
    ) -> Analysis:
        """The analysis."""
        ...


Offload = Callable[[Callable[[], Analysis]], Awaitable[Analysis]]
"""Runs the live recovery check's analysis and awaits it: :func:`asyncio.to_thread` or :func:`on_loop`."""


async def on_loop(analysis: Callable[[], Analysis]) -> Analysis:
    """Run the analysis inline, on the event loop (under a fake clock no time passes meanwhile)."""
    return analysis()


class Run:
    """One execution of a plan, from its collaborators to a journal. Not reusable.

    Every collaborator is a keyword argument, so that a test drives a whole run with a fake clock,
    a fake fault driver and a fake system (:mod:`chaoslab.testing`); :func:`run_experiment` wires
    the real ones. The faults, the verdict and the journal are the same either way.
    """

    def __init__(
        self,
        plan: Plan,
        *,
        run_id: str,
        ledger: Ledger,
        clock: Clock,
        drivers: FaultRegistry,
        system: SystemFactory,
        load: LoadFactory,
        probes: ProbeFactory,
        resources: ResourceFactory | None = None,
        observers: Sequence[RunObserver] = (),
        notes: NoteSource | None = None,
        abort: asyncio.Event | None = None,
        run_dir: Path,
        refs: dict[str, str] | None = None,
        journal_path: Path | None = None,
        seed: int | None = None,
        analyser: Analyser = analyse,
        disk_used: Callable[[str], float] = host_disk_used,
        wall_clock: Callable[[], float] = time.time,
        tick_s: float = TICK_S,
        offload: Offload = asyncio.to_thread,
    ) -> None:
        self.plan = plan
        """What will happen, in order (:func:`chaoslab.plan.build_plan`)."""
        self.spec = plan.experiment.spec
        self.run_id = run_id
        self.ledger = ledger
        """The run's ledger, its header already written; closed (and removed unless a revert failed) at the end."""
        self.clock = clock
        """The base clock; the run clock (t0 = start of the warm-up) is made on it."""
        self.drivers = drivers
        """Fault kind → model, driver and record type (:func:`chaoslab.faults.registry.builtin_registry`)."""
        self.system_factory = system
        """Makes the system under test (:class:`~chaoslab.run.parts.SystemUnderTest`) from the run's scope."""
        self.load_factory = load
        """Makes the load when the timed phases start."""
        self.probe_factory = probes
        """Makes the health probes when the timed phases start."""
        self.resource_factory = resources
        """Makes the resource sampler when the timed phases start (None: no resource samples)."""
        self.observers = Observers(observers)
        """Lifecycle observers, fanned out; one that raises is logged and skipped."""
        self.notes = notes
        """Observers' notes read into the timeline (a game day's notes file)."""
        self.abort = abort
        """Set by a game-day leader to abort the run."""
        self.run_dir = run_dir
        """A private directory for the run's files."""
        self.refs: dict[str, str] = dict(refs or {})
        """The run's ``${…}`` references; ``toxiproxy`` is added once Toxiproxy is up."""
        self.journal_path = journal_path
        """Where the journal is written (None: not written)."""
        self.seed = seed
        self.analyser = analyser
        self.disk_used = disk_used
        """The used share of a filesystem (for ``host_disk`` abort rules)."""
        self.wall_clock = wall_clock
        """Wall-clock time, read once for t0 and for notes."""
        self.tick_s = tick_s
        self.offload = offload
        """Where the live recovery check's analysis runs (a worker thread, or :func:`on_loop`)."""
        # what the run has seen so far
        self.events: list[Event] = []
        self.phases: list[PhaseSpan] = []
        self.phase: PlannedPhase | None = None
        self.abort_reason: str | None = None
        self.error: str | None = None
        self.system: SystemUnderTest | None = None
        self.toxiproxy_url: str | None = None
        self.faults: FaultStack | None = None
        self.run_clock: RunClock | None = None
        self.recorder: Recorder | None = None
        self.load: LoadSource | None = None
        self.probes: ProbeSource | None = None
        self.resources: ResourceSource | None = None
        self.t0_wall: float | None = None
        self.timed_end_s: float | None = None
        self._phase_started_s = 0.0
        self._task: asyncio.Task[None] | None = None
        self._interrupted = False

    # ------------------------------------------------------------------ helpers

    def now(self) -> float:
        """Run time in seconds (0 before the warm-up starts)."""
        return self.run_clock.elapsed() if self.run_clock is not None else 0.0

    def event(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Record an event on the run clock and tell the observers."""
        event = Event(self.now(), kind, message, data or {})
        self.events.append(event)
        log.info(kind, message=message)
        self.observers.on_event(event)

    def fault_context(self) -> FaultContext:
        """What fault drivers need."""
        return FaultContext(
            topology=self.plan.experiment.topology,
            run_id=self.run_id,
            toxiproxy_url=self.toxiproxy_url,
            services=self.system.services if self.system is not None else None,
            refs=self.refs,
            run_dir=str(self.run_dir),
        )

    @property
    def revert_errors(self) -> list[str]:
        """Faults that may still be on: every revert that failed or was not seen to succeed."""
        return list(self.faults.revert_errors) if self.faults is not None else []

    def interrupt(self, reason: str) -> bool:
        """Stop the run early (a signal): the faults come off and the verdict is aborted.

        Returns False, and does nothing, once faults are being reverted: nothing may cut that short.
        """
        reverting = self.faults is not None and self.faults.unwinding
        if self._task is None or self._task.done() or reverting or self._interrupted:
            return False
        self._interrupted = True
        self.abort_reason = reason
        self._task.cancel()
        return True

    # ------------------------------------------------------------------ the run

    async def execute(self) -> Journal:
        """Run everything and always clean up; returns the journal (written, if a path was given)."""
        started_at = _iso_now()
        self.observers.on_start(
            RunInfo(
                run_id=self.run_id,
                experiment=self.spec.name,
                plan=self.plan,
                notes_path=self.notes.path if self.notes is not None else None,
            )
        )
        cancelled_from_outside = False
        self._task = asyncio.create_task(self._launch_and_run(), name="chaoslab-run")
        try:
            await self._task
        except asyncio.CancelledError:
            if self.abort_reason is None:
                self.abort_reason = "cancelled"
            current = asyncio.current_task()
            # cancelled ourselves (not just the inner task by a signal): finish, then re-raise
            cancelled_from_outside = current is not None and current.cancelling() > 0
        except AbortError as exc:
            self.abort_reason = str(exc)
        except ChaoslabError as exc:
            self.error = exc.one_line()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("harness failure")
        self.observers.on_stopped()
        journal = self._finish(started_at)
        if cancelled_from_outside:
            raise asyncio.CancelledError()
        return journal

    async def _launch_and_run(self) -> None:
        scope = RunScope(self.run_id, self.run_dir, dict(self.refs), self.ledger, self.event)
        system = self.system = self.system_factory(scope)
        try:
            url = await system.start_proxy()
            if url is not None:
                self.ledger.append(ToxiproxyEntry(url=url))
                self.toxiproxy_url = self.refs["toxiproxy"] = url
            await system.start_services()
            await self._timed_phases(system)
        finally:
            # every fault is off by now (the fault stack saw to it); the system stops even if cancelled again
            await finish_despite_cancellation(self._stop(system))

    async def _stop(self, system: SystemUnderTest) -> None:
        try:
            problems = await system.stop()
        except Exception as exc:
            problems = [f"stopping the system failed: {exc!r}"]
        for problem in problems:
            self.event("cleanup", problem)

    async def _timed_phases(self, system: SystemUnderTest) -> None:
        clock = self.run_clock = RunClock(self.clock)
        self.t0_wall = self.wall_clock()
        window_s = self.spec.steady_state.window
        # sub-window bins (to locate recovery and onsets to the request) from two windows before the fault phase
        bins_from_s = max(0.0, self.plan.phase("fault").start_s - 2 * window_s)
        recorder = self.recorder = Recorder(window_s, clock, bins_from_s=bins_from_s)
        scope = MeasureScope(clock, recorder, self.refs, system, self.ledger, self.seed)
        self.load = self.load_factory(scope)
        self.probes = self.probe_factory(scope)
        self.resources = self.resource_factory(scope) if self.resource_factory is not None else None
        end_s = self.plan.max_duration_s
        tasks = [
            asyncio.create_task(self.load.run(0.0, end_s), name="load"),
            asyncio.create_task(self.probes.run(end_s), name="probes"),
        ]
        if self.resources is not None:
            tasks.append(asyncio.create_task(self.resources.run(end_s), name="resources"))
        stack = FaultStack(
            drivers=self.drivers,
            ledger=self.ledger,
            context=self.fault_context,
            now=self.now,
            on_event=self.event,
        )
        try:
            # faults come off as the stack is left, before the measurements stop: the recovery is observed
            async with stack as faults:
                self.faults = faults
                try:
                    await self._drive(tasks)
                finally:
                    self.timed_end_s = self.now()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _drive(self, tasks: list[asyncio.Task[None]]) -> None:
        """The loop: ask the scheduler what is due, do it, sleep until the next look."""
        assert self.run_clock is not None
        scheduler = Scheduler(self.plan, tick_s=self.tick_s, recovery_check_every_s=self.spec.steady_state.window)
        monitor = AbortMonitor(self.spec.abort)
        progress = scheduler.start()
        try:
            while True:
                now = self.now()
                step = scheduler.step(progress, now)
                progress = step.progress
                for action in step.actions:
                    if await self._act(action, now, tasks, monitor):
                        progress = scheduler.recovered(progress, now)
                if step.sleep_until_s is None:
                    return
                if progress.recovered_at_s is None:
                    await self.run_clock.sleep_until_offset(step.sleep_until_s)
        finally:
            if self.phase is not None:
                # an aborted or interrupted phase still appears, ending where it stopped
                self._end_phase(self.phase)

    async def _act(self, action: Action, now: float, tasks: list[asyncio.Task[None]], monitor: AbortMonitor) -> bool:
        """Do one action; True when it found the recovery established."""
        assert self.faults is not None
        if isinstance(action, BeginPhase):
            self.phase, self._phase_started_s = action.phase, self.now()
            self.event("phase", f"{action.phase.name} started", {"phase": action.phase.name})
        elif isinstance(action, EndPhase):
            self._end_phase(action.phase)
        elif isinstance(action, ApplyFault):
            await self.faults.apply(action.fault)
        elif isinstance(action, RevertFault):
            await self.faults.revert(action.fault.label)
        elif isinstance(action, Watch):
            self._watch(tasks)
        elif isinstance(action, CheckAbortRules):
            self._check_abort_rules(now, monitor)
        elif isinstance(action, ReadNotes):
            self._read_notes()
        elif isinstance(action, Publish):
            self._publish(action.phase.name, action.left_s)
        elif isinstance(action, CheckRecovery) and await self._recovered(now):
            self.event("recovered", "recovery established; ending the watch early")
            return True
        return False

    def _end_phase(self, phase: PlannedPhase) -> None:
        self.phases.append(PhaseSpan(phase.name, max(self._phase_started_s, phase.start_s), self.now()))
        self.phase = None

    def _watch(self, tasks: list[asyncio.Task[None]]) -> None:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise HarnessError(f"{task.get_name()} failed: {task.exception()!r}")
        if self.abort is not None and self.abort.is_set():
            self._read_notes()
            self.event("abort", "aborted by the game-day leader")
            raise AbortError("aborted by the game-day leader")

    def _check_abort_rules(self, now: float, monitor: AbortMonitor) -> None:
        assert self.recorder is not None and self.probes is not None
        disk_paths = sorted({r.path for r in self.spec.abort if isinstance(r, HostDiskAbort)})
        reason = monitor.observe(
            now,
            error_rates={k: w.error_rate for k, w in self.recorder.latest(now).items()},
            health={s: self.probes.healthy(s) for s in self.plan.experiment.topology.services},
            disk_used={p: self.disk_used(p) for p in disk_paths},
        )
        if reason is not None:
            self._read_notes()
            self.event("abort", reason)
            raise AbortError(f"abort condition: {reason}")

    async def _recovered(self, now: float) -> bool:
        """Whether the analysis of what is measured so far already shows a complete recovery (in time or late)."""
        try:
            # the timeline is taken here, on the loop; only the pure analysis is handed off
            analysis = await self.offload(self._analysis_of(self._timeline(upto_s=now)))
        except Exception as exc:  # the watch simply runs to its end if the analysis can't tell yet
            log.debug("recovery check failed", error=repr(exc))
            return False
        # recovered late is as final as recovered in time: the first lasting healthy run was seen
        return bool(analysis.recovered or analysis.recovery_observed_s is not None)

    # ------------------------------------------------------------------ results

    def _timeline(self, upto_s: float | None = None) -> Timeline:
        signals: dict[str, Signal] = dict(self.recorder.signals(upto_s)) if self.recorder is not None else {}
        phases = list(self.phases)
        if upto_s is not None and self.phase is not None:
            phases.append(PhaseSpan(self.phase.name, self.phase.start_s, upto_s))
        final = upto_s is None
        return Timeline(
            window_s=self.spec.steady_state.window,
            signals=signals,
            phases=tuple(phases),
            faults=fault_records(self.plan, self.faults.applied if self.faults is not None else {}),
            resources=self.resources.samples() if self.resources is not None and final else {},
            events=tuple(self.events),
            generator=self.load.generator_windows() if self.load is not None and final else (),
            duration_s=upto_s if upto_s is not None else (self.timed_end_s or self.now()),
        )

    def _analysis_of(self, timeline: Timeline) -> Callable[[], Analysis]:
        """The analysis of ``timeline``, its inputs fixed now (it may run on another thread)."""
        return functools.partial(
            self.analyser,
            timeline,
            self.spec,
            aborted=self.abort_reason,
            revert_failed=bool(self.revert_errors),
            error=self.error,
        )

    def _finish(self, started_at: str) -> Journal:
        self._read_notes()  # notes written during the last tick or the cleanup
        timeline = self._timeline()
        analysis: Analysis
        try:
            analysis = self._analysis_of(timeline)()
        except Exception as exc:
            log.exception("analysis failed")
            self.error = self.error or f"analysis failed: {exc!r}"
            analysis = unjudged(self.spec, error=self.error, revert_failed=bool(self.revert_errors))
        experiment = self.plan.experiment
        journal = Journal(
            run_id=self.run_id,
            experiment=self.spec,
            timeline=timeline,
            analysis=analysis,
            topology=experiment.topology.model_dump(mode="json", by_alias=True),
            parameters=dict(experiment.parameters),
            quick=experiment.quick,
            started_at=started_at,
            ended_at=_iso_now(),
            t0_wall=self.t0_wall,
            host=Host(hostname=platform.node(), cpus=os.cpu_count(), python=platform.python_version()),
            load_profile=self._load_profile(timeline.duration_s),
            abort_reason=self.abort_reason,
            revert_errors=tuple(self.revert_errors),
            error=self.error,
        )
        if self.journal_path is not None:
            write_journal(journal, self.journal_path)
        self.observers.on_finish(journal)
        # the ledger stays when a fault may still be on, for chaoslab rollback
        self.ledger.close(remove=not self.revert_errors)
        return journal

    def _load_profile(self, duration_s: float) -> tuple[tuple[float, float], ...]:
        load = self.spec.load
        profile = profile_from_spec(load.profile, load.rate, begin_s=0.0)  # the load runs from offset 0
        window = self.spec.steady_state.window
        points = []
        t = 0.0
        while t <= duration_s:
            points.append((round(t, 3), round(profile.rate_at(t), 3)))
            t += window
        return tuple(points)

    # ------------------------------------------------------------------ notes and live view

    def _read_notes(self) -> None:
        if self.notes is None:
            return
        for note in self.notes.read():
            at = self.now() - max(0.0, self.wall_clock() - note.wall_time)
            event = Event(at, "note", f"{note.author}: {note.text}", {"author": note.author, "text": note.text})
            self.events.append(event)
            self.observers.on_event(event)

    def _publish(self, phase: str, left_s: float) -> None:
        if not self.observers.observers or self.recorder is None or self.probes is None or self.faults is None:
            return
        now = self.now()
        faults = self.faults
        state = LiveState(
            experiment=self.spec.name,
            phase=phase,
            t_s=now,
            phase_left_s=max(0.0, left_s),
            total_s=self.plan.max_duration_s,
            window_s=self.spec.steady_state.window,
            signals=self.recorder.latest(now),
            health={s: self.probes.healthy(s) for s in self.plan.experiment.topology.services},
            faults=tuple(FaultState(p.label, p.fault.describe(), faults.state_of(p.label)) for p in self.plan.faults),
            message=self.abort_reason or "",
        )
        self.observers.on_state(state)


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
