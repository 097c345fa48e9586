"""Lifecycle observers of a run: small classes with no-op hooks, fanned out by :class:`Observers`.

An observer overrides only the hooks it needs (chaoslib's ``RunEventHandler`` is the model)::

    class PrintPhases(RunObserver):
        def on_event(self, event: Event) -> None:
            if event.kind == "phase":
                print(event.t_s, event.message)

    run_experiment(experiment, RunOptions(observers=(PrintPhases(),)))

Observers watch; they never steer. A hook that raises is logged and the run goes on, with the
same verdict: the live view, the notes marker, the reports and a CI reporter are observers, while
the ledger — which must be written *before* a fault is applied, or the fault is not applied — is
part of the fault stack (:mod:`chaoslab.run.injection`), not an observer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from chaoslab.files import write_atomic
from chaoslab.journal import Journal
from chaoslab.log import get_logger
from chaoslab.plan import Plan
from chaoslab.report import write_reports
from chaoslab.report.live_state import LiveState
from chaoslab.run.notes import active_run_file
from chaoslab.timeline import Event

log = get_logger("observers")


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What an observer learns when a run starts."""

    run_id: str
    experiment: str
    plan: Plan
    notes_path: Path | None = None
    """Where observers' notes for this run are read from (game days)."""


class RunObserver:
    """Hooks called as a run goes on; each does nothing unless overridden."""

    def on_start(self, run: RunInfo) -> None:
        """The run has its id and ledger; nothing is launched yet."""

    def on_event(self, event: Event) -> None:
        """Something happened on the run clock: a phase, a fault applied or reverted, an abort, a note."""

    def on_state(self, state: LiveState) -> None:
        """A snapshot of the running experiment (about twice a second)."""

    def on_stopped(self) -> None:
        """Every fault is off (or reported as not) and the system is stopped."""

    def on_finish(self, journal: Journal) -> None:
        """The run's journal, once written."""


class Observers(RunObserver):
    """Fans each hook out to every observer, in order; one that raises is logged and skipped."""

    def __init__(self, observers: Iterable[RunObserver] = ()) -> None:
        self.observers = tuple(observers)

    def _each(self, hook: str, call: Callable[[RunObserver], None]) -> None:
        for observer in self.observers:
            try:
                call(observer)
            except Exception as exc:  # an observer must never change the run, its verdict or its journal
                log.error("observer failed", observer=type(observer).__name__, hook=hook, error=repr(exc))

    def on_start(self, run: RunInfo) -> None:
        """Fan out."""
        self._each("on_start", lambda o: o.on_start(run))

    def on_event(self, event: Event) -> None:
        """Fan out."""
        self._each("on_event", lambda o: o.on_event(event))

    def on_state(self, state: LiveState) -> None:
        """Fan out."""
        self._each("on_state", lambda o: o.on_state(state))

    def on_stopped(self) -> None:
        """Fan out."""
        self._each("on_stopped", lambda o: o.on_stopped())

    def on_finish(self, journal: Journal) -> None:
        """Fan out."""
        self._each("on_finish", lambda o: o.on_finish(journal))


class StateCallback(RunObserver):
    """Hands every live snapshot to a function (the live view's ``update``, a test's list)."""

    def __init__(self, callback: Callable[[LiveState], None]) -> None:
        self.callback = callback

    def on_state(self, state: LiveState) -> None:
        """Call the function."""
        self.callback(state)


class ActiveRunMarker(RunObserver):
    """Writes the active-run marker (run id, PID, notes file) that ``chaoslab note`` finds; removes it at the end."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def on_start(self, run: RunInfo) -> None:
        """Write the marker."""
        marker = {"run_id": run.run_id, "pid": os.getpid(), "notes_path": str(run.notes_path)}
        write_atomic(active_run_file(self.state_dir), json.dumps(marker))

    def on_stopped(self) -> None:
        """Remove it: notes written from now on would reach no run."""
        active_run_file(self.state_dir).unlink(missing_ok=True)


class ReportWriter(RunObserver):
    """Writes the HTML, JUnit and Markdown reports of the journal; a failure never hides the verdict."""

    def __init__(self, *, html: Path | None = None, junit: Path | None = None, markdown: Path | None = None) -> None:
        self.html = html
        self.junit = junit
        self.markdown = markdown
        self.paths: tuple[Path, ...] = ()
        """The reports written."""

    def on_finish(self, journal: Journal) -> None:
        """Render and write the reports asked for."""
        self.paths = tuple(write_reports(journal, html=self.html, junit=self.junit, markdown=self.markdown))
