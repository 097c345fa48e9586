"""``chaoslab analyse JOURNAL``: recompute the analysis and verdict offline from a journal."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from chaoslab.analysis import analyse
from chaoslab.journal import read_journal
from chaoslab.report import print_summary


@click.command("analyse")
@click.argument("journal_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the recomputed analysis as JSON.")
def analyse_command(journal_path: Path, as_json: bool) -> None:
    """Recompute baseline, bands, recovery time, cascade and verdict from a saved JOURNAL."""
    journal = read_journal(journal_path)
    analysis = analyse(
        journal.timeline,
        journal.experiment,
        aborted=journal.abort_reason,
        revert_failed=bool(journal.revert_errors),
        error=journal.error,
    )
    if as_json:
        click.echo(json.dumps(analysis.to_dict(), indent=2))
    else:
        print_summary(dataclasses.replace(journal, analysis=analysis))
    if analysis.verdict is not journal.verdict:
        click.echo(
            f"chaoslab: note: the journal recorded verdict {journal.verdict.value!r}; "
            f"recomputed {analysis.verdict.value!r}",
            err=True,
        )
    raise click.exceptions.Exit(analysis.exit_code)
