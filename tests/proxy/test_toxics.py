"""Toxic behaviour on real sockets (contract §5, conformance cases §6.2 and §6.3)."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time

import aiohttp
import pytest

from chaoslab.proxy import ToxiproxyServer
from tests.conftest import free_port
from tests.proxy.conftest import SPLICE_MODES, Peer, add_toxic, connect, create_proxy

pytestmark = pytest.mark.integration


async def wait_received(peer: Peer, count: int, timeout_s: float = 5.0) -> None:
    """Wait until ``peer`` has recorded at least ``count`` bytes."""
    deadline = time.monotonic() + timeout_s
    while len(peer.received) < count:
        assert time.monotonic() < deadline, f"only {len(peer.received)} of {count} bytes arrived"
        await asyncio.sleep(0.002)


async def round_trip_s(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes = b"ping") -> float:
    """Seconds for one echo exchange."""
    started = time.monotonic()
    writer.write(payload)
    assert await asyncio.wait_for(reader.readexactly(len(payload)), 10) == payload
    return time.monotonic() - started


async def raw_client(listen: object) -> socket.socket:
    """A non-blocking socket connected to ``listen`` (to observe resets and EOF precisely)."""
    host, _, port = str(listen).rpartition(":")
    sock = socket.socket()
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    return sock


@SPLICE_MODES
class TestForwarding:
    """Plain proxying (§6.2 cases 34-36)."""

    async def test_messages_arrive_intact(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """A simple message, a two-part message and a 64 KiB message reach the upstream unchanged."""
        proxy = await create_proxy(http, "p", sink.address)
        _, writer = await connect(proxy["listen"])
        big = bytes(range(256)) * 256
        writer.write(b"hello world")
        writer.write(b"two ")
        writer.write(b"parts")
        writer.write(big)
        await wait_received(sink, 20 + len(big))
        assert bytes(sink.received) == b"hello worldtwo parts" + big
        writer.close()

    async def test_upstream_down_gives_connect_then_eof(self, http: aiohttp.ClientSession) -> None:
        """With nothing listening upstream the client connects, then reads EOF within 500 ms."""
        proxy = await create_proxy(http, "p", f"127.0.0.1:{free_port()}")
        reader, writer = await connect(proxy["listen"])
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 1) == b""
        assert time.monotonic() - started < 0.5
        writer.close()

    async def test_disable_closes_live_connections(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Disabling a proxy closes its open connections before the API answers."""
        proxy = await create_proxy(http, "p", echo.address)
        reader, writer = await connect(proxy["listen"])
        await round_trip_s(reader, writer)
        async with http.post("/proxies/p", json={"enabled": False}) as response:
            assert response.status == 200
        assert await asyncio.wait_for(reader.read(), 1) == b""
        writer.close()

    async def test_client_close_closes_upstream(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """When the client closes, the upstream sees EOF and the proxy forgets the connection."""
        proxy = await create_proxy(http, "p", sink.address)
        _, writer = await connect(proxy["listen"])
        writer.write(b"bye")
        writer.close()
        await asyncio.wait_for(sink.eof_seen.wait(), 2)
        assert bytes(sink.received) == b"bye"

    async def test_many_concurrent_connections(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """200 connections open at once each echo their own message, twice."""
        proxy = await create_proxy(http, "p", echo.address)
        clients = [await connect(proxy["listen"]) for _ in range(200)]
        for _ in range(2):
            for index, (_, writer) in enumerate(clients):
                writer.write(index.to_bytes(4, "big"))
            replies = await asyncio.gather(*(reader.readexactly(4) for reader, _ in clients))
            assert [int.from_bytes(reply, "big") for reply in replies] == list(range(200))
        assert echo.connections == 200


class TestLatency:
    """The latency toxic (§5.1, cases 51-53)."""

    @pytest.mark.parametrize(("upstream_ms", "downstream_ms"), [(50, 0), (0, 50), (30, 40)])
    async def test_one_way_latencies_add_up(
        self, http: aiohttp.ClientSession, echo: Peer, upstream_ms: int, downstream_ms: int
    ) -> None:
        """The median round trip is upstream + downstream latency within 10 ms."""
        proxy = await create_proxy(http, "p", echo.address)
        if upstream_ms:
            await add_toxic(
                http, "p", {"type": "latency", "stream": "upstream", "attributes": {"latency": upstream_ms}}
            )
        if downstream_ms:
            await add_toxic(http, "p", {"type": "latency", "attributes": {"latency": downstream_ms}})
        reader, writer = await connect(proxy["listen"])
        samples = [await round_trip_s(reader, writer) for _ in range(7)]
        assert abs(statistics.median(samples) - (upstream_ms + downstream_ms) / 1000) <= 0.010
        writer.close()

    async def test_two_latency_toxics_stack(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Two upstream 100 ms toxics delay the round trip by 200 ms within 10 ms."""
        proxy = await create_proxy(http, "p", echo.address)
        for name in ("a", "b"):
            await add_toxic(
                http, "p", {"name": name, "type": "latency", "stream": "upstream", "attributes": {"latency": 100}}
            )
        reader, writer = await connect(proxy["listen"])
        samples = [await round_trip_s(reader, writer) for _ in range(3)]
        assert abs(statistics.median(samples) - 0.200) <= 0.010
        writer.close()

    async def test_latency_is_per_chunk_not_cumulative(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """Ten chunks written 10 ms apart through a 100 ms toxic: the last arrives 100 ms after its write."""
        proxy = await create_proxy(http, "p", sink.address)
        await add_toxic(http, "p", {"type": "latency", "stream": "upstream", "attributes": {"latency": 100}})
        _, writer = await connect(proxy["listen"])
        for index in range(10):
            writer.write(bytes([index]) * 10)
            last_write = time.monotonic()
            await asyncio.sleep(0.01)
        await wait_received(sink, 100)
        # Delays accumulating per chunk would put the last one about 1 s late.
        assert 0.080 <= time.monotonic() - last_write <= 0.130
        assert bytes(sink.received) == b"".join(bytes([i]) * 10 for i in range(10))
        writer.close()

    async def test_jitter_stays_within_bounds(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Latency 40 ms with jitter 20 ms gives round trips between 20 and 70 ms, not all equal."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "latency", "attributes": {"latency": 40, "jitter": 20}})
        reader, writer = await connect(proxy["listen"])
        samples = [await round_trip_s(reader, writer) for _ in range(10)]
        assert all(sample >= 0.019 for sample in samples), samples
        # The upper bound tolerates one sample delayed by the machine's own load.
        assert sum(sample <= 0.070 for sample in samples) >= 9, samples
        assert max(samples) - min(samples) > 0.005
        writer.close()

    async def test_close_race_does_not_break_the_proxy(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """100× add latency, connect, write, close, remove: the proxy still forwards afterwards."""
        proxy = await create_proxy(http, "p", sink.address)
        for _ in range(100):
            await add_toxic(http, "p", {"type": "latency", "attributes": {"latency": 10}})
            _, writer = await connect(proxy["listen"])
            writer.write(b"x")
            writer.close()
            async with http.delete("/proxies/p/toxics/latency_downstream") as response:
                assert response.status == 204
        _, writer = await connect(proxy["listen"])
        writer.write(b"end")
        await wait_received(sink, 103)
        assert bytes(sink.received) == b"x" * 100 + b"end"
        writer.close()

    async def test_removing_a_latency_toxic_releases_held_data(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """A chunk held by a 10 s toxic is delivered at once when the toxic is removed."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "latency", "attributes": {"latency": 10_000}})
        reader, writer = await connect(proxy["listen"])
        writer.write(b"held")
        await asyncio.sleep(0.1)
        async with http.delete("/proxies/p/toxics/latency_downstream") as response:
            assert response.status == 204
        assert await asyncio.wait_for(reader.readexactly(4), 1) == b"held"
        writer.close()

    async def test_disable_while_a_chunk_is_held(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Disabling the proxy while a 10 s latency toxic holds a chunk closes the client at once."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "latency", "attributes": {"latency": 10_000}})
        reader, writer = await connect(proxy["listen"])
        writer.write(b"held")
        await asyncio.sleep(0.05)
        async with http.post("/proxies/p", json={"enabled": False}) as response:
            assert response.status == 200
        assert await asyncio.wait_for(reader.read(), 1) == b""


class TestBandwidth:
    """The bandwidth toxic (§5.3, case 55)."""

    async def test_rate_is_accurate(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """480 000 bytes at 1000 KB/s take 480 ms within 5 % and arrive identical."""
        proxy = await create_proxy(http, "p", sink.address)
        await add_toxic(http, "p", {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 1000}})
        _, writer = await connect(proxy["listen"])
        payload = bytes(range(256)) * 1875
        started = time.monotonic()
        writer.write(payload)
        await wait_received(sink, len(payload))
        assert abs(time.monotonic() - started - 0.480) <= 0.024
        assert bytes(sink.received) == payload
        writer.close()

    async def test_rate_zero_stalls_until_removed(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Rate 0 holds data (connection open) until the toxic is removed, then it flows."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "bandwidth", "attributes": {"rate": 0}})
        reader, writer = await connect(proxy["listen"])
        writer.write(b"stalled")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(7), 0.3)
        async with http.delete("/proxies/p/toxics/bandwidth_downstream") as response:
            assert response.status == 204
        assert await asyncio.wait_for(reader.readexactly(7), 1) == b"stalled"
        writer.close()

    async def test_removing_stalled_toxics_both_ways_does_not_hang(
        self, http: aiohttp.ClientSession, echo: Peer
    ) -> None:
        """Removing rate-0 toxics in both directions while data is written answers at once."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 0}})
        await add_toxic(http, "p", {"type": "bandwidth", "stream": "downstream", "attributes": {"rate": 0}})
        reader, writer = await connect(proxy["listen"])
        writer.write(b"x" * 100_000)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        for name in ("bandwidth_upstream", "bandwidth_downstream"):
            async with http.delete(f"/proxies/p/toxics/{name}") as response:
                assert response.status == 204
        assert time.monotonic() - started < 1.0
        assert await asyncio.wait_for(reader.readexactly(100_000), 5) == b"x" * 100_000
        writer.close()

    async def test_stalled_connection_is_forgotten_when_both_ends_leave(
        self, http: aiohttp.ClientSession, echo: Peer, toxiproxy: ToxiproxyServer
    ) -> None:
        """A connection stuck in a rate-0 toxic after both ends left is dropped when the toxic is removed."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 0}})
        _, writer = await connect(proxy["listen"])
        writer.write(b"stuck")
        await asyncio.sleep(0.05)
        live = toxiproxy.collection.proxies["p"].connections
        assert len(live) == 1
        writer.close()
        await echo.stop()
        await asyncio.sleep(0.05)
        assert len(live) == 1
        async with http.delete("/proxies/p/toxics/bandwidth_upstream") as response:
            assert response.status == 204
        for _ in range(200):
            if not live:
                break
            await asyncio.sleep(0.01)
        assert len(live) == 0


class TestTimeout:
    """The timeout toxic (§5.5, cases 44, 56, 57)."""

    async def test_timeout_closes_after_silence(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Timeout 100 ms: data is dropped and the client reads EOF after about 100 ms."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 100}})
        reader, writer = await connect(proxy["listen"])
        started = time.monotonic()
        writer.write(b"dropped")
        assert await asyncio.wait_for(reader.read(), 2) == b""
        assert 0.090 <= time.monotonic() - started <= 0.150
        writer.close()

    async def test_toxicity_zero_passes_then_update_closes(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Toxicity 0 lets data through; updating to toxicity 1 and 100 ms closes within 150 ms."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "timeout", "toxicity": 0, "attributes": {"timeout": 0}})
        reader, writer = await connect(proxy["listen"])
        await round_trip_s(reader, writer)
        started = time.monotonic()
        body = {"toxicity": 1, "attributes": {"timeout": 100}}
        async with http.patch("/proxies/p/toxics/timeout_downstream", json=body) as response:
            assert response.status == 200
        assert await asyncio.wait_for(reader.read(), 1) == b""
        assert time.monotonic() - started <= 0.150
        writer.close()

    async def test_removing_timeout_closes_both_ends(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Removing a timeout(0) toxic closes the connection: client and server read EOF within 1 s."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}})
        reader, writer = await connect(proxy["listen"])
        writer.write(b"lost")
        await asyncio.sleep(0.05)
        async with http.delete("/proxies/p/toxics/timeout_upstream") as response:
            assert response.status == 204
        assert await asyncio.wait_for(reader.read(), 1) == b""
        await asyncio.wait_for(echo.eof_seen.wait(), 1)
        writer.close()

    async def test_removing_latency_before_timeout_does_not_hang(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """With latency(10) then timeout(0) upstream and data written, removing the latency answers in 1 s."""
        proxy = await create_proxy(http, "p", sink.address)
        await add_toxic(http, "p", {"type": "latency", "stream": "upstream", "attributes": {"latency": 10}})
        await add_toxic(http, "p", {"type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}})
        _, writer = await connect(proxy["listen"])
        writer.write(b"x" * 10_000)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        async with http.delete("/proxies/p/toxics/latency_upstream") as response:
            assert response.status == 204
        assert time.monotonic() - started < 1.0
        assert bytes(sink.received) == b""
        writer.close()


class TestResetPeer:
    """The reset_peer toxic (§5.6, case 58)."""

    @pytest.mark.parametrize(("stream", "timeout_ms"), [("upstream", 0), ("upstream", 100), ("downstream", 100)])
    async def test_client_gets_connection_reset(
        self, http: aiohttp.ClientSession, echo: Peer, stream: str, timeout_ms: int
    ) -> None:
        """The client's read fails with ECONNRESET after about ``timeout`` ms, then reads EOF."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "reset_peer", "stream": stream, "attributes": {"timeout": timeout_ms}})
        loop = asyncio.get_running_loop()
        with await raw_client(proxy["listen"]) as sock:
            started = time.monotonic()
            await loop.sock_sendall(sock, b"hello")
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(loop.sock_recv(sock, 100), 2)
            assert abs(time.monotonic() - started - timeout_ms / 1000) <= 0.050
            assert await asyncio.wait_for(loop.sock_recv(sock, 100), 1) == b""


class TestLimitData:
    """The limit_data toxic (§5.8, case 59)."""

    @pytest.mark.parametrize(
        ("limit", "writes", "expected"),
        [(100, [50], 50), (100, [100], 100), (100, [150], 100), (100, [25, 25, 25, 25], 100), (100, [90, 20], 100)],
    )
    async def test_data_is_cut_at_the_limit(
        self, http: aiohttp.ClientSession, sink: Peer, limit: int, writes: list[int], expected: int
    ) -> None:
        """The upstream receives at most ``bytes`` bytes, in order; at the limit the connection closes."""
        proxy = await create_proxy(http, "p", sink.address)
        await add_toxic(http, "p", {"type": "limit_data", "stream": "upstream", "attributes": {"bytes": limit}})
        reader, writer = await connect(proxy["listen"])
        payload = b""
        for index, size in enumerate(writes):
            chunk = bytes([65 + index]) * size
            payload += chunk
            writer.write(chunk)
            await asyncio.sleep(0.02)
        await wait_received(sink, expected)
        if expected == limit:
            assert await asyncio.wait_for(reader.read(), 1) == b""
            await asyncio.wait_for(sink.eof_seen.wait(), 1)
        assert bytes(sink.received) == payload[:expected]
        writer.close()

    async def test_limit_zero_closes_on_first_data(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """Limit 0 forwards nothing and closes when the first data arrives."""
        proxy = await create_proxy(http, "p", sink.address)
        await add_toxic(http, "p", {"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 0}})
        reader, writer = await connect(proxy["listen"])
        await asyncio.sleep(0.1)
        assert not reader.at_eof()
        writer.write(b"abc")
        assert await asyncio.wait_for(reader.read(), 1) == b""
        assert bytes(sink.received) == b""
        writer.close()


class TestSlicerAndSlowClose:
    """The slicer and slow_close toxics (§5.4, §5.7)."""

    async def test_slicer_keeps_bytes_identical(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """480 000 bytes sliced 1024/512 with 10 µs pauses arrive byte-identical."""
        proxy = await create_proxy(http, "p", sink.address)
        attributes = {"average_size": 1024, "size_variation": 512, "delay": 10}
        await add_toxic(http, "p", {"type": "slicer", "stream": "upstream", "attributes": attributes})
        _, writer = await connect(proxy["listen"])
        payload = bytes(range(256)) * 1875
        writer.write(payload)
        await wait_received(sink, len(payload), timeout_s=10)
        assert bytes(sink.received) == payload
        writer.close()

    async def test_slow_close_delays_the_close(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Downstream slow_close 200 ms: the client sees the server's close about 200 ms late."""
        proxy = await create_proxy(http, "p", echo.address)
        await add_toxic(http, "p", {"type": "slow_close", "attributes": {"delay": 200}})
        reader, writer = await connect(proxy["listen"])
        await round_trip_s(reader, writer)
        started = time.monotonic()
        await echo.stop()
        assert await asyncio.wait_for(reader.read(), 2) == b""
        assert 0.190 <= time.monotonic() - started <= 0.260
        writer.close()


@SPLICE_MODES
class TestLiveChanges:
    """Adding, updating and removing toxics on live connections (§4.3, cases 43, 48, 49)."""

    async def test_no_data_dropped_while_toxics_come_and_go(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """65 535 2-byte values arrive in order while a 1000 ms latency toxic is added and removed in a loop."""
        proxy = await create_proxy(http, "p", sink.address)
        _, writer = await connect(proxy["listen"])
        done = asyncio.Event()
        toggles = 0

        async def toggle() -> None:
            nonlocal toggles
            while not done.is_set():
                body = {"type": "latency", "stream": "upstream", "attributes": {"latency": 1000}}
                await add_toxic(http, "p", body)
                async with http.delete("/proxies/p/toxics/latency_upstream") as response:
                    assert response.status == 204
                toggles += 1

        toggler = asyncio.create_task(toggle())
        for value in range(65_535):
            writer.write(value.to_bytes(2, "big"))
            if value % 256 == 0:
                await writer.drain()
                await asyncio.sleep(0)
        await writer.drain()
        done.set()
        await toggler
        writer.close()
        await asyncio.wait_for(sink.eof_seen.wait(), 5)
        assert toggles >= 10
        values = [int.from_bytes(sink.received[i : i + 2], "big") for i in range(0, len(sink.received), 2)]
        assert values == list(range(65_535))

    async def test_echo_stays_correct_while_noops_come_and_go(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """100 echo round trips stay correct while noop toxics are added and removed on both directions."""
        proxy = await create_proxy(http, "p", echo.address)
        reader, writer = await connect(proxy["listen"])
        done = asyncio.Event()

        async def toggle() -> None:
            while not done.is_set():
                for stream in ("upstream", "downstream"):
                    await add_toxic(http, "p", {"type": "noop", "stream": stream})
                for stream in ("upstream", "downstream"):
                    async with http.delete(f"/proxies/p/toxics/noop_{stream}") as response:
                        assert response.status == 204

        toggler = asyncio.create_task(toggle())
        for index in range(100):
            payload = f"message {index}".encode()
            await round_trip_s(reader, writer, payload)
        done.set()
        await toggler
        writer.close()

    async def test_connection_persists_across_resets(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """With noop toxics both ways and two /reset calls, the same connection still echoes."""
        proxy = await create_proxy(http, "p", echo.address)
        reader, writer = await connect(proxy["listen"])
        await add_toxic(http, "p", {"type": "noop", "stream": "upstream"})
        await add_toxic(http, "p", {"type": "noop", "stream": "downstream"})
        await round_trip_s(reader, writer)
        for _ in range(2):
            async with http.post("/reset") as response:
                assert response.status == 204
            await round_trip_s(reader, writer)
        writer.close()

    async def test_toxic_added_to_open_connection_applies(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """A 150 ms latency toxic added after connecting delays that connection's next round trip by 150 ms."""
        proxy = await create_proxy(http, "p", echo.address)
        reader, writer = await connect(proxy["listen"])
        assert await round_trip_s(reader, writer) < 0.1
        await add_toxic(http, "p", {"type": "latency", "attributes": {"latency": 150}})
        assert abs(await round_trip_s(reader, writer) - 0.150) <= 0.010
        writer.close()


class TestSeed:
    """--seed makes toxicity draws reproducible."""

    @staticmethod
    async def affected_pattern(seed: int, echo: Peer) -> list[bool]:
        """Which of 12 sequential connections a toxicity-0.5 timeout toxic hits, on a fresh server."""
        pattern: list[bool] = []
        async with ToxiproxyServer(port=0, seed=seed) as server, aiohttp.ClientSession(base_url=server.url) as http:
            proxy = await create_proxy(http, "p", echo.address)
            await add_toxic(http, "p", {"type": "timeout", "toxicity": 0.5, "attributes": {"timeout": 0}})
            for _ in range(12):
                reader, writer = await connect(proxy["listen"])
                writer.write(b"?")
                try:
                    await asyncio.wait_for(reader.readexactly(1), 0.1)
                    pattern.append(False)
                except TimeoutError:
                    pattern.append(True)
                writer.close()
        return pattern

    async def test_same_seed_same_draws(self, echo: Peer) -> None:
        """Two servers with seed 11 hit the same connections; seed 12 hits a different set."""
        first = await self.affected_pattern(11, echo)
        assert first == await self.affected_pattern(11, echo)
        assert first != await self.affected_pattern(12, echo)
        assert any(first) and not all(first)


@SPLICE_MODES
class TestLiveState:
    """Per-link toxic state on live connections (cases 45, 54, 59)."""

    async def test_limit_data_added_to_live_connection(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """limit_data added to an open connection counts from then on: 10 before + 50 after, then EOF."""
        proxy = await create_proxy(http, "p", sink.address)
        reader, writer = await connect(proxy["listen"])
        writer.write(b"a" * 10)
        await wait_received(sink, 10)
        await add_toxic(http, "p", {"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 50}})
        writer.write(b"b" * 80)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        await asyncio.wait_for(sink.eof_seen.wait(), 2)
        assert bytes(sink.received) == b"a" * 10 + b"b" * 50

    async def test_limit_data_counter_survives_update(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """After 60 of 100 bytes, raising the limit to 150 lets exactly 90 more through."""
        proxy = await create_proxy(http, "p", sink.address)
        await add_toxic(http, "p", {"type": "limit_data", "stream": "upstream", "attributes": {"bytes": 100}})
        reader, writer = await connect(proxy["listen"])
        writer.write(b"a" * 60)
        await wait_received(sink, 60)
        async with http.patch("/proxies/p/toxics/limit_data_upstream", json={"attributes": {"bytes": 150}}) as response:
            assert response.status == 200
        writer.write(b"b" * 200)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        await asyncio.wait_for(sink.eof_seen.wait(), 2)
        assert bytes(sink.received) == b"a" * 60 + b"b" * 90

    async def test_latency_does_not_limit_throughput(self, http: aiohttp.ClientSession, sink: Peer) -> None:
        """32 MiB through a 100 ms upstream latency toxic flow at well over 20 MB/s (chunks wait in parallel)."""
        proxy = await create_proxy(http, "p", sink.address)
        await add_toxic(http, "p", {"type": "latency", "stream": "upstream", "attributes": {"latency": 100}})
        _, writer = await connect(proxy["listen"])
        total = 32 * 1024 * 1024
        block = b"\x5a" * (1024 * 1024)
        started = time.monotonic()
        for _ in range(32):
            writer.write(block)
            await writer.drain()
        await wait_received(sink, total, timeout_s=30)
        elapsed_s = time.monotonic() - started
        # One chunk at a time would need minutes (100 ms per read); held chunks must overlap.
        assert total / elapsed_s > 20e6, elapsed_s
        assert elapsed_s >= 0.1
