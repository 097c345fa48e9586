"""Data integrity: large random streams through the proxy, both directions, checksummed end to end."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time

import aiohttp
import pytest

from chaoslab.proxy import ToxiproxyServer
from chaoslab.proxy.link import Link
from chaoslab.proxy.splice import SPLICE_AVAILABLE
from chaoslab.proxy.toxics import Direction
from tests.proxy.conftest import Peer, add_toxic, connect, create_proxy

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
BLOCK = MIB

TOXICS: dict[str, list[dict[str, object]]] = {
    "none": [],
    "latency": [
        {"type": "latency", "stream": stream, "attributes": {"latency": 5, "jitter": 2}}
        for stream in ("upstream", "downstream")
    ],
    "bandwidth": [
        {"type": "bandwidth", "stream": stream, "attributes": {"rate": 50_000}} for stream in ("upstream", "downstream")
    ],
    "slicer": [
        {"type": "slicer", "stream": stream, "attributes": {"average_size": 16384, "size_variation": 8192, "delay": 0}}
        for stream in ("upstream", "downstream")
    ],
}


FLIPS: list[list[dict[str, object]]] = [
    [{"type": "latency", "stream": "upstream", "attributes": {"latency": 5}}],
    [{"type": "bandwidth", "stream": "downstream", "attributes": {"rate": 100_000}}],
    TOXICS["slicer"],
    [{"type": "latency", "stream": "downstream", "attributes": {"latency": 10, "jitter": 5}}],
    [{"type": "bandwidth", "stream": "upstream", "attributes": {"rate": 100_000}}],
    [*TOXICS["latency"], {"name": "cut", **TOXICS["slicer"][0]}],
]
"""Toxic sets flipped on and off live, in turn: each direction alone and both at once."""


async def flip_toxics_live(
    http: aiohttp.ClientSession,
    server: ToxiproxyServer,
    done: asyncio.Event,
    links: dict[Direction, Link],
    *,
    spliced_s: float,
    toxic_s: float,
) -> int:
    """Until ``done``: let the stream splice, add a toxic set, let it act, remove it; the number of flips.

    Checks each switch on the live links: a direction with an acting toxic stops splicing before the
    API answers, and splices again after the toxic is gone.
    """
    proxy = server.collection.proxies["p"]
    deadline = time.monotonic() + 5
    while not (proxy.connections and next(iter(proxy.connections)).links):
        assert time.monotonic() < deadline, "no live connection"
        await asyncio.sleep(0.001)
    links.update(next(iter(proxy.connections)).links)
    flips = 0
    while not done.is_set():
        await asyncio.sleep(spliced_s)
        if done.is_set():
            break
        bodies = FLIPS[flips % len(FLIPS)]
        names = [str((await add_toxic(http, "p", body))["name"]) for body in bodies]
        for body in bodies:
            link = links[Direction(str(body["stream"]))]
            assert link.finished or not link.splicing, f"{link.direction} still splices under {body['type']}"
        await asyncio.sleep(toxic_s)
        for name in names:
            async with http.delete(f"/proxies/p/toxics/{name}") as response:
                assert response.status == 204
        flips += 1
        deadline = time.monotonic() + 5
        while not done.is_set() and not all(link.splicing for link in links.values()):
            assert time.monotonic() < deadline, "a link did not return to splice mode"
            await asyncio.sleep(0.001)
    return flips


async def stream_through(listen: object, total_bytes: int, seed: int, timeout_s: float) -> tuple[str, str, float]:
    """Send ``total_bytes`` of seeded random data through an echo proxy; (sent digest, received digest, seconds)."""
    reader, writer = await connect(listen)
    rng = random.Random(seed)
    sent, received = hashlib.sha256(), hashlib.sha256()
    started = time.monotonic()

    async def send() -> None:
        remaining = total_bytes
        while remaining > 0:
            block = rng.randbytes(min(BLOCK, remaining))
            sent.update(block)
            writer.write(block)
            await writer.drain()
            remaining -= len(block)

    async def receive() -> None:
        remaining = total_bytes
        while remaining > 0:
            data = await reader.read(min(remaining, 4 * MIB))
            assert data, f"EOF with {remaining} bytes missing"
            received.update(data)
            remaining -= len(data)

    async with asyncio.timeout(timeout_s):
        await asyncio.gather(send(), receive())
    elapsed = time.monotonic() - started
    writer.close()
    return sent.hexdigest(), received.hexdigest(), elapsed


class TestIntegrity:
    """Bytes out equal bytes in, with and without toxics."""

    @pytest.mark.timeout(300)
    @pytest.mark.parametrize("toxics", list(TOXICS))
    async def test_256_mib_round_trip(self, http: aiohttp.ClientSession, echo: Peer, toxics: str) -> None:
        """256 MiB echoed through the proxy (toxics on both directions) arrive byte-identical (~6 s each)."""
        proxy = await create_proxy(http, "p", echo.address)
        for body in TOXICS[toxics]:
            await add_toxic(http, "p", body)
        sent, received, elapsed_s = await stream_through(proxy["listen"], 256 * MIB, seed=2, timeout_s=240)
        assert received == sent
        if toxics == "bandwidth":
            # 50 000 KB/s = 50 MB/s per direction: 268 MB cannot take less than 5.37 s.
            assert elapsed_s >= 256 * MIB / 50e6 * 0.95

    async def test_toxics_changing_during_a_stream(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """16 MiB stay intact while latency, slicer, bandwidth and noop toxics are added and removed."""
        proxy = await create_proxy(http, "p", echo.address)
        done = asyncio.Event()
        changes = 0
        bodies = [body for name in ("latency", "bandwidth", "slicer") for body in TOXICS[name]]
        bodies += [{"type": "noop", "stream": "upstream"}, {"type": "noop", "stream": "downstream"}]

        async def churn() -> None:
            nonlocal changes
            index = 0
            while not done.is_set():
                body = bodies[index % len(bodies)]
                toxic = await add_toxic(http, "p", body)
                await asyncio.sleep(0.005)
                async with http.patch(f"/proxies/p/toxics/{toxic['name']}", json={"toxicity": 1}) as response:
                    assert response.status == 200
                async with http.delete(f"/proxies/p/toxics/{toxic['name']}") as response:
                    assert response.status == 204
                index += 1
                changes += 1

        churner = asyncio.create_task(churn())
        try:
            sent, received, _ = await stream_through(proxy["listen"], 16 * MIB, seed=3, timeout_s=60)
        finally:
            done.set()
            await churner
        assert received == sent
        assert changes >= 5


@pytest.mark.skipif(not SPLICE_AVAILABLE, reason="os.splice is Linux-only")
class TestFlippingLive:
    """256 MiB streams while toxics are flipped on and off: the splice ⇄ chunked switches keep every byte."""

    @pytest.mark.timeout(300)
    async def test_256_mib_with_toxics_flipped_live(
        self, http: aiohttp.ClientSession, echo: Peer, toxiproxy: ToxiproxyServer
    ) -> None:
        """Latency, bandwidth and slicer sets flipped every ~100 ms, both directions: exact bytes, both paths used."""
        proxy = await create_proxy(http, "p", echo.address)
        done = asyncio.Event()
        links: dict[Direction, Link] = {}
        flipper = asyncio.create_task(flip_toxics_live(http, toxiproxy, done, links, spliced_s=0.06, toxic_s=0.04))
        try:
            sent, received, _ = await stream_through(proxy["listen"], 256 * MIB, seed=4, timeout_s=240)
        finally:
            done.set()
            flips = await flipper
        assert received == sent
        assert flips >= 6
        for link in links.values():
            # Both paths carried bytes of the same stream, and the link came back to splicing each time.
            assert 0 < link.spliced_bytes < link.sent_bytes, link.direction
            assert link.splice_entries > flips // 2, link.direction

    @pytest.mark.slow
    @pytest.mark.timeout(600)
    @pytest.mark.parametrize("seed", [5, 6, 7])
    async def test_1_gib_flipped_every_few_milliseconds(
        self, http: aiohttp.ClientSession, echo: Peer, toxiproxy: ToxiproxyServer, seed: int
    ) -> None:
        """1 GiB with flips every 5–15 ms (tens of switches per second), three seeds."""
        proxy = await create_proxy(http, "p", echo.address)
        done = asyncio.Event()
        links: dict[Direction, Link] = {}
        flipper = asyncio.create_task(
            flip_toxics_live(http, toxiproxy, done, links, spliced_s=0.005 * seed - 0.02, toxic_s=0.005)
        )
        try:
            sent, received, _ = await stream_through(proxy["listen"], 1024 * MIB, seed=seed, timeout_s=500)
        finally:
            done.set()
            flips = await flipper
        assert received == sent
        assert flips >= 50
        for link in links.values():
            assert 0 < link.spliced_bytes < link.sent_bytes, link.direction


class TestBackPressure:
    """A slow destination: buffered writes must never see their bytes overwritten by later reads."""

    async def test_slow_reader_gets_every_byte(self, http: aiohttp.ClientSession) -> None:
        """16 MiB to an upstream that reads 64 KiB per millisecond arrive byte-identical."""
        received = hashlib.sha256()
        done = asyncio.Event()
        count = 0

        async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal count
            while data := await reader.read(64 * 1024):
                received.update(data)
                count += len(data)
                await asyncio.sleep(0.001)
            done.set()
            writer.close()

        server = await asyncio.start_server(slow, "127.0.0.1", 0)
        try:
            proxy = await create_proxy(http, "p", f"127.0.0.1:{server.sockets[0].getsockname()[1]}")
            _, writer = await connect(proxy["listen"])
            rng = random.Random(9)
            sent = hashlib.sha256()
            for _ in range(64):
                block = rng.randbytes(256 * 1024)
                sent.update(block)
                writer.write(block)
                await writer.drain()
            writer.close()
            await asyncio.wait_for(done.wait(), 60)
            assert (count, received.hexdigest()) == (16 * MIB, sent.hexdigest())
        finally:
            server.close()
