"""A real PostgreSQL server in a temporary directory, started and stopped by PID.

PostgreSQL refuses to run as root, so when chaoslab runs as root the server runs as the
``postgres`` user on a data directory that user owns. Trust authentication on 127.0.0.1 only.

>>> server = PostgresServer(port=25432, max_connections=20)   # doctest: +SKIP
>>> server.start(); server.dsn("postgres")                     # doctest: +SKIP
'postgresql://postgres@127.0.0.1:25432/postgres'
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaoslab.errors import HarnessError

BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")


def pg_bin(name: str) -> str:
    """Full path of a PostgreSQL server binary (initdb, postgres, pg_ctl)."""
    for directory in BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise HarnessError(f"PostgreSQL binary {name!r} not found (looked in {', '.join(BIN_DIRS)} and PATH)")


def _run_as() -> str | None:
    """The user to run PostgreSQL as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise HarnessError("running as root but there is no 'postgres' user to run PostgreSQL as") from None
    return "postgres"


@dataclass
class PostgresServer:
    """One PostgreSQL server on 127.0.0.1:``port`` with its data in a temporary directory."""

    port: int
    max_connections: int = 100
    base_dir: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    data_dir: Path | None = None
    _own_base: bool = False

    def dsn(self, database: str = "postgres", user: str = "postgres") -> str:
        """A libpq/asyncpg connection string."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        """PID of the postmaster, when running."""
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def start(self, timeout_s: float = 30.0) -> None:
        """initdb (first time) and start the server; return once it accepts connections."""
        user = _run_as()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="chaoslab-pg-"))
            self._own_base = True
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.base_dir / "data"
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.base_dir, entry.pw_uid, entry.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            result = subprocess.run(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "--locale=C",
                ],
                user=user,
                capture_output=True,
                check=False,
            )
            if result.returncode != 0:
                raise HarnessError(f"initdb failed: {result.stderr.decode(errors='replace').strip()[-300:]}")
        args = [
            pg_bin("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.base_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"max_connections={self.max_connections}",
            "-c",
            "superuser_reserved_connections=3",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "shared_buffers=32MB",
        ]
        for key, value in self.settings.items():
            args += ["-c", f"{key}={value}"]
        log = open(self.base_dir / "postgres.log", "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            args, user=user, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.base_dir / "postgres.log").read_text(errors="replace")[-400:]
                raise HarnessError(f"PostgreSQL exited at start (code {self.process.returncode}): {tail.strip()}")
            if self._accepts():
                return
            time.sleep(0.1)
        self.stop()
        raise HarnessError(f"PostgreSQL did not accept connections on 127.0.0.1:{self.port} within {timeout_s:g}s")

    def _accepts(self) -> bool:
        result = (
            subprocess.run(
                [pg_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
                capture_output=True,
                check=False,
            )
            if Path(pg_bin("postgres")).with_name("pg_isready").exists()
            else None
        )
        if result is not None:
            return result.returncode == 0
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, timeout_s: float = 15.0) -> None:
        """Fast shutdown (SIGINT) of the server we started, by its PID; remove our temp dir."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if self._own_base and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
