"""Charts of one run for the HTML report: per-signal latency, errors and throughput; resources; the load.

Every chart shades the fault window and draws the injection, revert and recovery markers, so
the charts line up with the health matrix above them.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from chaoslab.report.model import ReportView, fmt_s
from chaoslab.report.svg import MARKER_COLOURS, Band, Chart, Marker, Series, Span, line_chart
from chaoslab.timeline import Signal, WindowStats

LATENCY_COLOURS = {"p50": "#54aeff", "p95": "#0969da", "p99": "#8250df"}


def run_markers(view: ReportView, *, notes: bool = False) -> list[Marker]:
    """Injection, revert and recovery markers (and notes, for the matrix)."""
    markers: list[Marker] = []
    for f in view.faults():
        on, off = f.record.injected_at_s, f.record.reverted_at_s
        if on is not None:
            markers.append(Marker(on, f"{f.label} injected at {fmt_s(on)}", MARKER_COLOURS["inject"]))
        if off is not None:
            markers.append(Marker(off, f"{f.label} reverted at {fmt_s(off)}", MARKER_COLOURS["revert"]))
    recovery_at = view.recovery_at_s()
    if recovery_at is not None:
        markers.append(Marker(recovery_at, f"recovered at {fmt_s(recovery_at)}", MARKER_COLOURS["recovered"], dash="0"))
    for e in view.events():
        if e.kind == "abort":
            markers.append(Marker(e.t_s, f"aborted: {e.message}", MARKER_COLOURS["abort"], "0"))
    if notes:
        for n in view.notes():
            markers.append(Marker(n.t_s, f"{fmt_s(n.t_s)} {n.author}: {n.text}", MARKER_COLOURS["note"], dash="1 3"))
    return markers


def fault_spans(view: ReportView) -> list[Span]:
    """The fault windows, shaded."""
    return [Span(s, e, "#fb8c00", f"fault {fmt_s(s)}–{fmt_s(e)}", 0.13) for s, e in view.fault_spans()]


MARKER_LEGEND = (
    ("injection", MARKER_COLOURS["inject"]),
    ("revert", MARKER_COLOURS["revert"]),
    ("recovered", MARKER_COLOURS["recovered"]),
    ("note", MARKER_COLOURS["note"]),
    ("abort", MARKER_COLOURS["abort"]),
)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """A row of colour swatches with labels."""
    return (
        "<div class='legend'>"
        + "".join(f"<span><i style='background:{c}'></i>{escape(n)}</span>" for n, c in items)
        + "</div>"
    )


def _points(windows: Sequence[WindowStats], window_s: float, key: str) -> list[tuple[float, float | None]]:
    pts: list[tuple[float, float | None]] = []
    last_index = None
    for w in windows:
        if last_index is not None and w.index > last_index + 1:
            pts.append(((last_index + 1) * window_s, None))  # a missing window is a gap, not a line
        t = w.start_s + window_s / 2
        value: float | None
        if key == "error_rate":
            value = w.error_count / w.count * 100 if w.count else None
        elif key == "throughput":
            value = w.count / window_s
        else:
            value = getattr(w, key)
        pts.append((t, value))
        last_index = w.index
    return pts


def signal_charts(view: ReportView, signal: Signal, *, width: int = 400) -> str:
    """Latency, error-rate and throughput charts of one signal."""
    name = signal.name
    ws = view.timeline.window_s
    # the run stops mid-window: its last, partial window has in-flight requests cut off, which
    # would draw as a fake error spike and throughput drop
    windows = [w for w in signal.windows if w.start_s + ws <= min(view.measured_s, view.end_s) + 1e-6]
    x_max = view.end_s
    spans = fault_spans(view)
    markers = run_markers(view)
    band = view.analysis.bands.get(name)
    latency_series = [
        Series(p, _points(windows, ws, f"{p}_ms"), LATENCY_COLOURS[p], width=2.0 if p == "p95" else 1.4)
        for p in ("p50", "p95", "p99")
    ]
    p95_max = band.p95_max_ms if band is not None else None
    bands = [Band(0.0, p95_max, "band p95")] if p95_max is not None else []
    values = [v for s in latency_series for _, v in s.points if v is not None and v > 0]
    log_y = bool(values) and max(values) / max(min(values), 1e-3) > 60
    charts = [
        line_chart(
            Chart(
                f"{name} latency",
                "ms, log" if log_y else "ms",
                x_max,
                latency_series,
                spans,
                markers,
                bands,
                log_y=log_y,
                width=width,
            )
        )
    ]
    err_bands = [Band(0.0, band.error_rate_max * 100, "band")] if band is not None else []
    err_points = _points(windows, ws, "error_rate")
    err_top = max([v for _, v in err_points if v is not None] + [b.high for b in err_bands] + [1.0])
    charts.append(
        line_chart(
            Chart(
                f"{name} errors",
                "%",
                x_max,
                [Series("error rate", err_points, "#cf222e")],
                spans,
                markers,
                err_bands,
                y_max=min(100.0, err_top * 1.1),
                width=width,
            )
        )
    )
    charts.append(
        line_chart(
            Chart(
                f"{name} throughput",
                "req/s",
                x_max,
                [Series("completed", _points(windows, ws, "throughput"), "#1a7f37")],
                spans,
                markers,
                width=width,
            )
        )
    )
    return "<div class='charts'>" + "".join(charts) + "</div>"


def signals_section(view: ReportView) -> str:
    """Per-signal charts, load signals first in onset order, then probes."""
    signals = {s.name: s for s in view.signals()}
    if not signals:
        return ""
    health = view.health()
    order = [n for n in view.onset_order() if n in signals] + [n for n in signals if n not in health]
    expected = set(view.journal.experiment.expected_impact)
    cascading = {c.signal for c in view.analysis.cascade}
    out = [
        "<h2 id='signals'>Signals</h2>",
        legend(
            [
                ("p50", LATENCY_COLOURS["p50"]),
                ("p95", LATENCY_COLOURS["p95"]),
                ("p99", LATENCY_COLOURS["p99"]),
                ("tolerance band", "#3fb27f"),
                ("fault window", "#fdd9b5"),
                *MARKER_LEGEND[:3],
            ]
        ),
    ]
    for name in dict.fromkeys(order):
        sig = signals[name]
        tags = ""
        if name in cascading:
            tags += "<span class='tag cascade'>cascade</span>"
        if name in expected:
            tags += "<span class='tag expected'>expected impact</span>"
        out.append(f"<div class='card'><h3>{escape(name)} <span class='tag'>{escape(sig.kind.value)}</span>{tags}</h3>")
        out.append(signal_charts(view, sig))
        out.append("</div>")
    return "".join(out)


RESOURCE_METRICS = (
    ("cpu_percent", "CPU", "%", 1.0),
    ("rss_bytes", "memory (RSS)", "MB", 1e-6),
    ("open_fds", "open files", "fds", 1.0),
    ("connections", "connections", "sockets", 1.0),
)
SERVICE_COLOURS = ("#0969da", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#57606a")


def resources_section(view: ReportView) -> str:
    """One chart per resource metric, one line per service."""
    resources = view.timeline.resources
    if not resources:
        return ""
    charts = []
    spans = fault_spans(view)
    markers = run_markers(view)
    for key, title, unit, scale in RESOURCE_METRICS:
        series = []
        for i, (service, samples) in enumerate(resources.items()):
            pts: list[tuple[float, float | None]] = [
                (s.t_s, float(value) * scale) for s in samples if (value := getattr(s, key)) is not None
            ]
            if pts:
                series.append(Series(service, pts, SERVICE_COLOURS[i % len(SERVICE_COLOURS)]))
        if series:
            charts.append(line_chart(Chart(title, unit, view.end_s, series, spans, markers, width=620)))
    if not charts:
        return ""
    return "<h2 id='resources'>Resources</h2><div class='card charts'>" + "".join(charts) + "</div>"


def generator_section(view: ReportView) -> str:
    """The load generator's offered vs sent, its lag, saturation flags, and the load profile."""
    gen = view.timeline.generator
    profile = view.journal.load_profile
    if not gen and not profile:
        return ""
    ws = view.timeline.window_s
    saturated = [g for g in gen if g.saturated]
    spans = [Span(g.index * ws, (g.index + 1) * ws, "#cf222e", "saturated", 0.18) for g in saturated]
    charts = []
    series = []
    if profile:
        series.append(Series("profile", [(t, r) for t, r in profile], "#8c959f", dash="5 3"))
    if gen:
        series.append(Series("offered", [(g.index * ws + ws / 2, g.offered / ws) for g in gen], "#0969da"))
        series.append(Series("sent", [(g.index * ws + ws / 2, g.sent / ws) for g in gen], "#1a7f37"))
    charts.append(
        line_chart(
            Chart(
                "load: profile, offered, sent",
                "req/s",
                view.end_s,
                series,
                [*fault_spans(view), *spans],
                extra_legend=(("saturated", "#cf222e"),) if saturated else (),
            )
        )
    )
    if gen:
        lag: list[tuple[float, float | None]] = [(g.index * ws + ws / 2, g.lag_p99_ms) for g in gen]
        charts.append(
            line_chart(Chart("generator lag p99", "ms", view.end_s, [Series("lag p99", lag, "#9a6700")], spans))
        )
    verdict = (
        f"<p class='bad'>The generator could not keep up in {len(saturated)} windows "
        f"({', '.join(fmt_s(g.index * ws) for g in saturated[:12])}): latencies there include its own lag.</p>"
        if saturated
        else "<p class='ok'>The generator kept up in every window.</p>"
    )
    return (
        "<h2 id='load'>Load generator</h2><div class='card'>"
        + verdict
        + "<div class='charts'>"
        + "".join(charts)
        + "</div></div>"
    )
