"""A real aiohttp target on 127.0.0.1 that counts what it served, and helpers for Locust swarm tests."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psutil
import pytest
from aiohttp import web


@dataclass
class Target:
    """The target's address and the requests it served per path."""

    port: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Requests served, all paths together."""
        return sum(self.counts.values())

    def url(self, path: str) -> str:
        """An absolute URL on the target."""
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """An aiohttp server: ``/ok/*`` answers 200, ``/fail`` 503; every answer is counted by path."""
    state = Target(port=0)

    async def handle(request: web.Request) -> web.Response:
        state.counts[request.path] = state.counts.get(request.path, 0) + 1
        if request.path == "/fail":
            return web.Response(status=503, text="down")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    state.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    try:
        yield state
    finally:
        await runner.cleanup()


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still run (zombies of other parents count as gone)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


async def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    """Wait until none of ``pids`` runs (bounded); returns those still running."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    left = alive(pids)
    while left and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        left = alive(pids)
    return left


def locust_children() -> list[int]:
    """PIDs of this process's children that run Locust (there must be none after a test)."""
    me = psutil.Process(os.getpid())
    out = []
    for child in me.children(recursive=True):
        try:
            if "locust" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                out.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return out
