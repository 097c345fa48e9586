"""Test helpers for the demo services: a TCP forwarder with injectable latency and a bounded open-loop load."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import aiohttp


class LatencyForwarder:
    """A TCP forwarder on 127.0.0.1 that can delay data coming back from upstream, like a latency toxic."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.latency_s = 0.0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every connection."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        # closed transports wake their readers; let the handlers finish instead of being cancelled later
        for _ in range(100):
            if not self._writers:
                break
            await asyncio.sleep(0.01)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        self._writers.update((client_w, up_w))
        try:
            await asyncio.gather(self._pipe(client_r, up_w, delayed=False), self._pipe(up_r, client_w, delayed=True))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for writer in (client_w, up_w):
                writer.close()
                self._writers.discard(writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            if delayed and self.latency_s > 0:
                await asyncio.sleep(self.latency_s)
            writer.write(data)
            await writer.drain()


@dataclass
class ClassStats:
    """Latencies (s) and error count of one request class."""

    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0

    def p95_s(self) -> float:
        """The 95th percentile latency (successes and failures alike)."""
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0

    @property
    def count(self) -> int:
        """Requests finished."""
        return len(self.latencies_s)


async def open_loop(
    base_url: str, *, rate_per_s: float, duration_s: float, timeout_s: float = 5.0
) -> dict[str, ClassStats]:
    """Send search:documents in a 1:2 mix at ``rate_per_s`` for ``duration_s`` (bounded), return per-class stats."""
    stats = {"search": ClassStats(), "documents": ClassStats()}
    timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def one(session: aiohttp.ClientSession, index: int) -> None:
        name = "search" if index % 3 == 0 else "documents"
        started = time.perf_counter()
        try:
            if name == "search":
                request = session.post(f"{base_url}/search", json={"query": f"q{index % 7}", "k": 5})
            else:
                request = session.get(f"{base_url}/documents/{1 + index % 500}")
            async with request as response:
                await response.read()
                failed = response.status != 200
        except (aiohttp.ClientError, TimeoutError):
            failed = True
        stats[name].latencies_s.append(time.perf_counter() - started)
        stats[name].errors += failed

    total = int(rate_per_s * duration_s)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=512)) as session:
        start = time.perf_counter()
        tasks = []
        for index in range(total):
            delay = start + index / rate_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, index)))
        await asyncio.gather(*tasks)
    return stats
