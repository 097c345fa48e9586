"""The combined game-day report: every run, every note on one timeline, and a filled-in review template.

Pure: takes the session record (what :mod:`chaoslab.gameday.session` writes to ``session.json``)
and the runs' journals, returns HTML or Markdown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from chaoslab.analysis.model import Verdict
from chaoslab.errors import SpecError
from chaoslab.journal import Journal, read_journal
from chaoslab.report.html import page, run_sections
from chaoslab.report.markdown import VERDICT_ICON, run_markdown
from chaoslab.report.model import ReportView, fmt_ms, fmt_pct, fmt_s
from chaoslab.report.svg import FONT, MARKER_COLOURS, nice_ticks

VERDICT_COLOUR = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "inconclusive": "#0969da",
    "aborted": "#9a6700",
    "error": "#6e40c9",
    "skipped": "#8c959f",
}


@dataclass(frozen=True, slots=True)
class TimedNote:
    """A note on the session's wall clock, with where it fell."""

    wall_time: float
    author: str
    text: str
    context: str


def worst_exit_code(codes: Sequence[int]) -> int:
    """The session's exit code: a revert failure (4) beats an abort (3), which beats a fail (1)."""
    order = {4: 5, 3: 4, 2: 3, 1: 2, 0: 1}
    return max(codes, key=lambda c: order.get(c, 4), default=0)


def clock(wall: float | None) -> str:
    """Wall time as ``HH:MM:SS`` UTC."""
    if wall is None:
        return "—"
    return datetime.fromtimestamp(wall, UTC).strftime("%H:%M:%S")


def _run_label(run: Mapping[str, Any]) -> str:
    over = run.get("overrides") or {}
    extra = f" ({', '.join(f'{k}={v}' for k, v in over.items())})" if over else ""
    return f"{run.get('experiment', '?')}{extra}"


def _t0(run: Mapping[str, Any], journal: Journal | None) -> float | None:
    if journal is not None and journal.t0_wall is not None:
        return journal.t0_wall
    started = run.get("started_wall")
    return float(started) if isinstance(started, int | float) else None


def all_notes(session: Mapping[str, Any], journals: Sequence[Journal | None]) -> list[TimedNote]:
    """Session notes (between runs) and in-run notes, on one wall clock, in order."""
    notes: list[TimedNote] = []
    runs = list(session.get("runs") or [])
    for raw in session.get("notes") or []:
        wall = float(raw.get("wall_time", 0.0))
        context = "between runs"
        for run in runs:
            start, end = run.get("started_wall"), run.get("ended_wall")
            if isinstance(start, int | float) and isinstance(end, int | float) and start <= wall <= end:
                context = f"run {run.get('index')}"
        notes.append(TimedNote(wall, str(raw.get("author") or ""), str(raw.get("text") or ""), context))
    for run, journal in zip(runs, journals, strict=False):
        if journal is None:
            continue
        t0 = _t0(run, journal)
        for note in ReportView(journal).notes():
            wall = (t0 or 0.0) + note.t_s
            notes.append(TimedNote(wall, note.author, note.text, f"run {run.get('index')} +{note.t_s:.1f}s"))
    return sorted(notes, key=lambda n: n.wall_time)


def session_timeline_svg(session: Mapping[str, Any], journals: Sequence[Journal | None], width: int = 1240) -> str:
    """Runs as bars coloured by verdict on the session's wall clock, notes as markers above them."""
    start = session.get("started_wall")
    end = session.get("ended_wall")
    if not isinstance(start, int | float) or not isinstance(end, int | float) or end <= start:
        return ""
    span = end - start
    left, right, h = 40, 40, 96
    pw = width - left - right

    def x(wall: float) -> float:
        return left + max(0.0, min(wall - start, span)) / span * pw

    out = [
        f"<svg class='session' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {h}' width='{width}' "
        f"height='{h}' {FONT} font-size='12'>",
        f"<rect x='{left}' y='34' width='{pw}' height='26' fill='#f6f8fa' stroke='#d0d7de'/>",
    ]
    for run in session.get("runs") or []:
        s, e = run.get("started_wall"), run.get("ended_wall")
        if not isinstance(s, int | float) or not isinstance(e, int | float):
            continue
        colour = VERDICT_COLOUR.get(str(run.get("verdict")), "#8c959f")
        x0, x1 = x(s), x(e)
        out.append(
            f"<rect x='{x0:.1f}' y='34' width='{max(x1 - x0, 2):.1f}' height='26' fill='{colour}' rx='3'>"
            f"<title>run {run.get('index')}: {escape(_run_label(run))} — {run.get('verdict')}</title></rect>"
        )
        if x1 - x0 > 30:
            out.append(
                f"<text x='{(x0 + x1) / 2:.1f}' y='51' text-anchor='middle' fill='#fff' font-weight='600'>"
                f"{run.get('index')}</text>"
            )
    for note in all_notes(session, journals):
        nx = x(note.wall_time)
        label = escape(f"{clock(note.wall_time)} {note.author}: {note.text} ({note.context})")
        out.append(
            f"<path d='M{nx - 5:.1f},14 L{nx + 5:.1f},14 L{nx:.1f},24 Z' fill='{MARKER_COLOURS['note']}'>"
            f"<title>{label}</title></path>"
            f"<line x1='{nx:.1f}' x2='{nx:.1f}' y1='24' y2='60' stroke='{MARKER_COLOURS['note']}' "
            f"stroke-dasharray='2 2'><title>{label}</title></line>"
        )
    for tick in nice_ticks(0.0, span, 10):
        tx = x(start + tick)
        out.append(
            f"<line x1='{tx:.1f}' x2='{tx:.1f}' y1='60' y2='65' stroke='#8c959f'/>"
            f"<text x='{tx:.1f}' y='79' text-anchor='middle' fill='#656d76' font-size='11'>{clock(start + tick)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _pairs(
    session: Mapping[str, Any], journals: Sequence[Journal | None]
) -> list[tuple[Mapping[str, Any], Journal | None]]:
    runs = list(session.get("runs") or [])
    padded = list(journals) + [None] * (len(runs) - len(journals))
    return list(zip(runs, padded, strict=False))


def review_markdown(session: Mapping[str, Any], journals: Sequence[Journal | None]) -> str:
    """A post-incident review template, pre-filled with the measured figures; prose left for the team."""
    pairs = _pairs(session, journals)
    ran = [(r, j) for r, j in pairs if j is not None]
    verdicts = [j.verdict for _, j in ran]
    counts = {v: verdicts.count(v) for v in Verdict}
    started = session.get("started_wall")
    date = (
        datetime.fromtimestamp(float(started), UTC).strftime("%Y-%m-%d %H:%M UTC")
        if isinstance(started, int | float)
        else "?"
    )
    lines = [
        f"# Post-incident review: {session.get('title', 'game day')}",
        "",
        f"- **Date:** {date}",
        f"- **Leader:** {session.get('leader') or '_who led_'}",
        f"- **Observers:** {', '.join(session.get('observers') or []) or '_who watched_'}",
        f"- **Runs:** {len(ran)} of {len(pairs)} planned — {counts[Verdict.PASS]} passed, "
        f"{counts[Verdict.FAIL]} failed, {counts[Verdict.INCONCLUSIVE]} inconclusive, "
        f"{counts[Verdict.ABORTED]} aborted, {counts[Verdict.ERROR]} errors",
        "",
        "## Summary",
        "",
        "_One paragraph: what we tested, what we expected, what we learned._",
        "",
        "## Hypotheses and outcomes",
        "",
        "| # | experiment | hypothesis | verdict | recovery (budget) | cascade |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for run, journal in pairs:
        if journal is None:
            lines.append(f"| {run.get('index')} | {_run_label(run)} | — | {run.get('status', 'skipped')} | — | — |")
            continue
        analysis = journal.analysis
        hypothesis = " ".join(journal.experiment.description.split())[:160] or "—"
        recovery = (
            fmt_s(analysis.recovery_time_s) if analysis.recovered else "not recovered"
        ) + f" ({fmt_s(analysis.recovery_budget_s)})"
        cascade = ", ".join(f"{c.signal} from {fmt_s(c.onset_s)}" for c in analysis.cascade) or "none"
        lines.append(
            f"| {run.get('index')} | {_run_label(run)} | {hypothesis.replace('|', '/')} "
            f"| {journal.verdict.value.upper()} | {recovery} | {cascade} |"
        )
    lines += ["", "## Timeline (UTC)", ""]
    events: list[tuple[float, str]] = []
    for run, journal in pairs:
        t0 = _t0(run, journal)
        label = _run_label(run)
        if isinstance(run.get("started_wall"), int | float):
            events.append((float(run["started_wall"]), f"run {run.get('index')} started: {label}"))
        if journal is None or t0 is None:
            continue
        view = ReportView(journal)
        for f in view.faults():
            r = f.record
            if r.injected_at_s is not None:
                events.append(
                    (t0 + r.injected_at_s, f"run {run.get('index')}: {f.label} injected ({r.description or r.kind})")
                )
            if r.reverted_at_s is not None:
                ok = {True: "revert verified", False: "REVERT FAILED", None: "revert not checked"}[r.revert_ok]
                events.append((t0 + r.reverted_at_s, f"run {run.get('index')}: {f.label} reverted, {ok}"))
        for c in journal.analysis.cascade:
            events.append((t0 + c.onset_s, f"run {run.get('index')}: cascade, {c.signal} degraded"))
        recovery_at = view.recovery_at_s()
        if recovery_at is not None:
            events.append((t0 + recovery_at, f"run {run.get('index')}: recovered"))
        if journal.abort_reason:
            aborts = [e.t_s for e in view.events() if e.kind == "abort"]
            at = t0 + (aborts[0] if aborts else view.duration_s)
            events.append((at, f"run {run.get('index')}: aborted — {journal.abort_reason}"))
        if isinstance(run.get("ended_wall"), int | float):
            events.append((float(run["ended_wall"]), f"run {run.get('index')} ended: {journal.verdict.value}"))
    for note in all_notes(session, journals):
        events.append((note.wall_time, f"note ({note.author}, {note.context}): {note.text}"))
    lines += [f"- **{clock(wall)}** {text}" for wall, text in sorted(events, key=lambda e: e[0])]
    lines += ["", "## Impact", ""]
    for run, journal in pairs:
        if journal is None:
            continue
        view = ReportView(journal)
        analysis = journal.analysis
        lines.append(
            f"**Run {run.get('index')} — {_run_label(run)}:** time to impact {fmt_s(analysis.time_to_impact_s)}, "
            f"recovery {fmt_s(analysis.recovery_time_s)} after revert "
            f"({fmt_s(analysis.recovery_from_injection_s)} after injection)."
        )
        lines.append("")
        for name in view.onset_order():
            imp = analysis.impact.get(name)
            if imp is None or not imp.degraded_windows:
                continue
            lines.append(
                f"- `{name}`{' (expected)' if imp.expected else ''}: degraded from "
                f"{fmt_s(view.onset_of(name))}, {imp.degraded_windows} windows, peak p95 "
                f"{fmt_ms(imp.peak_p95_ms)}, peak error rate {fmt_pct(imp.peak_error_rate)}"
            )
        for slo in analysis.slos:
            if not slo.ok:
                lines.append(f"- SLO broken: `{slo.signal}` {slo.objective} (observed {slo.observed})")
        lines.append("")
    lines += ["## Detection and response", ""]
    for run, journal in pairs:
        if journal is None:
            continue
        view = ReportView(journal)
        injected = view.first_injection_s()
        notes_after = [n for n in view.notes() if injected is not None and n.t_s >= injected]
        if notes_after:
            first = notes_after[0]
            lines.append(
                f"- Run {run.get('index')}: first observer note {fmt_s(first.t_s - (injected or 0.0))} after injection "
                f"({first.author}: {first.text})"
            )
        else:
            lines.append(f"- Run {run.get('index')}: no observer note during the fault")
    lines += [
        "- _How did we notice? Which dashboards and alerts fired, and how fast?_",
        "",
        "## What went well",
        "",
        "- _…_",
        "",
        "## What went badly",
        "",
        "- _…_",
        "",
        "## Where we got lucky",
        "",
        "- _…_",
        "",
        "## Action items",
        "",
        "| action | owner | due |",
        "| --- | --- | --- |",
    ]
    actions: list[str] = []
    for run, journal in ran:
        analysis = journal.analysis
        for c in analysis.cascade:
            actions.append(
                f"Contain the spread to `{c.signal}` seen in run {run.get('index')} (bulkhead, timeout, breaker?)"
            )
        if not analysis.recovered and journal.verdict is not Verdict.ABORTED:
            actions.append(
                f"Run {run.get('index')} did not recover within {fmt_s(analysis.recovery_budget_s)}: find what holds it"
            )
        for slo in analysis.slos:
            if not slo.ok:
                actions.append(f"`{slo.signal}` broke {slo.objective} in run {run.get('index')}")
        for error in journal.revert_errors:
            actions.append(f"Revert failed in run {run.get('index')}: {error} — fix the fault's undo")
    actions = list(dict.fromkeys(actions)) or ["_…_"]
    lines += [f"| {a} | | |" for a in actions]
    lines.append("")
    return "\n".join(lines)


def render_gameday_markdown(session: Mapping[str, Any], journals: Sequence[Journal | None]) -> str:
    """The combined Markdown report: summary table, every run, then the review template."""
    pairs = _pairs(session, journals)
    code = int(session.get("exit_code", worst_exit_code([j.exit_code for _, j in pairs if j is not None])))
    lines = [
        f"# Game day: {session.get('title', '')} (exit {code})",
        "",
        f"Leader: {session.get('leader') or '—'} · observers: {', '.join(session.get('observers') or []) or '—'}",
        "",
        "| # | experiment | verdict | recovery | cascade | notes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for run, journal in pairs:
        if journal is None:
            lines.append(f"| {run.get('index')} | {_run_label(run)} | {run.get('status', 'skipped')} | — | — | — |")
            continue
        analysis = journal.analysis
        lines.append(
            f"| {run.get('index')} | {_run_label(run)} | {VERDICT_ICON[journal.verdict]} {journal.verdict.value} "
            f"| {fmt_s(analysis.recovery_time_s) if analysis.recovered else 'not recovered'} "
            f"| {', '.join(c.signal for c in analysis.cascade) or 'none'} | {len(ReportView(journal).notes())} |"
        )
    lines.append("")
    for _run, journal in pairs:
        if journal is not None:
            lines.append(run_markdown(journal, level=2))
    lines.append(review_markdown(session, journals))
    return "\n".join(lines)


def render_gameday_html(session: Mapping[str, Any], journals: Sequence[Journal | None]) -> str:
    """The combined HTML report: one self-contained file."""
    pairs = _pairs(session, journals)
    code = int(session.get("exit_code", worst_exit_code([j.exit_code for _, j in pairs if j is not None])))
    overall = {0: "pass", 1: "fail", 3: "aborted", 4: "error"}.get(code, "error")
    title = str(session.get("title") or "game day")
    body = [
        f"<h1>Game day: {escape(title)}</h1>",
        f"<div class='meta'>leader {escape(str(session.get('leader') or '—'))} · observers "
        f"{escape(', '.join(session.get('observers') or []) or '—')} · started {clock(session.get('started_wall'))} UTC"
        f" · ended {clock(session.get('ended_wall'))} UTC</div>",
    ]
    if session.get("description"):
        body.append(f"<p class='meta'>{escape(str(session['description']))}</p>")
    body.append(
        f"<div class='banner {overall}'><div class='word'>{overall}</div><div>exit code {code} · "
        f"{sum(1 for _, j in pairs if j is not None)} of {len(pairs)} runs</div></div>"
    )
    rows = []
    for run, journal in pairs:
        anchor = f"run-{run.get('index')}"
        if journal is None:
            rows.append(
                f"<tr><td>{run.get('index')}</td><td>{escape(_run_label(run))}</td>"
                f"<td class='muted'>{escape(str(run.get('status', 'skipped')))}</td><td>—</td><td>—</td><td>—</td></tr>"
            )
            continue
        analysis = journal.analysis
        cls = "ok" if journal.verdict is Verdict.PASS else "bad"
        rows.append(
            f"<tr><td><a href='#{anchor}'>{run.get('index')}</a></td><td>{escape(_run_label(run))}</td>"
            f"<td class='{cls}'>{journal.verdict.value}</td>"
            f"<td>{fmt_s(analysis.recovery_time_s) if analysis.recovered else 'not recovered'}</td>"
            f"<td>{escape(', '.join(c.signal for c in analysis.cascade) or 'none')}</td>"
            f"<td>{len(ReportView(journal).notes())}</td></tr>"
        )
    body.append(
        "<h2>Runs</h2><div class='card'><table><tr><th>#</th><th>experiment</th><th>verdict</th><th>recovery</th>"
        "<th>cascade</th><th>notes</th></tr>" + "".join(rows) + "</table></div>"
    )
    timeline = session_timeline_svg(session, journals)
    if timeline:
        body.append(f"<h2>Session timeline</h2><div class='card'>{timeline}</div>")
    notes = all_notes(session, journals)
    if notes:
        note_rows = "".join(
            f"<tr><td>{clock(n.wall_time)}</td><td>{escape(n.context)}</td><td><b>{escape(n.author)}</b></td>"
            f"<td>{escape(n.text)}</td></tr>"
            for n in notes
        )
        body.append(
            f"<h2>Notes</h2><div class='card'><table><tr><th>UTC</th><th>when</th><th>who</th><th>note</th></tr>"
            f"{note_rows}</table></div>"
        )
    body.append(
        "<h2>Post-incident review (template, pre-filled)</h2><div class='card'><pre>"
        + escape(review_markdown(session, journals))
        + "</pre></div>"
    )
    for run, journal in pairs:
        if journal is None:
            continue
        body.append(f"<section id='run-{run.get('index')}' style='margin-top:40px;border-top:3px solid #d0d7de'>")
        body.append(f"<p class='meta'>run {run.get('index')} of {len(pairs)}</p>")
        body.append(run_sections(journal, heading_level=2))
        body.append("</section>")
    return page(f"chaoslab game day · {title}", "".join(body))


def load_session(session_dir: Path) -> tuple[dict[str, Any], list[Journal | None]]:
    """Read a game day's ``session.json`` and its runs' journals (None for runs that did not run)."""
    path = session_dir / "session.json"
    try:
        session = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read the session: {exc}", file=str(path)) from None
    if not isinstance(session, dict):
        raise SpecError(f"expected a JSON object at the top level, got {type(session).__name__}", file=str(path))
    journals: list[Journal | None] = []
    for run in session.get("runs") or []:
        journal_path = run.get("journal_path")
        journal = None
        if journal_path and (session_dir / journal_path).is_file():
            journal = read_journal(session_dir / journal_path)
        journals.append(journal)
    return session, journals
