"""Hand-written SVG charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from chaoslab.report.svg import Band, Chart, Marker, MatrixRow, Series, Span, health_matrix, line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


class TestNiceTicks:
    def test_round_steps(self) -> None:
        """Ticks use 1/2/2.5/5 × 10^k steps covering the range."""
        assert nice_ticks(0, 28, 8) == [0, 5, 10, 15, 20, 25]
        assert nice_ticks(0, 1.08, 4) == [0.0, 0.5, 1.0]
        assert nice_ticks(0, 900, 4) == [0, 250, 500, 750]

    def test_degenerate_range(self) -> None:
        """An empty range gives one tick instead of looping."""
        assert nice_ticks(3, 3) == [3]


class TestLineChart:
    def test_gaps_split_the_line_and_parts_are_drawn(self) -> None:
        """A None value splits the polyline; spans, bands and markers are all present and well-formed XML."""
        chart = Chart(
            "lat <p95>",
            "ms",
            10.0,
            [Series("p95", [(0.5, 1.0), (1.5, 2.0), (2.5, None), (3.5, 4.0), (4.5, 5.0)], "#000")],
            spans=[Span(2.0, 4.0, "#f80", "fault")],
            markers=[Marker(2.0, "injected", "#f00")],
            bands=[Band(0.0, 3.0, "band")],
        )
        root = ET.fromstring(line_chart(chart))
        assert len(root.findall(f"{SVG}polyline")) == 2
        assert "lat <p95>" in "".join(root.itertext())
        titles = [t.text for t in root.iter(f"{SVG}title")]
        assert {"fault", "injected", "band"} <= set(titles)

    def test_log_scale_keeps_small_values_visible(self) -> None:
        """On a log axis, 3 ms and 900 ms are far apart instead of 3 ms sitting on the floor."""
        chart = Chart("x", "ms", 2.0, [Series("p", [(0.5, 3.0), (1.5, 900.0)], "#000")], log_y=True, height=200)
        root = ET.fromstring(line_chart(chart))
        line = root.find(f"{SVG}polyline")
        assert line is not None
        (_, y1), (_, y2) = (tuple(map(float, p.split(","))) for p in line.attrib["points"].split())
        assert y1 - y2 > 60


class TestHealthMatrix:
    def test_runs_of_the_same_state_are_one_rect(self) -> None:
        """``hhddn`` draws three cells: healthy, degraded and no data, with their titles."""
        svg = health_matrix([MatrixRow("api:search", "hhddn")], window_s=1.0, x_max_s=5.0)
        root = ET.fromstring(svg)
        titles = [t.text or "" for t in root.iter(f"{SVG}title")]
        assert titles == ["api:search: healthy 0–2s", "api:search: degraded 2–4s", "api:search: no data 4–5s"]
