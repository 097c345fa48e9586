"""Secrets stay secret: a real run that uses planted secrets writes none of them anywhere.

The secrets are unique random strings handed over the ways a user would: environment variables
and files (``${env:...}``, ``${file:...}``) in a PostgreSQL DSN, a login body, request headers and
the environment of a launched service, plus a literal header and command-line flag named like
secrets. The run is real — a launched HTTP service that answers only requests carrying the right
credentials (``tests/groundtruth/auth_target.py``) and a PostgreSQL server that demands a password
— and the test checks that each secret *was used* (authorized requests, a successful login, a
pool fault that connected, a healthy database probe) before it checks that no byte of any secret
is in anything the run wrote or printed: journal, reports, ledger, run directory, logs at debug
level, the plan, ``--dry-run``, ``analyse``/``report`` output and the errors of failing variants.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from chaoslab.system.postgres import PostgresServer
from tests.conftest import free_port, require

pytestmark = pytest.mark.integration

TARGET = Path(__file__).resolve().parent.parent / "groundtruth" / "auth_target.py"
PG_ROLE = "app_secret"


def planted(label: str) -> str:
    """A unique secret: nothing else in any output can contain it by chance."""
    return f"{label}{secrets.token_hex(12)}"


@dataclass(frozen=True)
class Secrets:
    """The planted secrets, each handed over one way."""

    password: str = field(default_factory=lambda: planted("LoginPw"))  # file: login body, the service's env
    api_key: str = field(default_factory=lambda: planted("ApiKey"))  # env: X-Api-Key header, the service's env
    token: str = field(default_factory=lambda: planted("Token"))  # env: the service hands it back at login
    pg_password: str = field(default_factory=lambda: planted("PgPw"))  # env and file: DSNs
    literal: str = field(default_factory=lambda: planted("Literal"))  # written literally: header, --debug-token
    wrong_password: str = field(default_factory=lambda: planted("WrongPw"))  # file: the failing variant's login

    def all(self) -> dict[str, str]:
        """Every secret by name."""
        return dict(vars(self))

    def env(self) -> dict[str, str]:
        """The variables the experiment and topology refer to."""
        return {
            "CHAOSLAB_TEST_API_KEY": self.api_key,
            "CHAOSLAB_TEST_TOKEN": self.token,
            "CHAOSLAB_TEST_PGPASSWORD": self.pg_password,
        }


@pytest.fixture(scope="module")
def planted_secrets() -> Secrets:
    """This module's secrets."""
    return Secrets()


@pytest.fixture(scope="module")
def pg_with_password(planted_secrets: Secrets) -> Iterator[PostgresServer]:
    """A real PostgreSQL whose role ``app_secret`` must give its password (scram-sha-256) over TCP."""
    require(
        any(os.path.exists(f"/usr/lib/postgresql/{v}/bin/initdb") for v in (15, 16, 17)),
        "PostgreSQL server binaries not installed",
    )
    server = PostgresServer(port=free_port(), max_connections=20)  # its own temp dir, reachable by `postgres`
    server.start()
    try:
        assert server.data_dir is not None
        hba = server.data_dir / "pg_hba.conf"
        hba.write_text(f"host all {PG_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())

        async def prepare() -> None:
            admin = await asyncpg.connect(server.dsn())
            try:
                # the test, not chaoslab, sets the password: this statement is not an output of the run
                await admin.execute(f"CREATE ROLE {PG_ROLE} LOGIN PASSWORD '{planted_secrets.pg_password}'")
                await admin.execute("SELECT pg_reload_conf()")
            finally:
                await admin.close()

        asyncio.run(prepare())
        yield server
    finally:
        server.stop()


@dataclass
class World:
    """One set-up: inputs (where the secrets may be), outputs and the environment of the runs."""

    root: Path
    inputs: Path
    port: int
    pg_port: int
    counts: Path
    env: dict[str, str]
    secrets: Secrets
    printed: list[tuple[str, str]] = field(default_factory=list)
    """(what, text) of every command's stdout and stderr."""
    seen_live: dict[str, int] = field(default_factory=dict)
    """Files read while the run was going on (the ledger, the run directory), by kind."""
    locust_configs: dict[Path, tuple[int, int, bytes]] = field(default_factory=dict)
    """Locust configurations seen in the run directory: (file mode, directory mode, content)."""
    live_leaks: set[str] = field(default_factory=set)
    """Secrets found in those files (the run goes on to its end, which stops what it started)."""

    def chaoslab(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the CLI; what it printed is kept for the grep."""
        result = subprocess.run(
            [sys.executable, "-m", "chaoslab", *args],
            capture_output=True,
            text=True,
            timeout=240,
            env={**self.env, **(env or {})},
        )
        self.printed.append((f"{args} stdout", result.stdout))
        self.printed.append((f"{args} stderr", result.stderr))
        return result

    def run_watched(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the CLI and, while it runs, read every file in the state and temporary directories."""
        out_path, err_path = self.root / "run.stdout", self.root / "run.stderr"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "chaoslab", *args], stdout=out, stderr=err, env=self.env)
            deadline = time.monotonic() + 240
            try:
                while proc.poll() is None and time.monotonic() < deadline:
                    self._scan_live()
                    time.sleep(0.2)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(10)
        stdout, stderr = out_path.read_text(), err_path.read_text()
        self.printed.append((f"{args} stdout", stdout))
        self.printed.append((f"{args} stderr", stderr))
        return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)

    def _scan_live(self) -> None:
        for base, kind in ((self.root / "state", "state"), (self.root / "tmp", "run dir")):
            for path in _files_under(base):
                try:
                    if not path.is_file():
                        continue
                    mode = path.stat().st_mode & 0o777
                    data = path.read_bytes()
                except OSError:
                    continue  # removed while we looked
                if path.name == "config.json" and path.parent.name.startswith("chaoslab-locust-"):
                    self.locust_configs[path] = (mode, path.parent.stat().st_mode & 0o777, data)
                    continue  # the one file that must hold the secrets: Locust's processes send them
                self.seen_live[kind] = self.seen_live.get(kind, 0) + 1
                if path.name == "ledger.jsonl":
                    self.seen_live["ledger"] = self.seen_live.get("ledger", 0) + 1
                for name, value in self.secrets.all().items():
                    if value.encode() in data:
                        self.live_leaks.add(f"{name} in {path} while the run was going on")

    def leaks(self) -> list[str]:
        """Where any secret appears: files outside the inputs (after the run) and everything printed."""
        found: list[str] = sorted(self.live_leaks)
        values = self.secrets.all()
        for path in sorted(self.root.rglob("*")):
            if not path.is_file() or self.inputs in path.parents:
                continue
            data = path.read_bytes()
            found += [f"{name} in {path}" for name, value in values.items() if value.encode() in data]
        for what, text in self.printed:
            found += [f"{name} in {what}" for name, value in values.items() if value in text]
        return found

    def target_counts(self) -> dict[str, int]:
        """What the service saw."""
        counts: dict[str, int] = json.loads(self.counts.read_text())
        return counts


def make_world(
    tmp_path: Path,
    s: Secrets,
    pg: PostgresServer,
    *,
    login_password_file: str = "password",
    load: dict[str, Any] | None = None,
    phases: dict[str, str] | None = None,
) -> World:
    """Write the secrets into files, the topology and the experiment (inputs/), and the run's environment."""
    inputs = tmp_path / "inputs"
    (inputs / "secrets").mkdir(parents=True)
    for name, value in (("password", s.password), ("pgpassword", s.pg_password), ("wrong", s.wrong_password)):
        # as `echo secret > file` writes it: the trailing newline is not part of the secret
        (inputs / "secrets" / name).write_text(value + "\n")
    port = free_port()
    counts = tmp_path / "target" / "counts.json"
    counts.parent.mkdir()
    topology = {
        "name": "secrets",
        "services": {
            "target": {
                "launch": {
                    "kind": "process",
                    "command": [
                        sys.executable,
                        str(TARGET),
                        "--port",
                        str(port),
                        "--counts",
                        str(counts),
                        "--debug-token",
                        s.literal,
                    ],
                    "env": {
                        "AUTH_TARGET_PASSWORD": "${file:secrets/password}",
                        "AUTH_TARGET_API_KEY": "${env:CHAOSLAB_TEST_API_KEY}",
                        "AUTH_TARGET_TOKEN": "${env:CHAOSLAB_TEST_TOKEN}",
                    },
                },
                "url": f"http://127.0.0.1:{port}",
                "probe": {"type": "http", "url": f"http://127.0.0.1:{port}/health", "interval": "250ms"},
            },
            "db": {
                "address": f"127.0.0.1:{pg.port}",
                "dsn": f"postgresql://{PG_ROLE}:${{env:CHAOSLAB_TEST_PGPASSWORD}}@127.0.0.1:{pg.port}/postgres",
                "probe": {
                    "type": "postgres",
                    "dsn": f"postgresql://{PG_ROLE}:${{file:secrets/pgpassword}}@127.0.0.1:{pg.port}/postgres",
                    "interval": "250ms",
                },
            },
        },
    }
    experiment: dict[str, Any] = {
        "name": "secrets",
        "topology": "topology.yaml",
        "load": {
            "rate": "20/s",
            "connections": 4,
            "login": {
                "url": "${service:target}/login",
                "json": {"user": "chaoslab", "password": f"${{file:secrets/{login_password_file}}}"},
            },
            "mix": [
                {
                    "name": "data",
                    "signal": "target:data",
                    "url": "${service:target}/data",
                    "headers": {"X-Api-Key": "${env:CHAOSLAB_TEST_API_KEY}", "X-Debug-Token": s.literal},
                    "timeout": "2s",
                }
            ],
        },
        "phases": phases or {"warmup": "1s", "baseline": "3s", "fault": "3s"},
        "faults": [{"kind": "pool_exhaustion", "target": "db", "connections": 3, "start": "500ms", "duration": "2s"}],
        "steady_state": {"window": "500ms", "min_samples": 3, "sustained": "1s"},
        "recovery": {"budget": "10s", "stable_for": "1s"},
    }
    experiment["load"].update(load or {})
    (inputs / "topology.yaml").write_text(yaml.safe_dump(topology, sort_keys=False))
    (inputs / "experiment.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    env = {
        **os.environ,
        **s.env(),
        "CHAOSLAB_STATE_DIR": str(tmp_path / "state"),
        "TMPDIR": str(tmp_path / "tmp"),  # the run directory lives here: scanned while the run goes on
    }
    (tmp_path / "tmp").mkdir()
    return World(tmp_path, inputs, port, pg.port, counts, env, s)


class TestSecretsStaySecret:
    """Every output of a real run that used the secrets: 0 occurrences of any of them."""

    def test_a_run_uses_the_secrets_and_writes_none_of_them(
        self, tmp_path: Path, planted_secrets: Secrets, pg_with_password: PostgresServer
    ) -> None:
        """Validate, plan, dry run, check, the run at debug level with every report, analyse and report: no secret."""
        world = make_world(tmp_path, planted_secrets, pg_with_password)
        experiment = str(world.inputs / "experiment.yaml")
        out = tmp_path / "out"

        assert world.chaoslab("validate", experiment).returncode == 0
        plan = world.chaoslab("plan", experiment)
        assert plan.returncode == 0, plan.stderr
        dry = world.chaoslab("run", experiment, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        # `chaoslab check` connects to the database with the password from the file (and shows the reference)
        check = world.chaoslab("check", experiment)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"postgres postgresql://{PG_ROLE}:${{file:" in check.stdout
        result = world.run_watched(
            "-vv",
            "--log-json",
            "run",
            experiment,
            "--report-dir",
            str(out),
            "--junit",
            str(out / "junit.xml"),
            "--summary-md",
            str(out / "summary.md"),
            "--no-live",
        )
        assert result.returncode in (0, 1), result.stderr[-3000:]
        journal_path = out / "journal.json"
        assert world.chaoslab("analyse", str(journal_path), "--json").returncode in (0, 1)
        assert world.chaoslab("report", str(journal_path), "--json").returncode == 0
        shown = world.chaoslab("report", str(journal_path))
        assert shown.returncode == 0 and "probe:db" in shown.stdout + shown.stderr  # the terminal summary

        # the secrets were used: the service saw a good login and only authorized requests ...
        counts = world.target_counts()
        assert counts["login_ok"] >= 1 and counts["login_failed"] == 0, counts
        assert counts["authorized"] > 20 and counts["unauthorized"] == 0, counts
        journal = json.loads(journal_path.read_text())
        # ... the pool fault connected with the DSN's password and came off ...
        (fault,) = journal["faults"]
        assert fault["injected_at_s"] is not None and fault["error"] is None and fault["revert_ok"] is True, fault
        assert fault["detail"]["connections_taken"] == 3, fault["detail"]
        # ... and the database probe, with the password from the file, was healthy
        (db_probe,) = [p for p in journal["probes"] if p["name"] == "probe:db"]
        assert sum(w["ok"] for w in db_probe["windows"]) > 5, db_probe
        # the log really was written at debug level, the ledger and the run directory really were read
        assert '"level": "debug"' in result.stderr or '"level": "info"' in result.stderr
        assert world.seen_live.get("ledger", 0) > 0 and world.seen_live.get("run dir", 0) > 0, world.seen_live

        # where a secret was, the journal says where it comes from, or ***
        mix = journal["experiment"]["load"]["mix"][0]
        assert mix["headers"] == {"X-Api-Key": "${env:CHAOSLAB_TEST_API_KEY}", "X-Debug-Token": "***"}
        assert journal["topology"]["services"]["db"]["dsn"].startswith(f"postgresql://{PG_ROLE}:${{env:")

        assert world.leaks() == []

    def test_a_failing_login_quoting_the_password_back_writes_no_secret(
        self, tmp_path: Path, planted_secrets: Secrets, pg_with_password: PostgresServer
    ) -> None:
        """A wrong password from the file: the service answers 401 quoting it; chaoslab's error shows ***."""
        world = make_world(tmp_path, planted_secrets, pg_with_password, login_password_file="wrong")
        out = tmp_path / "out"
        result = world.run_watched("-v", "run", str(world.inputs / "experiment.yaml"), "--report-dir", str(out))
        assert result.returncode == 3, result.stderr[-3000:]
        assert world.target_counts()["login_failed"] >= 1  # the wrong secret was sent, and quoted back
        journal = json.loads((out / "journal.json").read_text())
        assert "login to" in journal["error"] and "***" in journal["error"], journal["error"]
        assert world.leaks() == []

    def test_a_missing_variable_is_one_line_naming_the_field(
        self, tmp_path: Path, planted_secrets: Secrets, pg_with_password: PostgresServer
    ) -> None:
        """CHAOSLAB_TEST_API_KEY unset: exit 2, FILE:LINE: field: ..., nothing started, no secret printed."""
        world = make_world(tmp_path, planted_secrets, pg_with_password)
        del world.env["CHAOSLAB_TEST_API_KEY"]
        result = world.chaoslab("run", str(world.inputs / "experiment.yaml"))
        assert result.returncode == 2
        (line,) = result.stderr.strip().splitlines()
        assert "experiment.yaml:" in line and "load.mix.0.headers.X-Api-Key:" in line
        assert "environment variable CHAOSLAB_TEST_API_KEY is not set" in line
        assert not (tmp_path / "state").exists()
        assert world.leaks() == []

    def test_a_locust_swarm_gets_its_secrets_from_a_private_file_that_goes_away(
        self, tmp_path: Path, planted_secrets: Secrets, pg_with_password: PostgresServer
    ) -> None:
        """engine: locust — the resolved headers reach Locust in a 0600 file in a 0700 directory of the run
        directory, removed at the end; nothing else the run writes holds a secret."""
        world = make_world(
            tmp_path,
            planted_secrets,
            pg_with_password,
            load={"engine": "locust", "locust": {"workers": 0, "users": 4, "spawn_rate": 100}},
            phases={"warmup": "4s", "baseline": "3s", "fault": "3s"},
        )
        out = tmp_path / "out"
        result = world.run_watched("-v", "run", str(world.inputs / "experiment.yaml"), "--report-dir", str(out))
        assert result.returncode in (0, 1), result.stderr[-3000:]
        counts = world.target_counts()
        assert counts["authorized"] > 10 and counts["unauthorized"] == 0, counts
        assert len(world.locust_configs) == 1, world.locust_configs.keys()
        ((path, (file_mode, dir_mode, content)),) = world.locust_configs.items()
        assert (file_mode, dir_mode) == (0o600, 0o700)
        assert planted_secrets.api_key.encode() in content  # the swarm did get the header it sent
        assert not path.parent.exists()
        assert world.leaks() == []


def _files_under(base: Path) -> list[Path]:
    """Every file under ``base`` now; directories removed while walking (the run cleaning up) are skipped."""
    # os.walk ignores a directory that vanishes mid-walk; Path.rglob raises FileNotFoundError
    return [Path(top) / name for top, _dirs, names in os.walk(base) for name in names]
