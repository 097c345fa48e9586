"""`chaoslab run` through the real command line, and `chaoslab analyse` reproducing its verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.run.harness import groundtruth, write_experiment, write_topology

pytestmark = pytest.mark.integration


def chaoslab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "chaoslab", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


class TestRunCommand:
    """The run command's contract: exit codes, --json, --dry-run, the journal."""

    def test_process_kill_recovers_and_analyse_agrees(self, tmp_path: Path) -> None:
        """A supervised target killed with SIGKILL comes back: exit 0, a recovery time; analyse says the same."""
        gt = groundtruth(tmp_path)
        write_topology(gt)
        target = {"kind": "process_kill", "target": "target", "signal": "SIGKILL"}
        # the kill hits every signal: all of them are the expected impact
        path = write_experiment(gt, faults=[target], expected_impact=["target:*", "probe:target"])
        state = {"CHAOSLAB_STATE_DIR": str(tmp_path / "state")}
        result = chaoslab("run", str(path), "--json", "--report-dir", str(tmp_path / "out"), env=state)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        summary = json.loads(result.stdout)
        assert summary["verdict"] == "pass"
        journal_path = tmp_path / "out" / "journal.json"
        journal = json.loads(journal_path.read_text())
        analysis = journal["analysis"]
        assert analysis["recovered"] is True
        assert 0.0 <= analysis["recovery_from_injection_s"] < 4.0 + 3.0
        assert any(e["kind"] == "service_restart" for e in journal["events"])
        assert (tmp_path / "out" / "report.html").is_file()
        again = chaoslab("analyse", str(journal_path), "--json")
        assert again.returncode == 0
        assert json.loads(again.stdout)["recovery_time_s"] == analysis["recovery_time_s"]
        assert list((tmp_path / "state" / "runs").glob("*")) == []

    def test_dry_run_touches_nothing(self, tmp_path: Path) -> None:
        """--dry-run prints the plan with the undo of each fault, launches nothing and writes no ledger."""
        gt = groundtruth(tmp_path)
        write_topology(gt)
        path = write_experiment(gt)
        result = chaoslab("run", str(path), "--dry-run", env={"CHAOSLAB_STATE_DIR": str(tmp_path / "state")})
        assert result.returncode == 0, result.stderr
        assert "undo at" in result.stdout and "dry run: nothing was launched" in result.stdout
        assert not (tmp_path / "state").exists()

    def test_a_bad_experiment_exits_2_and_touches_nothing(self, tmp_path: Path) -> None:
        """An unknown link target: one line naming file, line and field; exit 2; no state written."""
        gt = groundtruth(tmp_path)
        write_topology(gt)
        path = write_experiment(gt, faults=[{"kind": "latency", "target": "client->nowhere", "latency": "1s"}])
        result = chaoslab("run", str(path), env={"CHAOSLAB_STATE_DIR": str(tmp_path / "state")})
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "faults.0.target" in lines[0] and "'client->nowhere' is not a link" in lines[0]
        assert not (tmp_path / "state").exists()


class TestSafety:
    """Nothing outside loopback is contacted unless the topology allows it."""

    def test_a_load_url_off_loopback_is_refused(self, tmp_path: Path) -> None:
        """A request class aimed at 10.0.0.1: exit 2 with one line naming the field; nothing runs."""
        gt = groundtruth(tmp_path)
        write_topology(gt)
        path = write_experiment(
            gt, load={"rate": "10/s", "mix": [{"name": "a", "url": "http://10.0.0.1:8080/a"}]}, expected_impact=[]
        )
        result = chaoslab("run", str(path), env={"CHAOSLAB_STATE_DIR": str(tmp_path / "state")})
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"chaoslab: error: {path}: load.mix.0.url: 'http://10.0.0.1:8080/a' is not on loopback; "
            "set allow_non_loopback: true in the topology to allow it"
        ]
        assert not (tmp_path / "state").exists()
