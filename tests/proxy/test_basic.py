"""Smoke tests of the embedded server: a proxy forwards, a latency toxic delays, disable refuses."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from chaoslab.proxy import ToxiproxyServer
from tests.proxy.conftest import Peer, add_toxic, connect, create_proxy

pytestmark = pytest.mark.integration


class TestProxyBasics:
    """One proxy between a client and an echo server."""

    async def test_bytes_are_echoed_through_the_proxy(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """Bytes written to the proxy reach the echo server and come back unchanged."""
        proxy = await create_proxy(http, "echo", echo.address)
        reader, writer = await connect(proxy["listen"])
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        writer.close()

    async def test_latency_toxic_delays_the_downstream(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """A 100 ms downstream latency toxic makes a round trip take about 100 ms."""
        proxy = await create_proxy(http, "echo", echo.address)
        reader, writer = await connect(proxy["listen"])
        await add_toxic(http, "echo", {"type": "latency", "attributes": {"latency": 100}})
        started = time.monotonic()
        writer.write(b"x")
        assert await reader.readexactly(1) == b"x"
        assert 0.095 <= time.monotonic() - started <= 0.130
        writer.close()

    async def test_disabled_proxy_refuses_connections(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """After {"enabled": false} the listener is closed before the API answers."""
        proxy = await create_proxy(http, "echo", echo.address)
        async with http.post("/proxies/echo", json={"enabled": False}) as response:
            assert response.status == 200
        with pytest.raises(ConnectionRefusedError):
            await connect(proxy["listen"])
        async with http.post("/proxies/echo", json={"enabled": True}) as response:
            assert (await response.json())["listen"] == proxy["listen"]
        reader, writer = await connect(proxy["listen"])
        writer.write(b"again")
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"again"
        writer.close()


class TestServer:
    """The in-process server object."""

    async def test_localhost_api_is_one_ipv4_socket(self) -> None:
        """host localhost binds 127.0.0.1 only, and url shows that address with the real port."""
        async with ToxiproxyServer(host="localhost", port=0) as server:
            assert server.url.startswith("http://127.0.0.1:")
            assert not server.url.endswith(":0")
            async with aiohttp.ClientSession() as session, session.get(server.url + "/version") as response:
                assert response.status == 200

    async def test_url_before_start_is_an_error(self) -> None:
        """Asking for url before start() says how to fix it."""
        with pytest.raises(RuntimeError, match="start"):
            _ = ToxiproxyServer(port=0).url
