"""Hand-written inline SVG charts: time series with bands, shaded spans and markers; a health matrix.

No plotting library and no script: the HTML report must open from a CI artifact with no network,
and a few hundred lines of SVG keep ``chaoslab report`` fast to import and to render.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

FONT = "font-family='system-ui,-apple-system,Segoe UI,Roboto,sans-serif'"
HEALTH_COLOURS = {"h": "#3fb27f", "d": "#e5534b", "n": "#d8dee4"}
MARKER_COLOURS = {
    "inject": "#d97706",
    "revert": "#2563eb",
    "recovered": "#15803d",
    "note": "#7c3aed",
    "abort": "#b91c1c",
}


@dataclass(frozen=True, slots=True)
class Series:
    """One line: (t_s, value) points; ``None`` values leave a gap."""

    label: str
    points: Sequence[tuple[float, float | None]]
    colour: str
    dash: str | None = None
    width: float = 1.6


@dataclass(frozen=True, slots=True)
class Span:
    """A shaded stretch of time (the fault window, saturated windows)."""

    start_s: float
    end_s: float
    colour: str
    label: str = ""
    opacity: float = 0.12


@dataclass(frozen=True, slots=True)
class Marker:
    """A vertical line at an instant (injection, revert, recovery, a note)."""

    t_s: float
    label: str
    colour: str
    dash: str = "4 3"


@dataclass(frozen=True, slots=True)
class Band:
    """A horizontal healthy zone from ``low`` to ``high``, with its limit drawn as a line."""

    low: float
    high: float
    label: str
    colour: str = "#3fb27f"


@dataclass(frozen=True, slots=True)
class Chart:
    """A time-series chart."""

    title: str
    unit: str
    x_max_s: float
    series: Sequence[Series]
    spans: Sequence[Span] = ()
    markers: Sequence[Marker] = ()
    bands: Sequence[Band] = ()
    y_max: float | None = None
    log_y: bool = False
    width: int = 620
    height: int = 200
    value_format: str = "{:g}"
    extra_legend: Sequence[tuple[str, str]] = field(default_factory=tuple)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5, 5 × 10^k steps)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    exp = math.floor(math.log10(raw))
    base = 10.0**exp
    step = next(m * base for m in (1, 2, 2.5, 5, 10) if m * base >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    t = first
    while t <= high + step * 1e-6:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _fmt_tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def line_chart(chart: Chart) -> str:
    """The chart as one ``<svg>`` element."""
    left, right, top, bottom = 52, 12, 38, 26
    w, h = chart.width, chart.height
    pw, ph = w - left - right, h - top - bottom
    x_max = max(chart.x_max_s, 1e-9)
    values = [v for s in chart.series for _, v in s.points if v is not None and math.isfinite(v)]
    band_tops = [b.high for b in chart.bands]
    y_top = chart.y_max if chart.y_max is not None else max([*values, *band_tops, 0.0])
    if chart.log_y:
        positives = [v for v in [*values, *band_tops] if v > 0]
        y_lo = 10 ** math.floor(math.log10(min(positives))) if positives else 1.0
        y_hi = 10 ** math.ceil(math.log10(max(y_top, y_lo * 10)))
        lo_l, hi_l = math.log10(y_lo), math.log10(y_hi)

        def ypos(v: float) -> float:
            v = max(v, y_lo)
            return top + ph - (math.log10(v) - lo_l) / (hi_l - lo_l) * ph

        y_ticks = [10.0**k for k in range(int(lo_l), int(hi_l) + 1)]
    else:
        y_hi = y_top * 1.08 if y_top > 0 else 1.0
        y_ticks = nice_ticks(0.0, y_hi, 4)
        y_hi = max(y_hi, y_ticks[-1])

        def ypos(v: float) -> float:
            return top + ph - (v / y_hi) * ph

    def xpos(t: float) -> float:
        return left + min(max(t, 0.0), x_max) / x_max * pw

    out: list[str] = [
        f"<svg class='chart' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' width='{w}' height='{h}' "
        f"role='img' aria-label='{escape(chart.title)}' {FONT} font-size='11'>",
        f"<text x='{left}' y='15' font-weight='600' font-size='12' fill='#1f2328'>{escape(chart.title)}"
        f"<tspan fill='#656d76' font-weight='400'> ({escape(chart.unit)})</tspan></text>",
        f"<rect x='{left}' y='{top}' width='{pw}' height='{ph}' fill='#ffffff' stroke='#d0d7de'/>",
    ]
    for span in chart.spans:
        x0, x1 = xpos(span.start_s), xpos(span.end_s)
        out.append(
            f"<rect x='{x0:.1f}' y='{top}' width='{max(x1 - x0, 0.5):.1f}' height='{ph}' fill='{span.colour}' "
            f"fill-opacity='{span.opacity}'><title>{escape(span.label)}</title></rect>"
        )
    for band in chart.bands:
        y_high, y_low = ypos(band.high), ypos(max(band.low, 1e-12) if chart.log_y else band.low)
        out.append(
            f"<rect x='{left}' y='{y_high:.1f}' width='{pw}' height='{max(y_low - y_high, 0):.1f}' "
            f"fill='{band.colour}' fill-opacity='0.08'/>"
            f"<line x1='{left}' x2='{left + pw}' y1='{y_high:.1f}' y2='{y_high:.1f}' stroke='{band.colour}' "
            f"stroke-width='1.2' stroke-dasharray='6 3'><title>{escape(band.label)}</title></line>"
        )
    for tick in y_ticks:
        y = ypos(tick)
        if y < top - 0.5 or y > top + ph + 0.5:
            continue
        out.append(
            f"<line x1='{left}' x2='{left + pw}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eaeef2'/>"
            f"<text x='{left - 5}' y='{y + 3.5:.1f}' text-anchor='end' fill='#656d76'>{_fmt_tick(tick)}</text>"
        )
    for tick in nice_ticks(0.0, x_max, 8):
        x = xpos(tick)
        out.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top + ph}' y2='{top + ph + 4}' stroke='#8c959f'/>"
            f"<text x='{x:.1f}' y='{top + ph + 15}' text-anchor='middle' fill='#656d76'>{_fmt_tick(tick)}s</text>"
        )
    for series in chart.series:
        for segment in _segments(series.points):
            pts = " ".join(f"{xpos(t):.1f},{ypos(v):.1f}" for t, v in segment)
            dash = f" stroke-dasharray='{series.dash}'" if series.dash else ""
            if len(segment) == 1:
                t, v = segment[0]
                out.append(f"<circle cx='{xpos(t):.1f}' cy='{ypos(v):.1f}' r='1.8' fill='{series.colour}'/>")
            else:
                out.append(
                    f"<polyline points='{pts}' fill='none' stroke='{series.colour}' stroke-width='{series.width}'"
                    f" stroke-linejoin='round'{dash}><title>{escape(series.label)}</title></polyline>"
                )
    for marker in chart.markers:
        x = xpos(marker.t_s)
        out.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{top + ph}' stroke='{marker.colour}' "
            f"stroke-width='1.3' stroke-dasharray='{marker.dash}'><title>{escape(marker.label)}</title></line>"
        )
    legend = [(s.label, s.colour) for s in chart.series] + [(b.label, b.colour) for b in chart.bands]
    legend += list(chart.extra_legend)
    x = w - right
    for label, colour in reversed(legend):
        text_w = 6.2 * len(label) + 16
        x -= text_w
        out.append(
            f"<rect x='{x:.1f}' y='25' width='10' height='3' fill='{colour}'/>"
            f"<text x='{x + 13:.1f}' y='30' fill='#424a53'>{escape(label)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    segments: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for t, v in points:
        if v is None or not math.isfinite(v):
            if current:
                segments.append(current)
            current = []
        else:
            current.append((t, v))
    if current:
        segments.append(current)
    return segments


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One row of the health matrix: a signal, its health string and a note shown at the right."""

    label: str
    health: str
    note: str = ""
    emphasis: bool = False


def health_matrix(
    rows: Sequence[MatrixRow],
    *,
    window_s: float,
    x_max_s: float,
    phases: Sequence[tuple[str, float, float]] = (),
    markers: Sequence[Marker] = (),
    width: int = 1240,
) -> str:
    """Signals × windows coloured healthy / degraded / no data, phases on top, markers across."""
    label_w, note_w, row_h, top = 190, 150, 22, 40
    pw = width - label_w - note_w - 10
    h = top + row_h * max(len(rows), 1) + 34
    x_max = max(x_max_s, window_s)

    def xpos(t: float) -> float:
        return label_w + min(max(t, 0.0), x_max) / x_max * pw

    out = [
        f"<svg class='matrix' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {h}' width='{width}' "
        f"height='{h}' role='img' aria-label='health matrix' {FONT} font-size='12'>"
    ]
    phase_colours = {"warmup": "#eaeef2", "baseline": "#dbeafe", "fault": "#fde2cf", "recovery": "#dcfce7"}
    for name, start, end in phases:
        x0, x1 = xpos(start), xpos(end)
        out.append(
            f"<rect x='{x0:.1f}' y='6' width='{max(x1 - x0, 0.5):.1f}' height='18' "
            f"fill='{phase_colours.get(name, '#eaeef2')}' stroke='#ffffff'/>"
        )
        if x1 - x0 > 40:
            out.append(
                f"<text x='{(x0 + x1) / 2:.1f}' y='19' text-anchor='middle' fill='#424a53'>{escape(name)}</text>"
            )
    cell_w = window_s / x_max * pw
    for r, row in enumerate(rows):
        y = top + r * row_h
        weight = "600" if row.emphasis else "400"
        out.append(
            f"<text x='{label_w - 8}' y='{y + 15}' text-anchor='end' font-weight='{weight}' fill='#1f2328'>"
            f"{escape(row.label)}</text>"
        )
        # merge runs of the same state into one rect: far fewer elements on long runs
        i = 0
        while i < len(row.health):
            state = row.health[i]
            j = i
            while j < len(row.health) and row.health[j] == state:
                j += 1
            x0 = xpos(i * window_s)
            x1 = xpos(j * window_s)
            title = {"h": "healthy", "d": "degraded", "n": "no data"}.get(state, state)
            out.append(
                f"<rect x='{x0:.2f}' y='{y + 2}' width='{max(x1 - x0, 0.5):.2f}' height='{row_h - 4}' "
                f"fill='{HEALTH_COLOURS.get(state, '#d8dee4')}'><title>{escape(row.label)}: {title} "
                f"{i * window_s:g}–{j * window_s:g}s</title></rect>"
            )
            i = j
        if cell_w >= 6:
            for k in range(1, len(row.health)):
                x = xpos(k * window_s)
                out.append(f"<line x1='{x:.2f}' x2='{x:.2f}' y1='{y + 2}' y2='{y + row_h - 2}' stroke='#ffffff'/>")
        if row.note:
            out.append(f"<text x='{label_w + pw + 8}' y='{y + 15}' fill='#656d76'>{escape(row.note)}</text>")
    bottom = top + row_h * max(len(rows), 1)
    for marker in markers:
        x = xpos(marker.t_s)
        out.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top - 4}' y2='{bottom}' stroke='{marker.colour}' stroke-width='2' "
            f"stroke-dasharray='{marker.dash}'><title>{escape(marker.label)}</title></line>"
            f"<path d='M{x - 5:.1f},{top - 12} L{x + 5:.1f},{top - 12} L{x:.1f},{top - 4} Z' fill='{marker.colour}'>"
            f"<title>{escape(marker.label)}</title></path>"
        )
    for tick in nice_ticks(0.0, x_max, 12):
        x = xpos(tick)
        out.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{bottom}' y2='{bottom + 4}' stroke='#8c959f'/>"
            f"<text x='{x:.1f}' y='{bottom + 16}' text-anchor='middle' fill='#656d76' font-size='11'>"
            f"{_fmt_tick(tick)}s</text>"
        )
    out.append("</svg>")
    return "".join(out)
