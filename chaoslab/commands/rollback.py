"""``chaoslab rollback``: revert what a dead run (even after ``kill -9``) left behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from chaoslab.errors import ExitCode
from chaoslab.redact import redact_text


@click.command("rollback")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="State directory holding run ledgers (default $CHAOSLAB_STATE_DIR or ./.chaoslab).",
)
@click.option("--force", is_flag=True, help="Also roll back runs whose owner process still seems alive.")
def rollback_command(state_dir: Path | None, force: bool) -> None:
    """Revert every fault, stop every process and container, and unmount what dead runs left."""
    from chaoslab.run.rollback import rollback_all

    report = asyncio.run(rollback_all(state_dir, force=force))
    for line in report.skipped:
        click.echo(f"skipped: {line}")
    for action in report.actions:
        mark = "ok    " if action.ok else "FAILED"
        detail = f" — {redact_text(action.detail)}" if action.detail else ""
        click.echo(f"{mark} [{action.run_id}] {action.what}{detail}")
    if not report.actions and not report.skipped:
        click.echo("nothing to roll back")
    if not report.ok:
        click.echo("chaoslab: error: some leftovers could not be reverted; see above", err=True)
        raise click.exceptions.Exit(int(ExitCode.REVERT_FAILED))
