"""The terminal summary (rich) and the ``--json`` machine summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chaoslab.analysis.model import Verdict
from chaoslab.journal import Journal
from chaoslab.report.markdown import compress_health
from chaoslab.report.model import ReportView, describe_cascade, fmt_ms, fmt_pct, fmt_s

VERDICT_STYLE = {
    Verdict.PASS: "bold white on green",
    Verdict.FAIL: "bold white on red",
    Verdict.INCONCLUSIVE: "bold black on bright_cyan",
    Verdict.ABORTED: "bold black on yellow",
    Verdict.ERROR: "bold white on magenta",
}
HEALTH_STYLE = {"h": ("▆", "green"), "d": ("█", "red"), "n": ("·", "grey50")}


def summary_json(journal: Journal) -> dict[str, Any]:
    """The machine summary printed by ``--json``: verdict, figures, cascade, SLOs, reasons."""
    view = ReportView(journal)
    analysis = journal.analysis
    return {
        "schema_version": 1,
        "run_id": journal.run_id,
        "experiment": journal.name,
        "verdict": journal.verdict.value,
        "exit_code": journal.exit_code,
        "recovered": analysis.recovered,
        "recovery_time_s": analysis.recovery_time_s,
        "recovery_from_injection_s": analysis.recovery_from_injection_s,
        "recovery_observed_s": analysis.recovery_observed_s,
        "recovery_budget_s": analysis.recovery_budget_s,
        "time_to_impact_s": analysis.time_to_impact_s,
        "shortfalls": view.shortfalls(),
        "delivery": None if analysis.delivery is None else analysis.delivery.to_dict(),
        "cascade": [
            {
                "signal": c.signal,
                "onset_s": c.onset_s,
                "peak_s": c.peak_s,
                "peak": {"p95_ms": c.peak_p95_ms, "error_rate": c.peak_error_rate},
                "end_s": c.end_s,
            }
            for c in analysis.cascade
        ],
        "slos": [s.to_dict() for s in analysis.slos],
        "faults": [
            {
                "label": f.label,
                "kind": f.record.kind,
                "target": f.record.target,
                "injected_at_s": f.record.injected_at_s,
                "revert_started_s": f.record.revert_started_s,
                "reverted_at_s": f.record.reverted_at_s,
                "revert_ok": f.record.revert_ok,
            }
            for f in view.faults()
        ],
        "reasons": list(analysis.reasons),
        "warnings": list(analysis.warnings),
        "abort_reason": journal.abort_reason or None,
        "revert_errors": list(journal.revert_errors),
        "notes": len(view.notes()),
        "started_at": journal.started_at or None,
        "duration_s": view.duration_s,
    }


def health_text(health: str, width: int = 60) -> Text:
    """A health string as coloured blocks."""
    text = Text()
    for ch in compress_health(health, width):
        glyph, style = HEALTH_STYLE.get(ch, ("?", "grey50"))
        text.append(glyph, style=style)
    return text


def print_summary(journal: Journal, console: Console | None = None) -> None:
    """Print the verdict, key figures, cascade and the health matrix to the terminal."""
    console = console or Console(stderr=True)
    view = ReportView(journal)
    analysis = journal.analysis
    verdict = journal.verdict
    head = Text()
    head.append(f" {verdict.value.upper()} ", style=VERDICT_STYLE[verdict])
    head.append(f"  {journal.name}  exit {journal.exit_code}")
    figures = Table.grid(padding=(0, 2))
    figures.add_column(style="bold")
    figures.add_column()
    if verdict is Verdict.INCONCLUSIVE:
        figures.add_row("NOT JUDGED", Text("the harness could not deliver the experiment", style="bold bright_cyan"))
        for line in view.shortfalls():
            figures.add_row("shortfall", Text(line, style="bold bright_cyan"))
    recovered = view.recovery_text()
    if analysis.recovered:
        recovered += f" ({fmt_s(analysis.recovery_from_injection_s)} after injection)"
    figures.add_row("recovery", Text(recovered, style="green" if analysis.recovered else "red"))
    figures.add_row("time to impact", fmt_s(analysis.time_to_impact_s))
    cascade = analysis.cascade
    figures.add_row(
        "cascade",
        Text("; ".join(describe_cascade(c) for c in cascade), style="red") if cascade else Text("none", style="green"),
    )
    for slo in analysis.slos:
        figures.add_row(
            "SLO", Text(f"{slo.signal} {slo.objective}: {slo.observed}", style="green" if slo.ok else "red")
        )
    if journal.abort_reason:
        figures.add_row("aborted", Text(journal.abort_reason, style="yellow"))
    for error in journal.revert_errors:
        figures.add_row("revert failed", Text(f"{error} — run `chaoslab rollback`", style="bold red"))
    for warning in analysis.warnings:
        figures.add_row("warning", Text(warning, style="yellow"))
    health = view.health()
    if health:
        matrix = Table(box=None, show_header=True, header_style="dim", padding=(0, 1))
        matrix.add_column("signal")
        matrix.add_column("onset", justify="right")
        matrix.add_column(f"health over {fmt_s(view.end_s)}")
        for name in view.onset_order():
            matrix.add_row(name, fmt_s(view.onset_of(name)), health_text(health.get(name, "")))
        body: Any = Table.grid()
        body.add_row(figures)
        body.add_row(Text(""))
        body.add_row(matrix)
    else:
        body = figures
    console.print(Panel(body, title=head, title_align="left", expand=False))
    for f in view.faults():
        state = {True: "[green]revert verified[/]", False: "[bold red]revert FAILED[/]", None: "[dim]not checked[/]"}
        record = f.record
        began = ""
        let_go, off = record.revert_started_s, record.reverted_at_s
        if let_go is not None and off is not None and let_go < off - 0.05:
            # a restart (or a kill a supervisor answers): recovery counts from when chaoslab let go
            began = f" (let go at {fmt_s(let_go)})"
        console.print(
            f"  {f.label} {record.target}: on {fmt_s(record.injected_at_s)} off {fmt_s(off)}{began} "
            f"{state[record.revert_ok]}",
            highlight=False,
        )
    for name in health:
        impact = analysis.impact.get(name)
        if impact is not None:
            console.print(
                f"  {name} peak p95 {fmt_ms(impact.peak_p95_ms)} errors {fmt_pct(impact.peak_error_rate)}",
                highlight=False,
            )
