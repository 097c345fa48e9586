"""The api-container-kill experiment end to end: demo-docker up, kill -9 the api container, recovery measured."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, require

PROJECT_DIR = Path(__file__).resolve().parents[2]
PORT_PARAMETERS = ("api_port", "vector_port", "postgres_port", "vector_link_port", "postgres_link_port")


def accepting(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.postgres
class TestApiContainerKill:
    """``chaoslab run api-container-kill --quick`` against real containers."""

    def test_restart_policy_brings_the_api_back_and_recovery_is_measured(
        self, docker_client: Any, local_image: str, tmp_path: Path
    ) -> None:
        """The engine restarts the killed api by itself, the run measures recovery, and nothing is left running."""
        require(os.path.exists("/usr/lib/postgresql/15/bin/initdb"), "PostgreSQL server binaries not installed")
        # Ports of our own, so a demo someone runs by hand on the default ports is no obstacle.
        ports = {name: free_port() for name in PORT_PARAMETERS}
        journal_path = tmp_path / "journal.json"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "chaoslab",
                "--quiet",
                "run",
                "api-container-kill",
                "--quick",
                "--no-html",
                "--journal",
                str(journal_path),
                "--report-dir",
                str(tmp_path),
                *[arg for name, port in ports.items() for arg in ("--set", f"{name}={port}")],
            ],
            cwd=PROJECT_DIR,
            capture_output=True,
            timeout=110,
            check=False,
        )
        # The verdict may be fail on a busy machine (a cascade of slow probes), never an error.
        assert result.returncode in (0, 1), result.stderr.decode(errors="replace")[-2000:]
        journal = json.loads(journal_path.read_text())
        (fault,) = journal["faults"]
        assert (fault["kind"], fault["revert_ok"]) == ("container_kill", True)
        assert fault["detail"]["delivered_via"] == ["host_pid"]
        assert journal["analysis"]["recovered"] is True
        assert 0.0 <= journal["analysis"]["recovery_time_s"] < 15.0
        left = docker_client.containers.list(all=True, filters={"label": "chaoslab.run_id=" + journal["run_id"]})
        assert left == []
        assert [port for port in ports.values() if accepting(port)] == []
