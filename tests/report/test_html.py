"""The HTML report."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

from chaoslab.analysis import analyse
from chaoslab.journal import Journal
from chaoslab.report import render_html
from chaoslab.testing import TimelineBuilder, experiment_spec, sample_journal


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


class TestRenderHtml:
    def test_self_contained(self) -> None:
        """No script, no external stylesheet, image or font: the file works from a CI artifact offline."""
        parsed = _parse(render_html(sample_journal()))
        assert "script" not in parsed.tags
        assert "link" not in parsed.tags
        assert "img" not in parsed.tags
        urls = [v for k, v in parsed.attrs if k in ("src", "href") and v]
        assert urls == []
        assert "@import" not in render_html(sample_journal())

    def test_banner_figures_and_cascade(self) -> None:
        """A failing run shows FAIL, the recovery time, and the cascading signal with its onset."""
        html = render_html(sample_journal(cascade=True))
        assert "class='banner fail'" in html
        assert "recovered 2.0s after the fault was removed" in html
        assert "api:documents from 13.0s" in html
        assert "yes (1)" in html

    def test_passing_run(self) -> None:
        """A passing run shows PASS and no cascade."""
        html = render_html(sample_journal(cascade=False))
        assert "class='banner pass'" in html
        assert "No signal outside the expected impact degraded." in html

    def test_charts_per_signal_and_resources(self) -> None:
        """Three charts per signal (4 signals), four resource charts and two load charts, plus the matrix."""
        html = render_html(sample_journal())
        assert html.count("<svg class='chart'") == 4 * 3 + 4 + 2
        assert html.count("<svg class='matrix'") == 1

    def test_markers_and_notes_on_the_matrix(self) -> None:
        """Injection, revert, recovery and both notes appear as markers with their times."""
        html = render_html(sample_journal())
        assert "f0-latency injected at 12.0s" in html
        assert "f0-latency reverted at 20.0s" in html
        assert "recovered at 22.0s" in html
        assert "14.5s alice: search is slow, as expected" in html

    def test_user_text_is_escaped(self) -> None:
        """A note with markup is shown as text, not interpreted."""
        html = render_html(sample_journal())
        assert "&lt;investigating&gt;" in html
        assert "<investigating>" not in html

    def test_fault_check_and_abort(self) -> None:
        """A failed revert is flagged in the faults table and exits 4; an abort shows the aborted banner."""
        html = render_html(sample_journal(revert_failed=True))
        assert "revert FAILED" in html
        assert "class='banner fail'" in html  # the verdict stands; the exit code says the revert failed
        assert "exit code 4" in html
        aborted = render_html(sample_journal(aborted=True))
        assert "class='banner aborted'" in aborted
        assert "aborted: abort condition: error rate of api:documents 100% &gt; 90% for 3s" in aborted

    def test_saturation_and_experiment(self) -> None:
        """Saturated generator windows are listed; the resolved experiment is embedded as YAML."""
        html = render_html(sample_journal())
        assert "could not keep up in 2 windows (15.0s, 16.0s)" in html
        assert re.search(r"expected_impact:\s*\n- api:search", html)

    def test_run_that_measured_nothing_renders(self) -> None:
        """A run that died before measuring anything still gives a page: error banner, no health, the reason."""
        timeline = TimelineBuilder().phases(warmup=2).build()
        spec = experiment_spec()
        journal = Journal(run_id="r", experiment=spec, timeline=timeline, analysis=analyse(timeline, spec))
        html = render_html(journal)
        assert "class='banner error'" in html
        assert "No health to show" in html
        assert "the timeline has no signals: nothing to judge" in html


class TestPartialWindow:
    def test_last_partial_window_is_not_drawn(self) -> None:
        """A window that starts after the end of measurement minus one window is left out of the charts."""
        journal = sample_journal()
        # the run stopped half-way through window 27
        html = render_html(
            dataclasses.replace(journal, timeline=dataclasses.replace(journal.timeline, duration_s=27.5))
        )
        full = render_html(sample_journal())
        assert html.count("<polyline") == full.count("<polyline")
        # the throughput line of api:search loses its last point: 27 points instead of 28
        search = html[html.index("api:search throughput") :]
        points = search[search.index("points='") + 8 :].split("'")[0].split()
        assert len(points) == 27
