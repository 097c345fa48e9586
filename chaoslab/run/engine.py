"""The run engine: from a validated experiment to a journal, a verdict and an exit code.

launch → warm-up → baseline → fault on → fault off → recovery watch → stop → analyse → report.

:class:`~chaoslab.run.execution.Run` is built from its collaborators (the clock, the fault
drivers, the system, the load, the probes, the observers), passed in by keyword;
:func:`run_experiment` and :func:`run_experiment_sync` wire the real ones (:func:`wire_run`).
What is due when is decided by the pure :class:`~chaoslab.run.scheduler.Scheduler`; the run's
loop only acts. Load, probes and fault actions share one monotonic clock (t0 = start of the
warm-up).

Every fault is written to the ledger before it is applied and reverted on every way out —
success, verdict failure, exceptions, abort conditions, SIGINT, SIGTERM and cancellation — by the
fault stack (:mod:`chaoslab.run.injection`); a second Ctrl-C while reverting does not skip the
revert. What a ``kill -9`` leaves behind, ``chaoslab rollback`` reverts from the ledger.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chaoslab.analysis import Verdict
from chaoslab.clock import Clock, MonotonicClock
from chaoslab.faults.registry import builtin_registry
from chaoslab.journal import Journal
from chaoslab.model.loading import Experiment, runtime_refs
from chaoslab.plan import build_plan
from chaoslab.report.live_state import LiveState
from chaoslab.report.live_view import LiveView
from chaoslab.run.execution import Analyser, Run
from chaoslab.run.ledger import Ledger
from chaoslab.run.notes import NotesFile, state_dir
from chaoslab.run.observers import ActiveRunMarker, ReportWriter, RunObserver, StateCallback
from chaoslab.run.safety import check_network_safety
from chaoslab.run.wiring import (
    experiment_load,
    launched_system,
    topology_probes,
    topology_resources,
)


@dataclass(frozen=True)
class RunOptions:
    """Where results go and how the run is shown."""

    journal_path: Path | None = None
    """Where the journal is written (default ``<report_dir>/journal.json``)."""
    report_dir: Path | None = None
    """Where the HTML report goes (default ``chaoslab-reports/<experiment>-<run id>``)."""
    junit_path: Path | None = None
    summary_md_path: Path | None = None
    html: bool = True
    live: bool = False
    """Draw the live view on the terminal (unless ``on_state`` is given)."""
    abort: asyncio.Event | None = None
    """Set by a game-day leader to abort the run (faults come off, exit 3)."""
    on_state: Callable[[LiveState], None] | None = None
    """Called with every live snapshot (the game day's live view, a test)."""
    state_dir: Path | None = None
    """Where the ledger and the active-run marker live (default ``$CHAOSLAB_STATE_DIR`` or ``./.chaoslab``)."""
    seed: int | None = None
    observers: tuple[RunObserver, ...] = ()
    """More lifecycle observers (:mod:`chaoslab.run.observers`)."""


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


def new_run_id() -> str:
    """A sortable, unique run id: ``20261123T071500-ab12cd``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


# ---------------------------------------------------------------------- wiring the real run


@dataclass(frozen=True)
class WiredRun:
    """A run with its real collaborators, and where its journal, reports and live view go."""

    run: Run
    reports: ReportWriter
    journal_path: Path
    view: LiveView | None


def wire_run(experiment: Experiment, options: RunOptions, *, clock: Clock | None = None) -> WiredRun:
    """A :class:`Run` of ``experiment`` with chaoslab's real collaborators, its ledger started."""
    spec = experiment.spec
    run_id = new_run_id()
    base = options.state_dir or state_dir()
    run_dir = Path(tempfile.mkdtemp(prefix=f"chaoslab-{run_id}-"))
    # services may run as another user (PostgreSQL as `postgres`): they must reach their dirs
    run_dir.chmod(0o711)
    refs = runtime_refs(experiment.topology, {"run_dir": str(run_dir), "state_dir": str(base)})
    ledger = Ledger.create(
        run_id,
        base=base,
        experiment=spec.name,
        topology=experiment.topology.model_dump(mode="json", by_alias=True),
        run_dir=str(run_dir),
        refs=refs,
    )
    report_dir = options.report_dir or Path("chaoslab-reports") / f"{spec.name}-{run_id}"
    journal_path = options.journal_path or report_dir / "journal.json"
    reports = ReportWriter(
        html=report_dir / "report.html" if options.html else None,
        junit=options.junit_path,
        markdown=options.summary_md_path,
    )
    on_state, view = options.on_state, None
    if options.live and on_state is None:
        view = LiveView()
        on_state = view.update
    observers: list[RunObserver] = [ActiveRunMarker(base), reports, *options.observers]
    if on_state is not None:
        observers.append(StateCallback(on_state))
    topology = experiment.topology
    run = Run(
        build_plan(experiment),
        run_id=run_id,
        ledger=ledger,
        clock=clock or MonotonicClock(),
        drivers=builtin_registry(),
        system=launched_system(topology),
        load=experiment_load(experiment),
        probes=topology_probes(topology),
        resources=topology_resources(topology),
        observers=observers,
        notes=NotesFile(ledger.path.parent / "notes.jsonl"),
        abort=options.abort,
        run_dir=run_dir,
        refs=refs,
        journal_path=journal_path,
        seed=options.seed or spec.load.seed,
    )
    return WiredRun(run, reports, journal_path, view)


async def _execute(wired: WiredRun) -> RunResult:
    try:
        if wired.view is None:
            journal = await wired.run.execute()
        else:
            with wired.view:
                journal = await wired.run.execute()
    finally:
        shutil.rmtree(wired.run.run_dir, ignore_errors=True)
    return RunResult(journal, wired.journal_path, wired.reports.paths)


async def run_experiment(experiment: Experiment, options: RunOptions | None = None) -> RunResult:
    """Run an experiment end to end; faults are reverted on every way out."""
    check_network_safety(experiment)
    return await _execute(wire_run(experiment, options or RunOptions()))


def run_experiment_sync(experiment: Experiment, options: RunOptions | None = None) -> RunResult:
    """Run in a fresh event loop; SIGINT/SIGTERM abort the run (exit 3) after reverting faults."""
    try:
        import uvloop

        uvloop.install()  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        pass

    async def main() -> RunResult:
        loop = asyncio.get_running_loop()
        holder: list[Run] = []

        def on_signal(signum: int) -> None:
            name = signal.Signals(signum).name
            if holder and holder[0].interrupt(f"interrupted by {name}"):
                print(f"\nchaoslab: {name}: stopping; reverting faults…", flush=True)
            else:
                # never skip the revert: a second Ctrl-C only says we are still on it
                print(f"\nchaoslab: {name}: still reverting faults and stopping services; please wait", flush=True)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        try:
            check_network_safety(experiment)
            wired = wire_run(experiment, options or RunOptions())
            holder.append(wired.run)
            return await _execute(wired)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    return asyncio.run(main())


__all__ = [
    "Analyser",
    "Run",
    "RunOptions",
    "RunResult",
    "WiredRun",
    "run_experiment",
    "run_experiment_sync",
    "wire_run",
]
