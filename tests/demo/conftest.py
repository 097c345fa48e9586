"""Fixtures for the demo services: serving aiohttp apps on real sockets, a seeded database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest
from aiohttp import web

from chaoslab.demo.seed import seed_demo
from chaoslab.system.postgres import PostgresServer

Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serve aiohttp apps on 127.0.0.1 free ports; returns their base URL; all stopped afterwards."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


@pytest.fixture(scope="module")
def demo_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh database on the session's PostgreSQL, seeded with the demo documents."""
    name = f"demo_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(postgres_server.dsn())
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
        await seed_demo(postgres_server.dsn(name))

    async def drop() -> None:
        conn = await asyncpg.connect(postgres_server.dsn())
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()

    asyncio.run(create())
    yield postgres_server.dsn(name)
    asyncio.run(drop())
