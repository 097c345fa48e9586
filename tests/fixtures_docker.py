"""Docker fixtures: a client to a real engine, the locally built base image, and service containers.

Outside CI a missing engine skips the tests; in CI (``CI`` set) ``require`` makes it a failure,
because ``scripts/test`` starts the engine (``scripts/docker-engine start``) before pytest.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

HTTP_SERVER_CODE = (
    "import http.server, sys\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = b'ok'\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *args): pass\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n"
)
"""A tiny HTTP server (``GET`` → 200 ``ok``) run by the bind-mounted Python inside a container."""


def _require(condition: bool, reason: str) -> None:
    from tests.conftest import require

    require(condition, reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client to the engine scripts/test (or scripts/docker-engine start) started."""
    from chaoslab.system.containers import connect, engine_reachable

    problem = engine_reachable()  # the engine may simply not be running outside CI
    _require(problem is None, f"no Docker engine (start one with scripts/docker-engine start): {problem}")
    client = connect()
    yield client
    client.close()


@pytest.fixture(scope="session")
def local_image(docker_client: Any) -> str:
    """The local base image (built once per session when missing); its name."""
    from chaoslab.system.containers import LOCAL_IMAGE, ContainerBackend

    _require(shutil.which("busybox") is not None, "busybox not installed (apt-get install busybox-static)")
    ContainerBackend(docker_client).ensure_image(LOCAL_IMAGE)
    return LOCAL_IMAGE


def wait_http(url: str, timeout_s: float = 20.0) -> float:
    """Poll ``url`` until it answers 200; the seconds it took (raises TimeoutError)."""
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout_s}s")
        time.sleep(0.02)


StartContainer = Callable[..., Any]


@pytest.fixture
def http_container(docker_client: Any, local_image: str) -> Iterator[StartContainer]:
    """A factory: ``start(port, restart="no", name=None, compose_project=None, compose_service=None)``.

    Starts a container of the local image running :data:`HTTP_SERVER_CODE` on 127.0.0.1:port
    through :class:`ContainerBackend` (each with its own run id, in its ``chaoslab.run_id`` label),
    waits until it answers, and returns its docker ``Container``; every container is removed at
    teardown.
    """
    from chaoslab.model.topology import ServiceSpec
    from chaoslab.system.containers import ContainerBackend

    backend = ContainerBackend(docker_client)
    started: list[str] = []

    def start(
        port: int,
        *,
        service: str = "web",
        restart: str = "no",
        name: str | None = None,
        compose_project: str | None = None,
        compose_service: str | None = None,
    ) -> Any:
        container: dict[str, str] = {}
        if name is not None:
            container["name"] = name
        if compose_service is not None:
            container["compose_service"] = compose_service
        if compose_project is not None:
            container["compose_project"] = compose_project
        spec = ServiceSpec.model_validate(
            {
                "launch": {
                    "kind": "container",
                    "image": local_image,
                    "command": ["${python}", "-c", HTTP_SERVER_CODE, str(port)],
                    "restart": restart,
                },
                "url": f"http://127.0.0.1:{port}",
                "container": container or None,
            }
        )
        # A run id per container: two containers of one service in a test never share a name.
        run_id = f"t{os.getpid()}-{len(started)}"
        cid = backend.start(service, spec, run_id=run_id, refs={"python": sys.executable})
        started.append(cid)
        wait_http(f"http://127.0.0.1:{port}/")
        return docker_client.containers.get(cid)

    yield start
    for cid in started:
        backend.stop_and_remove(cid, timeout_s=0)
