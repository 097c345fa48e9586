"""The load generator: pure helpers, and open-loop runs against real aiohttp targets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from chaoslab.clock import RunClock
from chaoslab.errors import HarnessError, SpecError
from chaoslab.load.generator import LoadGenerator, classify_status, compile_request
from chaoslab.load.recorder import Recorder
from chaoslab.model.experiment import LoadSpec, RequestSpec
from chaoslab.timeline import ErrorClass, WindowStats
from tests.conftest import free_port

CLIENTS = ["lean", "aiohttp"]


def load_spec(rate: str, *mix: dict[str, Any], **extra: Any) -> LoadSpec:
    """A LoadSpec from plain data."""
    return LoadSpec.model_validate({"rate": rate, "mix": list(mix), **extra})


def total(windows: tuple[WindowStats, ...], name: str) -> int:
    """The sum of one field over windows."""
    return sum(getattr(w, name) for w in windows)


@dataclass
class Target:
    """An aiohttp server in the test's loop that remembers what it was asked."""

    url: str
    paths: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    active: int = 0
    max_active: int = 0


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """A real aiohttp server on 127.0.0.1 with /ok, /status/{code}, /slow, /login and /item/{id}."""
    port = free_port()
    state = Target(f"http://127.0.0.1:{port}")

    async def ok(request: web.Request) -> web.Response:
        state.paths.append(request.path_qs)
        state.auth.append(request.headers.get("Authorization"))
        if request.can_read_body:
            state.bodies.append(await request.json())
        return web.Response(text="ok")

    async def status(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="x")

    async def slow(request: web.Request) -> web.Response:
        state.active += 1
        state.max_active = max(state.max_active, state.active)
        try:
            await asyncio.sleep(float(request.query.get("s", "2")))
        finally:
            state.active -= 1
        return web.Response(text="late")

    async def login(request: web.Request) -> web.Response:
        data = await request.json()
        if data != {"user": "u", "password": "p"}:
            return web.json_response({"error": "bad"}, status=403)
        return web.json_response({"auth": {"token": "t0k"}})

    app = web.Application()
    app.router.add_route("*", "/ok", ok)
    app.router.add_get("/item/{id}", ok)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/slow", slow)
    app.router.add_post("/login", login)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield state
    finally:
        await runner.cleanup()


class TestClassifyStatus:
    def test_status_classes(self) -> None:
        """2xx/3xx succeed; 429, 5xx and other 4xx are their own classes."""
        got = [classify_status(s) for s in (200, 302, 404, 429, 500, 503)]
        assert got == [None, None, ErrorClass.HTTP_4XX, ErrorClass.HTTP_429, ErrorClass.HTTP_5XX, ErrorClass.HTTP_5XX]

    def test_expected_statuses(self) -> None:
        """With ``expect_status: [201]`` a 200 fails the check and a 201 succeeds."""
        assert classify_status(200, (201,)) is ErrorClass.CHECK
        assert classify_status(201, (201,)) is None
        assert classify_status(404, (200,)) is ErrorClass.HTTP_4XX


class TestCompileRequest:
    def test_static_request_is_prebuilt(self) -> None:
        """A request without per-request placeholders is built once, with Host and Content-Length."""
        spec = RequestSpec.model_validate(
            {"name": "s", "method": "POST", "url": "${service:api}/search", "json": {"q": "x"}}
        )
        cls = compile_request(spec, {"service:api": "http://127.0.0.1:8080"}, {"Authorization": "Bearer t"})
        assert cls.static_payload == (
            b"POST /search HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
            b'Authorization: Bearer t\r\nUser-Agent: chaoslab\r\nContent-Length: 9\r\n\r\n{"q":"x"}'
        )
        assert cls.service == "api"
        assert (cls.host, cls.port) == ("127.0.0.1", 8080)

    def test_url_must_be_absolute_http(self) -> None:
        """A URL that resolves to a bare address is rejected with the request class named."""
        spec = RequestSpec.model_validate({"name": "db", "url": "${service:db}/x"})
        with pytest.raises(SpecError, match=r"load\.mix\.db\.url: expected an absolute http"):
            compile_request(spec, {"service:db": "127.0.0.1:5432"}, {})

    def test_ipv6_host_header_keeps_brackets(self) -> None:
        """``http://[::1]:8080/x`` is sent with ``Host: [::1]:8080``."""
        spec = RequestSpec.model_validate({"name": "v6", "url": "http://[::1]:8080/x"})
        cls = compile_request(spec, {}, {})
        assert (cls.host, cls.port, cls.host_header) == ("::1", 8080, "[::1]:8080")

    def test_templated_request_is_built_per_send(self) -> None:
        """A URL with ``{randint}`` is not prebuilt."""
        spec = RequestSpec.model_validate({"name": "d", "url": "http://127.0.0.1:1/d/{randint:1:5}"})
        assert compile_request(spec, {}, {}).static_payload is None


@pytest.mark.integration
class TestLoadGeneratorRuns:
    @pytest.mark.parametrize("client", CLIENTS)
    async def test_achieved_rate_matches_the_schedule(self, target: Target, client: str) -> None:
        """200 req/s for 2 s sends exactly 400 requests, 200 per window, all answered OK."""
        clock = RunClock()
        recorder = Recorder(1.0, clock)
        spec = load_spec("200/s", {"name": "ok", "url": "${service:t}/ok"})
        gen = LoadGenerator(spec, {"service:t": target.url}, recorder, clock, client=client)  # type: ignore[arg-type]
        await gen.run(1.0, 3.0)
        windows = recorder.signals()["ok"].windows
        assert [(w.index, w.offered, w.count, w.ok, w.unsent) for w in windows] == [
            (1, 200, 200, 200, 0),
            (2, 200, 200, 200, 0),
        ]
        assert len(target.paths) == 400
        assert [(g.index, g.offered, g.sent) for g in gen.generator_windows()] == [(1, 200, 200), (2, 200, 200)]

    async def test_mix_weights_and_templates(self, target: Target) -> None:
        """A 3:1 mix at 400 req/s for 1 s splits about 300/100; ids come from the randint range."""
        clock = RunClock()
        recorder = Recorder(1.0, clock)
        spec = load_spec(
            "400/s",
            {"name": "items", "weight": 3, "url": "${service:t}/item/{randint:1:5}"},
            {"name": "posts", "weight": 1, "method": "POST", "url": "${service:t}/ok", "json": {"c": "{choice:r,g}"}},
            seed=11,
        )
        gen = LoadGenerator(spec, {"service:t": target.url}, recorder, clock)
        await gen.run(0.0, 1.0)
        signals = recorder.signals()
        items, posts = total(signals["items"].windows, "ok"), total(signals["posts"].windows, "ok")
        assert items + posts == 400
        assert 260 <= items <= 340
        assert {p for p in target.paths if p.startswith("/item/")} == {f"/item/{i}" for i in range(1, 6)}
        assert {b["c"] for b in target.bodies} == {"r", "g"}

    async def test_step_profile_and_tenth_of_a_second_windows(self, target: Target) -> None:
        """A step from 100 to 300 req/s at 0.5 s fills 0.1 s windows with 10, then 30 requests."""
        clock = RunClock()
        recorder = Recorder(0.1, clock)
        spec = load_spec(
            "100/s",
            {"name": "ok", "url": "${service:t}/ok"},
            profile={"kind": "step", "steps": [{"at": "500ms", "multiplier": 3}]},
        )
        await LoadGenerator(spec, {"service:t": target.url}, recorder, clock).run(0.0, 1.0)
        windows = recorder.signals()["ok"].windows
        assert [w.index for w in windows] == list(range(10))
        assert [w.offered for w in windows] == [10] * 5 + [30] * 5
        assert [w.ok for w in windows] == [10] * 5 + [30] * 5

    async def test_same_seed_same_requests(self, target: Target) -> None:
        """Two runs with seed 5 send the same multiset of templated paths; another seed does not."""
        spec = load_spec("200/s", {"name": "i", "url": "${service:t}/item/{randint:1:1000000}"})
        runs = []
        for seed in (5, 5, 6):
            target.paths.clear()
            clock = RunClock()
            await LoadGenerator(spec, {"service:t": target.url}, Recorder(1.0, clock), clock, seed=seed).run(0.0, 0.2)
            runs.append(sorted(target.paths))
        assert len(runs[0]) == 40
        assert runs[0] == runs[1]
        assert runs[0] != runs[2]

    async def test_login_token_is_sent_on_every_request(self, target: Target) -> None:
        """After logging in, all 50 requests carry ``Bearer t0k`` from the login answer."""
        clock = RunClock()
        spec = load_spec(
            "100/s",
            {"name": "ok", "url": "${service:t}/ok"},
            login={"url": "${service:t}/login", "json": {"user": "u", "password": "p"}, "token_field": "auth.token"},
        )
        await LoadGenerator(spec, {"service:t": target.url}, Recorder(1.0, clock), clock).run(0.0, 0.5)
        assert target.auth == ["Bearer t0k"] * 50

    async def test_failed_login_stops_the_run(self, target: Target) -> None:
        """A login answered with 403 raises a HarnessError naming the URL and status."""
        clock = RunClock()
        spec = load_spec(
            "100/s", {"name": "ok", "url": "${service:t}/ok"}, login={"url": "${service:t}/login", "json": {}}
        )
        with pytest.raises(HarnessError, match=r"login to http://127\.0\.0\.1:\d+/login failed: HTTP 403"):
            await LoadGenerator(spec, {"service:t": target.url}, Recorder(1.0, clock), clock).run(0.0, 0.5)

    @pytest.mark.parametrize("client", CLIENTS)
    async def test_http_errors_by_class(self, target: Target, client: str) -> None:
        """500, 503, 429 and 404 answers are counted as http_5xx, http_429 and http_4xx."""
        clock = RunClock()
        recorder = Recorder(1.0, clock)
        mix = [{"name": f"s{code}", "url": f"${{service:t}}/status/{code}"} for code in (500, 503, 429, 404)]
        spec = load_spec("200/s", *mix, seed=3)
        await LoadGenerator(spec, {"service:t": target.url}, recorder, clock, client=client).run(0.0, 0.5)  # type: ignore[arg-type]
        errors = {name: dict(s.windows[0].errors) for name, s in recorder.signals().items() if s.windows}
        assert set(errors) == {"s500", "s503", "s429", "s404"}
        assert list(errors["s500"]) == ["http_5xx"]
        assert list(errors["s503"]) == ["http_5xx"]
        assert list(errors["s429"]) == ["http_429"]
        assert list(errors["s404"]) == ["http_4xx"]
        assert sum(sum(e.values()) for e in errors.values()) == 100

    @pytest.mark.parametrize("client", CLIENTS)
    async def test_refused_connections(self, client: str) -> None:
        """Every request to a port nobody listens on is counted as refused, none lost."""
        clock = RunClock()
        recorder = Recorder(1.0, clock)
        spec = load_spec("100/s", {"name": "r", "url": f"http://127.0.0.1:{free_port()}/x"})
        await LoadGenerator(spec, {}, recorder, clock, client=client).run(0.0, 0.5)  # type: ignore[arg-type]
        window = recorder.signals()["r"].windows[0]
        assert (window.offered, window.count, dict(window.errors)) == (50, 50, {"refused": 50})

    @pytest.mark.parametrize("client", CLIENTS)
    async def test_timeouts(self, target: Target, client: str) -> None:
        """Requests to a target that answers after 1 s with a 200 ms timeout time out at about 200 ms."""
        clock = RunClock()
        recorder = Recorder(1.0, clock)
        spec = load_spec("40/s", {"name": "slow", "url": "${service:t}/slow?s=1", "timeout": "200ms"})
        started = time.perf_counter()
        await LoadGenerator(spec, {"service:t": target.url}, recorder, clock, client=client).run(0.0, 0.5)  # type: ignore[arg-type]
        assert time.perf_counter() - started < 1.3  # the drain stops at the timeouts (~0.7 s), before the answers
        window = recorder.signals()["slow"].windows[0]
        assert (window.count, dict(window.errors)) == (20, {"timeout": 20})
        assert window.p50_ms is not None and 195 <= window.p50_ms <= 400

    async def test_connection_resets(self) -> None:
        """A server that resets each connection after reading the request gives ``reset`` errors."""
        port = free_port()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

        server = await asyncio.start_server(handle, "127.0.0.1", port)
        try:
            clock = RunClock()
            recorder = Recorder(1.0, clock)
            spec = load_spec("100/s", {"name": "x", "url": f"http://127.0.0.1:{port}/"})
            await LoadGenerator(spec, {}, recorder, clock).run(0.0, 0.3)
        finally:
            server.close()
            await server.wait_closed()
        window = recorder.signals()["x"].windows[0]
        assert (window.count, dict(window.errors)) == (30, {"reset": 30})

    async def test_in_flight_cap_counts_unsent_and_flags_saturation(self, target: Target) -> None:
        """With at most 5 requests in flight to a 1 s target, the rest of 50 are counted unsent and flagged."""
        clock = RunClock()
        recorder = Recorder(1.0, clock)
        spec = load_spec("100/s", {"name": "s", "url": "${service:t}/slow?s=1", "timeout": "3s"}, max_in_flight=5)
        gen = LoadGenerator(spec, {"service:t": target.url}, recorder, clock)
        await gen.run(0.0, 0.5)
        window = recorder.signals()["s"].windows[0]
        assert target.max_active == 5
        # Normally exactly 5 sent and 45 unsent; a machine stalling this process for ~1 s lets a few more go.
        assert (window.offered, window.ok + window.unsent, window.count) == (50, 50, window.ok)
        assert window.unsent >= 40
        [gw] = gen.generator_windows()
        assert (gw.offered, gw.sent, gw.saturated) == (50, window.ok, True)

    async def test_stops_by_itself_and_on_cancel(self, target: Target) -> None:
        """A run ends at its end offset without being told, and a cancelled run returns at once."""
        clock = RunClock()
        recorder = Recorder(1.0, clock)
        spec = load_spec("100/s", {"name": "ok", "url": "${service:t}/ok"})
        await asyncio.wait_for(LoadGenerator(spec, {"service:t": target.url}, recorder, clock).run(0.0, 0.3), 2.0)
        assert len(target.paths) == 30
        task = asyncio.ensure_future(LoadGenerator(spec, {"service:t": target.url}, recorder, clock).run(0.3, 60.0))
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.perf_counter() - started < 0.5
        await asyncio.sleep(0.05)  # requests already on the wire may still land
        sent = len(target.paths)
        assert sent >= 40
        await asyncio.sleep(0.3)
        assert len(target.paths) == sent  # nothing new after the cancel


FROZEN_TARGET = """
import asyncio, sys
from aiohttp import web
async def ok(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/ok", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


@pytest.fixture
def target_process() -> Iterator[tuple[str, int]]:
    """An aiohttp target in its own process (so that it can be frozen with SIGSTOP); ``(url, pid)``."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", FROZEN_TARGET, str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.integration
class TestCoordinatedOmission:
    async def test_a_frozen_target_shows_up_in_p99(self, target_process: tuple[str, int]) -> None:
        """A target frozen for 1 s during a 500 req/s run gives its window a p99 near 1 s, with nothing dropped."""
        url, pid = target_process
        clock = RunClock()
        recorder = Recorder(1.0, clock)
        spec = load_spec("500/s", {"name": "ok", "url": "${service:t}/ok"})
        gen = LoadGenerator(spec, {"service:t": url}, recorder, clock)

        async def freeze() -> None:
            await clock.sleep_until_offset(1.0)
            os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(1.0)
            os.kill(pid, signal.SIGCONT)

        await asyncio.gather(gen.run(0.0, 4.0), freeze())
        windows = recorder.signals()["ok"].windows
        assert [w.offered for w in windows] == [500, 500, 500, 500]
        assert [w.ok for w in windows] == [500, 500, 500, 500]
        frozen = windows[1]
        # Bounds leave room for a busy shared machine; a generator measuring from the actual send would see ~1 ms.
        assert frozen.p99_ms is not None and 900 <= frozen.p99_ms <= 1600
        assert frozen.p50_ms is not None and 400 <= frozen.p50_ms <= 1000
        assert windows[3].p99_ms is not None and windows[3].p99_ms < 300


async def _raw_server(answer: bytes, *, close: bool = False) -> tuple[asyncio.Server, str]:
    """A raw HTTP server that answers every request on a connection with ``answer`` (then closes if asked)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    return server, f"http://127.0.0.1:{port}/"


@pytest.mark.integration
class TestLeanHttpFraming:
    @pytest.mark.parametrize(
        ("answer", "close"),
        [
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n", False),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: 1\r\n\r\n", False),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.1 204 No Content\r\n\r\n", False),
            (b"HTTP/1.0 200 OK\r\n\r\nbody until the connection closes", True),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", True),
        ],
        ids=["chunked", "chunked-trailer", "empty", "204", "until-close", "connection-close"],
    )
    async def test_response_framing(self, answer: bytes, close: bool) -> None:
        """Chunked, empty, 204 and read-until-close answers each complete as one successful request."""
        server, url = await _raw_server(answer, close=close)
        try:
            clock = RunClock()
            recorder = Recorder(1.0, clock)
            spec = load_spec("100/s", {"name": "x", "url": url, "timeout": "1s"}, connections=2)
            await LoadGenerator(spec, {}, recorder, clock).run(0.0, 0.3)
        finally:
            server.close()
            await server.wait_closed()
        window = recorder.signals()["x"].windows[0]
        assert (window.count, window.ok, dict(window.errors)) == (30, 30, {})

    async def test_head_request_has_no_body(self) -> None:
        """A HEAD answer with a Content-Length but no body completes without waiting for the body."""
        server, url = await _raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        try:
            clock = RunClock()
            recorder = Recorder(1.0, clock)
            spec = load_spec("100/s", {"name": "h", "method": "HEAD", "url": url, "timeout": "1s"})
            await LoadGenerator(spec, {}, recorder, clock).run(0.0, 0.2)
        finally:
            server.close()
            await server.wait_closed()
        window = recorder.signals()["h"].windows[0]
        assert (window.count, window.ok) == (20, 20)


@pytest.mark.integration
@pytest.mark.slow
class TestBoundedMemory:
    async def test_rss_stays_flat_at_1000_per_second(self, target: Target) -> None:
        """Between 15 s and 45 s of a 1,000 req/s run the process's RSS grows by less than 3 MiB."""
        import psutil

        process = psutil.Process()
        clock = RunClock()
        recorder = Recorder(1.0, clock)
        spec = load_spec("1000/s", {"name": "ok", "url": "${service:t}/ok"})
        rss: dict[str, int] = {}

        async def watch() -> None:
            await clock.sleep_until_offset(15.0)
            target.paths.clear()  # the target's own request log is not the generator's memory
            rss["early"] = process.memory_info().rss
            await clock.sleep_until_offset(44.9)
            target.paths.clear()
            rss["late"] = process.memory_info().rss

        target.paths.clear()
        await asyncio.gather(LoadGenerator(spec, {"service:t": target.url}, recorder, clock).run(0.0, 45.0), watch())
        assert sum(w.ok for w in recorder.signals()["ok"].windows) == 45_000
        assert rss["late"] - rss["early"] < 3 * 1024 * 1024
