"""The --json machine summary and the terminal summary."""

from __future__ import annotations

import io
import json

from rich.console import Console

from chaoslab.report import print_summary, summary_json
from chaoslab.testing import sample_journal


class TestSummaryJson:
    def test_fields(self) -> None:
        """The machine summary has the verdict, recovery figures and the cascade with onset and peak."""
        summary = summary_json(sample_journal(cascade=True))
        assert summary["verdict"] == "fail"
        assert summary["exit_code"] == 1
        assert summary["recovery_time_s"] == 2.0
        assert summary["recovery_from_injection_s"] == 10.0
        assert summary["cascade"] == [
            {
                "signal": "api:documents",
                "onset_s": 13.0,
                "peak_s": 17.0,
                "peak": {"p95_ms": 2448.0, "error_rate": 0.2},
                "end_s": 21.0,
            }
        ]
        assert summary["notes"] == 2
        json.dumps(summary)  # plain JSON data

    def test_not_recovered_is_null(self) -> None:
        """An unrecovered run reports ``recovered: false`` and a null recovery time."""
        summary = summary_json(sample_journal(cascade=False, recovered=False))
        assert summary["recovered"] is False
        assert summary["recovery_time_s"] is None


class TestPrintSummary:
    def test_terminal_summary(self) -> None:
        """The terminal summary names the verdict, the recovery time and the cascading signal."""
        out = io.StringIO()
        print_summary(sample_journal(cascade=True), Console(file=out, width=100, color_system=None))
        text = out.getvalue()
        assert "FAIL" in text
        assert "2.0s after the fault was removed (10.0s after injection)" in text
        assert "api:documents degraded from 13.0s" in text
        assert "revert verified" in text
