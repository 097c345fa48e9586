"""The web front end: its home page lists products that it asks the catalog for (aiohttp).

Environment: ``PORT`` (8000), ``HOST`` (127.0.0.1; the container sets 0.0.0.0) and ``CATALOG_URL``.
"""

from __future__ import annotations

import os

import aiohttp
from aiohttp import web


async def open_client(app: web.Application) -> None:
    """One HTTP client for the catalog, with a 2 s budget per call."""
    app["catalog"] = aiohttp.ClientSession(os.environ["CATALOG_URL"], timeout=aiohttp.ClientTimeout(total=2.0))


async def close_client(app: web.Application) -> None:
    """Close the client."""
    await app["catalog"].close()


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers (the catalog is not asked)."""
    return web.json_response({"status": "ok"})


async def home(request: web.Request) -> web.Response:
    """The home page: five products from the catalog; 502 when the catalog fails."""
    try:
        async with request.app["catalog"].get("/products", params={"limit": "5"}) as resp:
            resp.raise_for_status()
            items = await resp.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return web.json_response({"error": f"catalog: {type(exc).__name__}"}, status=502)
    return web.json_response({"products": [item["name"] for item in items]})


def make_app() -> web.Application:
    """The web application."""
    app = web.Application()
    app.on_startup.append(open_client)
    app.on_cleanup.append(close_client)
    app.router.add_get("/", home)
    app.router.add_get("/health", health)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000")))
