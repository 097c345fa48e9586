"""The Toxiproxy HTTP API on aiohttp: exact paths, status codes, error bodies and the browser block.

Routing is done here rather than by aiohttp's router so that unknown paths, wrong methods and
middlewares behave like Toxiproxy's gorilla/mux set-up (404 text body, empty 405, middlewares only
on matched routes).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chaoslab.log import get_logger
from chaoslab.proxy.collection import ApiError, ProxyCollection, bad_body
from chaoslab.proxy.decode import BodyError, read_json
from chaoslab.proxy.metrics import ProxyMetrics

log = get_logger("proxy.api")

TOXIPROXY_VERSION = "2.12.0"
"""The Toxiproxy version reported by ``GET /version`` (≥ 2.6.0 so the Ruby client uses PATCH)."""
HANDLER_TIMEOUT_S = 25.0
"""Toxiproxy's per-request handler timeout (503 after it)."""

Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]

_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"


def _request_id() -> str:
    """A 20-character base32hex id, shaped like Toxiproxy's xid request ids."""
    return "".join(secrets.choice(_XID_ALPHABET) for _ in range(20))


def json_response(value: object, status: int = 200) -> web.Response:
    """Compact JSON like Go's encoder, ``application/json`` without charset."""
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"
    return web.Response(status=status, body=body.encode("utf-8"), headers={"Content-Type": "application/json"})


def error_response(error: ApiError) -> web.Response:
    """The error body ``{"error": …, "status": N}`` (plus ``proxies`` for populate)."""
    value: dict[str, object] = {"error": error.message, "status": error.status}
    if error.proxies is not None:
        value["proxies"] = error.proxies
    return json_response(value, error.status)


async def _body(request: web.Request) -> Any:
    """The first JSON value of the request body (Content-Type ignored)."""
    try:
        return read_json(await request.read())
    except BodyError as exc:
        raise bad_body(exc) from None


class ToxiproxyApi:
    """Handlers for every Toxiproxy endpoint over one :class:`ProxyCollection`."""

    def __init__(self, collection: ProxyCollection, metrics: ProxyMetrics | None = None) -> None:
        self.collection = collection
        self.metrics = metrics
        name = r"(?P<proxy>[^/]+)"
        toxic = r"(?P<toxic>[^/]+)"
        self.routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
            (re.compile(r"/reset"), {"POST": self.reset}),
            (re.compile(r"/populate"), {"POST": self.populate}),
            (re.compile(r"/proxies"), {"GET": self.list_proxies, "POST": self.create_proxy}),
            (
                re.compile(rf"/proxies/{name}"),
                {
                    "GET": self.show_proxy,
                    "POST": self.update_proxy,
                    "PATCH": self.update_proxy,
                    "DELETE": self.delete_proxy,
                },
            ),
            (re.compile(rf"/proxies/{name}/toxics"), {"GET": self.list_toxics, "POST": self.create_toxic}),
            (
                re.compile(rf"/proxies/{name}/toxics/{toxic}"),
                {
                    "GET": self.show_toxic,
                    "POST": self.update_toxic,
                    "PATCH": self.update_toxic,
                    "DELETE": self.delete_toxic,
                },
            ),
            (re.compile(r"/version"), {"GET": self.version}),
        ]

    def application(self) -> web.Application:
        """An aiohttp application that sends every request to :meth:`dispatch`."""
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Route like gorilla/mux: 404 unknown path, 405 wrong method, middlewares on matches only."""
        path = request.rel_url.raw_path
        handler: Handler | None = None
        params: dict[str, str] = {}
        path_known = False
        if path == "/metrics" and self.metrics is not None:
            handler, path_known = self.show_metrics, True
        else:
            for pattern, methods in self.routes:
                match = pattern.fullmatch(path)
                if match is None:
                    continue
                path_known = True
                if request.method in methods:
                    handler = methods[request.method]
                    params = {key: _unquote(value) for key, value in match.groupdict().items()}
                    break
        if handler is None:
            if path_known:
                return web.Response(status=405)
            return web.Response(status=404, text="404 page not found\n", content_type="text/plain", charset="utf-8")
        request_id = _request_id()
        if request.headers.get("User-Agent", "").startswith("Mozilla/"):
            response = web.Response(
                status=403, text="User agent not allowed\n", content_type="text/plain", charset="utf-8"
            )
        else:
            try:
                async with asyncio.timeout(HANDLER_TIMEOUT_S):
                    response_stream = await handler(request, params)
            except ApiError as exc:
                if exc.status >= 500:
                    log.warning("api error", method=request.method, path=path, error=exc.message)
                response_stream = error_response(exc)
            except TimeoutError:
                response_stream = web.Response(status=503)
            response_stream.headers["X-Toxiproxy-Request-Id"] = request_id
            return response_stream
        response.headers["X-Toxiproxy-Request-Id"] = request_id
        return response

    # -- proxies -----------------------------------------------------------------------------------

    async def list_proxies(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``GET /proxies``."""
        return json_response(self.collection.list_json())

    async def create_proxy(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``POST /proxies`` → 201."""
        proxy = await self.collection.create(await _body(request))
        return json_response(proxy.to_json(), 201)

    async def show_proxy(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``GET /proxies/{p}``."""
        return json_response(self.collection.get(params["proxy"]).to_json())

    async def update_proxy(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``POST|PATCH /proxies/{p}`` → 200."""
        self.collection.get(params["proxy"])
        proxy = await self.collection.update(params["proxy"], await _body(request))
        return json_response(proxy.to_json())

    async def delete_proxy(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``DELETE /proxies/{p}`` → 204."""
        await self.collection.delete(params["proxy"])
        return web.Response(status=204)

    async def populate(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``POST /populate`` → 201 ``{"proxies": [...]}``."""
        proxies = await self.collection.populate(await _body(request))
        return json_response({"proxies": [proxy.to_json() for proxy in proxies]}, 201)

    async def reset(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``POST /reset`` → 204 (body ignored)."""
        await self.collection.reset()
        return web.Response(status=204)

    # -- toxics ------------------------------------------------------------------------------------

    async def list_toxics(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``GET /proxies/{p}/toxics``."""
        proxy = self.collection.get(params["proxy"])
        return json_response([spec.to_json() for spec in proxy.all_toxics()])

    async def create_toxic(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``POST /proxies/{p}/toxics`` → 200 (not 201, as in Toxiproxy)."""
        self.collection.get(params["proxy"])
        spec = await self.collection.add_toxic(params["proxy"], await _body(request))
        return json_response(spec.to_json())

    async def show_toxic(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``GET /proxies/{p}/toxics/{t}``."""
        return json_response(self.collection.get_toxic(params["proxy"], params["toxic"]).to_json())

    async def update_toxic(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``POST|PATCH /proxies/{p}/toxics/{t}`` → 200."""
        self.collection.get_toxic(params["proxy"], params["toxic"])
        spec = await self.collection.update_toxic(params["proxy"], params["toxic"], await _body(request))
        return json_response(spec.to_json())

    async def delete_toxic(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``DELETE /proxies/{p}/toxics/{t}`` → 204."""
        await self.collection.remove_toxic(params["proxy"], params["toxic"])
        return web.Response(status=204)

    # -- misc --------------------------------------------------------------------------------------

    async def version(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``GET /version`` → ``{"version": "2.12.0"}``."""
        body = f'{{"version": "{TOXIPROXY_VERSION}"}}\n'
        return web.Response(body=body.encode(), headers={"Content-Type": "application/json;charset=utf-8"})

    async def show_metrics(self, request: web.Request, params: dict[str, str]) -> web.StreamResponse:
        """``/metrics`` (any method) when ``--proxy-metrics`` is on."""
        assert self.metrics is not None
        return web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8")


def _unquote(value: str) -> str:
    from urllib.parse import unquote

    return unquote(value)
