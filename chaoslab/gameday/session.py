"""Running a game day: brief the room, wait for the leader's go, run with the live view, collect notes.

The thin I/O shell around :mod:`chaoslab.gameday.agenda` and :mod:`chaoslab.gameday.report`.
Between runs the session announces its own notes file in ``.chaoslab/active-run.json`` so
``chaoslab note`` always lands somewhere; during a run the engine announces the run's file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from chaoslab.analysis.model import Verdict
from chaoslab.files import write_atomic
from chaoslab.gameday.agenda import GameDayPlan, GameDayStep, describe_runbook
from chaoslab.gameday.report import render_gameday_html, render_gameday_markdown, worst_exit_code
from chaoslab.journal import Journal
from chaoslab.model.loading import Experiment
from chaoslab.plan import build_plan, render_plan
from chaoslab.report import append_step_summary, print_summary
from chaoslab.report.junit import render_junit_many
from chaoslab.report.live_view import LiveView
from chaoslab.run.engine import RunOptions, RunResult, run_experiment
from chaoslab.run.notes import active_run_file, append_note, read_notes, state_dir


class Decision(StrEnum):
    """What the leader decided before a run."""

    GO = "go"
    SKIP = "skip"
    QUIT = "quit"


class Leader(Protocol):
    """Who says go: a person at the terminal, or ``--yes``."""

    def decide(self, index: int, total: int, name: str) -> Decision:
        """Go, skip or quit before run ``index``."""
        ...


class AutoLeader:
    """``--yes``: go every time."""

    def decide(self, index: int, total: int, name: str) -> Decision:
        """Always go."""
        return Decision.GO


class PromptLeader:
    """Ask at the terminal; ``n`` adds a note without deciding."""

    def __init__(self, console: Console, add_note: Callable[[str], None]) -> None:
        self.console = console
        self.add_note = add_note

    def decide(self, index: int, total: int, name: str) -> Decision:
        """Prompt until the leader says go, skip or quit."""
        import click

        while True:
            answer = click.prompt(
                f"run {index}/{total} {name}: [g]o, [s]kip, [n]ote, [q]uit", default="g", show_default=False
            )
            choice = answer.strip().lower()[:1]
            if choice == "g":
                return Decision.GO
            if choice == "s":
                return Decision.SKIP
            if choice == "q":
                return Decision.QUIT
            if choice == "n":
                text = click.prompt("note", default="", show_default=False)
                if text.strip():
                    self.add_note(text)


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """How the session runs and where it writes."""

    out_dir: Path
    live: bool = False
    keys: bool = False
    state_dir: Path | None = None
    input_fd: int | None = None
    """Where the live view reads keys (default: stdin)."""


def default_out_dir(title: str, now: datetime | None = None) -> Path:
    """``chaoslab-reports/gameday-<UTC timestamp>-<slug of the title>``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "session"
    return Path("chaoslab-reports") / f"gameday-{stamp}-{slug}"


class GameDay:
    """One game-day session."""

    def __init__(
        self,
        plan: GameDayPlan,
        experiments: list[Experiment],
        options: SessionOptions,
        *,
        leader: Leader | None = None,
        console: Console | None = None,
    ) -> None:
        self.plan = plan
        self.experiments = experiments
        self.options = options
        self.console = console or Console()
        self.leader: Leader = leader or AutoLeader()
        self.base = options.state_dir or state_dir()
        self.notes_path = options.out_dir / "notes.jsonl"
        self.runs: list[dict[str, Any]] = []
        self.journals: list[Journal | None] = []

    # --- notes ----------------------------------------------------------------------------
    def announce(self) -> None:
        """Point ``chaoslab note`` at the session's notes file (between runs)."""
        self.notes_path.parent.mkdir(parents=True, exist_ok=True)
        self.notes_path.touch()
        write_atomic(
            active_run_file(self.base),
            json.dumps({"gameday": self.plan.title, "pid": os.getpid(), "notes_path": str(self.notes_path.absolute())}),
        )

    def unannounce(self) -> None:
        """Remove the marker if it is still ours."""
        marker = active_run_file(self.base)
        with contextlib.suppress(OSError, ValueError, KeyError):
            if json.loads(marker.read_text(encoding="utf-8"))["notes_path"] == str(self.notes_path.absolute()):
                marker.unlink()

    def add_note(self, text: str) -> None:
        """A note from this terminal, to wherever notes go right now (the run's or the session's file)."""
        append_note(text, base=self.base)

    # --- the session ----------------------------------------------------------------------
    def brief(self, index: int, step: GameDayStep, experiment: Experiment) -> None:
        """Show the step's title, the leader's notes, the runbook summary and the plan."""
        total = len(self.experiments)
        title = step.title or experiment.spec.name
        body = Text()
        if step.notes:
            body.append("leader's notes: ", style="bold")
            body.append(" ".join(step.notes.split()) + "\n\n")
        body.append("runbook: ", style="bold")
        body.append(describe_runbook(experiment) + "\n\n")
        body.append(render_plan(build_plan(experiment)))
        self.console.print(Panel(body, title=f"run {index}/{total}: {title}", title_align="left"))

    def run(self) -> int:
        """Run the session; returns its exit code. The combined report is written whatever happens."""
        self.options.out_dir.mkdir(parents=True, exist_ok=True)
        started = time.time()
        self.announce()
        self.console.print(
            f"[bold]game day: {self.plan.title}[/]  leader {self.plan.leader or '—'}  "
            f"observers {', '.join(self.plan.observers) or '—'}\n"
            f'notes: press n in the live view, or run `chaoslab note "..."` in another terminal',
            highlight=False,
        )
        try:
            for i, (step, experiment) in enumerate(zip(self.plan.experiments, self.experiments, strict=True), 1):
                record: dict[str, Any] = {
                    "index": i,
                    "experiment": experiment.spec.name,
                    "title": step.title,
                    "overrides": dict(step.overrides),
                    "quick": experiment.quick,
                    "status": "pending",
                }
                self.runs.append(record)
                self.brief(i, step, experiment)
                decision = self.leader.decide(i, len(self.experiments), experiment.spec.name)
                if decision is not Decision.GO:
                    record["status"] = "skipped" if decision is Decision.SKIP else "not run (session ended)"
                    self.journals.append(None)
                    if decision is Decision.QUIT:
                        for later_i, later in enumerate(self.experiments[i:], i + 1):
                            self.runs.append(
                                {
                                    "index": later_i,
                                    "experiment": later.spec.name,
                                    "status": "not run (session ended)",
                                    "overrides": dict(self.plan.experiments[later_i - 1].overrides),
                                }
                            )
                            self.journals.append(None)
                        break
                    continue
                journal = self.run_step(i, experiment, record)
                self.journals.append(journal)
                self.announce()
                if journal.verdict is Verdict.ABORTED and self.plan.stop_on_abort:
                    self.console.print("[yellow]run aborted: ending the session (stop_on_abort)[/]")
                    for later_i, later in enumerate(self.experiments[i:], i + 1):
                        self.runs.append(
                            {
                                "index": later_i,
                                "experiment": later.spec.name,
                                "status": "not run (aborted before)",
                                "overrides": dict(self.plan.experiments[later_i - 1].overrides),
                            }
                        )
                        self.journals.append(None)
                    break
        finally:
            self.unannounce()
            code = worst_exit_code([j.exit_code for j in self.journals if j is not None])
            self.write_session(started, time.time(), code)
        return code

    def run_step(self, index: int, experiment: Experiment, record: dict[str, Any]) -> Journal:
        """Run one experiment with the live view and abort handling; returns its journal."""
        run_dir = self.options.out_dir / f"{index:02d}-{experiment.spec.name}"
        record["run_dir"] = str(run_dir.relative_to(self.options.out_dir))
        record["started_wall"] = time.time()
        record["status"] = "running"
        if not self.options.live:
            self.console.print(f"run {index}: {experiment.spec.name} started", highlight=False)
        # the combined report goes to $GITHUB_STEP_SUMMARY at the end; not each run's on its own too
        step_summary = os.environ.pop("GITHUB_STEP_SUMMARY", None)
        try:
            result = asyncio.run(self._run_async(experiment, run_dir))
        finally:
            if step_summary is not None:
                os.environ["GITHUB_STEP_SUMMARY"] = step_summary
        record["ended_wall"] = time.time()
        record["status"] = "ran"
        journal: Journal = result.journal
        record["verdict"] = journal.verdict.value
        record["exit_code"] = journal.exit_code
        record["journal_path"] = str(Path(record["run_dir"]) / "journal.json")
        print_summary(journal, self.console)
        return journal

    async def _run_async(self, experiment: Experiment, run_dir: Path) -> RunResult:
        loop = asyncio.get_running_loop()
        abort = asyncio.Event()

        def request_abort() -> None:
            loop.call_soon_threadsafe(abort.set)

        def on_signal() -> None:
            # Ctrl-C is the leader's abort too: the engine reverts faults and the report is still written
            abort.set()
            print("\nchaoslab: stopping this run; reverting faults…", file=sys.stderr, flush=True)

        installed = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.add_signal_handler(signum, on_signal)
                installed.append(signum)
        view = (
            LiveView(
                self.console,
                on_note=self.add_note,
                on_abort=request_abort,
                keys=self.options.keys,
                input_fd=self.options.input_fd,
            )
            if self.options.live
            else None
        )
        options = RunOptions(
            journal_path=run_dir / "journal.json",
            report_dir=run_dir,
            summary_md_path=run_dir / "summary.md",
            html=True,
            live=False,
            abort=abort,
            on_state=view.update if view is not None else None,
            state_dir=self.options.state_dir,
        )
        try:
            if view is not None:
                with view:
                    return await run_experiment(experiment, options)
            return await run_experiment(experiment, options)
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    def session_record(self, started: float, ended: float, code: int) -> dict[str, Any]:
        """What ``session.json`` holds."""
        notes, _ = read_notes(self.notes_path)
        return {
            "schema_version": 1,
            "title": self.plan.title,
            "leader": self.plan.leader,
            "observers": list(self.plan.observers),
            "description": self.plan.description,
            "started_wall": started,
            "ended_wall": ended,
            "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "runs": self.runs,
            "notes": [n.to_dict() for n in notes],
            "exit_code": code,
        }

    def write_session(self, started: float, ended: float, code: int) -> list[Path]:
        """Write session.json, the combined HTML and Markdown reports and JUnit XML."""
        out = self.options.out_dir
        session = self.session_record(started, ended, code)
        write_atomic(out / "session.json", json.dumps(session, indent=2))
        html = write_atomic(out / "gameday.html", render_gameday_html(session, self.journals))
        md_text = render_gameday_markdown(session, self.journals)
        md = write_atomic(out / "gameday.md", md_text)
        ran = [j for j in self.journals if j is not None]
        paths = [out / "session.json", html, md]
        if ran:
            paths.append(write_atomic(out / "junit.xml", render_junit_many(ran)))
        append_step_summary(md_text)
        self.console.print(f"game day report: {html}\nreview template: {md}", highlight=False)
        return paths
