"""The api gateway against a real vector service and a real PostgreSQL, through latency-capable links."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from chaoslab.demo import vector
from chaoslab.demo.api import Gateway, make_app
from chaoslab.demo.breaker import ApiMode, CallPolicy
from chaoslab.demo.seed import DOCUMENT_COUNT, document_row, seed_demo
from tests.demo.conftest import Serve
from tests.demo.helpers import LatencyForwarder, open_loop

pytestmark = pytest.mark.integration


@dataclass
class DemoStack:
    """vector + links + api, all on 127.0.0.1."""

    api_url: str
    vector_link: LatencyForwarder
    postgres_link: LatencyForwarder
    gateway: Gateway


StartStack = Callable[[ApiMode], Awaitable[DemoStack]]


@pytest.fixture
async def start_stack(serve: Serve, tmp_path: Path, demo_dsn: str) -> AsyncIterator[StartStack]:
    """Start vector, a forwarder per dependency and the api in a mode; stopped api-first afterwards."""
    runners: list[web.AppRunner] = []
    links: list[LatencyForwarder] = []

    async def start(mode: ApiMode) -> DemoStack:
        vector_url = await serve(vector.make_app(vector.VectorConfig(data_dir=tmp_path / "vector", vectors=2000)))
        vector_link = LatencyForwarder(int(vector_url.rsplit(":", 1)[1]))
        pg_port = int(demo_dsn.split("@127.0.0.1:")[1].split("/")[0])
        postgres_link = LatencyForwarder(pg_port)
        for link in (vector_link, postgres_link):
            await link.start()
            links.append(link)
        gateway = Gateway(
            vector_url=f"http://127.0.0.1:{vector_link.port}",
            postgres_dsn=demo_dsn.replace(f":{pg_port}/", f":{postgres_link.port}/"),
            policy=CallPolicy.for_mode(mode),
            pool_size=4,
        )
        runner = web.AppRunner(make_app(gateway), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        for _ in range(100):
            if gateway.pool is not None:
                break
            await asyncio.sleep(0.05)
        assert gateway.pool is not None, gateway.pool_error
        return DemoStack(f"http://127.0.0.1:{runner.addresses[0][1]}", vector_link, postgres_link, gateway)

    yield start
    for runner in runners:
        await runner.cleanup()
    for link in links:
        await link.stop()


@pytest.fixture(params=[ApiMode.FRAGILE, ApiMode.RESILIENT], ids=["fragile", "resilient"])
async def stack(request: pytest.FixtureRequest, start_stack: StartStack) -> DemoStack:
    """A running demo stack in each mode."""
    return await start_stack(request.param)


class TestSeed:
    """The documents table."""

    async def test_seed_is_idempotent(self, demo_dsn: str) -> None:
        """Seeding twice leaves 500 rows with their deterministic content."""
        assert await seed_demo(demo_dsn) == DOCUMENT_COUNT
        conn = await asyncpg.connect(demo_dsn)
        try:
            row = await conn.fetchrow("SELECT id, title, body, topic FROM documents WHERE id = 42")
        finally:
            await conn.close()
        assert tuple(row) == document_row(42)
        assert row["title"] == "Note 42: retry budgets"


class TestApiEndpoints:
    """Documents, search and health through the links, in both modes."""

    async def test_get_document(self, stack: DemoStack) -> None:
        """GET /documents/7 returns document 7 from PostgreSQL."""
        async with aiohttp.ClientSession() as session, session.get(f"{stack.api_url}/documents/7") as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["id"] == 7
        assert body["title"] == "Note 7: circuit breakers"

    async def test_missing_and_bad_document_ids(self, stack: DemoStack) -> None:
        """An absent id is 404; a non-integer id is 400."""
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{stack.api_url}/documents/9999") as resp:
                assert resp.status == 404
            async with session.get(f"{stack.api_url}/documents/abc") as resp:
                assert resp.status == 400

    async def test_list_documents_pages(self, stack: DemoStack) -> None:
        """GET /documents?limit=3&offset=10 returns ids 11, 12, 13."""
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{stack.api_url}/documents", params={"limit": "3", "offset": "10"}) as resp:
                body = await resp.json()
            async with session.get(f"{stack.api_url}/documents", params={"limit": "0"}) as bad:
                assert bad.status == 400
        assert [d["id"] for d in body["documents"]] == [11, 12, 13]

    async def test_search_goes_through_vector(self, stack: DemoStack) -> None:
        """POST /search returns vector's ranked results for the query."""
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{stack.api_url}/search", json={"query": "red", "k": 4}) as resp:
                assert resp.status == 200
                body = await resp.json()
            async with session.post(f"{stack.api_url}/search", json={"k": 4}) as bad:
                assert bad.status == 400
        assert body["query"] == "red"
        assert len(body["results"]) == 4

    async def test_search_fails_fast_when_vector_is_gone(self, stack: DemoStack) -> None:
        """With the vector link closed, /search answers 502 within 100 ms; documents still work."""
        await stack.vector_link.stop()
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            async with session.post(f"{stack.api_url}/search", json={"query": "red"}) as resp:
                elapsed_s = time.perf_counter() - started
                assert resp.status == 502
                assert "vector unreachable" in (await resp.json())["error"]
            async with session.get(f"{stack.api_url}/documents/5") as resp:
                assert resp.status == 200
        assert elapsed_s < 0.1

    async def test_health_reports_each_dependency(self, stack: DemoStack) -> None:
        """GET /health soon says ok, names the mode and shows vector and postgres as ok."""
        body = await health_until(stack.api_url, lambda b: b["status"] == "ok")
        assert body["status"] == "ok"
        assert body["mode"] == stack.gateway.policy.mode.value
        assert body["dependencies"]["vector"]["ok"] is True
        assert body["dependencies"]["postgres"]["ok"] is True

    async def test_health_degraded_when_vector_link_is_gone(self, stack: DemoStack) -> None:
        """With the vector link closed, /health still answers 200 but soon says degraded, vector not ok."""
        await health_until(stack.api_url, lambda b: b["status"] == "ok")
        await stack.vector_link.stop()
        body = await health_until(stack.api_url, lambda b: b["status"] == "degraded")
        assert body["dependencies"]["vector"]["ok"] is False
        assert body["dependencies"]["postgres"]["ok"] is True

    async def test_health_stays_fast_when_vector_is_slow(self, stack: DemoStack) -> None:
        """With 800 ms on the vector link, /health still answers within 100 ms (it serves the last checks)."""
        await health_until(stack.api_url, lambda b: b["status"] == "ok")
        stack.vector_link.latency_s = 0.8
        slowest_s = 0.0
        async with aiohttp.ClientSession() as session:
            for _ in range(10):
                started = time.perf_counter()
                async with session.get(f"{stack.api_url}/health") as resp:
                    assert resp.status == 200
                slowest_s = max(slowest_s, time.perf_counter() - started)
                await asyncio.sleep(0.1)
        stack.vector_link.latency_s = 0.0
        assert slowest_s < 0.1


async def health_until(api_url: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 5.0) -> dict[str, Any]:
    """Poll the api's /health (always 200) until ``done(body)``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{api_url}/health") as resp:
                assert resp.status == 200
                body: dict[str, Any] = await resp.json()
            if done(body) or time.monotonic() > deadline:
                return body
            await asyncio.sleep(0.1)


class TestModesUnderSlowVector:
    """The cascade: 800 ms on the vector link at 40 req/s (1 search : 2 document reads)."""

    async def test_fragile_mode_starves_document_reads(self, start_stack: StartStack) -> None:
        """Fragile: slow searches hold the shared limit, so document p95 goes from under 200 ms to over 500 ms."""
        stack = await start_stack(ApiMode.FRAGILE)
        try:
            baseline = await open_loop(stack.api_url, rate_per_s=40, duration_s=1.5)
            stack.vector_link.latency_s = 0.8
            faulted = await open_loop(stack.api_url, rate_per_s=40, duration_s=3.0)
        finally:
            stack.vector_link.latency_s = 0.0
        assert baseline["documents"].p95_s() < 0.2
        assert faulted["documents"].p95_s() > 0.5

    async def test_resilient_mode_keeps_documents_fast(self, start_stack: StartStack) -> None:
        """Resilient: searches fail within ~300 ms; document reads keep p95 under 200 ms, no errors."""
        stack = await start_stack(ApiMode.RESILIENT)
        stack.vector_link.latency_s = 0.8
        try:
            faulted = await open_loop(stack.api_url, rate_per_s=40, duration_s=3.0)
        finally:
            stack.vector_link.latency_s = 0.0
        assert faulted["documents"].errors == 0
        assert faulted["documents"].p95_s() < 0.2
        assert faulted["search"].errors == faulted["search"].count == 40
        assert faulted["search"].p95_s() < 0.6

    async def test_resilient_breaker_opens_and_sheds_searches(self, start_stack: StartStack) -> None:
        """Five timeouts open the breaker: the sixth search fails at once with 503."""
        stack = await start_stack(ApiMode.RESILIENT)
        stack.vector_link.latency_s = 0.8
        statuses = []
        async with aiohttp.ClientSession() as session:
            for _ in range(5):
                async with session.post(f"{stack.api_url}/search", json={"query": "x"}) as resp:
                    statuses.append(resp.status)
            started = time.perf_counter()
            async with session.post(f"{stack.api_url}/search", json={"query": "x"}) as resp:
                shed_s = time.perf_counter() - started
                assert resp.status == 503
                assert "breaker" in (await resp.json())["error"]
        stack.vector_link.latency_s = 0.0
        assert statuses == [504] * 5
        assert shed_s < 0.1
