"""Shared fixtures: free ports, a real PostgreSQL server, a real Docker engine (tests/fixtures_docker.py)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import structlog

from chaoslab.redact import forget_all
from chaoslab.system.postgres import PostgresServer

pytest_plugins = ["tests.fixtures_docker"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Start every test from structlog's defaults.

    A test that runs the CLI in-process configures structlog on the stderr of click's runner,
    which is closed afterwards: a later test that logs would write to a closed file.
    """
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def _nothing_remembered() -> Iterator[None]:
    """Secrets remembered by one test (a value read from ${env:...}) are not masked in the next one's output."""
    yield
    forget_all()


def require(condition: bool, reason: str) -> None:
    """Skip a test whose real dependency is missing — but fail in CI, where setup installs it."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL 15 server (as the postgres user when root), max_connections=20, for the session."""
    require(
        any(os.path.exists(f"/usr/lib/postgresql/{v}/bin/initdb") for v in (15, 16, 17)),
        "PostgreSQL server binaries not installed",
    )
    server = PostgresServer(port=free_port(), max_connections=20)
    server.start()
    try:
        yield server
    finally:
        server.stop()
