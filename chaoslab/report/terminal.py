"""The terminal summary (rich) and the ``--json`` machine summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chaoslab.report.markdown import compress_health
from chaoslab.report.model import JournalView, Verdict, fmt_ms, fmt_pct, fmt_s

VERDICT_STYLE = {
    Verdict.PASS: "bold white on green",
    Verdict.FAIL: "bold white on red",
    Verdict.ABORTED: "bold black on yellow",
    Verdict.ERROR: "bold white on magenta",
}
HEALTH_STYLE = {"h": ("▆", "green"), "d": ("█", "red"), "n": ("·", "grey50")}


def summary_json(journal: Mapping[str, Any]) -> dict[str, Any]:
    """The machine summary printed by ``--json``: verdict, figures, cascade, SLOs, reasons."""
    view = JournalView(journal)
    return {
        "schema_version": 1,
        "run_id": view.run_id,
        "experiment": view.name,
        "verdict": view.verdict.value,
        "exit_code": view.exit_code,
        "recovered": view.recovered,
        "recovery_time_s": view.recovery_time_s,
        "recovery_from_injection_s": view.recovery_from_injection_s,
        "recovery_budget_s": view.recovery_budget_s,
        "time_to_impact_s": view.time_to_impact_s,
        "cascade": [
            {
                "signal": c.signal,
                "onset_s": c.onset_s,
                "peak_s": c.peak_s,
                "peak": {"p95_ms": c.peak_p95_ms, "error_rate": c.peak_error_rate},
                "end_s": c.end_s,
            }
            for c in view.cascade()
        ],
        "slos": [
            {"signal": s.signal, "objective": s.objective, "observed": s.observed, "ok": s.ok} for s in view.slos()
        ],
        "faults": [
            {
                "label": f.label,
                "kind": f.kind,
                "target": f.target,
                "injected_at_s": f.injected_at_s,
                "reverted_at_s": f.reverted_at_s,
                "revert_ok": f.revert_ok,
            }
            for f in view.faults()
        ],
        "reasons": view.reasons,
        "warnings": view.warnings,
        "abort_reason": view.abort_reason,
        "revert_errors": view.revert_errors,
        "notes": len(view.notes()),
        "started_at": journal.get("started_at"),
        "duration_s": view.duration_s,
    }


def health_text(health: str, width: int = 60) -> Text:
    """A health string as coloured blocks."""
    text = Text()
    for ch in compress_health(health, width):
        glyph, style = HEALTH_STYLE.get(ch, ("?", "grey50"))
        text.append(glyph, style=style)
    return text


def print_summary(journal: Mapping[str, Any], console: Console | None = None) -> None:
    """Print the verdict, key figures, cascade and the health matrix to the terminal."""
    console = console or Console(stderr=True)
    view = JournalView(journal)
    verdict = view.verdict
    head = Text()
    head.append(f" {verdict.value.upper()} ", style=VERDICT_STYLE[verdict])
    head.append(f"  {view.name}  exit {view.exit_code}")
    figures = Table.grid(padding=(0, 2))
    figures.add_column(style="bold")
    figures.add_column()
    recovered = (
        f"{fmt_s(view.recovery_time_s)} after revert ({fmt_s(view.recovery_from_injection_s)} after injection)"
        if view.recovered
        else f"not recovered within {fmt_s(view.recovery_budget_s)}"
    )
    figures.add_row("recovery", Text(recovered, style="green" if view.recovered else "red"))
    figures.add_row("time to impact", fmt_s(view.time_to_impact_s))
    cascade = view.cascade()
    figures.add_row(
        "cascade",
        Text("; ".join(c.describe() for c in cascade), style="red") if cascade else Text("none", style="green"),
    )
    for slo in view.slos():
        figures.add_row(
            "SLO", Text(f"{slo.signal} {slo.objective}: {slo.observed}", style="green" if slo.ok else "red")
        )
    if view.abort_reason:
        figures.add_row("aborted", Text(view.abort_reason, style="yellow"))
    for error in view.revert_errors:
        figures.add_row("revert failed", Text(f"{error} — run `chaoslab rollback`", style="bold red"))
    for warning in view.warnings:
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
        console.print(
            f"  {f.label} {f.target}: on {fmt_s(f.injected_at_s)} off {fmt_s(f.reverted_at_s)} {state[f.revert_ok]}",
            highlight=False,
        )
    peaks = [
        f"{name} peak p95 {fmt_ms(view.impact(name).get('peak_p95_ms'))}"
        f" errors {fmt_pct(view.impact(name).get('peak_error_rate'))}"
        for name in health
        if view.impact(name)
    ]
    for line in peaks:
        console.print(f"  {line}", highlight=False)
