"""Builders for engine tests: a ground-truth topology and experiment written to a temp dir."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaoslab.model.loading import load_experiment
from chaoslab.plan import build_plan
from chaoslab.report.live_state import LiveState
from chaoslab.run.engine import RunOptions, RunResult, run_experiment
from tests.conftest import free_port

TARGET = Path(__file__).resolve().parent.parent / "groundtruth" / "target.py"


@dataclass
class GroundTruth:
    """Files and ports of one ground-truth set-up."""

    dir: Path
    port: int
    link_port: int
    control: Path

    @property
    def log(self) -> Path:
        """The target's own log of its moments (JSON lines, wall-clock seconds)."""
        return self.dir / "truth.jsonl"

    @property
    def marker(self) -> Path:
        """Created by the target's first start; later starts take the restart delay."""
        return self.dir / "started.marker"

    def moments(self, t0_wall: float) -> list[dict[str, Any]]:
        """The target's logged moments, with ``t`` in run time (seconds from the run's t0)."""
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            out.append({**item, "t": item["t"] - t0_wall})
        return out

    def schedule(self, plan: dict[str, list[tuple[float, float, str]]]) -> dict[str, list[dict[str, Any]]]:
        """Write degradations (wall from, wall until, mode) to the control file; returns what was written."""
        doc = {
            endpoint: [
                {"from": start, "until": until, "mode": mode, "status": 500, "delay_ms": 400}
                for start, until, mode in items
            ]
            for endpoint, items in plan.items()
        }
        tmp = self.control.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.control)
        return doc


def groundtruth(tmp_path: Path) -> GroundTruth:
    """Ports and a control file for a target launched by the run."""
    return GroundTruth(tmp_path, free_port(), free_port(), tmp_path / "control.json")


def write_topology(
    gt: GroundTruth,
    *,
    toxiproxy: str = "embedded",
    extra_services: dict[str, Any] | None = None,
    target_args: tuple[str, ...] = (),
    restart: str = "on-failure",
) -> Path:
    """A topology with the launched target behind one link; ``target_args`` go to target.py (it logs to ``gt.log``)."""
    command = [sys.executable, str(TARGET), "--port", str(gt.port), "--control", str(gt.control)]
    command += ["--log", str(gt.log), "--marker", str(gt.marker), *target_args]
    services: dict[str, Any] = {
        "target": {
            "launch": {
                "kind": "process",
                "command": command,
                "restart": restart,
            },
            "url": f"http://127.0.0.1:{gt.port}",
            "probe": {"type": "http", "url": f"http://127.0.0.1:{gt.port}/health", "interval": "250ms"},
        }
    }
    services.update(extra_services or {})
    topo = {
        "name": "groundtruth",
        "toxiproxy": toxiproxy,
        "services": services,
        "links": {"client->target": {"listen": f"127.0.0.1:{gt.link_port}", "upstream": f"127.0.0.1:{gt.port}"}},
    }
    path = gt.dir / "topology.yaml"
    path.write_text(yaml.safe_dump(topo, sort_keys=False))
    return path


def write_experiment(gt: GroundTruth, **overrides: Any) -> Path:
    """An experiment loading /a, /b, /c through the link; fault = a 0 ms latency toxic unless overridden."""
    base = f"http://127.0.0.1:{gt.link_port}"
    exp: dict[str, Any] = {
        "name": "groundtruth",
        "description": "ground-truth target for engine tests",
        "topology": "topology.yaml",
        "load": {
            "rate": "90/s",
            "connections": 16,
            "mix": [
                {"name": "a", "signal": "target:a", "url": f"{base}/a", "timeout": "2s"},
                {"name": "b", "signal": "target:b", "url": f"{base}/b", "timeout": "2s"},
                {"name": "c", "signal": "target:c", "url": f"{base}/c", "timeout": "2s"},
            ],
        },
        "phases": {"warmup": "1s", "baseline": "4s", "fault": "4s"},
        "faults": [{"kind": "latency", "target": "client->target", "latency": "0ms"}],
        "steady_state": {"window": "500ms", "min_samples": 5, "sustained": "1s"},
        "expected_impact": ["target:a"],
        "recovery": {"budget": "10s", "stable_for": "1500ms"},
    }
    for key, value in overrides.items():
        exp[key] = value
    path = gt.dir / "experiment.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def now() -> float:
    """Wall-clock time, as the control file uses."""
    return time.time()


async def run_truth(
    gt: GroundTruth,
    *,
    schedule: dict[str, list[tuple[float, float, str]]] | None = None,
    topology: dict[str, Any] | None = None,
    **experiment: Any,
) -> RunResult:
    """Run an experiment on the ground-truth target; ``schedule`` degrades endpoints from the fault phase on.

    ``schedule`` maps endpoint → (start offset, end offset, mode) in seconds from the fault phase's
    planned start; the control file is written as the fault phase begins. Results go under ``gt.dir``.
    """
    write_topology(gt, **(topology or {}))
    loaded = load_experiment(write_experiment(gt, **experiment))
    fault_start_s = build_plan(loaded).phase("fault").start_s
    written: list[bool] = []

    def on_state(state: LiveState) -> None:
        if schedule and state.phase == "fault" and not written:
            anchor = now() - (state.t_s - fault_start_s)
            gt.schedule({k: [(anchor + a, anchor + b, mode) for a, b, mode in v] for k, v in schedule.items()})
            written.append(True)

    options = RunOptions(report_dir=gt.dir / "report", html=False, on_state=on_state, state_dir=gt.dir / "st")
    return await run_experiment(loaded, options)
