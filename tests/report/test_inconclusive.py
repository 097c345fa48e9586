"""An inconclusive run says so, with the figures, in every report: terminal, HTML, JUnit, Markdown, --json."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from rich.console import Console

from chaoslab.analysis import analyse
from chaoslab.journal import Journal
from chaoslab.report.html import render_html
from chaoslab.report.junit import render_junit
from chaoslab.report.markdown import render_markdown
from chaoslab.report.terminal import print_summary, summary_json
from chaoslab.testing import TimelineBuilder, experiment_spec
from chaoslab.timeline import GeneratorWindow

SHORTFALL = "fault phase: the load generator fell behind in 5 of 5 windows (limit 50%)"
UNSENT = "fault phase: 21.0% of 100 offered requests were not sent (limit 1%)"


def journal(*, behind: bool = True, kill_late: bool = False) -> Journal:
    """A run whose generator fell behind through the fault phase (and left 21 % unsent), as the pipeline saves it."""
    builder = TimelineBuilder().phases(warmup=2, baseline=10, fault=5, recovery=13)
    if kill_late:
        builder.fault(kind="process_kill", target="api", revert_started_s=12.0, reverted_at_s=17.0)
    else:
        builder.fault()
    override = {i: {"unsent": 4 if i < 16 else 5} for i in range(12, 17)} if behind else {}
    after = "dddd" + "h" * 9 if kill_late else "h" * 13
    builder.signal("api:search", "hh hhhhhhhhhh ddddd " + after, override=override)
    timeline = builder.build()
    generator = tuple(
        GeneratorWindow(i, 20, 16 if behind and 12 <= i < 17 else 20, 1.0, 99.0 if behind and 12 <= i < 17 else 20.0)
        for i in range(30)
    )
    timeline = replace(timeline, generator=generator)
    spec = experiment_spec(recovery={"budget": "2s", "stable_for": "3s"})
    return Journal(run_id="r1", experiment=spec, timeline=timeline, analysis=analyse(timeline, spec))


@pytest.fixture
def inconclusive() -> Journal:
    """The inconclusive journal."""
    data = journal()
    assert (data.verdict.value, data.exit_code) == ("inconclusive", 3)
    return data


def test_terminal(inconclusive: Journal) -> None:
    """The terminal summary shows INCONCLUSIVE, that nothing was judged, and each shortfall's figures."""
    out = io.StringIO()
    print_summary(inconclusive, Console(file=out, width=160, color_system=None))
    text = out.getvalue()
    assert "INCONCLUSIVE" in text and "exit 3" in text
    assert "the harness could not deliver the experiment" in text
    assert SHORTFALL in text and UNSENT in text


def test_json(inconclusive: Journal) -> None:
    """``--json`` carries the verdict, the shortfall lines and the delivery per phase."""
    summary = summary_json(inconclusive)
    assert (summary["verdict"], summary["exit_code"]) == ("inconclusive", 3)
    assert summary["shortfalls"] == [UNSENT, SHORTFALL]
    fault = next(p for p in summary["delivery"]["phases"] if p["phase"] == "fault")
    assert (fault["offered"], fault["unsent"], fault["behind"], fault["windows"]) == (100, 21, 5, 5)


def test_html(inconclusive: Journal) -> None:
    """The HTML banner is the inconclusive one and lists the shortfalls."""
    html = render_html(inconclusive)
    assert "class='banner inconclusive'" in html
    assert "not judged: the harness could not deliver the experiment" in html
    assert SHORTFALL in html and UNSENT in html


def test_markdown(inconclusive: Journal) -> None:
    """The Markdown summary opens with the verdict and a quoted block of the shortfalls."""
    text = render_markdown(inconclusive)
    assert "**INCONCLUSIVE** (exit 3)" in text
    assert "> **Not judged: the harness could not deliver the experiment.**" in text
    assert f"> - {SHORTFALL}" in text


def test_junit(inconclusive: Journal) -> None:
    """JUnit has an error on ``load and probes delivered`` with the figures."""
    root = ET.fromstring(render_junit(inconclusive).encode("utf-8"))
    case = next(c for c in root.iter("testcase") if c.attrib["name"] == "load and probes delivered")
    error = case.find("error")
    assert error is not None and error.attrib["type"] == "inconclusive"
    assert SHORTFALL in error.attrib["message"]


def test_delivered_run_says_nothing_of_it() -> None:
    """A delivered run has no shortfall lines and a passing delivery case."""
    data = journal(behind=False)
    assert summary_json(data)["shortfalls"] == []
    root = ET.fromstring(render_junit(data).encode("utf-8"))
    case = next(c for c in root.iter("testcase") if c.attrib["name"] == "load and probes delivered")
    assert case.find("error") is None


def test_late_recovery_is_shown_with_its_figure() -> None:
    """A kill that recovered 9 s after it, over a 2 s budget: every report gives the 9.0s."""
    data = journal(behind=False, kill_late=True)
    assert data.verdict.value == "fail"
    out = io.StringIO()
    print_summary(data, Console(file=out, width=160, color_system=None))
    assert "not recovered within the 2.0s budget (recovered after 9.0s)" in out.getvalue()
    assert "9.0s, over budget" in render_markdown(data)
    assert "9.0s, over budget" in render_html(data)
    assert summary_json(data)["recovery_observed_s"] == 9.0
