"""JUnit XML: one test case per assertion of the hypothesis."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from chaoslab.report import render_junit
from chaoslab.testing import sample_journal


def _cases(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml.encode("utf-8"))
    return {c.attrib["name"]: c for c in root.iter("testcase")}


class TestRenderJunit:
    def test_cascade_slo_and_recovery_cases(self) -> None:
        """A cascading run fails the cascading signal's case (onset and peak in the message) and both SLOs."""
        cases = _cases(render_junit(sample_journal(cascade=True)))
        assert sorted(cases) == [
            "SLO api:documents: p95 < 500ms",
            "SLO api:documents: success ≥ 99%",
            "fault reverted: f0-latency (api->vector)",
            "load and probes delivered",
            "no cascade: api:documents",
            "recovery within 15.0s",
            "run completed",
        ]
        failure = cases["no cascade: api:documents"].find("failure")
        assert failure is not None
        assert failure.attrib["message"] == (
            "cascade: api:documents degraded from 13.0s (peak p95 2448ms, error rate 20% at 17.0s), until 21.0s"
        )
        assert cases["recovery within 15.0s"].find("failure") is None
        assert cases["SLO api:documents: p95 < 500ms"].find("failure") is not None

    def test_passing_run_has_no_failures(self) -> None:
        """A contained, recovered run gives one passing ``no cascade`` case and zero failures."""
        xml = render_junit(sample_journal(cascade=False))
        root = ET.fromstring(xml.encode("utf-8"))
        assert root.attrib["failures"] == "0"
        assert root.attrib["errors"] == "0"
        assert "no cascade" in _cases(xml)

    def test_not_recovered_fails_recovery_case(self) -> None:
        """No recovery within the budget fails the recovery case."""
        cases = _cases(render_junit(sample_journal(cascade=False, recovered=False)))
        failure = cases["recovery within 15.0s"].find("failure")
        assert failure is not None
        assert failure.attrib["message"] == "not recovered within the 15.0s budget"

    def test_abort_and_revert_failure_are_errors(self) -> None:
        """An aborted run is an error on ``run completed``; a failed revert is an error on its fault."""
        aborted = _cases(render_junit(sample_journal(aborted=True)))
        error = aborted["run completed"].find("error")
        assert error is not None
        assert error.attrib["message"] == "aborted: abort condition: error rate of api:documents 100% > 90% for 3s"
        reverted = _cases(render_junit(sample_journal(revert_failed=True)))
        revert_error = reverted["fault reverted: f0-latency (api->vector)"].find("error")
        assert revert_error is not None
        assert "run `chaoslab rollback`" in revert_error.attrib["message"]
