"""End to end: `chaoslab run` and `chaoslab demo` launch the real demo system and leave nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import free_port, require

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Ports:
    """A set of free ports for one copy of the demo, so tests never collide with a running demo."""

    api: int
    vector: int
    postgres: int
    vector_link: int
    postgres_link: int

    @staticmethod
    def pick() -> Ports:
        """Five distinct free ports."""
        chosen: list[int] = []
        while len(chosen) < 5:
            port = free_port()
            if port not in chosen:
                chosen.append(port)
        return Ports(*chosen)

    def overrides(self) -> list[str]:
        """``--set`` arguments that move the demo onto these ports."""
        pairs = {
            "api_port": self.api,
            "vector_port": self.vector,
            "postgres_port": self.postgres,
            "vector_link_port": self.vector_link,
            "postgres_link_port": self.postgres_link,
        }
        return [arg for key, value in pairs.items() for arg in ("--set", f"{key}={value}")]

    def all(self) -> tuple[int, ...]:
        """Every port."""
        return (self.api, self.vector, self.postgres, self.vector_link, self.postgres_link)


def chaoslab(args: list[str], cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run the chaoslab CLI in ``cwd`` with its state under ``cwd/.chaoslab``."""
    env = {**os.environ, "CHAOSLAB_STATE_DIR": str(cwd / ".chaoslab"), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "chaoslab", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s
    )


def assert_nothing_left(ports: Ports) -> None:
    """No process mentions our ports on its command line, and every port can be bound again."""
    marks = {f"{port}" for port in ports.all()}
    leftovers = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "chaoslab.demo" in " ".join(cmdline) and any(mark in cmdline for mark in marks):
            leftovers.append((process.info["pid"], cmdline))
    assert leftovers == []
    for port in ports.all():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))


def run_quick(experiment: str, mode: str, tmp_path: Path) -> tuple[int, dict[str, Any], Ports]:
    """``chaoslab run EXPERIMENT --quick --set mode=MODE`` on free ports; returns exit code and journal."""
    require(
        any(Path(f"/usr/lib/postgresql/{v}/bin/initdb").exists() for v in (15, 16, 17)),
        "PostgreSQL server binaries not installed",
    )
    ports = Ports.pick()
    journal = tmp_path / "journal.json"
    args = ["run", experiment, "--quick", "--set", f"mode={mode}", *ports.overrides()]
    args += ["--journal", str(journal), "--report-dir", str(tmp_path / "report"), "--no-live", "--no-html"]
    result = chaoslab(args, tmp_path, timeout_s=110)
    assert journal.exists(), result.stderr[-2000:]
    data: dict[str, Any] = json.loads(journal.read_text())
    assert data["error"] is None, data["error"]
    assert_nothing_left(ports)
    return result.returncode, data, ports


class TestCascadeVectorLatency:
    """The flagship: 800 ms on api→vector."""

    def test_fragile_mode_fails_with_documents_in_the_cascade(self, tmp_path: Path) -> None:
        """Fragile: exit 1, and the journal's cascade names api:documents."""
        code, journal, _ = run_quick("cascade-vector-latency", "fragile", tmp_path)
        cascade = [entry["signal"] for entry in journal["analysis"]["cascade"]]
        assert "api:documents" in cascade
        assert (code, journal["verdict"], journal["exit_code"]) == (1, "fail", 1)

    def test_resilient_mode_passes_with_a_recovery_time(self, tmp_path: Path) -> None:
        """Resilient: exit 0, no cascade, a measured recovery time within the 15 s budget."""
        code, journal, _ = run_quick("cascade-vector-latency", "resilient", tmp_path)
        analysis = journal["analysis"]
        assert analysis["cascade"] == []
        assert analysis["recovered"] is True
        assert 0.0 <= analysis["recovery_time_s"] <= 15.0
        assert (code, journal["verdict"]) == (0, "pass")


class TestApiProcessKill:
    """SIGKILL of the api, restarted by the launcher's supervisor."""

    def test_reports_a_recovery_time(self, tmp_path: Path) -> None:
        """The api is restarted (an event says so) and the run reports a recovery time."""
        code, journal, _ = run_quick("api-process-kill", "fragile", tmp_path)
        restarts = [e for e in journal["events"] if e["kind"] == "service_restart"]
        assert restarts and restarts[0]["data"]["service"] == "api"
        assert journal["analysis"]["recovered"] is True
        assert journal["analysis"]["recovery_time_s"] is not None
        assert code == 0


class TestDemoCommand:
    """`chaoslab demo up|status|down`."""

    @pytest.mark.slow
    def test_up_status_down_leaves_nothing(self, tmp_path: Path) -> None:
        """up starts a healthy demo and records it; status shows it; down stops exactly it."""
        require(
            any(Path(f"/usr/lib/postgresql/{v}/bin/initdb").exists() for v in (15, 16, 17)),
            "PostgreSQL server binaries not installed",
        )
        ports = Ports.pick()
        up = chaoslab(
            ["demo", "up", "--set", "mode=resilient", "--set", "vectors=2000", *ports.overrides()], tmp_path, 150
        )
        try:
            assert up.returncode == 0, up.stderr[-2000:]
            state = json.loads((tmp_path / ".chaoslab" / "demo" / "state.json").read_text())
            assert state["status"] == "up" and state["parameters"]["mode"] == "resilient"
            assert sorted(state["services"]) == ["api", "postgres", "vector"]
            status = chaoslab(["demo", "status"], tmp_path, 30)
            assert status.returncode == 0
            assert status.stdout.count("healthy") == 3 and "NOT HEALTHY" not in status.stdout
            again = chaoslab(["demo", "up", *ports.overrides()], tmp_path, 30)
            assert again.returncode == 2 and "already running" in again.stderr
        finally:
            down = chaoslab(["demo", "down"], tmp_path, 60)
        assert down.returncode == 0 and "demo down" in down.stdout
        assert not (tmp_path / ".chaoslab" / "demo" / "state.json").exists()
        assert (
            not psutil.pid_exists(state["supervisor_pid"])
            or psutil.Process(state["supervisor_pid"]).status() == "zombie"
        )
        assert_nothing_left(ports)
        assert chaoslab(["demo", "status"], tmp_path, 30).returncode == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("experiment", "mode", "must_degrade"),
    [
        ("vector-down", "fragile", "api:search"),
        ("vector-down", "resilient", "api:search"),
        ("postgres-pool-exhaustion", "fragile", "probe:postgres"),
        ("vector-disk-fill", "fragile", "api:search"),
        ("load-spike-recovery", "fragile", None),
        ("cpu-pressure", "fragile", None),
        ("soak-memory", "fragile", None),
    ],
)
def test_catalogue_experiment_passes_quick(
    experiment: str, mode: str, must_degrade: str | None, tmp_path: Path
) -> None:
    """The rest of the catalogue holds its hypothesis in quick form: the fault bites, yet exit 0, no cascade."""
    if experiment == "vector-disk-fill":
        require(os.geteuid() == 0, "the vector data tmpfs needs root")
    code, journal, _ = run_quick(experiment, mode, tmp_path)
    analysis = journal["analysis"]
    if must_degrade is not None:
        assert analysis["impact"][must_degrade]["degraded_windows"] > 0
    assert analysis["cascade"] == []
    assert analysis["recovered"] is True
    assert code == 0
