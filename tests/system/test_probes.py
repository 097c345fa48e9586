"""Health probes of every kind against real servers, processes and containers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from chaoslab.clock import RunClock
from chaoslab.load.recorder import Recorder
from chaoslab.model.topology import ContainerRef, ProbeSpec, TopologySpec
from chaoslab.system.postgres import PostgresServer
from chaoslab.system.probes import (
    ProbeRunner,
    container_filters,
    container_outcome,
    http_outcome,
    json_field,
    late_after_s,
)
from chaoslab.testing import FakeClock
from chaoslab.timeline import ErrorClass, SignalKind
from tests.conftest import free_port


def topology(**probes: dict[str, Any]) -> TopologySpec:
    """A topology with one service per probe."""
    return TopologySpec.model_validate({"name": "t", "services": {n: {"probe": p} for n, p in probes.items()}})


def runner(topo: TopologySpec, **kwargs: Any) -> tuple[ProbeRunner, Recorder]:
    """A probe runner on a fresh clock and recorder."""
    clock = RunClock()
    recorder = Recorder(1.0, clock)
    return ProbeRunner(topo, recorder, clock, **kwargs), recorder


def errors_of(recorder: Recorder, service: str) -> dict[str, int]:
    """All errors of a probe signal, summed over windows."""
    out: dict[str, int] = {}
    for window in recorder.signals()[f"probe:{service}"].windows:
        for name, count in window.errors.items():
            out[name] = out.get(name, 0) + count
    return out


class Pids:
    """A ServiceControl stand-in that only knows PIDs (what the process probe uses)."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self._pids = pids

    def pids(self, service: str) -> list[int]:
        """The PIDs given for the service."""
        return self._pids.get(service, [])

    def is_supervised(self, service: str) -> bool:
        """Never supervised."""
        return False

    async def restart(self, service: str) -> None:
        """Not used by probes."""
        raise NotImplementedError

    async def ensure_running(self, service: str) -> None:
        """Not used by probes."""
        raise NotImplementedError


class TestPureChecks:
    def test_json_field_paths(self) -> None:
        """Dotted paths reach nested fields and list items."""
        assert json_field({"a": {"b": [1, {"c": "ok"}]}}, "a.b.1.c") == "ok"
        with pytest.raises(KeyError):
            json_field({"a": 1}, "a.b")

    def test_http_outcomes(self) -> None:
        """Status mismatches map to HTTP classes (or check), JSON mismatches to check."""
        probe = ProbeSpec(type="http", url="http://x/", json_field="status", json_value="ok")
        assert http_outcome(200, b'{"status": "ok"}', probe) is None
        assert http_outcome(200, b'{"status": "degraded"}', probe) is ErrorClass.CHECK
        assert http_outcome(200, b"not json", probe) is ErrorClass.CHECK
        assert http_outcome(503, b"", probe) is ErrorClass.HTTP_5XX
        assert http_outcome(429, b"", probe) is ErrorClass.HTTP_429
        assert http_outcome(404, b"", probe) is ErrorClass.HTTP_4XX
        assert http_outcome(204, b"", probe) is ErrorClass.CHECK

    def test_container_outcomes(self) -> None:
        """Running is healthy; paused, exited or an unhealthy health check is not."""
        assert container_outcome({"State": {"Status": "running"}}) is None
        assert container_outcome({"State": {"Status": "running", "Health": {"Status": "healthy"}}}) is None
        assert container_outcome({"State": {"Status": "running", "Health": {"Status": "unhealthy"}}}) is not None
        assert container_outcome({"State": {"Status": "paused", "Paused": True}}) is ErrorClass.CHECK
        assert container_outcome({"State": {"Status": "exited"}}) is ErrorClass.CHECK

    def test_container_filters(self) -> None:
        """A name, compose labels, or chaoslab's service label find the container."""
        assert container_filters("api", ContainerRef(name="shop-api")) == {"name": "^/?shop-api$"}
        assert container_filters("api", ContainerRef(compose_service="api", compose_project="shop")) == {
            "label": ["com.docker.compose.service=api", "com.docker.compose.project=shop"]
        }
        assert container_filters("api", None) == {"label": ["chaoslab.service=api"]}


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """An aiohttp server whose /health answers with the status and JSON in the returned dict."""
    port = free_port()
    state: dict[str, Any] = {"status": 200, "json": {"status": "ok"}, "delay_s": 0.0}

    async def health(request: web.Request) -> web.Response:
        await asyncio.sleep(state["delay_s"])
        return web.json_response(state["json"], status=state["status"])

    app = web.Application()
    app.router.add_get("/health", health)
    app_runner = web.AppRunner(app, access_log=None)
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        await app_runner.cleanup()


@pytest.mark.integration
class TestHttpProbe:
    async def test_healthy_then_failing_then_slow(self, health_server: tuple[str, dict[str, Any]]) -> None:
        """Right JSON is healthy; a wrong field fails the check; a 503 is http_5xx; a slow answer times out."""
        url, state = health_server
        probes, recorder = runner(
            topology(
                api={
                    "type": "http",
                    "url": f"{url}/health",
                    "json_field": "status",
                    "json_value": "ok",
                    "timeout": "300ms",
                }
            )
        )
        assert probes.healthy("api") is None
        assert await probes.check_once("api") is True
        state["json"] = {"status": "starting"}
        assert await probes.check_once("api") is False
        state["status"] = 503
        assert await probes.check_once("api") is False
        state.update(status=200, json={"status": "ok"}, delay_s=1.0)
        assert await probes.check_once("api") is False
        assert probes.healthy("api") is False
        await probes.close()
        signal_ = recorder.signals()["probe:api"]
        assert (signal_.kind, signal_.service) == (SignalKind.PROBE, "api")
        assert errors_of(recorder, "api") == {"check": 1, "http_5xx": 1, "timeout": 1}
        assert sum(w.count for w in signal_.windows) == 4

    async def test_refused(self) -> None:
        """An HTTP probe of a closed port fails as refused."""
        probes, recorder = runner(topology(api={"type": "http", "url": f"http://127.0.0.1:{free_port()}/health"}))
        assert await probes.check_once("api") is False
        await probes.close()
        assert errors_of(recorder, "api") == {"refused": 1}

    async def test_url_refs_are_resolved(self, health_server: tuple[str, dict[str, Any]]) -> None:
        """``${service:api}`` in a probe URL is the service's URL from the topology."""
        url, _ = health_server
        topo = TopologySpec.model_validate(
            {"name": "t", "services": {"api": {"url": url, "probe": {"type": "http", "url": "${service:api}/health"}}}}
        )
        probes, _ = runner(topo)
        assert await probes.check_once("api") is True
        await probes.close()


@pytest.mark.integration
class LateClock(FakeClock):
    """A fake clock whose every third sleep wakes ``late_s`` after its deadline (a busy event loop)."""

    def __init__(self, late_s: float) -> None:
        super().__init__()
        self.late_s = late_s
        self.calls = 0

    async def sleep_until(self, deadline: float) -> None:
        """Wake late on every third call."""
        self.calls += 1
        await super().sleep_until(deadline + (self.late_s if self.calls % 3 == 0 else 0.0))


class TestOnTime:
    """Probes that could not start on time are counted, so analysis can refuse a verdict."""

    def test_lateness_allowed_grows_with_the_interval(self) -> None:
        """100 ms, or a quarter of the interval when that is longer."""
        assert (late_after_s(0.25), late_after_s(1.0), late_after_s(4.0)) == (0.1, 0.25, 1.0)

    async def test_late_starts_are_counted_as_unsent(self) -> None:
        """Due every second for 6 s on a loop that wakes 0.5 s late every third time: 6 due, 2 late."""
        topo = topology(web={"type": "process", "interval": "1s"})
        clock = RunClock(LateClock(0.5))
        recorder = Recorder(1.0, clock)
        probes = ProbeRunner(topo, recorder, clock, services=Pids({"web": [os.getpid()]}))
        await asyncio.wait_for(probes.run(6.0), 5.0)
        windows = recorder.signals()["probe:web"].windows
        assert (sum(w.offered for w in windows), sum(w.unsent for w in windows)) == (6, 2)
        assert sum(w.count for w in windows) == 6


class TestTcpProbe:
    async def test_open_and_closed_ports(self) -> None:
        """A listening port is healthy; after the listener closes the probe fails as refused."""
        port = free_port()
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        probes, recorder = runner(topology(db={"type": "tcp", "address": f"127.0.0.1:{port}"}))
        assert await probes.check_once("db") is True
        server.close()
        await server.wait_closed()
        assert await probes.check_once("db") is False
        assert errors_of(recorder, "db") == {"refused": 1}

    async def test_run_probes_on_the_interval_until_the_end(self) -> None:
        """Every 100 ms for 0.5 s is at most five attempts (missed ticks are skipped), then the runner stops."""
        port = free_port()
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
        try:
            probes, recorder = runner(topology(db={"type": "tcp", "address": f"127.0.0.1:{port}", "interval": "100ms"}))
            await asyncio.wait_for(probes.run(0.5), 2.0)
        finally:
            server.close()
            await server.wait_closed()
        windows = recorder.signals()["probe:db"].windows
        assert len(windows) == 1 and windows[0].ok == windows[0].count
        assert 3 <= windows[0].count <= 5  # 5 unless this process was stalled for a tick
        assert probes.healthy("db") is True


@pytest.mark.integration
@pytest.mark.postgres
class TestPostgresProbe:
    async def test_select_one(self, postgres_server: PostgresServer) -> None:
        """``SELECT 1`` on the real server is healthy; a DSN to a closed port is refused."""
        probes, recorder = runner(
            topology(
                pg={"type": "postgres", "dsn": postgres_server.dsn()},
                gone={"type": "postgres", "dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"},
            )
        )
        assert await probes.check_once("pg") is True
        assert await probes.check_once("gone") is False
        assert errors_of(recorder, "gone") == {"refused": 1}

    async def test_silent_server_times_out(self) -> None:
        """A server that accepts but never answers the startup message fails the probe as a timeout."""
        port = free_port()
        held: list[asyncio.StreamWriter] = []

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)  # keep the connection open, say nothing

        server = await asyncio.start_server(accept, "127.0.0.1", port)
        try:
            probes, recorder = runner(
                topology(pg={"type": "postgres", "dsn": f"postgresql://u@127.0.0.1:{port}/db", "timeout": "200ms"})
            )
            assert await probes.check_once("pg") is False
        finally:
            for writer in held:
                writer.close()
            server.close()
            await server.wait_closed()
        assert errors_of(recorder, "pg") == {"timeout": 1}
        window = recorder.signals()["probe:pg"].windows[0]
        assert window.max_ms is not None and 195 <= window.max_ms <= 700

    async def test_unknown_database_is_a_check_failure(self, postgres_server: PostgresServer) -> None:
        """PostgreSQL answering with an error (no such database) is a failed check."""
        probes, recorder = runner(topology(pg={"type": "postgres", "dsn": postgres_server.dsn("no_such_db")}))
        assert await probes.check_once("pg") is False
        assert errors_of(recorder, "pg") == {"check": 1}


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real child process that sleeps (bounded to 60 s)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)


@pytest.mark.integration
class TestProcessProbe:
    async def test_alive_stopped_and_dead(self, sleeper: subprocess.Popen[bytes]) -> None:
        """A running process is healthy; stopped (SIGSTOP) or killed it is not; no PIDs is not."""
        probes, recorder = runner(
            topology(worker={"type": "process"}, absent={"type": "process"}),
            services=Pids({"worker": [sleeper.pid]}),
        )
        assert await probes.check_once("worker") is True
        os.kill(sleeper.pid, signal.SIGSTOP)
        for _ in range(500):  # the kernel marks the process stopped within microseconds; allow 5 s
            if not await probes.check_once("worker"):
                break
            await asyncio.sleep(0.01)
        assert probes.healthy("worker") is False
        os.kill(sleeper.pid, signal.SIGCONT)
        sleeper.kill()
        sleeper.wait(timeout=10)
        assert await probes.check_once("worker") is False
        assert await probes.check_once("absent") is False
        assert errors_of(recorder, "absent") == {"check": 1}


@pytest.mark.integration
class TestProcessProbeWithoutLauncher:
    async def test_pidfile_and_cmdline_matches(self, sleeper: subprocess.Popen[bytes], tmp_path: Any) -> None:
        """Without a launcher, a pidfile or the exact command line finds the process; a stale pidfile does not."""
        pidfile = tmp_path / "worker.pid"
        pidfile.write_text(f"{sleeper.pid}\n")
        topo = TopologySpec.model_validate(
            {
                "name": "t",
                "services": {
                    "by_pidfile": {"process": {"pidfile": str(pidfile)}, "probe": {"type": "process"}},
                    "by_cmdline": {
                        "process": {"cmdline": [sys.executable, "-c", "import time; time.sleep(60)"]},
                        "probe": {"type": "process"},
                    },
                    "stale": {"process": {"pidfile": str(tmp_path / "missing.pid")}, "probe": {"type": "process"}},
                },
            }
        )
        probes, _ = runner(topo)
        assert await probes.check_once("by_pidfile") is True
        assert await probes.check_once("by_cmdline") is True
        assert await probes.check_once("stale") is False


@pytest.mark.integration
@pytest.mark.docker
class TestContainerProbe:
    async def test_running_then_stopped(self, docker_client: Any, http_container: Any) -> None:
        """A running container, found by name or by compose labels, is healthy; stopped it is not."""
        port = free_port()
        name = f"chaoslab-probe-{os.getpid()}"
        container = http_container(port, name=name, compose_project="probetest", compose_service="web")
        topo = TopologySpec.model_validate(
            {
                "name": "t",
                "services": {
                    "by_name": {"container": {"name": name}, "probe": {"type": "container", "timeout": "5s"}},
                    "by_label": {
                        "container": {"compose_project": "probetest", "compose_service": "web"},
                        "probe": {"type": "container", "timeout": "5s"},
                    },
                    "missing": {"container": {"name": f"{name}-nope"}, "probe": {"type": "container"}},
                },
            }
        )
        probes, recorder = runner(topo, docker_client=docker_client)
        assert await probes.check_once("by_name") is True
        assert await probes.check_once("by_label") is True
        assert await probes.check_once("missing") is False
        await asyncio.to_thread(container.stop, timeout=0)
        assert await probes.check_once("by_name") is False
        assert errors_of(recorder, "by_name") == {"check": 1}
