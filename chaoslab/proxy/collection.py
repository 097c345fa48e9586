"""The proxy collection and every API operation on it, with Toxiproxy's checks, order and messages.

Operations raise :class:`ApiError` (status + message); HTTP framing lives in :mod:`chaoslab.proxy.api`.
One lock serialises mutations so that concurrent API calls see each other's effects in order.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from chaoslab.proxy.addresses import DEFAULT_LISTEN, AddressError, resolved_listen_string
from chaoslab.proxy.decode import BodyError, ProxyBody, proxy_body, proxy_list_body, toxic_attributes, toxic_body
from chaoslab.proxy.proxy import LinkEnded, Proxy, ProxyStartError
from chaoslab.proxy.splice import SPLICE_AVAILABLE
from chaoslab.proxy.toxics import Direction, ToxicSpec, ToxicType, make_spec, validation_error


@dataclass(frozen=True)
class ApiError(Exception):
    """An API failure: HTTP status, message, and (populate only) the proxies applied so far."""

    status: int
    message: str
    proxies: list[dict[str, object]] | None = field(default=None)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


def bad_body(exc: BodyError) -> ApiError:
    """The 400 for a body that does not decode."""
    return ApiError(400, f"bad request body: {exc}")


PROXY_NOT_FOUND = "proxy not found"
TOXIC_NOT_FOUND = "toxic not found"


class ProxyCollection:
    """All proxies of one server, by name."""

    def __init__(
        self, *, seed: int | None = None, on_link_end: LinkEnded | None = None, splice: bool = SPLICE_AVAILABLE
    ) -> None:
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()
        self._rng = random.Random(seed)
        self._on_link_end = on_link_end
        self._splice = splice

    def _new_proxy(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(
            name,
            listen,
            upstream,
            rng=random.Random(self._rng.getrandbits(64)),
            on_link_end=self._on_link_end,
            splice=self._splice,
        )

    def get(self, name: str) -> Proxy:
        """The named proxy, or 404."""
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, PROXY_NOT_FOUND)
        return proxy

    def list_json(self) -> dict[str, object]:
        """``GET /proxies``: name → Proxy, sorted by name."""
        return {name: self.proxies[name].to_json() for name in sorted(self.proxies)}

    # -- proxies -----------------------------------------------------------------------------------

    async def create(self, body: Any) -> Proxy:
        """``POST /proxies``: validate, refuse duplicates, bind if enabled (201)."""
        try:
            fields = proxy_body(body)
        except BodyError as exc:
            raise bad_body(exc) from None
        if not fields.name:
            raise ApiError(400, "missing required field: name")
        if not fields.upstream:
            raise ApiError(400, "missing required field: upstream")
        async with self.lock:
            if fields.name in self.proxies:
                raise ApiError(409, "proxy already exists")
            proxy = self._new_proxy(fields.name, fields.listen or DEFAULT_LISTEN, fields.upstream)
            if fields.enabled is not False:
                try:
                    await proxy.start()
                except ProxyStartError as exc:
                    raise ApiError(500, str(exc)) from None
            self.proxies[proxy.name] = proxy
            return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        """``POST|PATCH /proxies/{name}``: partial body over the current values; restart when it differs."""
        async with self.lock:
            proxy = self.get(name)
            try:
                fields = proxy_body(body)
            except BodyError as exc:
                raise bad_body(exc) from None
            listen = proxy.listen if fields.listen is None else fields.listen
            upstream = proxy.upstream if fields.upstream is None else fields.upstream
            enabled = proxy.enabled if fields.enabled is None else fields.enabled
            try:
                differs = _differs(proxy, listen, upstream)
            except AddressError as exc:
                raise ApiError(500, str(exc)) from None
            if differs:
                await proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
            try:
                if enabled and not proxy.enabled:
                    await proxy.start()
                elif not enabled and proxy.enabled:
                    await proxy.stop()
            except ProxyStartError as exc:
                raise ApiError(500, str(exc)) from None
            return proxy

    async def delete(self, name: str) -> None:
        """``DELETE /proxies/{name}``: listener and connections closed before answering (204)."""
        async with self.lock:
            proxy = self.get(name)
            await proxy.stop()
            del self.proxies[name]

    async def populate(self, body: Any) -> list[Proxy]:
        """``POST /populate``: validate all, then create-or-replace in order (201); stops at a bind failure."""
        try:
            items = proxy_list_body(body)
        except BodyError as exc:
            raise bad_body(exc) from None
        for number, item in enumerate(items, start=1):
            if not item.name:
                raise ApiError(400, f"missing required field: name at proxy {number}")
            if not item.upstream:
                raise ApiError(400, f"missing required field: upstream at proxy {number}")
        applied: list[Proxy] = []
        async with self.lock:
            for item in items:
                try:
                    applied.append(await self._populate_one(item))
                except (ProxyStartError, AddressError) as exc:
                    raise ApiError(500, str(exc), [proxy.to_json() for proxy in applied]) from None
        return applied

    async def _populate_one(self, item: ProxyBody) -> Proxy:
        assert item.name and item.upstream
        listen = item.listen or DEFAULT_LISTEN
        existing = self.proxies.get(item.name)
        if existing is not None:
            if not _differs(existing, listen, item.upstream):
                return existing
            await existing.stop()
        proxy = self._new_proxy(item.name, listen, item.upstream)
        if item.enabled is not False:
            await proxy.start()
        self.proxies[item.name] = proxy
        return proxy

    async def reset(self) -> None:
        """``POST /reset``: re-enable every proxy and remove all toxics (204)."""
        async with self.lock:
            for proxy in list(self.proxies.values()):
                if not proxy.enabled:
                    try:
                        await proxy.start()
                    except ProxyStartError as exc:
                        raise ApiError(500, str(exc)) from None
                proxy.remove_all_toxics()

    async def close(self) -> None:
        """Stop every proxy (server shutdown)."""
        async with self.lock:
            for proxy in self.proxies.values():
                await proxy.stop()

    # -- toxics ------------------------------------------------------------------------------------

    async def add_toxic(self, proxy_name: str, body: Any) -> ToxicSpec:
        """``POST /proxies/{p}/toxics``: defaults, checks in Toxiproxy's order, installed on live links (200)."""
        async with self.lock:
            proxy = self.get(proxy_name)
            try:
                fields = toxic_body(body)
            except BodyError as exc:
                raise bad_body(exc) from None
            stream = "downstream" if fields.stream is None else fields.stream
            if Direction.parse(stream) is None:
                raise ApiError(400, "stream was invalid, can be either upstream or downstream")
            type_name = fields.type or ""
            name = fields.name or f"{type_name}_{stream}"
            try:
                toxic_type = ToxicType(type_name)
            except ValueError:
                raise ApiError(400, "invalid toxic type") from None
            if proxy.find_toxic(name) is not None:
                raise ApiError(409, "toxic already exists")
            try:
                attributes = toxic_attributes(toxic_type, fields.attributes)
            except BodyError as exc:
                raise bad_body(exc) from None
            toxicity = 1.0 if fields.toxicity is None else fields.toxicity
            spec = make_spec(name, toxic_type, stream, toxicity, attributes)
            problem = validation_error(spec)
            if problem is not None:
                raise ApiError(400, problem)
            proxy.add_toxic(spec)
            return spec

    def get_toxic(self, proxy_name: str, toxic_name: str) -> ToxicSpec:
        """The named toxic of a proxy, or 404."""
        spec = self.get(proxy_name).find_toxic(toxic_name)
        if spec is None:
            raise ApiError(404, TOXIC_NOT_FOUND)
        return spec

    async def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> ToxicSpec:
        """``POST|PATCH …/toxics/{t}``: merge attributes, keep toxicity when absent, restart on live links."""
        async with self.lock:
            proxy = self.get(proxy_name)
            current = self.get_toxic(proxy_name, toxic_name)
            try:
                fields = toxic_body(body)
                attributes = toxic_attributes(current.type, fields.attributes)
            except BodyError as exc:
                raise bad_body(exc) from None
            spec = current.with_changes(attributes, fields.toxicity)
            problem = validation_error(spec)
            if problem is not None:
                raise ApiError(400, problem)
            proxy.update_toxic(spec)
            return spec

    async def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        """``DELETE …/toxics/{t}`` (204)."""
        async with self.lock:
            proxy = self.get(proxy_name)
            proxy.remove_toxic(self.get_toxic(proxy_name, toxic_name))


def _differs(proxy: Proxy, listen: str, upstream: str) -> bool:
    """Toxiproxy's "differs" test: resolved requested listen vs stored listen, and upstream strings."""
    return proxy.listen != resolved_listen_string(listen) or proxy.upstream != upstream
