"""``chaoslab report JOURNAL``: regenerate reports offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaoslab.cli import main
from chaoslab.testing import sample_journal


def _run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


class TestReportCommand:
    def test_writes_requested_files(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """--html, --junit and --md write their files; the command itself exits 0."""
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        journal = tmp_path / "journal.json"
        journal.write_text(json.dumps(sample_journal().to_dict()), encoding="utf-8")
        argv = ["report", str(journal), "--html", str(tmp_path / "r.html"), "--junit", str(tmp_path / "j.xml")]
        code = _run([*argv, "--md", str(tmp_path / "s.md")])
        assert code == 0
        assert (tmp_path / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        assert "<testsuites" in (tmp_path / "j.xml").read_text(encoding="utf-8")
        assert "FAIL" in (tmp_path / "s.md").read_text(encoding="utf-8")

    def test_json_and_exit_code(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints the machine summary; --exit-code exits with the run's code (1 for a fail)."""
        journal = tmp_path / "journal.json"
        journal.write_text(json.dumps(sample_journal().to_dict()), encoding="utf-8")
        assert _run(["report", str(journal), "--json", "--exit-code"]) == 1
        assert json.loads(capsys.readouterr().out)["verdict"] == "fail"

    def test_bad_journal_is_exit_2_with_one_line(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing or malformed journal is invalid input: exit 2 and one line on stderr."""
        assert _run(["report", str(tmp_path / "missing.json")]) == 2
        assert capsys.readouterr().err.strip() == f"chaoslab: error: {tmp_path / 'missing.json'}: journal not found"
        bad = tmp_path / "bad.json"
        bad.write_text("[1, 2]", encoding="utf-8")
        assert _run(["report", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"chaoslab: error: {bad}: expected a JSON object at the top level, got list"
