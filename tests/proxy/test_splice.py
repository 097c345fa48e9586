"""The zero-copy splice path and its switches to and from the chunked toxic path, on real sockets.

``TestSwitch`` drives one :class:`Link` directly (real TCP sockets, the production socket protocol, no
HTTP API) so each switch happens at a known instant; ``TestThroughTheApi`` does the same through the
server's API; ``TestSameBehaviour`` runs end-of-stream, reset and live-toxic scenarios with splicing
on and off and asserts the same, known outcome in both modes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest

from chaoslab.proxy import ToxiproxyServer
from chaoslab.proxy.decode import read_json
from chaoslab.proxy.link import Link
from chaoslab.proxy.proxy import Connection, _Side
from chaoslab.proxy.splice import POOL_MAX_PIPES, SPLICE_AVAILABLE, Pipe, PipePool
from chaoslab.proxy.toxics import Direction, ToxicSpec, ToxicType, make_spec
from tests.proxy.conftest import SPLICE_MODES, Peer, add_toxic, connect, create_proxy

pytestmark = pytest.mark.integration
linux_only = pytest.mark.skipif(not SPLICE_AVAILABLE, reason="os.splice is Linux-only")

MIB = 1024 * 1024


async def wait_for(predicate: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    """Poll ``predicate`` until it holds (fails the test after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        await asyncio.sleep(0.002)


def open_fds() -> int:
    """Descriptors open in this process."""
    return len(os.listdir("/proc/self/fd"))


async def read_until_eof(sock: socket.socket, timeout_s: float = 10.0) -> bytes:
    """Everything ``sock`` receives until the peer closes."""
    loop = asyncio.get_running_loop()
    parts: list[bytes] = []
    async with asyncio.timeout(timeout_s):
        while data := await loop.sock_recv(sock, 4 * MIB):
            parts.append(data)
    return b"".join(parts)


async def tcp_pair(rcvbuf: int | None = None) -> tuple[socket.socket, socket.socket]:
    """Two connected non-blocking TCP sockets on 127.0.0.1 (``rcvbuf`` shrinks the second one's receive buffer)."""
    loop = asyncio.get_running_loop()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        if rcvbuf is not None:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        listener.setblocking(False)
        first = socket.socket()
        first.setblocking(False)
        await loop.sock_connect(first, listener.getsockname())
        second, _ = await loop.sock_accept(listener)
    second.setblocking(False)
    return first, second


def spec(toxic_type: ToxicType, toxicity: float = 1.0, **attributes: int) -> ToxicSpec:
    """An upstream toxic named after its type."""
    return make_spec(toxic_type.value, toxic_type, "upstream", toxicity, attributes)


@dataclass
class FakeConnection:
    """Stands in for a proxy connection: ends the other direction when one finishes, records closes."""

    links: dict[Direction, Link] = field(default_factory=dict)
    finished: list[Direction] = field(default_factory=list)
    closes: int = 0

    def link_finished(self, link: Link) -> None:
        self.finished.append(link.direction)
        other = Direction.DOWNSTREAM if link.direction is Direction.UPSTREAM else Direction.UPSTREAM
        self.links[other].feed_eof()

    def close(self) -> None:
        self.closes += 1
        for link in self.links.values():
            link.stop()

    def side_lost(self, side: _Side) -> None:
        side.lost = True


@dataclass
class Rig:
    """client ⇄ [client socket | links | upstream socket] ⇄ server: the proxy's two links without a proxy."""

    up: Link
    down: Link
    client: socket.socket
    server: socket.socket
    connection: FakeConnection
    transports: list[asyncio.BaseTransport]


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[RigFactory]:
    """Builds rigs (``await make_rig(specs, server_rcvbuf=…)``) and closes every socket afterwards."""
    made: list[Rig] = []

    async def make(specs: Sequence[ToxicSpec] = (), server_rcvbuf: int | None = None) -> Rig:
        loop = asyncio.get_running_loop()
        client, client_inner = await tcp_pair()
        upstream_inner, server = await tcp_pair(server_rcvbuf)
        connection = FakeConnection()
        # The production socket protocol; it only calls side_lost on its connection.
        client_side, upstream_side = _Side(connection), _Side(connection)  # type: ignore[arg-type]
        client_transport, _ = await loop.connect_accepted_socket(lambda: client_side, client_inner)
        upstream_transport, _ = await loop.connect_accepted_socket(lambda: upstream_side, upstream_inner)
        client_fd, upstream_fd = client_side.fileno(), upstream_side.fileno()
        rng = random.Random(1)
        up = Link(
            connection, Direction.UPSTREAM, client_transport, upstream_transport, specs, rng, (client_fd, upstream_fd)
        )
        down = Link(
            connection, Direction.DOWNSTREAM, upstream_transport, client_transport, [], rng, (upstream_fd, client_fd)
        )
        connection.links = {Direction.UPSTREAM: up, Direction.DOWNSTREAM: down}
        client_side.attach(up, down)
        upstream_side.attach(down, up)
        up.start()
        down.start()
        rig = Rig(up, down, client, server, connection, [client_transport, upstream_transport])
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.connection.close()
        for transport in rig.transports:
            if not transport.is_closing():
                transport.abort()
        rig.client.close()
        rig.server.close()
    await asyncio.sleep(0)


async def fill_pipe(rig: Rig, payload: bytes) -> asyncio.Task[None]:
    """Send ``payload`` from the client while the server does not read, until the up link's pipe holds bytes."""
    loop = asyncio.get_running_loop()
    sender = asyncio.create_task(loop.sock_sendall(rig.client, payload))
    await wait_for(lambda: rig.up.piped_bytes > 64 * 1024, "bytes waiting in the pipe")
    return sender


@linux_only
class TestSwitch:
    """One link driven directly: when it splices, and what happens to its bytes at each switch."""

    async def test_a_link_without_toxics_splices_every_byte(self, make_rig: RigFactory) -> None:
        """With no toxic, 4 MiB go client → server by splice only; counters agree; one extra descriptor per link."""
        rig = await make_rig()
        assert rig.up.splicing and rig.down.splicing
        payload = random.Random(1).randbytes(4 * MIB)
        loop = asyncio.get_running_loop()
        sender = asyncio.create_task(loop.sock_sendall(rig.client, payload))
        received = bytearray()
        async with asyncio.timeout(10):
            while len(received) < len(payload):
                received += await loop.sock_recv(rig.server, MIB)
        await sender
        assert bytes(received) == payload
        assert rig.up.received_bytes == rig.up.sent_bytes == rig.up.spliced_bytes == len(payload)
        assert rig.up.handed_over_bytes == 0

    async def test_splicing_holds_one_descriptor_per_link(self, make_rig: RigFactory) -> None:
        """Splicing holds one duplicate per link; adding an acting toxic releases it, removing it takes it again."""
        rig = await make_rig()
        splicing_fds = open_fds()
        rig.up.add_toxic(spec(ToxicType.LATENCY, latency=10))
        assert not rig.up.splicing and rig.down.splicing
        assert open_fds() == splicing_fds - 1
        rig.up.remove_toxic("latency")
        # Idle link, nothing buffered: back to splicing at once.
        assert rig.up.splicing
        assert open_fds() == splicing_fds
        assert rig.up.splice_entries == 2

    async def test_bytes_in_the_pipe_go_through_a_toxic_added_live(self, make_rig: RigFactory) -> None:
        """limit_data(1000) added while the pipe holds bytes lets exactly 1000 of them through, then closes."""
        rig = await make_rig(server_rcvbuf=4096)
        payload = random.Random(2).randbytes(24 * MIB)
        sender = await fill_pipe(rig, payload)
        spliced, held = rig.up.spliced_bytes, rig.up.piped_bytes
        rig.up.add_toxic(spec(ToxicType.LIMIT_DATA, bytes=1000))
        # Synchronously, before any other callback: the pipe's bytes were handed to the chain.
        assert not rig.up.splicing
        assert rig.up.piped_bytes == 0
        assert rig.up.handed_over_bytes == held > 1000
        received = await read_until_eof(rig.server)
        sender.cancel()
        # Had the pipe's bytes bypassed the toxic, the server would have received them all.
        assert len(received) == spliced + 1000
        assert received == payload[: len(received)]
        assert rig.up.sent_bytes == spliced + 1000

    async def test_pipe_bytes_keep_the_time_they_were_read(self, make_rig: RigFactory) -> None:
        """Bytes stuck in the pipe for 300 ms are not delayed again by a 200 ms latency toxic (delay from arrival)."""
        rig = await make_rig(server_rcvbuf=4096)
        payload = random.Random(3).randbytes(24 * MIB)
        sender = await fill_pipe(rig, payload)
        await asyncio.sleep(0.3)
        spliced, held = rig.up.spliced_bytes, rig.up.piped_bytes
        rig.up.add_toxic(spec(ToxicType.LATENCY, latency=200))
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        received = bytearray()
        # The spliced bytes are in the kernel already; the pipe's bytes come next, without a new 200 ms wait.
        async with asyncio.timeout(10):
            while len(received) < spliced + held:
                received += await loop.sock_recv(rig.server, MIB)
        assert time.monotonic() - started < 0.15
        assert bytes(received) == payload[: len(received)]
        sender.cancel()

    async def test_noops_and_lost_toxicity_draws_keep_splicing(self, make_rig: RigFactory) -> None:
        """A noop or a toxicity-0 toxic does not act: still splicing; the update that makes it act ends splicing."""
        rig = await make_rig()
        rig.up.add_toxic(spec(ToxicType.NOOP))
        rig.up.add_toxic(spec(ToxicType.LATENCY, toxicity=0, latency=100))
        assert rig.up.splicing
        rig.up.update_toxic(spec(ToxicType.LATENCY, toxicity=1, latency=100))
        assert not rig.up.splicing
        rig.up.update_toxic(spec(ToxicType.LATENCY, toxicity=0, latency=100))
        assert rig.up.splicing

    async def test_splicing_resumes_only_after_the_destination_drained(self, make_rig: RigFactory) -> None:
        """Released toxic data still buffered for the destination keeps the link off splice mode until it is sent."""
        rig = await make_rig([spec(ToxicType.LATENCY, latency=100)], server_rcvbuf=4096)
        assert not rig.up.splicing
        loop = asyncio.get_running_loop()
        payload = random.Random(4).randbytes(16 * MIB)
        sender = asyncio.create_task(loop.sock_sendall(rig.client, payload[: 8 * MIB]))
        await wait_for(lambda: rig.up.dest.get_write_buffer_size() > 0, "bytes buffered for the server")
        rig.up.remove_toxic("latency")
        await asyncio.sleep(0.05)
        assert not rig.up.splicing, "spliced bytes would overtake the buffered ones"
        received = bytearray()
        async with asyncio.timeout(10):
            while len(received) < 8 * MIB:
                received += await loop.sock_recv(rig.server, MIB)
            await sender
        await wait_for(lambda: rig.up.splicing, "splice mode after the buffer drained")
        sender = asyncio.create_task(loop.sock_sendall(rig.client, payload[8 * MIB :]))
        async with asyncio.timeout(10):
            while len(received) < len(payload):
                received += await loop.sock_recv(rig.server, MIB)
            await sender
        assert bytes(received) == payload
        assert rig.up.spliced_bytes > 0

    async def test_end_of_stream_delivers_the_pipe_then_closes(self, make_rig: RigFactory) -> None:
        """The client closes while the pipe holds bytes: the server gets every byte, then EOF; both links end."""
        rig = await make_rig(server_rcvbuf=4096)
        payload = random.Random(5).randbytes(24 * MIB)
        sender = await fill_pipe(rig, payload)
        received_task = asyncio.create_task(read_until_eof(rig.server, 20))
        await asyncio.wait_for(sender, 20)
        rig.client.shutdown(socket.SHUT_WR)
        assert await received_task == payload
        await wait_for(lambda: rig.up.finished and rig.down.finished, "both links finished")
        assert rig.connection.finished == [Direction.UPSTREAM, Direction.DOWNSTREAM]
        assert rig.up.received_bytes == rig.up.sent_bytes == len(payload)

    async def test_stop_while_the_pipe_holds_bytes_releases_everything(self, make_rig: RigFactory) -> None:
        """Closing the connection mid-transfer drops the pipe's bytes and closes every descriptor splicing held."""
        rig = await make_rig(server_rcvbuf=4096)
        sender = await fill_pipe(rig, random.Random(6).randbytes(24 * MIB))
        before = open_fds()
        rig.connection.close()
        sender.cancel()
        assert not rig.up.splicing and not rig.down.splicing and rig.up.piped_bytes == 0
        # Two source duplicates, the destination duplicate the up link waited on, and its non-empty pipe (2).
        assert open_fds() == before - 5


@linux_only
class TestPipe:
    """The pipe and its pool on real descriptors."""

    async def test_take_and_flush_keep_order(self) -> None:
        """Bytes written into a pipe come out in order through flush (to a socket) and take."""
        first, second = await tcp_pair()
        pipe = Pipe()
        try:
            assert pipe.capacity >= 64 * 1024
            os.write(pipe.write_fd, b"abc")
            pipe.held = 3
            assert pipe.flush(first.fileno()) == 3 and pipe.held == 0
            assert await asyncio.get_running_loop().sock_recv(second, 10) == b"abc"
            os.write(pipe.write_fd, b"defg")
            pipe.held = 4
            assert pipe.take() == b"defg" and pipe.held == 0
        finally:
            pipe.close()
            first.close()
            second.close()

    def test_pool_reuses_empty_pipes_and_closes_the_rest(self) -> None:
        """Only empty pipes return to the pool, at most POOL_MAX_PIPES of them."""
        pool = PipePool()
        pipes = [pool.get() for _ in range(POOL_MAX_PIPES + 2)]
        full = pipes[0]
        os.write(full.write_fd, b"x")
        full.held = 1
        for pipe in pipes:
            pool.put(pipe)
        assert full not in pool.free
        assert len(pool.free) == POOL_MAX_PIPES
        with pytest.raises(OSError):
            os.fstat(full.read_fd)  # closed, not kept
        reused = pool.get()
        assert reused in pipes and reused is not full
        for pipe in [*pool.free, reused]:
            pipe.close()


async def live_connection(server: ToxiproxyServer, name: str = "p") -> Connection:
    """The one open connection of proxy ``name``, once its links exist."""
    proxy = server.collection.proxies[name]
    await wait_for(lambda: bool(proxy.connections) and bool(next(iter(proxy.connections)).links), "connection")
    return next(iter(proxy.connections))


async def metric_values(http: aiohttp.ClientSession, name: str) -> dict[str, int]:
    """``direction`` → value of one toxiproxy_proxy_* counter."""
    async with http.get("/metrics") as response:
        text = await response.text()
    values: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            direction = line.split('direction="', 1)[1].split('"', 1)[0]
            values[direction] = int(line.rsplit(" ", 1)[1])
    return values


async def round_trip_s(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes = b"ping") -> float:
    """Seconds for one echo exchange."""
    started = time.monotonic()
    writer.write(payload)
    assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
    return time.monotonic() - started


@linux_only
class TestThroughTheApi:
    """Switches caused by API calls on a live proxied connection."""

    async def test_a_toxic_added_live_ends_splicing_before_the_api_answers(
        self, http: aiohttp.ClientSession, echo: Peer, toxiproxy: ToxiproxyServer
    ) -> None:
        """Downstream latency 100 ms: only the downstream link leaves splice mode, the next round trip takes 100 ms."""
        proxy = await create_proxy(http, "p", echo.address)
        reader, writer = await connect(proxy["listen"])
        assert await round_trip_s(reader, writer) < 0.05
        connection = await live_connection(toxiproxy)
        up, down = connection.links[Direction.UPSTREAM], connection.links[Direction.DOWNSTREAM]
        assert up.splicing and down.splicing
        await add_toxic(http, "p", {"type": "latency", "attributes": {"latency": 100}})
        assert up.splicing and not down.splicing
        assert abs(await round_trip_s(reader, writer) - 0.100) <= 0.010
        async with http.delete("/proxies/p/toxics/latency_downstream") as response:
            assert response.status == 204
        assert down.splicing
        assert await round_trip_s(reader, writer) < 0.05
        writer.close()

    async def test_metrics_count_spliced_and_toxic_bytes_exactly(
        self, http: aiohttp.ClientSession, echo: Peer, toxiproxy: ToxiproxyServer
    ) -> None:
        """1 MiB spliced, 1 MiB through a latency toxic, 1 MiB spliced again: 3 MiB received and sent each way."""
        proxy = await create_proxy(http, "p", echo.address)
        reader, writer = await connect(proxy["listen"])
        connection = await live_connection(toxiproxy)
        rng = random.Random(7)
        for step in range(3):
            if step == 1:
                await add_toxic(http, "p", {"type": "latency", "stream": "upstream", "attributes": {"latency": 5}})
            if step == 2:
                async with http.delete("/proxies/p/toxics/latency_upstream") as response:
                    assert response.status == 204
            block = rng.randbytes(MIB)
            writer.write(block)
            assert await asyncio.wait_for(reader.readexactly(MIB), 10) == block
        up = connection.links[Direction.UPSTREAM]
        assert 0 < up.spliced_bytes < 3 * MIB
        writer.close()
        await wait_for(lambda: connection.closed, "the connection ended")
        received = await metric_values(http, "toxiproxy_proxy_received_bytes_total")
        sent = await metric_values(http, "toxiproxy_proxy_sent_bytes_total")
        assert received == sent == {"upstream": 3 * MIB, "downstream": 3 * MIB}


@SPLICE_MODES
class TestSameBehaviour:
    """Scenarios whose outcome must not depend on splicing: run with splicing on and off, same assertions."""

    async def test_client_reset_after_data_closes_the_upstream_cleanly(
        self, http: aiohttp.ClientSession, sink: Peer
    ) -> None:
        """The client resets after its bytes arrived: the upstream has them all and sees an ordinary EOF."""
        proxy = await create_proxy(http, "p", sink.address)
        host, _, port = str(proxy["listen"]).rpartition(":")
        loop = asyncio.get_running_loop()
        client = socket.socket()
        client.setblocking(False)
        await loop.sock_connect(client, (host, int(port)))
        payload = random.Random(8).randbytes(MIB)
        await asyncio.wait_for(loop.sock_sendall(client, payload), 10)
        await wait_for(lambda: len(sink.received) == len(payload), "bytes at the upstream")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        await asyncio.wait_for(sink.eof_seen.wait(), 2)
        assert bytes(sink.received) == payload

    async def test_upstream_reset_gives_the_client_eof(self, http: aiohttp.ClientSession) -> None:
        """The upstream resets after reading 1 MiB: the client reads EOF (the proxy closes it normally)."""
        loop = asyncio.get_running_loop()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            proxy = await create_proxy(http, "p", f"127.0.0.1:{listener.getsockname()[1]}")
            reader, writer = await connect(proxy["listen"])
            upstream, _ = await loop.sock_accept(listener)
        upstream.setblocking(False)
        payload = random.Random(9).randbytes(MIB)
        writer.write(payload)
        received = bytearray()
        while len(received) < len(payload):
            received += await asyncio.wait_for(loop.sock_recv(upstream, MIB), 5)
        assert bytes(received) == payload
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        upstream.close()
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()

    async def test_end_of_stream_after_a_backlog_delivers_every_byte(self, http: aiohttp.ClientSession) -> None:
        """16 MiB written then closed while the upstream is not reading: it later reads all 16 MiB, then EOF."""
        loop = asyncio.get_running_loop()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            listener.setblocking(False)
            proxy = await create_proxy(http, "p", f"127.0.0.1:{listener.getsockname()[1]}")
            _, writer = await connect(proxy["listen"])
            upstream, _ = await loop.sock_accept(listener)
        upstream.setblocking(False)
        try:
            payload = random.Random(10).randbytes(16 * MIB)
            writer.write(payload)
            writer.close()
            await asyncio.sleep(0.2)
            assert await read_until_eof(upstream, 20) == payload
        finally:
            upstream.close()

    async def test_slicer_added_live_slices(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """A slicer (100-byte pieces, 20 ms apart) added to an open connection spreads 1000 bytes over ≥ 180 ms."""
        proxy = await create_proxy(http, "p", sink.address)
        _, writer = await connect(proxy["listen"])
        writer.write(b"warm")
        await wait_for(lambda: len(sink.received) == 4, "first bytes")
        attributes = {"average_size": 100, "size_variation": 0, "delay": 20_000}
        await add_toxic(http, "p", {"type": "slicer", "stream": "upstream", "attributes": attributes})
        payload = bytes(range(250)) * 4
        started = time.monotonic()
        writer.write(payload)
        await wait_for(lambda: len(sink.received) == 4 + len(payload), "sliced bytes")
        assert time.monotonic() - started >= 0.180
        assert bytes(sink.received) == b"warm" + payload
        writer.close()

    async def test_bandwidth_added_live_throttles(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """bandwidth 1000 KB/s added to an open connection: 200 000 bytes take 200 ms (±25 ms)."""
        proxy = await create_proxy(http, "p", sink.address)
        _, writer = await connect(proxy["listen"])
        writer.write(b"warm")
        await wait_for(lambda: len(sink.received) == 4, "first bytes")
        await add_toxic(http, "p", {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 1000}})
        payload = bytes(range(200)) * 1000
        started = time.monotonic()
        writer.write(payload)
        await wait_for(lambda: len(sink.received) == 4 + len(payload), "throttled bytes")
        assert abs(time.monotonic() - started - 0.200) <= 0.025
        assert bytes(sink.received) == b"warm" + payload
        writer.close()

    async def test_timeout_added_live_drops_then_closes(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """timeout 100 ms added to an open connection: the next bytes are dropped and the client reads EOF."""
        proxy = await create_proxy(http, "p", echo.address)
        reader, writer = await connect(proxy["listen"])
        assert await round_trip_s(reader, writer) < 0.5
        await add_toxic(http, "p", {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 100}})
        started = time.monotonic()
        writer.write(b"dropped")
        assert await asyncio.wait_for(reader.read(), 2) == b""
        assert 0.090 <= time.monotonic() - started <= 0.200
        writer.close()

    async def test_reset_peer_added_live_closes_with_fin(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """reset_peer added to an open connection closes it on the next bytes, with an ordinary FIN (no RST)."""
        proxy = await create_proxy(http, "p", echo.address)
        reader, writer = await connect(proxy["listen"])
        assert await round_trip_s(reader, writer) < 0.5
        await add_toxic(http, "p", {"type": "reset_peer", "stream": "upstream", "attributes": {"timeout": 0}})
        writer.write(b"hello")
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()

    async def test_slow_close_added_live_delays_the_close(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """slow_close 200 ms added to an open connection: the client sees the server's close 200 ms late."""
        proxy = await create_proxy(http, "p", echo.address)
        reader, writer = await connect(proxy["listen"])
        assert await round_trip_s(reader, writer) < 0.5
        await add_toxic(http, "p", {"type": "slow_close", "attributes": {"delay": 200}})
        started = time.monotonic()
        await echo.stop()
        assert await asyncio.wait_for(reader.read(), 2) == b""
        assert 0.190 <= time.monotonic() - started <= 0.280
        writer.close()

    async def test_limit_data_added_during_a_fast_stream_is_exact(
        self, http: aiohttp.ClientSession, sink: Peer, toxiproxy: ToxiproxyServer
    ) -> None:
        """limit_data(5000) added mid-stream: the upstream gets what was forwarded before the add plus 5000 bytes."""
        proxy = await create_proxy(http, "p", sink.address)
        _, writer = await connect(proxy["listen"])
        connection = await live_connection(toxiproxy)
        up = connection.links[Direction.UPSTREAM]
        payload = random.Random(11).randbytes(32 * MIB)
        writer.write(payload)
        await wait_for(lambda: up.sent_bytes > 4 * MIB, "stream under way")
        # The collection's own add (what the HTTP handler calls): no await between the read and the add.
        forwarded = up.sent_bytes
        body = b'{"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 5000}}'
        await toxiproxy.collection.add_toxic("p", read_json(body))
        await asyncio.wait_for(sink.eof_seen.wait(), 10)
        assert len(sink.received) == forwarded + 5000
        assert hashlib.sha256(sink.received).digest() == hashlib.sha256(payload[: forwarded + 5000]).digest()
        writer.close()
