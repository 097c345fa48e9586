"""The Markdown summary and $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoslab.report import render_markdown, write_reports
from chaoslab.report.markdown import compress_health
from chaoslab.testing import sample_journal


class TestRenderMarkdown:
    def test_headline_and_figures(self) -> None:
        """The headline carries the verdict and exit code; the figures table the recovery time and cascade."""
        md = render_markdown(sample_journal(cascade=True))
        assert md.startswith("## ❌ chaoslab `cascade-vector-latency`: **FAIL** (exit 1)")
        assert "| 2.0s | 15.0s | 10.0s | 0.0s | yes (1) | 0/2 |" in md
        assert "| `api:documents` | 13.0s | 2448ms | 20% | 21.0s |" in md

    def test_health_rows_in_onset_order(self) -> None:
        """The health timeline lists signals by onset with one cell per window."""
        md = render_markdown(sample_journal(cascade=True))
        md = md[md.index("### Health over time") :]
        search = md.index("| `api:search` | 12.0s |")
        docs = md.index("| `api:documents` | 13.0s |")
        assert search < docs
        row = md[docs:].splitlines()[0]
        assert row.count("🟥") == 8
        assert row.count("⬜") == 1

    def test_notes_listed(self) -> None:
        """Observer notes appear with their run time and author."""
        assert "- **14.5s** alice: search is slow, as expected" in render_markdown(sample_journal())


class TestCompressHealth:
    def test_degraded_wins_in_a_group(self) -> None:
        """Grouping windows keeps any degradation visible."""
        assert compress_health("hhhdhhnnnn", 5) == "hdhnn"
        assert compress_health("hhd", 5) == "hhd"


class TestWriteReports:
    def test_writes_files_and_step_summary(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """All three files are written, and the Markdown is appended to $GITHUB_STEP_SUMMARY."""
        summary = tmp_path / "step-summary.md"
        summary.write_text("earlier step\n", encoding="utf-8")
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
        paths = write_reports(
            sample_journal(),
            html=tmp_path / "out" / "report.html",
            junit=tmp_path / "out" / "junit.xml",
            markdown=tmp_path / "out" / "summary.md",
        )
        assert [p.name for p in paths] == ["report.html", "junit.xml", "summary.md"]
        text = summary.read_text(encoding="utf-8")
        assert text.startswith("earlier step\n## ❌ chaoslab")
        assert (tmp_path / "out" / "summary.md").read_text(encoding="utf-8") in text

    def test_no_step_summary_without_the_variable(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without $GITHUB_STEP_SUMMARY only the requested files are written."""
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        assert write_reports(sample_journal(), junit=tmp_path / "j.xml") == [tmp_path / "j.xml"]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["j.xml"]
