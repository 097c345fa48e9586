"""`chaoslab run` end to end with ``load.engine: locust`` against the ground-truth target."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from chaoslab.journal import Journal
from chaoslab.model.loading import load_experiment
from chaoslab.run.engine import RunOptions, run_experiment
from tests.run.harness import groundtruth, write_experiment, write_topology

pytestmark = pytest.mark.integration


def processes_mentioning(*texts: str) -> list[int]:
    """PIDs of live processes whose command line mentions every one of ``texts``."""
    out = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            line = " ".join(proc.info["cmdline"] or ())
            if proc.info["status"] != psutil.STATUS_ZOMBIE and all(t in line for t in texts):
                out.append(int(proc.info["pid"]))
        except psutil.Error:
            pass
    return out


def locust_processes() -> list[int]:
    """This process's live children running Locust."""
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "locust" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                out.append(child.pid)
        except psutil.Error:
            pass
    return out


class TestRunWithLocust:
    """The whole pipeline with a Locust swarm as the load."""

    async def test_error_rate_abort_fires_on_locust_measurements(self, tmp_path: Path) -> None:
        """Connections reset on the link: the swarm's errors trip the error-rate abort; exit 3, fault reverted."""
        gt = groundtruth(tmp_path)
        write_topology(gt)
        base = f"http://127.0.0.1:{gt.link_port}"
        path = write_experiment(
            gt,
            load={
                "engine": "locust",
                "rate": "40/s",
                "mix": [{"name": "a", "signal": "target:a", "url": f"{base}/a", "timeout": "1s"}],
                "locust": {"workers": 2, "users": 6, "spawn_rate": 100},
            },
            phases={"warmup": "7s", "baseline": "3s", "fault": "15s"},
            faults=[{"kind": "reset_peer", "target": "client->target", "timeout": "0ms"}],
            abort=[{"when": "error_rate", "signal": "target:a", "above": 0.5, "for": "1s"}],
        )
        result = await run_experiment(
            load_experiment(path),
            RunOptions(report_dir=tmp_path / "out", html=False, state_dir=tmp_path / "state"),
        )
        journal = result.journal
        assert result.exit_code == 3, journal.abort_reason
        assert journal.abort_reason == "abort condition: error rate of target:a 100% > 50% for 1s"
        timeline = journal.timeline
        fault = timeline.faults[0]
        assert fault.injected_at_s is not None and fault.revert_ok is True
        # the abort came from Locust-measured errors within a few seconds of the fault, not at the phase's end
        assert fault.reverted_at_s is not None and fault.reverted_at_s - fault.injected_at_s < 6.0
        # the abort needs 1 s of bad windows: at least one whole window lies between injection and revert
        window_s = timeline.window_s
        injected, reverted = fault.injected_at_s, fault.reverted_at_s
        windows = timeline.signals["target:a"].windows
        faulted = [w for w in windows if injected <= w.start_s and w.start_s + window_s <= reverted and w.count]
        assert faulted and all(set(w.errors) == {"reset"} and (w.error_rate or 0.0) > 0.5 for w in faulted), faulted
        assert locust_processes() == []

    def test_latency_fault_is_measured_and_recovered_with_two_workers(self, tmp_path: Path) -> None:
        """A 400 ms toxic on the link: exit 0 (pass), fault windows slow, baseline fast, no Locust process left."""
        gt = groundtruth(tmp_path)
        write_topology(gt)
        path = write_experiment(
            gt,
            load={
                "engine": "locust",
                "rate": "60/s",
                "mix": [
                    {"name": "a", "signal": "target:a", "url": f"http://127.0.0.1:{gt.link_port}/a", "timeout": "2s"},
                    {"name": "b", "signal": "target:b", "url": f"http://127.0.0.1:{gt.link_port}/b", "timeout": "2s"},
                ],
                "locust": {"workers": 2, "users": 12, "spawn_rate": 100},
            },
            # Locust's processes take ~5 s to start on a loaded 2-core machine: the warm-up covers it
            phases={"warmup": "7s", "baseline": "4s", "fault": "3s"},
            faults=[{"kind": "latency", "target": "client->target", "latency": "400ms"}],
            expected_impact=["target:*"],
        )
        tmp = tmp_path / "tmp"
        tmp.mkdir()
        env = {**os.environ, "CHAOSLAB_STATE_DIR": str(tmp_path / "state"), "TMPDIR": str(tmp)}
        result = subprocess.run(
            [sys.executable, "-m", "chaoslab", "run", str(path), "--json", "--report-dir", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            timeout=110,
            env=env,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert json.loads(result.stdout)["verdict"] == "pass"
        journal = Journal.from_dict(json.loads((tmp_path / "out" / "journal.json").read_text()))
        assert journal.analysis.recovered is True
        timeline = journal.timeline
        fault = timeline.faults[0]
        assert fault.injected_at_s is not None and fault.reverted_at_s is not None
        windows = timeline.signals["target:a"].windows
        baseline_phase = next(p for p in timeline.phases if p.name == "baseline")
        baseline = [w for w in windows if baseline_phase.start_s <= w.start_s < baseline_phase.end_s and w.count]
        # windows wholly under the toxic, with room for the answers of their last requests (400 ms) before the revert
        window_s = timeline.window_s
        injected, reverted = fault.injected_at_s, fault.reverted_at_s
        under = [w for w in windows if injected + 0.5 <= w.start_s <= reverted - 0.5 - window_s and w.count]
        assert baseline and under
        assert sum(w.count for w in baseline) > 20
        assert all((w.p50_ms or 0.0) >= 400.0 for w in under), [(w.start_s, w.count, w.p50_ms) for w in under]
        # the toxic sets a floor; a loaded 2-core machine can slow a baseline window, so its median is judged
        baseline_p50 = sorted(w.p50_ms or 0.0 for w in baseline)[len(baseline) // 2]
        assert baseline_p50 < 100.0, [(w.start_s, w.count, w.p50_ms) for w in baseline]
        assert any(g.cpu_percent is not None for g in timeline.generator)
        assert processes_mentioning(str(tmp)) == []
        assert list((tmp_path / "state" / "runs").glob("*")) == []

    def test_sigint_mid_run_stops_the_swarm(self, tmp_path: Path) -> None:
        """Ctrl-C (SIGINT to chaoslab only) during the load: exit 3, aborted, every Locust process gone."""
        gt = groundtruth(tmp_path)
        write_topology(gt)
        base = f"http://127.0.0.1:{gt.link_port}"
        path = write_experiment(
            gt,
            load={
                "engine": "locust",
                "rate": "40/s",
                "mix": [{"name": "a", "signal": "target:a", "url": f"{base}/a", "timeout": "2s"}],
                "locust": {"workers": 2, "users": 6, "spawn_rate": 100},
            },
            phases={"warmup": "30s", "baseline": "30s", "fault": "30s"},
        )
        tmp = tmp_path / "tmp"
        tmp.mkdir()
        env = {**os.environ, "CHAOSLAB_STATE_DIR": str(tmp_path / "state"), "TMPDIR": str(tmp)}
        log = (tmp_path / "run.log").open("wb")
        run = subprocess.Popen(
            [sys.executable, "-m", "chaoslab", "run", str(path), "--json", "--report-dir", str(tmp_path / "out")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            swarm: list[int] = []
            while len(swarm) < 3 and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.2)
                swarm = processes_mentioning(str(tmp), "locust")
            assert len(swarm) == 3, (tmp_path / "run.log").read_text(errors="replace")[-2000:]
            time.sleep(1.0)
            run.send_signal(signal.SIGINT)
            assert run.wait(60) == 3, (tmp_path / "run.log").read_text(errors="replace")[-2000:]
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(10)
            log.close()
        journal = json.loads((tmp_path / "out" / "journal.json").read_text())
        assert "interrupted by SIGINT" in str(journal.get("abort_reason"))
        assert processes_mentioning(str(tmp)) == []
        assert list((tmp_path / "state" / "runs").glob("*")) == []
