"""The Markdown summary: for ``--summary-md``, ``$GITHUB_STEP_SUMMARY`` and pull-request comments."""

from __future__ import annotations

from chaoslab.analysis.model import Verdict
from chaoslab.journal import Journal
from chaoslab.report.model import ReportView, fmt_ms, fmt_pct, fmt_s

VERDICT_ICON = {
    Verdict.PASS: "✅",
    Verdict.FAIL: "❌",
    Verdict.INCONCLUSIVE: "❔",
    Verdict.ABORTED: "⚠️",
    Verdict.ERROR: "🛑",
}
CELL = {"h": "🟩", "d": "🟥", "n": "⬜"}
MAX_CELLS = 48


def compress_health(health: str, max_cells: int = MAX_CELLS) -> str:
    """Shrink a health string to at most ``max_cells`` by grouping windows (any ``d`` wins, then ``h``)."""
    if len(health) <= max_cells:
        return health
    group = -(-len(health) // max_cells)
    out = []
    for i in range(0, len(health), group):
        chunk = health[i : i + group]
        out.append("d" if "d" in chunk else ("h" if "h" in chunk else "n"))
    return "".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def run_markdown(journal: Journal, *, level: int = 2) -> str:
    """The summary of one run, with headings starting at ``level``."""
    h = "#" * level
    view = ReportView(journal)
    analysis = journal.analysis
    verdict = journal.verdict
    headline = f"chaoslab `{journal.name}`: **{verdict.value.upper()}** (exit {journal.exit_code})"
    lines = [f"{h} {VERDICT_ICON[verdict]} {headline}", ""]
    if journal.run_id:
        lines += [f"run `{journal.run_id}` · started {journal.started_at or '?'} · {fmt_s(view.duration_s)}", ""]
    if verdict is Verdict.INCONCLUSIVE:
        lines += ["> **Not judged: the harness could not deliver the experiment.**", ">"]
        lines += [f"> - {_cell(line)}" for line in view.shortfalls()] + [""]
    cascade = analysis.cascade
    slos = analysis.slos
    held = sum(1 for s in slos if s.ok)
    late = analysis.recovery_observed_s
    not_recovered = f"{fmt_s(late)}, over budget" if late is not None else "not recovered"
    recovery = fmt_s(analysis.recovery_time_s) if analysis.recovered else not_recovered
    lines += [
        "| recovery time | budget | from injection | time to impact | cascade | SLOs held |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {recovery} | {fmt_s(analysis.recovery_budget_s)} "
        f"| {fmt_s(analysis.recovery_from_injection_s)} | {fmt_s(analysis.time_to_impact_s)} "
        f"| {'yes (' + str(len(cascade)) + ')' if cascade else 'no'} | {f'{held}/{len(slos)}' if slos else '—'} |",
        "",
    ]
    problems = [*([f"aborted: {journal.abort_reason}"] if journal.abort_reason else [])]
    problems += [f"revert failed: {e} — run `chaoslab rollback`" for e in journal.revert_errors]
    problems += analysis.reasons
    if problems:
        lines += [f"- {_cell(p)}" for p in dict.fromkeys(problems)] + [""]
    if cascade:
        lines += [
            f"{h}# Cascade, in order of onset",
            "",
            "| signal | onset | peak p95 | peak error rate | end |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| `{c.signal}` | {fmt_s(c.onset_s)} | {fmt_ms(c.peak_p95_ms)} | {fmt_pct(c.peak_error_rate)} "
            f"| {fmt_s(c.end_s)} |"
            for c in cascade
        ]
        lines.append("")
    if slos:
        lines += [f"{h}# SLOs", "", "| signal | objective | observed | result |", "| --- | --- | --- | --- |"]
        lines += [
            f"| `{s.signal}` | {_cell(s.objective)} | {_cell(s.observed)} | {'✅ held' if s.ok else '❌ broken'} |"
            for s in slos
        ]
        lines.append("")
    health = view.health()
    if health:
        width = len(compress_health(max(health.values(), key=len)))
        per = view.end_s / width if width else journal.timeline.window_s
        lines += [f"{h}# Health over time (🟩 healthy 🟥 degraded ⬜ no data; {per:.3g}s per cell)", ""]
        lines += ["| signal | onset | timeline |", "| --- | --- | --- |"]
        for name in view.onset_order():
            row = "".join(CELL.get(c, "⬜") for c in compress_health(health.get(name, "")))
            lines.append(f"| `{name}` | {fmt_s(view.onset_of(name))} | {row} |")
        lines.append("")
    faults = view.faults()
    if faults:
        lines += [
            f"{h}# Faults",
            "",
            "| fault | target | applied | reverted | check |",
            "| --- | --- | --- | --- | --- |",
        ]
        for f in faults:
            r = f.record
            check = {True: "✅ verified", False: "❌ FAILED", None: "—"}[r.revert_ok]
            lines.append(
                f"| {_cell(f.label)}: {_cell(r.description or r.kind)} | `{r.target}` | {fmt_s(r.injected_at_s)} "
                f"| {fmt_s(r.reverted_at_s)} | {check} |"
            )
        lines.append("")
    notes = view.notes()
    if notes:
        lines += [f"{h}# Notes", ""]
        lines += [f"- **{fmt_s(n.t_s)}** {_cell(n.author)}: {_cell(n.text)}" for n in notes]
        lines.append("")
    if analysis.warnings:
        lines += [f"{h}# Warnings", ""] + [f"- {_cell(w)}" for w in analysis.warnings] + [""]
    return "\n".join(lines)


def render_markdown(journal: Journal) -> str:
    """The Markdown summary of one run."""
    return run_markdown(journal)
