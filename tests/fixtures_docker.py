"""Docker fixtures (placeholder until the container work lands: a client to a running engine)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client to the engine scripts/test started."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # the engine may simply not be running outside CI
        from tests.conftest import require

        require(False, f"no Docker engine: {exc}")
        raise
    yield client
    client.close()
