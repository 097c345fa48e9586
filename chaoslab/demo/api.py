"""The demo api gateway: ``/search`` → vector, ``/documents`` → PostgreSQL, ``/health`` (aiohttp, asyncpg).

Run it as ``python -m chaoslab.demo.api --port 28080 --vector-url http://127.0.0.1:28181
--postgres-dsn postgresql://chaoslab@127.0.0.1:25433/chaoslab --mode fragile``.

- ``POST /search {"query": "red", "k": 5}`` — forwarded to the vector service.
- ``GET /documents?limit=20&offset=0`` and ``GET /documents/{id}`` — read from PostgreSQL through
  an asyncpg pool that keeps its connections open.
- ``GET /health`` — 200 while the api runs, at once, with each dependency's last checked state
  (checked every :data:`HEALTH_INTERVAL_S` in the background).

``--mode`` chooses the :class:`~chaoslab.demo.breaker.CallPolicy`: ``fragile`` puts every
downstream call behind ONE concurrency limit with long timeouts (slow searches starve document
reads), ``resilient`` gives each dependency its own bulkhead, short timeouts and a circuit
breaker on vector.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from chaoslab.demo.breaker import ApiMode, CallPolicy, CircuitBreaker
from chaoslab.demo.serving import run, serve

DEFAULT_POOL_SIZE = 10
HEALTH_INTERVAL_S = 0.5
"""How often the api checks its dependencies in the background; ``/health`` serves the last result."""
MAX_LIST = 100


class DependencyError(Exception):
    """A downstream call failed; carries the HTTP status the api answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Limiter:
    """The concurrency limit of one dependency (its own bulkhead, or the shared one)."""

    def __init__(self, name: str, limit: int, wait_s: float) -> None:
        self.name = name
        self.limit = limit
        self.wait_s = wait_s
        self._semaphore = asyncio.Semaphore(limit)
        self.in_use = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one permit; raise a 503 DependencyError when none frees up within ``wait_s``."""
        try:
            async with asyncio.timeout(self.wait_s):
                await self._semaphore.acquire()
        except TimeoutError:
            raise DependencyError(503, f"{self.name} limit of {self.limit} full for {self.wait_s:g}s") from None
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
            self._semaphore.release()


class Gateway:
    """The api's downstream side: limits, timeouts, the breaker, the HTTP session and the pool."""

    def __init__(self, *, vector_url: str, postgres_dsn: str, policy: CallPolicy, pool_size: int) -> None:
        self.vector_url = vector_url.rstrip("/")
        self.postgres_dsn = postgres_dsn
        self.policy = policy
        self.pool_size = pool_size
        if policy.shared_limit is not None:
            shared = Limiter("shared", policy.shared_limit, policy.bulkhead_wait_s)
            self.vector_limiter = self.postgres_limiter = shared
        else:
            self.vector_limiter = Limiter("vector", policy.vector_limit or 8, policy.bulkhead_wait_s)
            self.postgres_limiter = Limiter("postgres", policy.postgres_limit or 16, policy.bulkhead_wait_s)
        self.breaker = (
            CircuitBreaker(failure_threshold=policy.breaker_failures, open_for_s=policy.breaker_open_s)
            if policy.breaker_failures is not None
            else None
        )
        self.session: aiohttp.ClientSession | None = None
        self.pool: asyncpg.Pool | None = None
        self.pool_error: str | None = "not connected yet"
        self.dependencies: dict[str, dict[str, Any]] = {}

    async def connect_pool(self) -> None:
        """Create the asyncpg pool, retrying every 0.5 s until PostgreSQL answers (runs as a task)."""
        while self.pool is None:
            try:
                self.pool = await asyncpg.create_pool(
                    self.postgres_dsn,
                    min_size=self.pool_size,
                    max_size=self.pool_size,
                    timeout=5,
                    command_timeout=self.policy.postgres_timeout_s,
                )
                self.pool_error = None
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                self.pool_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.5)

    async def search(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Forward a search to vector under the policy's limit, timeout and breaker."""
        now = time.monotonic()
        if self.breaker is not None and not self.breaker.allow(now):
            raise DependencyError(503, "vector circuit breaker is open")
        ok = False
        try:
            async with self.vector_limiter.slot():
                result = await self._post_vector(payload)
            ok = True
            return result
        except DependencyError as exc:
            # 4xx is the caller's fault; timeouts, 5xx and a saturated bulkhead count against vector
            ok = exc.status < 500
            raise
        finally:
            if self.breaker is not None:
                if ok:
                    self.breaker.record_success(time.monotonic())
                else:
                    self.breaker.record_failure(time.monotonic())

    async def _post_vector(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.session is not None
        timeout = aiohttp.ClientTimeout(total=self.policy.vector_timeout_s)
        try:
            async with self.session.post(f"{self.vector_url}/search", json=payload, timeout=timeout) as response:
                body = await response.json(content_type=None)
                if response.status >= 500:
                    raise DependencyError(502, f"vector answered {response.status}: {body.get('error', '')}")
                if response.status != 200:
                    raise DependencyError(response.status, str(body.get("error", "bad request")))
                return dict(body)
        except TimeoutError:
            raise DependencyError(504, f"vector did not answer within {self.policy.vector_timeout_s:g}s") from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise DependencyError(502, f"vector unreachable: {type(exc).__name__}") from None

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Run a read query on PostgreSQL under the policy's limit and timeout."""
        if self.pool is None:
            raise DependencyError(503, f"postgres pool not ready: {self.pool_error}")
        async with self.postgres_limiter.slot():
            try:
                async with self.pool.acquire(timeout=self.policy.postgres_timeout_s) as connection:
                    rows: list[asyncpg.Record] = await connection.fetch(
                        query, *args, timeout=self.policy.postgres_timeout_s
                    )
                    return rows
            except TimeoutError:
                raise DependencyError(504, "postgres did not answer in time") from None
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise DependencyError(503, f"postgres failed: {type(exc).__name__}") from None

    async def check_vector(self) -> dict[str, Any]:
        """Check vector's own /health through the link, with the policy's vector timeout (at most 1 s)."""
        started = time.monotonic()
        state: dict[str, Any] = {}
        try:
            assert self.session is not None
            timeout = aiohttp.ClientTimeout(total=min(self.policy.vector_timeout_s, 1.0))
            async with self.session.get(f"{self.vector_url}/health", timeout=timeout) as response:
                state["ok"] = response.status == 200
                if not state["ok"]:
                    state["error"] = f"status {response.status}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            state.update(ok=False, error=type(exc).__name__)
        state["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        return state

    async def check_postgres(self) -> dict[str, Any]:
        """Check PostgreSQL with ``SELECT 1`` on a pooled connection (at most 1 s)."""
        started = time.monotonic()
        state: dict[str, Any] = {}
        if self.pool is None:
            state.update(ok=False, error=f"pool not ready: {self.pool_error}")
        else:
            try:
                async with self.pool.acquire(timeout=1.0) as connection:
                    await connection.fetchval("SELECT 1", timeout=1.0)
                state["ok"] = True
            except TimeoutError:
                state.update(ok=False, error="TimeoutError")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                state.update(ok=False, error=type(exc).__name__)
        state["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        return state

    async def monitor(self, interval_s: float = HEALTH_INTERVAL_S) -> None:
        """Check both dependencies every ``interval_s`` in the background (runs as a task)."""
        while True:
            vector_state, postgres_state = await asyncio.gather(self.check_vector(), self.check_postgres())
            self.dependencies = {"vector": vector_state, "postgres": postgres_state}
            await asyncio.sleep(interval_s)

    def health(self) -> dict[str, Any]:
        """The last dependency checks and the breaker's state, without waiting for anything."""
        dependencies = {name: dict(state) for name, state in self.dependencies.items()}
        if self.breaker is not None and "vector" in dependencies:
            dependencies["vector"]["breaker"] = self.breaker.state(time.monotonic()).value
        if not dependencies:
            status = "starting"
        else:
            status = "ok" if all(state["ok"] for state in dependencies.values()) else "degraded"
        return {"status": status, "mode": self.policy.mode.value, "dependencies": dependencies}


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def _error(exc: DependencyError) -> web.Response:
    return web.json_response({"error": exc.message}, status=exc.status)


async def search(request: web.Request) -> web.Response:
    """``POST /search`` → vector."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return web.json_response({"error": "expected a JSON body"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return web.json_response({"error": "expected {'query': str, 'k': int}"}, status=400)
    try:
        result = await request.app[GATEWAY_KEY].search({"query": body["query"], "k": body.get("k", 5)})
    except DependencyError as exc:
        return _error(exc)
    return web.json_response(result)


async def list_documents(request: web.Request) -> web.Response:
    """``GET /documents?limit=&offset=`` → id, title and topic of a page of documents."""
    try:
        limit = int(request.query.get("limit", "20"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        return web.json_response({"error": "expected integer limit and offset"}, status=400)
    if not 1 <= limit <= MAX_LIST or offset < 0:
        return web.json_response({"error": f"expected 1 <= limit <= {MAX_LIST} and offset >= 0"}, status=400)
    try:
        rows = await request.app[GATEWAY_KEY].fetch(
            "SELECT id, title, topic FROM documents ORDER BY id LIMIT $1 OFFSET $2", limit, offset
        )
    except DependencyError as exc:
        return _error(exc)
    return web.json_response({"documents": [dict(r) for r in rows]})


async def get_document(request: web.Request) -> web.Response:
    """``GET /documents/{id}`` → one document, 404 when absent."""
    try:
        doc_id = int(request.match_info["id"])
    except ValueError:
        return web.json_response({"error": "expected an integer id"}, status=400)
    if not -(2**31) <= doc_id < 2**31:
        return web.json_response({"error": "id out of range"}, status=400)
    try:
        rows = await request.app[GATEWAY_KEY].fetch(
            "SELECT id, title, body, topic FROM documents WHERE id = $1", doc_id
        )
    except DependencyError as exc:
        return _error(exc)
    if not rows:
        return web.json_response({"error": f"no document {doc_id}"}, status=404)
    return web.json_response(dict(rows[0]))


async def health(request: web.Request) -> web.Response:
    """``GET /health`` → 200 while the api runs, at once; ``status`` is ``degraded`` when a dependency is down.

    Dependency states come from the background checks, so a slow dependency never makes the
    api's own health check slow.
    """
    return web.json_response(request.app[GATEWAY_KEY].health())


def make_app(gateway: Gateway) -> web.Application:
    """The aiohttp application; the HTTP session and the pool task live with it."""
    app = web.Application()
    app[GATEWAY_KEY] = gateway

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        gateway.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        tasks = [asyncio.create_task(gateway.connect_pool()), asyncio.create_task(gateway.monitor())]
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await gateway.session.close()
        if gateway.pool is not None:
            try:
                await asyncio.wait_for(gateway.pool.close(), 3.0)
            except TimeoutError:
                gateway.pool.terminate()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/search", search)
    app.router.add_get("/documents", list_documents)
    app.router.add_get("/documents/{id}", get_document)
    app.router.add_get("/health", health)
    return app


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m chaoslab.demo.api", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=28080)
    parser.add_argument("--vector-url", required=True)
    parser.add_argument("--postgres-dsn", required=True)
    parser.add_argument("--mode", choices=[m.value for m in ApiMode], default=ApiMode.FRAGILE.value)
    parser.add_argument("--pool-size", type=int, default=DEFAULT_POOL_SIZE)
    args = parser.parse_args(argv)
    gateway = Gateway(
        vector_url=args.vector_url,
        postgres_dsn=args.postgres_dsn,
        policy=CallPolicy.for_mode(ApiMode(args.mode)),
        pool_size=args.pool_size,
    )
    run(serve(make_app(gateway), args.host, args.port))


if __name__ == "__main__":
    main()
