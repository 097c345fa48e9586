"""``chaoslab analyse JOURNAL``: recompute the analysis and verdict offline from a journal."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chaoslab.journal import experiment_of, read_journal, timeline_of


@click.command("analyse")
@click.argument("journal_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the recomputed analysis as JSON.")
def analyse_command(journal_path: Path, as_json: bool) -> None:
    """Recompute baseline, bands, recovery time, cascade and verdict from a saved JOURNAL."""
    from chaoslab.analysis import analyse
    from chaoslab.report import print_summary

    journal = read_journal(journal_path)
    timeline = timeline_of(journal, file=str(journal_path))
    spec = experiment_of(journal, file=str(journal_path))
    analysis = analyse(
        timeline,
        spec,
        aborted=journal.get("abort_reason"),
        revert_failed=bool(journal.get("revert_errors")),
        error=journal.get("error"),
    ).to_dict()
    recomputed = {**journal, "analysis": analysis, "verdict": analysis["verdict"], "exit_code": analysis["exit_code"]}
    saved = journal.get("verdict")
    if as_json:
        click.echo(json.dumps(analysis, indent=2))
    else:
        print_summary(recomputed)
    if saved is not None and saved != analysis["verdict"]:
        click.echo(
            f"chaoslab: note: the journal recorded verdict {saved!r}; recomputed {analysis['verdict']!r}", err=True
        )
    raise click.exceptions.Exit(int(analysis["exit_code"]))
