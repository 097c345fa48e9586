"""The embedded Toxiproxy-compatible server, usable in-process or from ``chaoslab toxiproxy``.

Example::

    async with ToxiproxyServer(port=0) as server:
        print(server.url)  # http://127.0.0.1:41234
"""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path
from types import TracebackType

from aiohttp import web

from chaoslab.log import get_logger
from chaoslab.proxy.api import ToxiproxyApi
from chaoslab.proxy.collection import ApiError, ProxyCollection
from chaoslab.proxy.decode import BodyError, read_json
from chaoslab.proxy.link import Link
from chaoslab.proxy.metrics import LinkLabels, ProxyMetrics
from chaoslab.proxy.proxy import Proxy
from chaoslab.proxy.splice import SPLICE_AVAILABLE

log = get_logger("proxy.server")


class ToxiproxyServer:
    """Toxiproxy's HTTP API plus the proxies it manages, on the running asyncio loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8474,
        seed: int | None = None,
        *,
        proxy_metrics: bool = False,
        config: str | Path | None = None,
        splice: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.seed = seed
        self.metrics = ProxyMetrics() if proxy_metrics else None
        self.config = Path(config) if config is not None else None
        self.collection = ProxyCollection(
            seed=seed, on_link_end=self._count_link if self.metrics else None, splice=splice and SPLICE_AVAILABLE
        )
        self.api = ToxiproxyApi(self.collection, self.metrics)
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    @property
    def url(self) -> str:
        """Base URL of the API with the real bound port, e.g. ``http://127.0.0.1:41234``."""
        if self._bound_port is None:
            raise RuntimeError("ToxiproxyServer.url is known only after `await server.start()`")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._bound_port}"

    async def start(self) -> None:
        """Load the config file (errors logged, not fatal) and start the API listener."""
        if self.config is not None:
            await self._load_config(self.config)
        # Like Toxiproxy, a host name means its first IPv4 address (one socket, one port even for port 0).
        self.host = _first_ipv4(self.host)
        runner = web.AppRunner(self.api.application(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            await self.collection.close()
            raise
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self._bound_port = int(sockets[0].getsockname()[1]) if sockets else self.port
        log.info("toxiproxy api listening", url=self.url)

    async def stop(self) -> None:
        """Close the API, every proxy listener and every proxied connection."""
        await self.collection.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ToxiproxyServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _load_config(self, path: Path) -> None:
        """Create the proxies of a ``/populate``-format JSON file; problems are logged and ignored."""
        try:
            value = read_json(path.read_bytes())
            proxies = await self.collection.populate(value)
        except (OSError, BodyError, ApiError) as exc:
            log.error("could not load config", path=str(path), error=str(exc))
            return
        log.info("config loaded", path=str(path), proxies=[proxy.name for proxy in proxies])

    def _count_link(self, proxy: Proxy, link: Link, listen: str) -> None:
        if self.metrics is not None:
            labels = LinkLabels(link.direction.value, listen, proxy.name, proxy.upstream)
            self.metrics.add(labels, link.received_bytes, link.sent_bytes)


def _first_ipv4(host: str) -> str:
    """``host`` itself when it is an IP literal (or empty), else its first IPv4 address."""
    if not host:
        return host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            return str(socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
        except (OSError, IndexError):
            return host
    return host


def config_example() -> str:
    """A one-proxy config file, for the docs."""
    return json.dumps([{"name": "api_to_vector", "listen": "127.0.0.1:18080", "upstream": "127.0.0.1:8080"}])
