"""The HTML report: one self-contained file (inline CSS and SVG, no script, no network fetch).

Layout, top to bottom: verdict banner and key figures; the service × time health matrix in
order of onset (the spread of a cascade at a glance); findings (cascade, SLOs, reasons);
per-signal latency / error-rate / throughput charts with the band and the fault window;
faults; notes and events; resources; the load generator; the resolved experiment.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import yaml

from chaoslab.analysis.model import Verdict
from chaoslab.journal import Journal
from chaoslab.report.charts import (
    MARKER_LEGEND,
    generator_section,
    legend,
    resources_section,
    run_markers,
    signals_section,
)
from chaoslab.report.model import ReportView, fmt_ms, fmt_pct, fmt_s
from chaoslab.report.svg import MatrixRow, health_matrix

CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f6f8fa;color:#1f2328;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:1300px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:17px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
h3{font-size:14px;margin:14px 0 6px}
.meta{color:#656d76;font-size:13px}
.banner{display:flex;align-items:center;gap:24px;border-radius:10px;padding:16px 22px;margin:16px 0;color:#fff}
.banner.pass{background:#1a7f37}.banner.fail{background:#cf222e}.banner.aborted{background:#9a6700}
.banner.error{background:#6e40c9}.banner.inconclusive{background:#0969da}
.banner .word{font-size:34px;font-weight:800;letter-spacing:.04em;text-transform:uppercase}
.banner .why{font-size:14px;opacity:.95}.banner .why li{margin:1px 0}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;margin:8px 0 4px}
.fig{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 14px}
.fig .k{color:#656d76;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.fig .v{font-size:22px;font-weight:700}.fig .v.bad{color:#cf222e}.fig .v.good{color:#1a7f37}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 14px;margin:10px 0;overflow-x:auto}
.charts{display:flex;flex-wrap:wrap;gap:6px}
svg{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
.ok{color:#1a7f37;font-weight:600}.bad{color:#cf222e;font-weight:600}.muted{color:#656d76}
.legend span{display:inline-block;margin-right:14px;font-size:12px;color:#424a53}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-2px}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:10px;overflow-x:auto;font-size:12px}
details summary{cursor:pointer;font-weight:600}
.tag{display:inline-block;padding:0 6px;border-radius:10px;font-size:12px;background:#eaeef2;margin-left:6px}
.tag.cascade{background:#ffebe9;color:#cf222e}.tag.expected{background:#fff8c5;color:#7d4e00}
"""


def page(title: str, body: str) -> str:
    """A complete HTML document around ``body``."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def render_html(journal: Journal) -> str:
    """The run's report as one self-contained HTML document."""
    return page(f"chaoslab · {journal.name} · {journal.verdict.value}", run_sections(journal))


def run_sections(journal: Journal, *, heading_level: int = 1) -> str:
    """Every section of one run's report (reused by the game-day report)."""
    view = ReportView(journal)
    parts = [
        header(view, heading_level),
        banner(view),
        figures(view),
        matrix_section(view),
        findings_section(view),
        signals_section(view),
        faults_section(view),
        events_section(view),
        resources_section(view),
        generator_section(view),
        experiment_section(view),
    ]
    return "".join(parts)


def header(view: ReportView, level: int = 1) -> str:
    """Title and run metadata."""
    journal = view.journal
    meta = [
        f"run {escape(journal.run_id)}" if journal.run_id else "",
        f"started {escape(journal.started_at or '?')}",
        f"duration {fmt_s(view.duration_s)}",
        f"window {journal.timeline.window_s:g}s",
        "quick" if journal.quick else "",
        f"host {escape(journal.host.hostname)}" if journal.host.hostname else "",
        f"chaoslab {escape(journal.chaoslab_version or '?')}",
    ]
    if journal.parameters:
        meta.append("parameters " + escape(", ".join(f"{k}={v}" for k, v in journal.parameters.items())))
    desc = journal.experiment.description
    tag = f"h{min(max(level, 1), 3)}"
    return f"<{tag}>{escape(journal.name)}</{tag}><div class='meta'>{' · '.join(m for m in meta if m)}</div>" + (
        f"<p class='meta'>{escape(' '.join(desc.split()))}</p>" if desc else ""
    )


def banner(view: ReportView) -> str:
    """The verdict banner: pass/fail, recovery, cascade, and why."""
    journal, analysis = view.journal, view.analysis
    verdict = journal.verdict
    cascade = analysis.cascade
    lines: list[str] = []
    if verdict is Verdict.INCONCLUSIVE:
        lines.append("not judged: the harness could not deliver the experiment")
        lines.extend(view.shortfalls())
    if analysis.recovered:
        lines.append(f"recovered {view.recovery_text()}")
    elif verdict is not Verdict.ABORTED:
        lines.append(view.recovery_text())
    lines.append(
        "cascade: " + (", ".join(f"{c.signal} from {fmt_s(c.onset_s)}" for c in cascade) if cascade else "none")
    )
    if journal.abort_reason:
        lines.append("aborted: " + journal.abort_reason)
    lines.extend(f"revert failed: {e}" for e in journal.revert_errors)
    lines.extend(r for r in analysis.reasons if not r.startswith("cascade"))
    items = "".join(f"<li>{escape(line)}</li>" for line in dict.fromkeys(lines))
    return (
        f"<div class='banner {verdict.value}' id='verdict'><div class='word'>{verdict.value}</div>"
        f"<div><div>exit code {journal.exit_code}</div><ul class='why' style='margin:4px 0 0;padding-left:18px'>"
        f"{items}</ul></div></div>"
    )


def _fig(key: str, value: str, cls: str = "") -> str:
    return f"<div class='fig'><div class='k'>{escape(key)}</div><div class='v {cls}'>{escape(value)}</div></div>"


def figures(view: ReportView) -> str:
    """Key figures in boxes."""
    analysis = view.analysis
    aborted = view.journal.verdict is Verdict.ABORTED
    slos = analysis.slos
    held = sum(1 for s in slos if s.ok)
    cascade = analysis.cascade
    late = analysis.recovery_observed_s
    not_recovered = f"{fmt_s(late)}, over budget" if late is not None else "not recovered"
    items = [
        _fig(
            "recovery time",
            fmt_s(analysis.recovery_time_s) if analysis.recovered else ("run aborted" if aborted else not_recovered),
            "good" if analysis.recovered else ("" if aborted else "bad"),
        ),
        _fig("recovery budget", fmt_s(analysis.recovery_budget_s)),
        _fig("from injection", fmt_s(analysis.recovery_from_injection_s)),
        _fig("time to impact", fmt_s(analysis.time_to_impact_s)),
        _fig("cascade", f"yes ({len(cascade)})" if cascade else "no", "bad" if cascade else "good"),
    ]
    if slos:
        items.append(_fig("SLOs held", f"{held} / {len(slos)}", "good" if held == len(slos) else "bad"))
    return f"<div class='figures'>{''.join(items)}</div>"


def matrix_section(view: ReportView) -> str:
    """The service × time health matrix, in order of onset."""
    health = view.health()
    if not health:
        return (
            "<h2>Health over time</h2><p class='muted'>"
            "No health to show: no signal was measured, or the run could not be analysed.</p>"
        )
    expected = set(view.journal.experiment.expected_impact)
    cascading = {c.signal for c in view.analysis.cascade}
    rows = []
    for name in view.onset_order():
        onset = view.onset_of(name)
        tag = "cascade" if name in cascading else ("expected" if name in expected else "")
        note = f"{tag + ' · ' if tag else ''}onset {fmt_s(onset)}" if onset is not None else tag
        rows.append(MatrixRow(name, health.get(name, ""), note, emphasis=name in cascading))
    phases = [(p.name, p.start_s, p.end_s) for p in view.timeline.phases]
    svg = health_matrix(
        rows,
        window_s=view.timeline.window_s,
        x_max_s=view.end_s,
        phases=phases,
        markers=run_markers(view, notes=True),
    )
    swatches = legend([("healthy", "#3fb27f"), ("degraded", "#e5534b"), ("no data", "#d8dee4"), *MARKER_LEGEND])
    return (
        "<h2 id='health'>Health over time <span class='muted' style='font-weight:400;font-size:13px'>"
        "signals in order of onset</span></h2>"
        f"<div class='card'>{swatches}{svg}</div>"
    )


def findings_section(view: ReportView) -> str:
    """Cascade, SLOs, reasons and warnings."""
    analysis = view.analysis
    out = ["<h2 id='findings'>Findings</h2>"]
    cascade = analysis.cascade
    if cascade:
        rows = "".join(
            f"<tr><td>{escape(c.signal)}</td><td>{fmt_s(c.onset_s)}</td><td>{fmt_s(c.peak_s)}</td>"
            f"<td>{fmt_ms(c.peak_p95_ms)}</td><td>{fmt_pct(c.peak_error_rate)}</td><td>{fmt_s(c.end_s)}</td></tr>"
            for c in cascade
        )
        out.append(
            "<div class='card'><h3>Cascade (in order of onset)</h3><table><tr><th>signal</th><th>onset</th>"
            f"<th>peak at</th><th>peak p95</th><th>peak error rate</th><th>end</th></tr>{rows}</table></div>"
        )
    else:
        out.append(
            "<div class='card'><h3>Cascade</h3><p class='ok'>No signal outside the expected impact degraded.</p></div>"
        )
    impact_rows = []
    for sig in view.timeline.load_signals():
        name = sig.name
        imp = analysis.impact.get(name)
        base = analysis.baseline.get(name)
        band = analysis.bands.get(name)
        if imp is None and base is None:
            continue
        baseline = f"{fmt_ms(base.p50_ms)} / {fmt_ms(base.p95_ms)} / {fmt_ms(base.p99_ms)}" if base else "— / — / —"
        limits = f"≤ {fmt_ms(band.p95_max_ms)}, errors ≤ {fmt_pct(band.error_rate_max)}" if band else "≤ —, errors ≤ —"
        if imp is not None:
            hit = (
                f"<td>{fmt_s(imp.time_to_impact_s)}</td><td>{imp.degraded_windows}</td>"
                f"<td>{fmt_ms(imp.peak_p95_ms)}</td><td>{fmt_pct(imp.peak_error_rate)}</td>"
            )
        else:
            hit = "<td>—</td><td>—</td><td>—</td><td>—</td>"
        expected_tag = " <span class=tag>expected</span>" if imp is not None and imp.expected else ""
        impact_rows.append(f"<tr><td>{escape(name)}{expected_tag}</td><td>{baseline}</td><td>{limits}</td>{hit}</tr>")
    if impact_rows:
        out.append(
            "<div class='card'><h3>Impact per signal</h3><table><tr><th>signal</th><th>baseline p50 / p95 / p99</th>"
            "<th>band (p95, errors)</th><th>time to impact</th><th>degraded windows</th><th>peak p95</th>"
            f"<th>peak error rate</th></tr>{''.join(impact_rows)}</table></div>"
        )
    slos = analysis.slos
    if slos:
        rows = "".join(
            f"<tr><td>{escape(s.signal)}</td><td>{escape(s.objective)}</td><td>{escape(s.observed)}</td>"
            f"<td class='{'ok' if s.ok else 'bad'}'>{'held' if s.ok else 'broken'}</td></tr>"
            for s in slos
        )
        out.append(
            "<div class='card'><h3>SLOs</h3><table><tr><th>signal</th><th>objective</th><th>observed</th>"
            f"<th>result</th></tr>{rows}</table></div>"
        )
    if analysis.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in analysis.warnings)
        out.append(f"<div class='card'><h3>Warnings</h3><ul>{items}</ul></div>")
    return "".join(out)


def faults_section(view: ReportView) -> str:
    """The faults with apply/revert times and the revert check."""
    faults = view.faults()
    if not faults:
        return "<h2 id='faults'>Faults</h2><p class='muted'>No fault was applied.</p>"
    rows = []
    for f in faults:
        r = f.record
        if r.revert_ok is True:
            check = "<span class='ok'>revert verified</span>"
        elif r.revert_ok is False:
            check = "<span class='bad'>revert FAILED</span>"
        else:
            check = "<span class='muted'>not checked</span>"
        error = f"<div class='bad'>{escape(r.error)}</div>" if r.error else ""
        rows.append(
            f"<tr><td>{escape(f.label)}</td><td>{escape(r.kind)}</td><td>{escape(r.target)}</td>"
            f"<td>{escape(r.description)}</td><td>{fmt_s(r.injected_at_s)}</td><td>{fmt_s(r.reverted_at_s)}</td>"
            f"<td>{check}{error}</td></tr>"
        )
    return (
        "<h2 id='faults'>Faults</h2><div class='card'><table><tr><th>fault</th><th>kind</th><th>target</th>"
        "<th>what</th><th>applied at</th><th>reverted at</th><th>check</th></tr>" + "".join(rows) + "</table></div>"
    )


def events_section(view: ReportView) -> str:
    """Notes and the event log."""
    events = view.events()
    if not events:
        return ""
    rows = []
    for e in events:
        message = escape(e.message)
        style = ""
        if e.kind == "note":
            style = " style='background:#fbefff'"
            author, text = str(e.data.get("author") or ""), str(e.data.get("text") or "")
            if author and text:
                message = f"<b>{escape(author)}</b>: {escape(text)}"
        rows.append(f"<tr{style}><td>{fmt_s(e.t_s)}</td><td>{escape(e.kind)}</td><td>{message}</td></tr>")
    notes = len(view.notes())
    return (
        f"<h2 id='events'>Notes and events <span class='muted' style='font-weight:400;font-size:13px'>{notes} notes"
        "</span></h2><div class='card'><table><tr><th>t</th><th>kind</th><th>what</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )


def experiment_section(view: ReportView) -> str:
    """The resolved experiment (and topology) as YAML, folded."""
    out = ["<h2 id='experiment'>Resolved experiment</h2>"]
    journal = view.journal
    documents: list[tuple[str, Any]] = [
        ("experiment", journal.experiment.model_dump(mode="json", by_alias=True)),
        ("topology", dict(journal.topology)),
    ]
    for label, value in documents:
        if not value:
            continue
        try:
            text = yaml.safe_dump(json.loads(json.dumps(value, default=str)), sort_keys=False, allow_unicode=True)
        except (TypeError, ValueError, yaml.YAMLError):
            text = json.dumps(value, indent=2, default=str)
        out.append(f"<details class='card'{' open' if label == 'experiment' else ''}><summary>{label}</summary>")
        out.append(f"<pre>{escape(text)}</pre></details>")
    return "".join(out)
