"""``chaoslab report JOURNAL``: regenerate the HTML, JUnit and Markdown reports offline from a journal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from chaoslab.errors import SpecError
from chaoslab.files import write_atomic
from chaoslab.journal import read_journal


@click.command("report")
@click.argument("journal", type=click.Path(path_type=Path))
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False), help="Write the HTML report.")
@click.option("--junit", "junit_path", type=click.Path(path_type=Path, dir_okay=False), help="Write JUnit XML.")
@click.option(
    "--md",
    "--summary-md",
    "md_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the Markdown summary.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the machine summary on stdout.")
@click.option(
    "--exit-code/--no-exit-code",
    default=False,
    help="Exit with the run's exit code (0 pass, 1 fail, 3 aborted, 4 revert failed) instead of 0.",
)
def report_command(
    journal: Path,
    html_path: Path | None,
    junit_path: Path | None,
    md_path: Path | None,
    as_json: bool,
    exit_code: bool,
) -> None:
    """Render reports from a saved JOURNAL (no run, no network); without options, print the summary.

    JOURNAL may also be a game-day session directory: its combined report is rendered again.
    """
    from chaoslab.report import print_summary, summary_json, write_reports

    if journal.is_dir():
        _session_reports(journal, html_path, md_path)
        return
    run = read_journal(journal)
    written = write_reports(run, html=html_path, junit=junit_path, markdown=md_path)
    if as_json:
        click.echo(json.dumps(summary_json(run), indent=2))
    elif not written:
        print_summary(run)
    for path in written:
        click.echo(f"wrote {path}", err=True)
    if exit_code:
        sys.exit(run.exit_code)


def _session_reports(session_dir: Path, html_path: Path | None, md_path: Path | None) -> None:
    """Re-render a game day's combined report from its session directory."""
    from chaoslab.gameday.report import load_session, render_gameday_html, render_gameday_markdown

    if not (session_dir / "session.json").is_file():
        raise SpecError(
            "expected a journal file or a game-day session directory (no session.json)", file=str(session_dir)
        )
    session, journals = load_session(session_dir)
    html_path = html_path or session_dir / "gameday.html"
    md_path = md_path or session_dir / "gameday.md"
    write_atomic(html_path, render_gameday_html(session, journals))
    write_atomic(md_path, render_gameday_markdown(session, journals))
    click.echo(f"wrote {html_path}\nwrote {md_path}", err=True)
