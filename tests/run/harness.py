"""Builders for engine tests: a ground-truth topology and experiment written to a temp dir."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import free_port

TARGET = Path(__file__).resolve().parent.parent / "groundtruth" / "target.py"


@dataclass
class GroundTruth:
    """Files and ports of one ground-truth set-up."""

    dir: Path
    port: int
    link_port: int
    control: Path

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
    gt: GroundTruth, *, toxiproxy: str = "embedded", extra_services: dict[str, Any] | None = None
) -> Path:
    """A topology with the launched target behind one link."""
    services: dict[str, Any] = {
        "target": {
            "launch": {
                "kind": "process",
                "command": [sys.executable, str(TARGET), "--port", str(gt.port), "--control", str(gt.control)],
                "restart": "on-failure",
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
