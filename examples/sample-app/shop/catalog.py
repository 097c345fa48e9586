"""The catalog service: products in PostgreSQL, served over HTTP (aiohttp + asyncpg).

Environment: ``PORT`` (8001), ``HOST`` (127.0.0.1; the container sets 0.0.0.0) and ``DATABASE_URL``.
"""

from __future__ import annotations

import os

import asyncpg
from aiohttp import web

PRODUCTS = [(f"product {i}", 100 + i * 7 % 900) for i in range(1, 51)]


async def open_database(app: web.Application) -> None:
    """Connect, create the table and seed it once."""
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=10)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS products (id serial PRIMARY KEY, name text, price_cents int)")
        if await conn.fetchval("SELECT count(*) FROM products") == 0:
            await conn.executemany("INSERT INTO products (name, price_cents) VALUES ($1, $2)", PRODUCTS)
    app["pool"] = pool


async def close_database(app: web.Application) -> None:
    """Close the pool."""
    await app["pool"].close()


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers (the database is not asked)."""
    return web.json_response({"status": "ok"})


async def products(request: web.Request) -> web.Response:
    """The first ``limit`` products."""
    limit = min(int(request.query.get("limit", "10")), 50)
    rows = await request.app["pool"].fetch("SELECT id, name, price_cents FROM products ORDER BY id LIMIT $1", limit)
    return web.json_response([dict(row) for row in rows])


def make_app() -> web.Application:
    """The catalog application."""
    app = web.Application()
    app.on_startup.append(open_database)
    app.on_cleanup.append(close_database)
    app.router.add_get("/health", health)
    app.router.add_get("/products", products)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8001")))
