"""A small async client of the Toxiproxy HTTP API: one instance per server URL.

The official ``toxiproxy-python`` client keeps its host and port in class attributes shared by
the whole process, so two servers (the embedded one and a real one, or two runs) would step on
each other. This client keeps its base URL on the instance and speaks the HTTP API directly
(docs/toxiproxy.md, "The API contract"), against the real Toxiproxy or chaoslab's embedded server alike.

>>> async def demo(url: str) -> None:                                  # doctest: +SKIP
...     async with ToxiproxyClient(url) as client:
...         await client.add_toxic("api->db", ToxicInfo("slow", "latency", "downstream", 1.0, {"latency": 500}))
...         await client.delete_toxic("api->db", "slow")
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from chaoslab.errors import FaultError

DEFAULT_TIMEOUT_S = 5.0


class ToxiproxyError(FaultError):
    """The Toxiproxy API answered with an error status."""

    def __init__(self, status: int, message: str, url: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"Toxiproxy at {url}: HTTP {status}: {message}")


class ToxiproxyNotFound(ToxiproxyError):
    """404: no such proxy or toxic."""


class ToxiproxyConflict(ToxiproxyError):
    """409: a proxy or toxic of that name exists already."""


class ToxiproxyUnavailable(FaultError):
    """Nothing answers at the Toxiproxy URL (not started, or gone)."""


@dataclass(frozen=True, slots=True)
class ToxicInfo:
    """A toxic as the API shows it: ``attributes`` in Toxiproxy's own units."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The request body that creates this toxic."""
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicInfo:
        """From an API response."""
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=str(data.get("stream", "downstream")).lower(),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes={str(k): int(v) for k, v in (data.get("attributes") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class ProxyInfo:
    """A proxy as the API shows it."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicInfo, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyInfo:
        """From an API response."""
        return cls(
            name=str(data["name"]),
            listen=str(data.get("listen", "")),
            upstream=str(data.get("upstream", "")),
            enabled=bool(data.get("enabled", True)),
            toxics=tuple(ToxicInfo.from_json(t) for t in data.get("toxics") or ()),
        )


def _segment(name: str) -> str:
    # Link names such as ``api->db`` are valid proxy names; '/' or '?' in one must not change the route.
    return quote(name, safe="")


class ToxiproxyClient:
    """The Toxiproxy HTTP API at one base URL; use as ``async with``, or call :meth:`close`."""

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ToxiproxyClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # trust_env=False: an HTTP_PROXY in the environment must never carry loopback API calls.
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        return self._session

    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        url = URL(self.url + path, encoded=True)
        try:
            async with self._client().request(method, url, json=body) as response:
                text = await response.text()
                if response.status >= 400:
                    raise self._error(response.status, text)
                if response.status == 204 or not text.strip():
                    return None
                return await response.json(content_type=None)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise ToxiproxyUnavailable(f"no Toxiproxy answers at {self.url}: {exc or type(exc).__name__}") from exc

    def _error(self, status: int, text: str) -> ToxiproxyError:
        try:
            message = str(json.loads(text).get("error", text.strip()))
        except (ValueError, AttributeError):
            message = text.strip()
        cls = {404: ToxiproxyNotFound, 409: ToxiproxyConflict}.get(status, ToxiproxyError)
        return cls(status, message, self.url)

    async def version(self) -> str:
        """The server's version string."""
        data = await self._request("GET", "/version")
        return str(data.get("version", "")) if isinstance(data, dict) else str(data)

    async def proxies(self) -> dict[str, ProxyInfo]:
        """Every proxy, by name."""
        data = await self._request("GET", "/proxies")
        return {name: ProxyInfo.from_json(value) for name, value in (data or {}).items()}

    async def get_proxy(self, name: str) -> ProxyInfo:
        """One proxy; :class:`ToxiproxyNotFound` when there is none."""
        return ProxyInfo.from_json(await self._request("GET", f"/proxies/{_segment(name)}"))

    async def create_proxy(self, name: str, listen: str, upstream: str, enabled: bool = True) -> ProxyInfo:
        """Create a proxy; :class:`ToxiproxyConflict` when the name is taken."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return ProxyInfo.from_json(await self._request("POST", "/proxies", body))

    async def delete_proxy(self, name: str) -> bool:
        """Delete a proxy; False when it did not exist."""
        try:
            await self._request("DELETE", f"/proxies/{_segment(name)}")
        except ToxiproxyNotFound:
            return False
        return True

    async def set_enabled(self, name: str, enabled: bool) -> ProxyInfo:
        """Enable or disable a proxy (POST: understood by every Toxiproxy 2.x)."""
        return ProxyInfo.from_json(await self._request("POST", f"/proxies/{_segment(name)}", {"enabled": enabled}))

    async def toxics(self, proxy: str) -> list[ToxicInfo]:
        """The toxics of a proxy, upstream chain first."""
        data = await self._request("GET", f"/proxies/{_segment(proxy)}/toxics")
        return [ToxicInfo.from_json(t) for t in data or []]

    async def add_toxic(self, proxy: str, toxic: ToxicInfo) -> ToxicInfo:
        """Add a toxic; :class:`ToxiproxyConflict` when its name is taken on that proxy."""
        return ToxicInfo.from_json(await self._request("POST", f"/proxies/{_segment(proxy)}/toxics", toxic.to_json()))

    async def delete_toxic(self, proxy: str, name: str) -> bool:
        """Delete a toxic; False when it (or its proxy) did not exist."""
        try:
            await self._request("DELETE", f"/proxies/{_segment(proxy)}/toxics/{_segment(name)}")
        except ToxiproxyNotFound:
            return False
        return True
