"""The run engine: from a validated experiment to a journal, a verdict and an exit code.

launch → warm-up → baseline → fault on → fault off → recovery watch → stop → analyse → report.

Load, probes and fault actions share one monotonic clock (:class:`~chaoslab.clock.RunClock`,
t0 = start of the warm-up). Every fault is written to the ledger before it is applied and
reverted on every way out: success, verdict failure, exceptions, abort conditions, SIGINT,
SIGTERM and cancellation; a second Ctrl-C while reverting does not skip the revert. What a
``kill -9`` leaves behind, ``chaoslab rollback`` reverts from the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from chaoslab.analysis import Analysis, Verdict, analyse, unjudged
from chaoslab.clock import RunClock
from chaoslab.errors import AbortError, ChaoslabError, FaultError, HarnessError
from chaoslab.faults import FaultContext, FaultDriver, LedgerRecord, driver_for
from chaoslab.files import write_atomic
from chaoslab.journal import Host, Journal, write_journal
from chaoslab.load.generator import LoadGenerator
from chaoslab.load.locust.runner import LocustLoadGenerator
from chaoslab.load.profiles import profile_from_spec
from chaoslab.load.recorder import Recorder
from chaoslab.log import get_logger
from chaoslab.model.experiment import HostDiskAbort
from chaoslab.model.loading import Experiment, runtime_refs
from chaoslab.plan import Plan, PlannedFault, build_plan
from chaoslab.report import write_reports
from chaoslab.report.live_state import FaultState, LiveState
from chaoslab.report.live_view import LiveView
from chaoslab.run.abort import AbortMonitor
from chaoslab.run.ledger import Ledger
from chaoslab.run.notes import active_run_file, read_notes, state_dir
from chaoslab.run.safety import check_network_safety
from chaoslab.system.launcher import Launcher
from chaoslab.system.probes import ProbeRunner
from chaoslab.system.resources import ResourceSampler
from chaoslab.timeline import Event, FaultRecord, PhaseSpan, Signal, Timeline

log = get_logger("engine")

TICK_S = 0.1
"""How often the engine checks due faults, abort rules and notes."""


@dataclass(frozen=True)
class RunOptions:
    """Where results go and how the run is shown."""

    journal_path: Path | None = None
    report_dir: Path | None = None
    junit_path: Path | None = None
    summary_md_path: Path | None = None
    html: bool = True
    live: bool = False
    abort: asyncio.Event | None = None
    on_state: Callable[[LiveState], None] | None = None
    state_dir: Path | None = None
    seed: int | None = None


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the journal (with its verdict and exit code), where it and the reports went."""

    journal: Journal
    journal_path: Path | None
    report_paths: tuple[Path, ...] = ()

    @property
    def verdict(self) -> Verdict:
        """The run's verdict (the journal's analysis's)."""
        return self.journal.verdict

    @property
    def exit_code(self) -> int:
        """The run's exit code (the journal's analysis's)."""
        return self.journal.exit_code


@dataclass
class _AppliedFault:
    planned: PlannedFault
    driver: FaultDriver
    record: LedgerRecord
    injected_at_s: float | None = None
    reverted_at_s: float | None = None
    revert_ok: bool | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def new_run_id() -> str:
    """A sortable, unique run id: ``20261123T071500-ab12cd``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class _Run:
    """One execution of a plan. Not reusable."""

    def __init__(self, experiment: Experiment, options: RunOptions) -> None:
        self.experiment = experiment
        self.spec = experiment.spec
        self.options = options
        self.plan: Plan = build_plan(experiment)
        self.run_id = new_run_id()
        self.base = options.state_dir or state_dir()
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"chaoslab-{self.run_id}-"))
        # services may run as another user (PostgreSQL as `postgres`): they must reach their dirs
        self.run_dir.chmod(0o711)
        self.refs = runtime_refs(experiment.topology, {"run_dir": str(self.run_dir), "state_dir": str(self.base)})
        self.events: list[Event] = []
        self.phases: list[PhaseSpan] = []
        self.applied: dict[str, _AppliedFault] = {}
        self.abort_reason: str | None = None
        self.error: str | None = None
        self.revert_errors: list[str] = []
        self.clock: RunClock | None = None
        self.ledger: Ledger | None = None
        self.launcher: Launcher | None = None
        self.recorder: Recorder | None = None
        self.load: LoadGenerator | LocustLoadGenerator | None = None
        self.probes: ProbeRunner | None = None
        self.sampler: ResourceSampler | None = None
        self.phase_name = "launch"
        self.reverting = False
        self.notes_path: Path | None = None
        self._notes_offset = 0
        self._timed_task: asyncio.Task[None] | None = None
        self.ended_early_at: float | None = None
        self.t0_wall: float | None = None
        self.timed_end_s: float | None = None

    # ------------------------------------------------------------------ helpers

    def now(self) -> float:
        """Run time in seconds (negative before the warm-up starts)."""
        return self.clock.elapsed() if self.clock is not None else 0.0

    def event(self, kind: str, message: str, data: dict[str, Any] | None = None) -> None:
        """Record an event on the run clock."""
        self.events.append(Event(self.now(), kind, message, data or {}))
        log.info(kind, message=message)

    def fault_context(self) -> FaultContext:
        """What fault drivers need."""
        return FaultContext(
            topology=self.experiment.topology,
            run_id=self.run_id,
            toxiproxy_url=self.launcher.toxiproxy_url if self.launcher else None,
            services=self.launcher,
            refs=self.refs,
            run_dir=str(self.run_dir),
        )

    # ------------------------------------------------------------------ the run

    async def execute(self) -> RunResult:
        """Run everything and always clean up; returns the result with its exit code."""
        started_at = _iso_now()
        self.ledger = Ledger.create(
            self.run_id,
            {
                "experiment": self.spec.name,
                "topology": self.experiment.topology.model_dump(mode="json", by_alias=True),
                "run_dir": str(self.run_dir),
                "refs": self.refs,
            },
            base=self.base,
        )
        self.notes_path = self.ledger.path.parent / "notes.jsonl"
        self._announce()
        cancelled_from_outside = False
        try:
            self._timed_task = asyncio.create_task(self._launch_and_run(), name="chaoslab-run")
            try:
                await self._timed_task
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
        finally:
            await asyncio.shield(self._cleanup())
        result = self._finish(started_at)
        if cancelled_from_outside:
            raise asyncio.CancelledError()
        return result

    async def _launch_and_run(self) -> None:
        assert self.ledger is not None
        self.launcher = Launcher(
            self.experiment.topology,
            run_id=self.run_id,
            run_dir=self.run_dir,
            refs=self.refs,
            ledger=self.ledger,
            on_event=self.event,
        )
        url = await self.launcher.start_toxiproxy()
        self.ledger.append({"type": "toxiproxy", "url": url})
        self.refs["toxiproxy"] = url
        await self.launcher.create_links()
        await self.launcher.start_services()
        await self._timed_phases()

    async def _timed_phases(self) -> None:
        assert self.launcher is not None
        self.clock = RunClock()
        self.t0_wall = time.time()
        window_s = self.spec.steady_state.window
        self.recorder = Recorder(window_s, self.clock)
        seed = self.options.seed or self.spec.load.seed
        if self.spec.load.engine == "locust":
            # a Locust swarm in its own processes (Locust itself is imported there, not here)
            self.load = LocustLoadGenerator(
                self.spec.load,
                self.refs,
                self.recorder,
                self.clock,
                seed=seed,
                ledger=self.ledger,
                base_dir=self.experiment.path.parent if self.experiment.path is not None else None,
                experiment=self.spec.name,
            )
        else:
            self.load = LoadGenerator(self.spec.load, self.refs, self.recorder, self.clock, seed=seed)
        self.probes = ProbeRunner(self.experiment.topology, self.recorder, self.clock, services=self.launcher)
        topology = self.experiment.topology
        self.sampler = ResourceSampler(
            self.clock,
            pids_of=self.launcher.pids,
            services=list(topology.services),
            containers={n: s.container for n, s in topology.services.items() if s.container is not None},
        )
        end_s = self.plan.max_duration_s
        tasks = [
            asyncio.create_task(self.load.run(0.0, end_s), name="load"),
            asyncio.create_task(self.probes.run(end_s), name="probes"),
            asyncio.create_task(self.sampler.run(end_s), name="resources"),
        ]
        try:
            await self._drive_phases(tasks)
        finally:
            self.timed_end_s = self.now()
            # faults come off before the measurements stop, so the recovery is still observed
            await asyncio.shield(self._revert_all())
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _drive_phases(self, tasks: list[asyncio.Task[None]]) -> None:
        assert self.clock is not None and self.recorder is not None and self.probes is not None
        recorder, probes = self.recorder, self.probes
        monitor = AbortMonitor(self.spec.abort)
        disk_paths = sorted({r.path for r in self.spec.abort if isinstance(r, HostDiskAbort)})
        pending = list(self.plan.faults)
        last_live = -1.0
        next_recovery_check = 0.0
        for phase in self.plan.phases:
            self.phase_name = phase.name
            start = self.now()
            self.event("phase", f"{phase.name} started", {"phase": phase.name})
            end = phase.end_s
            try:
                while True:
                    now = self.now()
                    if now >= end:
                        break
                    for planned in [p for p in pending if p.apply_at_s <= now]:
                        pending.remove(planned)
                        await self._apply(planned)
                    for applied in list(self.applied.values()):
                        if applied.reverted_at_s is None and applied.planned.revert_at_s <= now:
                            await self._revert(applied)
                    for task in tasks:
                        if task.done() and not task.cancelled() and task.exception() is not None:
                            raise HarnessError(f"{task.get_name()} failed: {task.exception()!r}")
                    if self.options.abort is not None and self.options.abort.is_set():
                        self._read_notes()
                        self.event("abort", "aborted by the game-day leader")
                        raise AbortError("aborted by the game-day leader")
                    if phase.name != "warmup":
                        reason = monitor.observe(
                            now,
                            error_rates={k: w.error_rate for k, w in recorder.latest(now).items()},
                            health={s: probes.healthy(s) for s in self.experiment.topology.services},
                            disk_used={p: _disk_used(p) for p in disk_paths},
                        )
                        if reason is not None:
                            self._read_notes()
                            self.event("abort", reason)
                            raise AbortError(f"abort condition: {reason}")
                    self._read_notes()
                    if now - last_live >= 0.5:
                        last_live = now
                        self._publish_live(phase.name, end - now)
                    if phase.name == "recovery" and now >= next_recovery_check:
                        next_recovery_check = now + self.spec.steady_state.window
                        if self._recovered(now):
                            self.ended_early_at = now
                            self.event("recovered", "recovery established; ending the watch early")
                            break
                    await self.clock.sleep_until_offset(min(end, now + TICK_S))
            finally:
                # an aborted or interrupted phase still appears, ending where it stopped
                self.phases.append(PhaseSpan(phase.name, max(start, phase.start_s), self.now()))
            if self.ended_early_at is not None:
                break

    def _recovered(self, now: float) -> bool:
        """Whether the analysis of what is measured so far already shows a complete recovery."""
        try:
            analysis = self._analyse(self._timeline(upto_s=now))
        except Exception as exc:  # the watch simply runs to its end if the analysis can't tell yet
            log.debug("recovery check failed", error=repr(exc))
            return False
        return bool(analysis.recovered)

    # ------------------------------------------------------------------ faults

    async def _apply(self, planned: PlannedFault) -> None:
        assert self.ledger is not None
        fault = planned.fault
        family = type(fault).family
        driver = driver_for(family)
        ctx = self.fault_context()
        record = driver.prepare(fault, ctx, planned.label)
        applied = _AppliedFault(planned=planned, driver=driver, record=record)
        self.applied[planned.label] = applied
        base_entry = {
            "type": "fault",
            "label": planned.label,
            "family": family,
            "kind": fault.kind,
            "target": fault.target,
        }
        self.ledger.append({**base_entry, "state": "intent", "record": record})
        applied.injected_at_s = self.now()
        try:
            applied.record = await driver.apply(fault, ctx, record)
        except Exception as exc:
            applied.error = f"apply failed: {exc}"
            self.event("fault", f"applying {planned.label} failed: {exc}", {"label": planned.label})
            await self._revert(applied)
            raise FaultError(f"could not apply {fault.describe()}: {exc}") from exc
        self.ledger.append({**base_entry, "state": "applied", "record": applied.record})
        self.event("fault", f"applied {planned.label}: {fault.describe()}", {"label": planned.label, "action": "apply"})

    async def _revert(self, applied: _AppliedFault) -> None:
        assert self.ledger is not None
        if applied.reverted_at_s is not None:
            return
        label = applied.planned.label
        ctx = self.fault_context()
        problem: str | None
        try:
            await applied.driver.revert(applied.record, ctx)
            problem = await applied.driver.check_reverted(applied.record, ctx)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        applied.reverted_at_s = self.now()
        applied.revert_ok = problem is None
        with contextlib.suppress(Exception):
            applied.detail = applied.driver.detail(applied.record)
        state = "reverted" if problem is None else "revert_failed"
        self.ledger.append({"type": "fault", "label": label, "state": state, "problem": problem})
        if problem is None:
            self.event("fault", f"reverted {label}", {"label": label, "action": "revert"})
        else:
            message = f"revert of {label} failed: {problem}"
            self.revert_errors.append(message)
            applied.error = problem
            self.event("revert_failed", message, {"label": label})

    async def _revert_all(self) -> None:
        self.reverting = True
        for applied in reversed(list(self.applied.values())):
            await self._revert(applied)

    # ------------------------------------------------------------------ cleanup and results

    async def _cleanup(self) -> None:
        self.reverting = True
        await self._revert_all()
        if self.launcher is not None:
            problems = await self.launcher.stop_all()
            for problem in problems:
                self.event("cleanup", problem)
        with contextlib.suppress(OSError):
            active_run_file(self.base).unlink()

    def _timeline(self, upto_s: float | None = None) -> Timeline:
        signals: dict[str, Signal] = dict(self.recorder.signals(upto_s)) if self.recorder is not None else {}
        phases = list(self.phases)
        if upto_s is not None and self.phase_name not in {p.name for p in phases}:
            start = next((p.start_s for p in self.plan.phases if p.name == self.phase_name), 0.0)
            phases.append(PhaseSpan(self.phase_name, start, upto_s))
        return Timeline(
            window_s=self.spec.steady_state.window,
            signals=signals,
            phases=tuple(phases),
            faults=tuple(self._fault_records()),
            resources=self.sampler.samples() if self.sampler is not None and upto_s is None else {},
            events=tuple(self.events),
            generator=self.load.generator_windows() if self.load is not None and upto_s is None else (),
            duration_s=upto_s if upto_s is not None else (self.timed_end_s or self.now()),
        )

    def _fault_records(self) -> list[FaultRecord]:
        records = []
        for planned in self.plan.faults:
            applied = self.applied.get(planned.label)
            records.append(
                FaultRecord(
                    kind=planned.fault.kind,
                    target=planned.fault.target,
                    description=planned.fault.describe(),
                    injected_at_s=applied.injected_at_s if applied else None,
                    reverted_at_s=applied.reverted_at_s if applied else None,
                    revert_ok=applied.revert_ok if applied else None,
                    detail={"label": planned.label, **(applied.detail if applied else {})},
                    error=applied.error if applied else None,
                )
            )
        return records

    def _analyse(self, timeline: Timeline) -> Analysis:
        return analyse(
            timeline,
            self.spec,
            aborted=self.abort_reason,
            revert_failed=bool(self.revert_errors),
            error=self.error,
        )

    def _finish(self, started_at: str) -> RunResult:
        self._read_notes()  # notes written during the last tick or the cleanup
        timeline = self._timeline()
        analysis: Analysis
        try:
            analysis = self._analyse(timeline)
        except Exception as exc:
            log.exception("analysis failed")
            self.error = self.error or f"analysis failed: {exc!r}"
            analysis = unjudged(self.spec, error=self.error, revert_failed=bool(self.revert_errors))
        journal = Journal(
            run_id=self.run_id,
            experiment=self.spec,
            timeline=timeline,
            analysis=analysis,
            topology=self.experiment.topology.model_dump(mode="json", by_alias=True),
            parameters=dict(self.experiment.parameters),
            quick=self.experiment.quick,
            started_at=started_at,
            ended_at=_iso_now(),
            t0_wall=self.t0_wall,
            host=Host(hostname=platform.node(), cpus=os.cpu_count(), python=platform.python_version()),
            load_profile=tuple((t, rate) for t, rate in self._load_profile(timeline)),
            abort_reason=self.abort_reason,
            revert_errors=tuple(self.revert_errors),
            error=self.error,
        )
        report_dir = self.options.report_dir or Path("chaoslab-reports") / f"{self.spec.name}-{self.run_id}"
        journal_path = self.options.journal_path or report_dir / "journal.json"
        write_journal(journal, journal_path)
        reports = self._write_reports(journal, report_dir)
        assert self.ledger is not None
        self.ledger.close(remove=not self.revert_errors)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        return RunResult(journal, journal_path, tuple(reports))

    def _write_reports(self, journal: Journal, report_dir: Path) -> list[Path]:
        summary_md = self.options.summary_md_path
        try:
            paths: list[Path] = write_reports(
                journal,
                html=report_dir / "report.html" if self.options.html else None,
                junit=self.options.junit_path,
                markdown=summary_md,
            )
        except Exception as exc:  # a report failure must not hide the verdict or the journal
            log.error("writing reports failed", error=repr(exc))
            return []
        return paths

    def _load_profile(self, timeline: Timeline) -> list[list[float]]:
        load = self.spec.load
        profile = profile_from_spec(load.profile, load.rate, begin_s=0.0)  # the load runs from offset 0
        window = self.spec.steady_state.window
        points = []
        t = 0.0
        while t <= timeline.duration_s:
            points.append([round(t, 3), round(profile.rate_at(t), 3)])
            t += window
        return points

    # ------------------------------------------------------------------ live view and notes

    def _announce(self) -> None:
        write_atomic(
            active_run_file(self.base),
            json.dumps({"run_id": self.run_id, "pid": os.getpid(), "notes_path": str(self.notes_path)}),
        )

    def _read_notes(self) -> None:
        if self.notes_path is None:
            return
        notes, self._notes_offset = read_notes(self.notes_path, self._notes_offset)
        for note in notes:
            at = self.now() - max(0.0, time.time() - note.wall_time)
            self.events.append(
                Event(at, "note", f"{note.author}: {note.text}", {"author": note.author, "text": note.text})
            )

    def _publish_live(self, phase: str, left_s: float) -> None:
        if self.options.on_state is None:
            return
        assert self.recorder is not None and self.probes is not None
        now = self.now()
        state = LiveState(
            experiment=self.spec.name,
            phase=phase,
            t_s=now,
            phase_left_s=max(0.0, left_s),
            total_s=self.plan.max_duration_s,
            window_s=self.spec.steady_state.window,
            signals=self.recorder.latest(now),
            health={s: self.probes.healthy(s) for s in self.experiment.topology.services},
            faults=tuple(FaultState(p.label, p.fault.describe(), self._fault_state(p.label)) for p in self.plan.faults),
            message=self.abort_reason or "",
        )
        with contextlib.suppress(Exception):
            self.options.on_state(state)

    def _fault_state(self, label: str) -> str:
        applied = self.applied.get(label)
        if applied is None:
            return "pending"
        if applied.reverted_at_s is None:
            return "applied"
        return "reverted" if applied.revert_ok else "revert_failed"


def _with_live_view(options: RunOptions) -> tuple[RunOptions, LiveView | None]:
    """The options wired to a live view when one is asked for and none is given, and the view."""
    if not options.live or options.on_state is not None:
        return options, None
    view = LiveView()
    return RunOptions(**{**options.__dict__, "on_state": view.update}), view


async def _execute(run: _Run, view: LiveView | None) -> RunResult:
    if view is None:
        return await run.execute()
    with view:
        return await run.execute()


async def run_experiment(experiment: Experiment, options: RunOptions | None = None) -> RunResult:
    """Run an experiment end to end; faults are reverted on every way out."""
    check_network_safety(experiment)
    opts, view = _with_live_view(options or RunOptions())
    return await _execute(_Run(experiment, opts), view)


def run_experiment_sync(experiment: Experiment, options: RunOptions | None = None) -> RunResult:
    """Run in a fresh event loop; SIGINT/SIGTERM abort the run (exit 3) after reverting faults."""
    try:
        import uvloop

        uvloop.install()  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        pass

    async def main() -> RunResult:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        holder: dict[str, _Run] = {}
        received: list[int] = []

        def on_signal(signum: int) -> None:
            received.append(signum)
            name = signal.Signals(signum).name
            run = holder.get("run")
            if len(received) == 1 and run is not None and run._timed_task is not None and not run.reverting:
                run.abort_reason = f"interrupted by {name}"
                run._timed_task.cancel()
                print(f"\nchaoslab: {name}: stopping; reverting faults…", flush=True)
            else:
                # never skip the revert: a second Ctrl-C only says we are still on it
                print(f"\nchaoslab: {name}: still reverting faults and stopping services; please wait", flush=True)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            check_network_safety(experiment)
            opts, view = _with_live_view(options or RunOptions())
            run = _Run(experiment, opts)
            holder["run"] = run
            return await _execute(run, view)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    return asyncio.run(main())


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _disk_used(path: str) -> float:
    try:
        usage = psutil.disk_usage(path)
    except OSError:
        return 0.0
    return float(usage.percent) / 100.0
