"""Fixtures for the embedded Toxiproxy server: a real server, an HTTP client and real TCP peers."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest

from chaoslab.proxy import ToxiproxyServer
from chaoslab.proxy.splice import SPLICE_AVAILABLE


@dataclass
class Peer:
    """A TCP server on 127.0.0.1 that echoes (or only records) what it receives."""

    echo: bool = True
    server: asyncio.Server | None = None
    received: bytearray = field(default_factory=bytearray)
    connections: int = 0
    eof_seen: asyncio.Event = field(default_factory=asyncio.Event)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def port(self) -> int:
        """The bound port."""
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        """``127.0.0.1:port``."""
        return f"127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Echo or record until EOF."""
        self.connections += 1
        self.writers.append(writer)
        try:
            while data := await reader.read(256 * 1024):
                if self.echo:
                    writer.write(data)
                    await writer.drain()
                else:
                    self.received += data
        except (ConnectionError, OSError):
            pass
        finally:
            self.eof_seen.set()
            writer.close()

    async def start(self) -> Peer:
        """Listen on an ephemeral port."""
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        """Close the listener and open connections."""
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[Peer]:
    """An echo server."""
    peer = await Peer(echo=True).start()
    yield peer
    await peer.stop()


@pytest.fixture
async def sink() -> AsyncIterator[Peer]:
    """A server that records everything it receives."""
    peer = await Peer(echo=False).start()
    yield peer
    await peer.stop()


SPLICE_MODES = pytest.mark.parametrize(
    "splice",
    [
        pytest.param(
            True, id="splice", marks=pytest.mark.skipif(not SPLICE_AVAILABLE, reason="os.splice is Linux-only")
        ),
        pytest.param(False, id="copy"),
    ],
    indirect=True,
)
"""Run a test with links spliced when no toxic acts (Linux) and with every byte copied (other platforms)."""


@pytest.fixture
def splice(request: pytest.FixtureRequest) -> bool:
    """Whether the server splices links no toxic acts on (the default; parametrize with SPLICE_MODES)."""
    return bool(getattr(request, "param", True))


@pytest.fixture
async def toxiproxy(splice: bool) -> AsyncIterator[ToxiproxyServer]:
    """The embedded server on an ephemeral port, seeded."""
    async with ToxiproxyServer(port=0, seed=7, proxy_metrics=True, splice=splice) as server:
        yield server


@pytest.fixture
async def http(toxiproxy: ToxiproxyServer) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session whose relative URLs go to the server's API."""
    async with aiohttp.ClientSession(base_url=toxiproxy.url) as session:
        yield session


async def create_proxy(http: aiohttp.ClientSession, name: str, upstream: str, **extra: object) -> dict[str, object]:
    """Create a proxy on 127.0.0.1:0 and return its JSON."""
    body = {"name": name, "upstream": upstream, "listen": "127.0.0.1:0", **extra}
    async with http.post("/proxies", json=body) as response:
        assert response.status == 201, await response.text()
        result: dict[str, object] = await response.json()
        return result


async def add_toxic(http: aiohttp.ClientSession, proxy: str, body: dict[str, object]) -> dict[str, object]:
    """Add a toxic and return its JSON."""
    async with http.post(f"/proxies/{proxy}/toxics", json=body) as response:
        assert response.status == 200, await response.text()
        result: dict[str, object] = await response.json()
        return result


_CLIENTS: list[asyncio.StreamWriter] = []


async def connect(listen: object) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a client connection to a proxy's reported listen address (closed after the test in any case)."""
    host, _, port = str(listen).rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port), limit=4 * 1024 * 1024)
    _CLIENTS.append(writer)
    return reader, writer


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    """Close client connections a failed test left open, so one failure does not leak into the next."""
    yield
    while _CLIENTS:
        _CLIENTS.pop().close()
    await asyncio.sleep(0)


def sha256(data: bytes) -> str:
    """Hex digest."""
    return hashlib.sha256(data).hexdigest()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Socket-level proxy tests run on both loops: asyncio (in-process use) and uvloop (the command's loop)."""
    if item.path.name not in ("test_toxics.py", "test_integrity.py", "test_splice.py"):
        return {"asyncio": asyncio.new_event_loop}
    import uvloop

    if "256_mib" in item.name or "_gib_" in item.name:
        # The big streams run once, on the loop `chaoslab toxiproxy` uses.
        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
