"""``chaoslab gameday PLAN`` (a led sequence of experiments) and ``chaoslab note TEXT`` (an observer's note)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import psutil

from chaoslab.errors import SpecError


@click.command("gameday")
@click.argument("plan_path", metavar="PLAN", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--yes", "-y", is_flag=True, help="Do not wait for the leader's go before each run.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), help="Session directory.")
@click.option("--quick", is_flag=True, default=None, help="Run every experiment in its quick form.")
@click.option("--no-live", is_flag=True, help="No live view (off anyway when stdout is not a terminal).")
def gameday_command(plan_path: Path, yes: bool, out_dir: Path | None, quick: bool | None, no_live: bool) -> None:
    """Run the game day in PLAN: brief, wait for go, run with live notes and abort, write one report."""
    from chaoslab.gameday.agenda import load_plan, load_steps
    from chaoslab.gameday.session import AutoLeader, GameDay, PromptLeader, SessionOptions, default_out_dir

    plan = load_plan(plan_path)
    experiments = load_steps(plan, plan_path, quick=True if quick else None)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not yes and not sys.stdin.isatty():
        raise SpecError("gameday: no terminal to ask the leader for a go; pass --yes to run unattended")
    live = not no_live and sys.stdout.isatty()
    options = SessionOptions(out_dir=out_dir or default_out_dir(plan.title), live=live, keys=live and interactive)
    session = GameDay(plan, experiments, options)
    if not yes:
        session.leader = PromptLeader(session.console, session.add_note)
    else:
        session.leader = AutoLeader()
    raise click.exceptions.Exit(session.run())


@click.command("note")
@click.argument("words", nargs=-1, required=True)
@click.option("--author", help="Who wrote it (default: your user name).")
def note_command(words: tuple[str, ...], author: str | None) -> None:
    """Add a timestamped note to the running experiment or game day (from another terminal)."""
    from chaoslab.run.notes import active_run_file, append_note

    marker = active_run_file()
    try:
        pid = int(json.loads(marker.read_text(encoding="utf-8")).get("pid", 0))
    except (OSError, ValueError, AttributeError):
        pid = 0
    if pid and not psutil.pid_exists(pid):
        raise SpecError(f"note: no active chaoslab run or game day (stale {marker}: process {pid} is gone)")
    path = append_note(" ".join(words), author=author)
    click.echo(f"note added to {path}", err=True)
