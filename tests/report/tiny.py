"""A tiny real experiment for end-to-end tests: the ground-truth target behind an embedded Toxiproxy link.

Load hits ``/a`` (expected impact) and ``/b`` through the link; the fault is a latency toxic on
the link, so with ``latency`` above the band both signals degrade and ``target:b`` cascades;
with ``latency: 0ms`` nothing degrades and the run passes. About 7 s per run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import free_port

TARGET = Path(__file__).resolve().parent.parent / "groundtruth" / "target.py"


def write_tiny(directory: Path, *, name: str = "tiny", latency: str = "0ms", runbook: str | None = None) -> Path:
    """Write ``topology.yaml`` and ``<name>.yaml`` into ``directory``; returns the experiment's path."""
    directory.mkdir(parents=True, exist_ok=True)
    port, link_port = free_port(), free_port()
    topology = {
        "name": "tiny",
        "toxiproxy": "embedded",
        "services": {
            "target": {
                "launch": {
                    "kind": "process",
                    "command": [
                        sys.executable,
                        str(TARGET),
                        "--port",
                        str(port),
                        "--control",
                        str(directory / "c.json"),
                    ],
                },
                "url": f"http://127.0.0.1:{port}",
                "probe": {"type": "http", "url": f"http://127.0.0.1:{port}/health", "interval": "250ms"},
            }
        },
        "links": {"client->target": {"listen": f"127.0.0.1:{link_port}", "upstream": f"127.0.0.1:{port}"}},
    }
    (directory / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False), encoding="utf-8")
    base = f"http://127.0.0.1:{link_port}"
    experiment: dict[str, Any] = {
        "name": name,
        "description": "tiny end-to-end experiment",
        "topology": "topology.yaml",
        "parameters": {"latency": latency},
        "load": {
            "rate": "60/s",
            "connections": 8,
            "mix": [
                {"name": "a", "signal": "target:a", "url": f"{base}/a", "timeout": "2s"},
                {"name": "b", "signal": "target:b", "url": f"{base}/b", "timeout": "2s"},
            ],
        },
        "phases": {"warmup": "500ms", "baseline": "2500ms", "fault": "2s"},
        "faults": [{"kind": "latency", "target": "client->target", "latency": "${latency}"}],
        "steady_state": {"window": "500ms", "min_samples": 3, "sustained": "1s"},
        "expected_impact": ["target:a"],
        "recovery": {"budget": "5s", "stable_for": "1s"},
    }
    if runbook is not None:
        experiment["runbook"] = runbook
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False), encoding="utf-8")
    return path
