"""The real toxiproxy-python 0.1.1 client driving ``python -m chaoslab toxiproxy`` through its whole API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

toxiproxy = pytest.importorskip("toxiproxy")
from toxiproxy import Toxiproxy  # noqa: E402
from toxiproxy.api import APIConsumer  # noqa: E402
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists  # noqa: E402

pytestmark = pytest.mark.integration


def start_server(*args: str) -> tuple[subprocess.Popen[bytes], int]:
    """``python -m chaoslab toxiproxy`` on a free port, once ``GET /version`` answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "chaoslab", "toxiproxy", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=1) as response:
                if response.status == 200:
                    return process, port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"server did not start: {process.communicate()}") from None
            time.sleep(0.05)


def stop_server(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> int:
    """Signal the server and return its exit code."""
    process.send_signal(signum)
    try:
        process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def echo_address() -> Iterator[str]:
    """A threaded echo server on 127.0.0.1."""
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    """The server process for the whole module; it must exit 0 on SIGTERM."""
    process, port = start_server("--seed", "1")
    yield port
    assert stop_server(process) == 0


@pytest.fixture
def client(server_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[Toxiproxy]:
    """A Toxiproxy client pointed at the server, with no proxies left from other tests."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    saved = APIConsumer.host, APIConsumer.port
    server = Toxiproxy()
    server.update_api_consumer("127.0.0.1", server_port)
    server.destroy_all()
    yield server
    server.destroy_all()
    APIConsumer.host, APIConsumer.port = saved


def echo_once(listen: str, payload: bytes = b"ping") -> float:
    """Seconds for one echo exchange through ``listen``."""
    host, _, port = listen.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(100)
            assert chunk, "connection closed"
            received += chunk
        assert received == payload
        return time.monotonic() - started


def refused(listen: str) -> bool:
    """Whether connecting to ``listen`` is refused."""
    host, _, port = listen.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


class TestPythonClient:
    """toxiproxy-python 0.1.1, unchanged, against chaoslab."""

    def test_running_and_version(self, client: Toxiproxy) -> None:
        """running() connects and version() returns the raw JSON bytes."""
        assert client.running() is True
        assert json.loads(client.version()) == {"version": "2.12.0"}

    def test_create_find_and_duplicate(self, client: Toxiproxy, echo_address: str) -> None:
        """create() returns an enabled proxy on a real port; a duplicate raises ProxyExists."""
        proxy = client.create(upstream=echo_address, name="echo")
        assert (proxy.name, proxy.upstream, proxy.enabled) == ("echo", echo_address, True)
        assert not proxy.listen.endswith(":0")
        assert client.get_proxy("echo").listen == proxy.listen
        assert set(client.proxies()) == {"echo"}
        with pytest.raises(ProxyExists):
            client.create(upstream=echo_address, name="echo")
        echo_once(proxy.listen)

    def test_create_disabled_echoes_listen(self, client: Toxiproxy) -> None:
        """A proxy created disabled on a fixed port reports that listen and enabled False."""
        port = free_port()
        proxy = client.create(upstream="127.0.0.1:1", name="off", listen=f"127.0.0.1:{port}", enabled=False)
        assert (proxy.enabled, proxy.listen) == (False, f"127.0.0.1:{port}")
        assert refused(proxy.listen)

    def test_disable_enable_and_down(self, client: Toxiproxy, echo_address: str) -> None:
        """disable() refuses connections, enable() restores the same listen, down() does both."""
        proxy = client.create(upstream=echo_address, name="echo")
        proxy.disable()
        assert refused(proxy.listen)
        proxy.enable()
        echo_once(proxy.listen)
        with proxy.down():
            assert refused(proxy.listen)
        echo_once(proxy.listen)
        assert client.get_proxy("echo").listen == proxy.listen

    def test_toxics_add_list_destroy(self, client: Toxiproxy, echo_address: str) -> None:
        """add_toxic() applies latency; toxics()/get_toxic() list it; destroy_toxic() removes it."""
        proxy = client.create(upstream=echo_address, name="echo")
        proxy.add_toxic(type="latency", attributes={"latency": 100})
        proxy.add_toxic(type="latency", name="up", stream="upstream", attributes={"latency": 50})
        toxics = proxy.toxics()
        assert set(toxics) == {"latency_downstream", "up"}
        toxic = proxy.get_toxic("latency_downstream")
        assert (toxic.type, toxic.stream, toxic.toxicity, toxic.attributes) == (
            "latency",
            "downstream",
            1,
            {"latency": 100, "jitter": 0},
        )
        assert abs(echo_once(proxy.listen) - 0.150) <= 0.020
        assert proxy.destroy_toxic("latency_downstream") is True
        assert proxy.destroy_toxic("up") is True
        assert proxy.toxics() == {}
        assert echo_once(proxy.listen) < 0.1

    def test_toxic_persists_across_disable(self, client: Toxiproxy, echo_address: str) -> None:
        """A toxic stays installed after disable/enable and the listen is unchanged."""
        proxy = client.create(upstream=echo_address, name="echo")
        proxy.add_toxic(type="latency", attributes={"latency": 60})
        proxy.disable()
        proxy.enable()
        assert set(proxy.toxics()) == {"latency_downstream"}
        assert client.get_proxy("echo").listen == proxy.listen
        assert abs(echo_once(proxy.listen) - 0.060) <= 0.015

    def test_invalid_toxic_and_not_found(self, client: Toxiproxy, echo_address: str) -> None:
        """An invalid stream raises InvalidToxic; a missing proxy raises NotFound."""
        proxy = client.create(upstream=echo_address, name="echo")
        with pytest.raises(InvalidToxic):
            proxy.add_toxic(type="latency", stream="lolstream")
        with pytest.raises(NotFound):
            APIConsumer.get("/not_found")
        with pytest.raises(NotFound):
            APIConsumer.delete("/proxies/nope")

    def test_populate_then_connect(self, client: Toxiproxy, echo_address: str) -> None:
        """populate() creates proxies on fixed localhost ports that accept connections."""
        ports = free_port(), free_port()
        items = [
            {"name": "one", "upstream": echo_address, "listen": f"localhost:{ports[0]}"},
            {"name": "two", "upstream": echo_address, "listen": f"localhost:{ports[1]}"},
        ]
        created = client.populate(items)
        assert sorted(proxy.listen for proxy in created) == sorted(f"127.0.0.1:{port}" for port in ports)
        for proxy in created:
            echo_once(proxy.listen)
        again = client.populate(items)
        assert len(again) == 2

    def test_reset_enables_and_clears(self, client: Toxiproxy, echo_address: str) -> None:
        """reset() re-enables proxies and removes their toxics."""
        proxy = client.create(upstream=echo_address, name="echo")
        proxy.add_toxic(type="timeout", attributes={"timeout": 0})
        proxy.disable()
        assert client.reset() is True
        assert client.get_proxy("echo").enabled is True
        assert proxy.toxics() == {}
        echo_once(proxy.listen)

    def test_destroy_and_destroy_all(self, client: Toxiproxy, echo_address: str) -> None:
        """destroy() removes one proxy and closes its port; destroy_all() removes the rest."""
        first = client.create(upstream=echo_address, name="first")
        client.create(upstream=echo_address, name="second")
        assert client.destroy(first) is True
        assert refused(first.listen)
        assert set(client.proxies()) == {"second"}
        client.destroy_all()
        assert client.proxies() == {}

    def test_create_without_listen_twice(self, client: Toxiproxy) -> None:
        """A raw create without listen is 201; the same again is 409."""
        body = {"name": "raw", "upstream": "127.0.0.1:1"}
        assert APIConsumer.post("/proxies", json=body).status_code == 201
        with pytest.raises(ProxyExists):
            APIConsumer.post("/proxies", json=body)


class TestCommand:
    """``chaoslab toxiproxy`` as a process."""

    def test_sigint_exits_zero_and_closes_proxies(self, echo_address: str) -> None:
        """SIGINT stops the server with exit 0, closing an open proxied connection and the proxy port."""
        process, port = start_server()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/proxies",
            data=json.dumps({"name": "p", "upstream": echo_address}).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            listen = json.loads(response.read())["listen"]
        echo_once(listen)
        host, _, port_text = listen.rpartition(":")
        with socket.create_connection((host, int(port_text)), timeout=5) as held:
            held.sendall(b"x")
            assert held.recv(1) == b"x"
            assert stop_server(process, signal.SIGINT) == 0
            assert held.recv(1) == b""
        assert refused(listen)

    def test_config_file_and_metrics(self, tmp_path: Path, echo_address: str) -> None:
        """--config creates its proxies at start; --proxy-metrics serves /metrics."""
        port = free_port()
        config = tmp_path / "proxies.json"
        config.write_text(json.dumps([{"name": "cfg", "listen": f"127.0.0.1:{port}", "upstream": echo_address}]))
        process, api_port = start_server("--config", str(config), "--proxy-metrics")
        try:
            echo_once(f"127.0.0.1:{port}")
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/metrics", timeout=5) as response:
                text = response.read().decode()
            assert "toxiproxy_proxy_received_bytes_total" in text
        finally:
            assert stop_server(process) == 0

    def test_bad_config_is_logged_and_ignored(self, tmp_path: Path) -> None:
        """A config that is not a JSON array leaves the server running with no proxies."""
        config = tmp_path / "bad.json"
        config.write_text('{"name": "x"}')
        process, api_port = start_server("--config", str(config))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/proxies", timeout=5) as response:
                assert json.loads(response.read()) == {}
        finally:
            assert stop_server(process) == 0

    def test_busy_api_port_exits_3(self) -> None:
        """When the API port is taken the command exits 3 with one error line."""
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port = blocker.getsockname()[1]
            result = subprocess.run(
                [sys.executable, "-m", "chaoslab", "toxiproxy", "--port", str(port)],
                capture_output=True,
                timeout=30,
                env={**os.environ},
            )
        assert result.returncode == 3
        assert b"cannot listen" in result.stderr
