"""Game days: the plan file, the combined report, ``chaoslab note``, and led sessions end to end."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pty
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from chaoslab.cli import main
from chaoslab.errors import SpecError
from chaoslab.gameday.agenda import GameDayPlan, load_plan, load_steps, runbook_summary
from chaoslab.gameday.report import all_notes, render_gameday_html, render_gameday_markdown, worst_exit_code
from chaoslab.gameday.session import GameDay, SessionOptions
from chaoslab.run.notes import active_run_file, append_note
from chaoslab.testing import sample_journal
from tests.report.tiny import write_tiny

T0 = 1_790_000_000.0


def _cli(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _write_plan(directory: Path, steps: list[dict[str, Any]], **extra: Any) -> Path:
    plan = {"title": "Tiny game day", "leader": "alice", "observers": ["bob"], "experiments": steps, **extra}
    path = directory / "plan.yaml"
    path.write_text(json.dumps(plan), encoding="utf-8")  # JSON is YAML
    return path


def _session(runs: list[dict[str, Any]], notes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "title": "Search cascade",
        "leader": "alice",
        "observers": ["bob", "carol"],
        "started_wall": T0,
        "ended_wall": T0 + 100.0,
        "runs": runs,
        "notes": notes or [],
    }


class TestPlan:
    def test_loads_and_resolves_paths_relative_to_the_plan(self, tmp_path: Path) -> None:
        """Steps name experiments by path relative to the plan; overrides and quick reach the loader."""
        write_tiny(tmp_path / "exp")
        path = _write_plan(
            tmp_path, [{"experiment": "exp/tiny.yaml", "overrides": {"latency": "5ms"}, "quick": True}], quick=False
        )
        plan = load_plan(path)
        assert isinstance(plan, GameDayPlan)
        (exp,) = load_steps(plan, path)
        assert exp.parameters["latency"] == "5ms"
        assert exp.quick is True

    def test_bad_plan_is_one_line_naming_the_field(self, tmp_path: Path) -> None:
        """A plan without experiments is rejected before anything runs, naming the field."""
        path = _write_plan(tmp_path, [])
        with pytest.raises(SpecError, match="experiments"):
            load_plan(path)

    def test_bad_step_names_the_step(self, tmp_path: Path) -> None:
        """A step whose experiment does not exist is reported with its index."""
        path = _write_plan(tmp_path, [{"experiment": "exp/missing.yaml"}])
        with pytest.raises(SpecError, match=r"experiments\.0 \(exp/missing\.yaml\): file not found"):
            load_steps(load_plan(path), path)


class TestRunbookSummary:
    def test_first_two_paragraphs_without_headings(self) -> None:
        """Headings are skipped and only the first two paragraphs are kept."""
        text = "# Title\n\nFirst para\nline two.\n\n## Steps\n\nSecond.\n\nThird is left out."
        assert runbook_summary(text) == "First para\nline two.\n\nSecond."

    def test_long_text_is_cut(self) -> None:
        """A single long paragraph is cut at the limit with an ellipsis."""
        summary = runbook_summary("word " * 100, max_chars=50)
        assert len(summary) == 50
        assert summary.endswith("…")


class TestCombinedReport:
    def test_worst_exit_code(self) -> None:
        """A revert failure beats an abort, which beats a fail, which beats a pass."""
        assert worst_exit_code([0, 1, 0]) == 1
        assert worst_exit_code([1, 3, 0]) == 3
        assert worst_exit_code([3, 4, 1]) == 4
        assert worst_exit_code([]) == 0

    def test_notes_on_one_wall_clock(self) -> None:
        """Session notes and in-run notes are merged in time order with where they fell."""
        journal = dataclasses.replace(sample_journal(), t0_wall=T0 + 10.0)
        runs = [{"index": 1, "experiment": "x", "started_wall": T0 + 9.0, "ended_wall": T0 + 40.0}]
        notes = [{"wall_time": T0 + 5.0, "text": "starting", "author": "alice"}]
        merged = all_notes(_session(runs, notes), [journal])
        assert [(round(n.wall_time - T0, 3), n.author, n.context) for n in merged] == [
            (5.0, "alice", "between runs"),
            (24.5, "alice", "run 1 +14.5s"),
            (25.2, "bob", "run 1 +15.2s"),
        ]

    def test_review_is_filled_with_measured_figures(self) -> None:
        """The review names each run's verdict, recovery, cascade and proposes an action per finding."""
        journal = dataclasses.replace(sample_journal(cascade=True), t0_wall=T0)
        runs = [
            {
                "index": 1,
                "experiment": "cascade-vector-latency",
                "overrides": {"mode": "fragile"},
                "started_wall": T0,
                "ended_wall": T0 + 30.0,
                "verdict": "fail",
            },
            {
                "index": 2,
                "experiment": "cascade-vector-latency",
                "overrides": {"mode": "resilient"},
                "status": "skipped",
            },
        ]
        md = render_gameday_markdown(_session(runs), [journal, None])
        assert "# Post-incident review: Search cascade" in md
        assert "- **Runs:** 1 of 2 planned — 0 passed, 1 failed, 0 inconclusive, 0 aborted, 0 errors" in md
        assert "| FAIL | 2.0s (15.0s) | api:documents from 13.0s |" in md
        assert "| 2 | cascade-vector-latency (mode=resilient) | — | skipped | — | — |" in md
        assert "- Run 1: first observer note 2.5s after injection (alice: search is slow, as expected)" in md
        assert "| Contain the spread to `api:documents` seen in run 1 (bulkhead, timeout, breaker?) | | |" in md
        assert "`api:documents` broke p95 < 500ms in run 1" in md

    def test_html_has_every_run_and_the_session_timeline(self) -> None:
        """The combined HTML embeds each run's report and draws the runs and notes on the session timeline."""
        j1, j2 = sample_journal(cascade=True), sample_journal(cascade=False)
        runs = [
            {"index": 1, "experiment": "a", "started_wall": T0 + 1, "ended_wall": T0 + 40, "verdict": "fail"},
            {"index": 2, "experiment": "b", "started_wall": T0 + 50, "ended_wall": T0 + 90, "verdict": "pass"},
        ]
        html = render_gameday_html(_session(runs), [j1, j2])
        assert html.count("<section id='run-") == 2
        assert "<svg class='session'" in html
        assert "run 1: a — fail" in html
        assert "<script" not in html


class TestReportCommandOnASession:
    def test_renders_the_combined_report_again(self, tmp_path: Path) -> None:
        """``chaoslab report SESSION_DIR`` rebuilds gameday.html and gameday.md from session.json and the journals."""
        (tmp_path / "01-a").mkdir()
        (tmp_path / "01-a" / "journal.json").write_text(json.dumps(sample_journal().to_dict()))
        runs = [
            {
                "index": 1,
                "experiment": "a",
                "journal_path": "01-a/journal.json",
                "started_wall": T0,
                "ended_wall": T0 + 30,
            },
            {"index": 2, "experiment": "b", "status": "skipped"},
        ]
        (tmp_path / "session.json").write_text(json.dumps({**_session(runs), "exit_code": 1}))
        assert _cli(["report", str(tmp_path)]) == 0
        assert "| 2 | b | skipped | — | — | — |" in (tmp_path / "gameday.md").read_text()
        assert (tmp_path / "gameday.html").read_text().count("<section id='run-") == 1

    def test_a_directory_without_a_session_is_exit_2(self, tmp_path: Path) -> None:
        """A directory that is not a session is invalid input."""
        assert _cli(["report", str(tmp_path)]) == 2


class TestNoteCommand:
    def test_without_an_active_run_exits_2_with_one_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With nothing running, ``chaoslab note`` says so in one line and exits 2."""
        monkeypatch.setenv("CHAOSLAB_STATE_DIR", str(tmp_path))
        assert _cli(["note", "hello"]) == 2
        err = capsys.readouterr().err
        assert err == f"chaoslab: error: note: no active chaoslab run or game day (no {tmp_path / 'active-run.json'})\n"

    def test_appends_to_the_announced_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """With a run announced, the note is appended with its author and a wall time."""
        monkeypatch.setenv("CHAOSLAB_STATE_DIR", str(tmp_path))
        notes = tmp_path / "notes.jsonl"
        active_run_file(tmp_path).write_text(json.dumps({"pid": os.getpid(), "notes_path": str(notes)}))
        before = time.time()
        assert _cli(["note", "db", "looks", "slow", "--author", "bob"]) == 0
        (line,) = notes.read_text().splitlines()
        note = json.loads(line)
        assert (note["text"], note["author"]) == ("db looks slow", "bob")
        assert before <= note["wall_time"] <= time.time()

    def test_stale_marker_is_no_active_run(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A marker left by a dead process is not an active run: exit 2, nothing written."""
        monkeypatch.setenv("CHAOSLAB_STATE_DIR", str(tmp_path))
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        pid = int(dead.stdout)
        notes = tmp_path / "notes.jsonl"
        active_run_file(tmp_path).write_text(json.dumps({"pid": pid, "notes_path": str(notes)}))
        assert _cli(["note", "hello"]) == 2
        assert f"process {pid} is gone" in capsys.readouterr().err
        assert not notes.exists()


class TestSessionNotes:
    def test_between_runs_notes_go_to_the_session_file(self, tmp_path: Path) -> None:
        """The session announces its own notes file; a note lands there and the marker is removed at the end."""
        exp_path = write_tiny(tmp_path / "exp")
        plan_path = _write_plan(tmp_path, [{"experiment": str(exp_path)}])
        plan = load_plan(plan_path)
        session = GameDay(
            plan,
            load_steps(plan, plan_path),
            SessionOptions(out_dir=tmp_path / "out", state_dir=tmp_path / "st"),
            console=Console(file=io.StringIO()),
        )
        session.announce()
        append_note("waiting for the go", author="bob", base=tmp_path / "st")
        record = session.session_record(T0, T0 + 1, 0)
        assert [(n["author"], n["text"]) for n in record["notes"]] == [("bob", "waiting for the go")]
        session.unannounce()
        assert not active_run_file(tmp_path / "st").exists()


def _wait_for_applied_fault(state: Path, timeout_s: float = 60.0) -> None:
    """Block until a run's ledger records an applied fault."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for ledger in state.glob("runs/*/ledger.jsonl"):
            if '"applied"' in ledger.read_text(encoding="utf-8"):
                return
        time.sleep(0.05)
    raise AssertionError("no fault was applied in time")


@pytest.mark.integration
class TestGameDayEndToEnd:
    def test_unattended_session_with_a_note_from_another_terminal(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``gameday --yes`` runs both steps; a ``chaoslab note`` from another process lands in run 1's journal.

        The combined report is appended to $GITHUB_STEP_SUMMARY once.
        """
        state = tmp_path / "st"
        monkeypatch.setenv("CHAOSLAB_STATE_DIR", str(state))
        step_summary = tmp_path / "step-summary.md"
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
        exp = write_tiny(tmp_path / "exp", runbook="runbook.md")
        (tmp_path / "exp" / "runbook.md").write_text("# Tiny\n\nCheck the link first.\n")
        plan = _write_plan(
            tmp_path,
            [
                {"experiment": "exp/tiny.yaml", "overrides": {"latency": "300ms"}, "notes": "expect b to cascade"},
                {"experiment": str(exp), "overrides": {"latency": "0ms"}},
            ],
        )
        env = {**os.environ, "CHAOSLAB_STATE_DIR": str(state)}

        def observer() -> None:
            _wait_for_applied_fault(state)
            subprocess.run(
                [sys.executable, "-m", "chaoslab", "note", "--author", "bob", "b is slow too"],
                env=env,
                check=True,
                capture_output=True,
                timeout=30,
            )

        thread = threading.Thread(target=observer, daemon=True)
        thread.start()
        out = tmp_path / "out"
        code = _cli(["gameday", str(plan), "--yes", "--no-live", "--out", str(out)])
        thread.join(timeout=30)
        assert code == 1  # run 1 cascades (fail), run 2 passes
        session = json.loads((out / "session.json").read_text())
        assert [r["verdict"] for r in session["runs"]] == ["fail", "pass"]
        journal = json.loads((out / "01-tiny" / "journal.json").read_text())
        notes = [e for e in journal["events"] if e["kind"] == "note"]
        assert [n["data"]["text"] for n in notes] == ["b is slow too"]
        md = (out / "gameday.md").read_text()
        assert "note (bob, run 1 +" in md
        assert "# Post-incident review: Tiny game day" in md
        assert (out / "gameday.html").read_text().count("<section id='run-") == 2
        assert not active_run_file(state).exists()
        # GitHub's job summary gets the combined report once, not each run's summary as well
        summary = step_summary.read_text()
        assert summary.count("# Game day: Tiny game day") == 1
        assert summary.count("chaoslab `tiny`") == 2

    def test_leader_note_and_abort_keys_on_a_terminal(self, tmp_path: Path) -> None:
        """In the live view, ``n`` adds a note and ``a`` + ``y`` aborts: faults reverted, session ends with exit 3."""
        state = tmp_path / "st"
        write_tiny(tmp_path / "exp")
        plan_path = _write_plan(
            tmp_path,
            [{"experiment": "exp/tiny.yaml", "overrides": {"latency": "300ms", "phases.fault": "8s"}}] * 2,
        )
        plan = load_plan(plan_path)
        master, slave = pty.openpty()
        try:
            options = SessionOptions(out_dir=tmp_path / "out", live=True, keys=True, state_dir=state, input_fd=slave)
            session = GameDay(plan, load_steps(plan, plan_path), options, console=Console(file=io.StringIO()))

            def leader() -> None:
                _wait_for_applied_fault(state)
                os.write(master, b"n")
                os.write(master, b"abort: search down\r")
                time.sleep(1.0)  # let the engine (100 ms ticks) pick the note up before the abort
                os.write(master, b"a")
                os.write(master, b"y\r")

            thread = threading.Thread(target=leader, daemon=True)
            thread.start()
            code = session.run()
            thread.join(timeout=30)
        finally:
            os.close(master)
            os.close(slave)
        assert code == 3
        out = tmp_path / "out"
        journal = json.loads((out / "01-tiny" / "journal.json").read_text())
        assert journal["verdict"] == "aborted"
        assert [f["revert_ok"] for f in journal["faults"]] == [True]
        assert [e["data"]["text"] for e in journal["events"] if e["kind"] == "note"] == ["abort: search down"]
        session_doc = json.loads((out / "session.json").read_text())
        assert [r["status"] for r in session_doc["runs"]] == ["ran", "not run (aborted before)"]
        assert list(state.rglob("ledger.jsonl")) == []
