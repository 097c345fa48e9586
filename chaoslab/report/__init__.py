"""Renderers of a run's journal: terminal summary, ``--json`` summary, HTML, JUnit XML, Markdown.

Every renderer takes a :class:`~chaoslab.journal.Journal` (what the engine returns, or what
``chaoslab report JOURNAL`` reads back), so reports can be regenerated offline::

    journal = read_journal(Path("journal.json"))
    write_reports(journal, html=Path("report.html"), junit=Path("junit.xml"))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from chaoslab.files import write_atomic
from chaoslab.journal import Journal
from chaoslab.report.html import render_html
from chaoslab.report.junit import render_junit
from chaoslab.report.markdown import render_markdown
from chaoslab.report.terminal import print_summary, summary_json

__all__ = [
    "append_step_summary",
    "print_summary",
    "render_html",
    "render_junit",
    "render_markdown",
    "summary_json",
    "write_reports",
]


def append_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY`` when it is set; the file it wrote, if any."""
    target = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(markdown.rstrip("\n") + "\n\n")
    return path


def write_reports(
    journal: Journal,
    *,
    html: Path | None = None,
    junit: Path | None = None,
    markdown: Path | None = None,
    step_summary: bool = True,
) -> list[Path]:
    """Write the requested reports; also append the Markdown to ``$GITHUB_STEP_SUMMARY`` when set."""
    written: list[Path] = []
    if html is not None:
        written.append(write_atomic(html, render_html(journal)))
    if junit is not None:
        written.append(write_atomic(junit, render_junit(journal)))
    md: str | None = None
    if markdown is not None:
        md = render_markdown(journal)
        written.append(write_atomic(markdown, md))
    if step_summary and os.environ.get("GITHUB_STEP_SUMMARY"):
        append_step_summary(md if md is not None else render_markdown(journal))
    return written
