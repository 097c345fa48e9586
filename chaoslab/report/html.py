"""The HTML report: one self-contained file (inline CSS and SVG, no script, no network fetch).

Layout, top to bottom: verdict banner and key figures; the service × time health matrix in
order of onset (the spread of a cascade at a glance); findings (cascade, SLOs, reasons);
per-signal latency / error-rate / throughput charts with the band and the fault window;
faults; notes and events; resources; the load generator; the resolved experiment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

import yaml

from chaoslab.report.charts import (
    MARKER_LEGEND,
    generator_section,
    legend,
    resources_section,
    run_markers,
    signals_section,
)
from chaoslab.report.model import JournalView, Verdict, fmt_ms, fmt_pct, fmt_s
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
.banner.error{background:#6e40c9}
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


def render_html(journal: Mapping[str, Any]) -> str:
    """The run's report as one self-contained HTML document."""
    view = JournalView(journal)
    return page(f"chaoslab · {view.name} · {view.verdict.value}", run_sections(view))


def run_sections(view: JournalView, *, heading_level: int = 1) -> str:
    """Every section of one run's report (reused by the game-day report)."""
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


def header(view: JournalView, level: int = 1) -> str:
    """Title and run metadata."""
    raw = view.raw
    host_raw = raw.get("host")
    host: Mapping[str, Any] = host_raw if isinstance(host_raw, Mapping) else {}
    meta = [
        f"run {escape(view.run_id)}" if view.run_id else "",
        f"started {escape(str(raw.get('started_at') or '?'))}",
        f"duration {fmt_s(view.duration_s)}",
        f"window {view.window_s:g}s",
        "quick" if raw.get("quick") else "",
        f"host {escape(str(host.get('hostname')))}" if host.get("hostname") else "",
        f"chaoslab {escape(str(raw.get('chaoslab_version') or '?'))}",
    ]
    params = raw.get("parameters")
    if isinstance(params, Mapping) and params:
        meta.append("parameters " + escape(", ".join(f"{k}={v}" for k, v in params.items())))
    desc = str(view.experiment.get("description") or "")
    tag = f"h{min(max(level, 1), 3)}"
    return f"<{tag}>{escape(view.name)}</{tag}><div class='meta'>{' · '.join(m for m in meta if m)}</div>" + (
        f"<p class='meta'>{escape(' '.join(desc.split()))}</p>" if desc else ""
    )


def banner(view: JournalView) -> str:
    """The verdict banner: pass/fail, recovery, cascade, and why."""
    verdict = view.verdict
    cascade = view.cascade()
    lines: list[str] = []
    if view.recovered:
        lines.append(f"recovered {fmt_s(view.recovery_time_s)} after the fault was removed")
    elif verdict is not Verdict.ABORTED:
        lines.append(f"not recovered within the {fmt_s(view.recovery_budget_s)} budget")
    lines.append(
        "cascade: " + (", ".join(f"{c.signal} from {fmt_s(c.onset_s)}" for c in cascade) if cascade else "none")
    )
    if view.abort_reason:
        lines.append("aborted: " + view.abort_reason)
    lines.extend(f"revert failed: {e}" for e in view.revert_errors)
    lines.extend(r for r in view.reasons if not r.startswith("cascade"))
    items = "".join(f"<li>{escape(line)}</li>" for line in dict.fromkeys(lines))
    return (
        f"<div class='banner {verdict.value}' id='verdict'><div class='word'>{verdict.value}</div>"
        f"<div><div>exit code {view.exit_code}</div><ul class='why' style='margin:4px 0 0;padding-left:18px'>"
        f"{items}</ul></div></div>"
    )


def _fig(key: str, value: str, cls: str = "") -> str:
    return f"<div class='fig'><div class='k'>{escape(key)}</div><div class='v {cls}'>{escape(value)}</div></div>"


def figures(view: JournalView) -> str:
    """Key figures in boxes."""
    slos = view.slos()
    held = sum(1 for s in slos if s.ok)
    cascade = view.cascade()
    budget = view.recovery_budget_s
    items = [
        _fig(
            "recovery time",
            fmt_s(view.recovery_time_s)
            if view.recovered
            else ("run aborted" if view.verdict is Verdict.ABORTED else "not recovered"),
            "good" if view.recovered else ("" if view.verdict is Verdict.ABORTED else "bad"),
        ),
        _fig("recovery budget", fmt_s(budget)),
        _fig("from injection", fmt_s(view.recovery_from_injection_s)),
        _fig("time to impact", fmt_s(view.time_to_impact_s)),
        _fig("cascade", f"yes ({len(cascade)})" if cascade else "no", "bad" if cascade else "good"),
    ]
    if slos:
        items.append(_fig("SLOs held", f"{held} / {len(slos)}", "good" if held == len(slos) else "bad"))
    return f"<div class='figures'>{''.join(items)}</div>"


def matrix_section(view: JournalView) -> str:
    """The service × time health matrix, in order of onset."""
    health = view.health()
    if not health:
        return "<h2>Health over time</h2><p class='muted'>No analysis in this journal (run aborted early?).</p>"
    expected = set(view.expected_impact())
    cascading = {c.signal for c in view.cascade()}
    rows = []
    for name in view.onset_order():
        onset = view.onset_of(name)
        tag = "cascade" if name in cascading else ("expected" if name in expected else "")
        note = f"{tag + ' · ' if tag else ''}onset {fmt_s(onset)}" if onset is not None else tag
        rows.append(MatrixRow(name, health.get(name, ""), note, emphasis=name in cascading))
    phases = [(str(p.get("name")), float(p["start_s"]), float(p.get("end_s") or p["start_s"])) for p in view.phases()]
    svg = health_matrix(
        rows, window_s=view.window_s, x_max_s=view.end_s, phases=phases, markers=run_markers(view, notes=True)
    )
    swatches = legend([("healthy", "#3fb27f"), ("degraded", "#e5534b"), ("no data", "#d8dee4"), *MARKER_LEGEND])
    return (
        "<h2 id='health'>Health over time <span class='muted' style='font-weight:400;font-size:13px'>"
        "signals in order of onset</span></h2>"
        f"<div class='card'>{swatches}{svg}</div>"
    )


def findings_section(view: JournalView) -> str:
    """Cascade, SLOs, reasons and warnings."""
    out = ["<h2 id='findings'>Findings</h2>"]
    cascade = view.cascade()
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
    for sig in view.load_signals():
        name = str(sig.get("name"))
        imp = view.impact(name)
        base = view.baseline(name)
        band = view.band(name)
        if not imp and not base:
            continue
        impact_rows.append(
            f"<tr><td>{escape(name)}{' <span class=tag>expected</span>' if imp.get('expected') else ''}</td>"
            f"<td>{fmt_ms(base.get('p50_ms'))} / {fmt_ms(base.get('p95_ms'))} / {fmt_ms(base.get('p99_ms'))}</td>"
            f"<td>≤ {fmt_ms(band.get('p95_max_ms'))}, errors ≤ {fmt_pct(band.get('error_rate_max'))}</td>"
            f"<td>{fmt_s(imp.get('time_to_impact_s'))}</td><td>{imp.get('degraded_windows', '—')}</td>"
            f"<td>{fmt_ms(imp.get('peak_p95_ms'))}</td><td>{fmt_pct(imp.get('peak_error_rate'))}</td></tr>"
        )
    if impact_rows:
        out.append(
            "<div class='card'><h3>Impact per signal</h3><table><tr><th>signal</th><th>baseline p50 / p95 / p99</th>"
            "<th>band (p95, errors)</th><th>time to impact</th><th>degraded windows</th><th>peak p95</th>"
            f"<th>peak error rate</th></tr>{''.join(impact_rows)}</table></div>"
        )
    slos = view.slos()
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
    if view.warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in view.warnings)
        out.append(f"<div class='card'><h3>Warnings</h3><ul>{items}</ul></div>")
    return "".join(out)


def faults_section(view: JournalView) -> str:
    """The faults with apply/revert times and the revert check."""
    faults = view.faults()
    if not faults:
        return "<h2 id='faults'>Faults</h2><p class='muted'>No fault was applied.</p>"
    rows = []
    for f in faults:
        if f.revert_ok is True:
            check = "<span class='ok'>revert verified</span>"
        elif f.revert_ok is False:
            check = "<span class='bad'>revert FAILED</span>"
        else:
            check = "<span class='muted'>not checked</span>"
        error = f"<div class='bad'>{escape(f.error)}</div>" if f.error else ""
        rows.append(
            f"<tr><td>{escape(f.label)}</td><td>{escape(f.kind)}</td><td>{escape(f.target)}</td>"
            f"<td>{escape(f.description)}</td><td>{fmt_s(f.injected_at_s)}</td><td>{fmt_s(f.reverted_at_s)}</td>"
            f"<td>{check}{error}</td></tr>"
        )
    return (
        "<h2 id='faults'>Faults</h2><div class='card'><table><tr><th>fault</th><th>kind</th><th>target</th>"
        "<th>what</th><th>applied at</th><th>reverted at</th><th>check</th></tr>" + "".join(rows) + "</table></div>"
    )


def events_section(view: JournalView) -> str:
    """Notes and the event log."""
    events = view.events()
    if not events:
        return ""
    rows = []
    for e in events:
        kind = str(e.get("kind") or "")
        data_raw = e.get("data")
        data: Mapping[str, Any] = data_raw if isinstance(data_raw, Mapping) else {}
        message = escape(str(e.get("message") or ""))
        style = ""
        if kind == "note":
            style = " style='background:#fbefff'"
            author, text = str(data.get("author") or ""), str(data.get("text") or "")
            if author and text:
                message = f"<b>{escape(author)}</b>: {escape(text)}"
        rows.append(f"<tr{style}><td>{fmt_s(float(e['t_s']))}</td><td>{escape(kind)}</td><td>{message}</td></tr>")
    notes = len(view.notes())
    return (
        f"<h2 id='events'>Notes and events <span class='muted' style='font-weight:400;font-size:13px'>{notes} notes"
        "</span></h2><div class='card'><table><tr><th>t</th><th>kind</th><th>what</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )


def experiment_section(view: JournalView) -> str:
    """The resolved experiment (and topology) as YAML, folded."""
    out = ["<h2 id='experiment'>Resolved experiment</h2>"]
    for key, label in (("experiment", "experiment"), ("topology", "topology")):
        value = view.raw.get(key)
        if not value:
            continue
        try:
            text = yaml.safe_dump(json.loads(json.dumps(value, default=str)), sort_keys=False, allow_unicode=True)
        except (TypeError, ValueError, yaml.YAMLError):
            text = json.dumps(value, indent=2, default=str)
        out.append(f"<details class='card'{' open' if key == 'experiment' else ''}><summary>{label}</summary>")
        out.append(f"<pre>{escape(text)}</pre></details>")
    return "".join(out)
