"""The HTTP API against Toxiproxy's own API tests (contract §6.1) and the client behaviours of §6.4."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from tests.conftest import free_port
from tests.proxy.conftest import Peer, add_toxic, connect, create_proxy

pytestmark = pytest.mark.integration


async def listening(address: object) -> bool:
    """Whether a TCP connect to ``address`` succeeds."""
    try:
        _, writer = await connect(address)
    except OSError:
        return False
    writer.close()
    return True


async def call(http: aiohttp.ClientSession, method: str, path: str, body: object = None) -> tuple[int, object]:
    """Status and decoded JSON (or text, or None) of one request."""
    data = None if body is None else json.dumps(body)
    async with http.request(method, path, data=data) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return response.status, text


class TestRouting:
    """Paths, methods, headers and the browser block."""

    async def test_version_body_and_request_id(self, http: aiohttp.ClientSession) -> None:
        """GET /version answers {"version": "2.12.0"} with a newline and a 20-character request id."""
        async with http.get("/version") as response:
            assert response.status == 200
            assert await response.read() == b'{"version": "2.12.0"}\n'
            assert response.headers["Content-Type"] == "application/json;charset=utf-8"
            assert re.fullmatch(r"[0-9a-v]{20}", response.headers["X-Toxiproxy-Request-Id"])

    async def test_browser_user_agent_gets_403(self, http: aiohttp.ClientSession) -> None:
        """A Mozilla/ user agent is refused with 403 and a text body."""
        async with http.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"}) as response:
            assert response.status == 403
            assert await response.text() == "User agent not allowed\n"

    async def test_other_user_agents_are_allowed(self, http: aiohttp.ClientSession) -> None:
        """UA Wget/2.1 gets the normal answer."""
        async with http.get("/proxies", headers={"User-Agent": "Wget/2.1"}) as response:
            assert response.status == 200

    async def test_unknown_path_is_404_text(self, http: aiohttp.ClientSession) -> None:
        """Unknown paths (including a trailing slash) give Go's 404 page."""
        for path in ("/not_found", "/proxies/"):
            async with http.get(path) as response:
                assert response.status == 404
                assert await response.text() == "404 page not found\n"

    async def test_wrong_method_is_empty_405(self, http: aiohttp.ClientSession) -> None:
        """PUT /proxies and HEAD /version are 405 with an empty body."""
        async with http.put("/proxies") as response:
            assert (response.status, await response.read()) == (405, b"")
        async with http.head("/version") as response:
            assert response.status == 405

    async def test_metrics_counts_finished_links(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """After a 5-byte exchange ends, /metrics shows 5 bytes received and sent per direction."""
        proxy = await create_proxy(http, "m", echo.address)
        reader, writer = await connect(proxy["listen"])
        writer.write(b"12345")
        assert await reader.readexactly(5) == b"12345"
        writer.close()
        assert await reader.read() == b""
        await asyncio.sleep(0.05)
        labels = f'listener="{proxy["listen"]}",proxy="m",upstream="{echo.address}"'
        async with http.get("/metrics") as response:
            text = await response.text()
        assert f'toxiproxy_proxy_received_bytes_total{{direction="upstream",{labels}}} 5' in text
        assert f'toxiproxy_proxy_sent_bytes_total{{direction="downstream",{labels}}} 5' in text


class TestCreateProxy:
    """POST /proxies."""

    async def test_index_is_empty_object(self, http: aiohttp.ClientSession) -> None:
        """With no proxies GET /proxies is {}."""
        assert await call(http, "GET", "/proxies") == (200, {})

    async def test_blank_name_and_upstream_are_400(self, http: aiohttp.ClientSession) -> None:
        """Missing name, then missing upstream, are 400 with Toxiproxy's messages."""
        assert await call(http, "POST", "/proxies", {"name": "", "upstream": "x:1"}) == (
            400,
            {"error": "missing required field: name", "status": 400},
        )
        assert await call(http, "POST", "/proxies", {"name": "a"}) == (
            400,
            {"error": "missing required field: upstream", "status": 400},
        )

    async def test_bad_bodies_are_400(self, http: aiohttp.ClientSession) -> None:
        """An empty body is 'EOF', a wrong JSON type names the field."""
        async with http.post("/proxies", data=b"") as response:
            assert response.status == 400
            assert (await response.json())["error"] == "bad request body: EOF"
        status, body = await call(http, "POST", "/proxies", {"name": "a", "upstream": "x:1", "enabled": "yes"})
        assert status == 400
        assert isinstance(body, dict)
        assert body["error"].startswith("bad request body: json: cannot unmarshal string")

    async def test_hostname_listen_is_reported_resolved(self, http: aiohttp.ClientSession) -> None:
        """localhost:P is bound on IPv4 and shown as 127.0.0.1:P, upstream verbatim, no toxics."""
        port = free_port()
        status, body = await call(
            http, "POST", "/proxies", {"name": "a", "listen": f"localhost:{port}", "upstream": "somehost:1"}
        )
        assert status == 201
        assert body == {
            "name": "a",
            "listen": f"127.0.0.1:{port}",
            "upstream": "somehost:1",
            "enabled": True,
            "toxics": [],
        }
        assert await call(http, "GET", "/proxies/a") == (200, body)
        assert await call(http, "GET", "/proxies") == (200, {"a": body})
        assert await listening(f"127.0.0.1:{port}")

    async def test_capitalised_keys_and_null_enabled(self, http: aiohttp.ClientSession) -> None:
        """Keys match case-insensitively and enabled null means enabled."""
        status, body = await call(http, "POST", "/proxies", {"Name": "a", "Upstream": "x:1", "enabled": None})
        assert status == 201
        assert isinstance(body, dict)
        assert body["enabled"] is True
        assert await listening(body["listen"])

    async def test_omitted_listen_binds_loopback_port(self, http: aiohttp.ClientSession) -> None:
        """[chaoslab] no listen binds 127.0.0.1 on a random port; creating it again is 409."""
        status, body = await call(http, "POST", "/proxies", {"name": "a", "upstream": "x:1"})
        assert status == 201
        assert isinstance(body, dict)
        assert re.fullmatch(r"127\.0\.0\.1:\d+", body["listen"])
        assert await call(http, "POST", "/proxies", {"name": "a", "upstream": "x:1"}) == (
            409,
            {"error": "proxy already exists", "status": 409},
        )

    async def test_disabled_proxy_echoes_raw_listen(self, http: aiohttp.ClientSession) -> None:
        """Created disabled: listen shown as sent, nothing bound; enabling binds, disabling closes."""
        port = free_port()
        body = {"name": "a", "listen": f"localhost:{port}", "upstream": "x:1", "enabled": False}
        status, created = await call(http, "POST", "/proxies", body)
        assert status == 201
        assert isinstance(created, dict)
        assert (created["listen"], created["enabled"]) == (f"localhost:{port}", False)
        assert not await listening(f"127.0.0.1:{port}")
        status, updated = await call(http, "POST", "/proxies/a", {"enabled": True})
        assert isinstance(updated, dict)
        assert (status, updated["listen"], updated["enabled"]) == (200, f"127.0.0.1:{port}", True)
        assert await listening(f"127.0.0.1:{port}")
        status, updated = await call(http, "PATCH", "/proxies/a", {"enabled": False})
        assert (status, await listening(f"127.0.0.1:{port}")) == (200, False)

    async def test_port_conflict_is_500_with_go_message(self, http: aiohttp.ClientSession) -> None:
        """A second proxy on the same port fails with 500 and is not created; after delete it works."""
        port = free_port()
        await call(http, "POST", "/proxies", {"name": "a", "listen": f"localhost:{port}", "upstream": "x:1"})
        assert await call(
            http, "POST", "/proxies", {"name": "b", "listen": f"localhost:{port}", "upstream": "x:1"}
        ) == (
            500,
            {"error": f"listen tcp 127.0.0.1:{port}: bind: address already in use", "status": 500},
        )
        assert await call(http, "GET", "/proxies/b") == (404, {"error": "proxy not found", "status": 404})
        assert await call(http, "DELETE", "/proxies/a") == (204, None)
        status, _ = await call(
            http, "POST", "/proxies", {"name": "b", "listen": f"localhost:{port}", "upstream": "x:1"}
        )
        assert status == 201

    async def test_delete_closes_port_and_second_delete_is_404(self, http: aiohttp.ClientSession) -> None:
        """DELETE closes the listener before answering; a second DELETE is 404."""
        body = await create_proxy(http, "a", "x:1")
        assert await call(http, "DELETE", "/proxies/a") == (204, None)
        assert not await listening(body["listen"])
        assert await call(http, "GET", "/proxies") == (200, {})
        assert await call(http, "DELETE", "/proxies/a") == (404, {"error": "proxy not found", "status": 404})


class TestUpdateProxy:
    """POST|PATCH /proxies/{p}."""

    async def test_new_port_zero_moves_and_same_listen_keeps(self, http: aiohttp.ClientSession) -> None:
        """listen localhost:0 moves the proxy to a new port; re-sending the current listen keeps it."""
        first = await create_proxy(http, "a", "x:1")
        _, moved = await call(http, "POST", "/proxies/a", {"listen": "localhost:0"})
        assert isinstance(moved, dict)
        assert moved["listen"] != first["listen"]
        assert not await listening(first["listen"])
        _, same = await call(http, "POST", "/proxies/a", {"listen": moved["listen"]})
        assert isinstance(same, dict)
        assert same["listen"] == moved["listen"]

    async def test_hostname_form_of_same_listen_keeps_connections(
        self, http: aiohttp.ClientSession, echo: Peer
    ) -> None:
        """Sending localhost:P for a proxy on 127.0.0.1:P does not restart it: a connection survives."""
        proxy = await create_proxy(http, "a", echo.address)
        reader, writer = await connect(proxy["listen"])
        port = str(proxy["listen"]).rpartition(":")[2]
        status, _ = await call(http, "PATCH", "/proxies/a", {"listen": f"localhost:{port}"})
        assert status == 200
        writer.write(b"still")
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"still"
        writer.close()

    async def test_changing_upstream_drops_connections(self, http: aiohttp.ClientSession, echo: Peer) -> None:
        """A new upstream (even unresolvable) is accepted, the same port re-bound, old connections closed."""
        proxy = await create_proxy(http, "a", echo.address)
        reader, writer = await connect(proxy["listen"])
        status, body = await call(http, "POST", "/proxies/a", {"enabled": True, "upstream": "somehost:12345"})
        assert isinstance(body, dict)
        assert (status, body["upstream"], body["listen"]) == (200, "somehost:12345", proxy["listen"])
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()

    async def test_update_unknown_is_404(self, http: aiohttp.ClientSession) -> None:
        """Updating a missing proxy is 404."""
        assert await call(http, "PATCH", "/proxies/nope", {"enabled": False}) == (
            404,
            {"error": "proxy not found", "status": 404},
        )


class TestPopulate:
    """POST /populate."""

    async def test_populate_creates_in_order_and_listens(self, http: aiohttp.ClientSession) -> None:
        """Two proxies (one without enabled) are returned in order, both listening, with 201."""
        ports = free_port(), free_port()
        items = [
            {"name": "one", "listen": f"localhost:{ports[0]}", "upstream": "x:1", "enabled": True},
            {"name": "two", "listen": f"127.0.0.1:{ports[1]}", "upstream": "x:2"},
        ]
        status, body = await call(http, "POST", "/populate", items)
        assert status == 201
        assert isinstance(body, dict)
        assert [p["listen"] for p in body["proxies"]] == [f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}"]
        assert await listening(f"127.0.0.1:{ports[0]}") and await listening(f"127.0.0.1:{ports[1]}")

    async def test_populate_disabled_item_does_not_listen(self, http: aiohttp.ClientSession) -> None:
        """An item with enabled false is returned but not bound."""
        port = free_port()
        status, body = await call(
            http,
            "POST",
            "/populate",
            [{"name": "d", "listen": f"127.0.0.1:{port}", "upstream": "x:1", "enabled": False}],
        )
        assert isinstance(body, dict)
        assert (status, body["proxies"][0]["enabled"]) == (201, False)
        assert not await listening(f"127.0.0.1:{port}")

    async def test_populate_existing_keeps_equal_and_replaces_different(self, http: aiohttp.ClientSession) -> None:
        """Same listen in hostname form keeps the proxy and its toxic; a new listen replaces the other."""
        ports = free_port(), free_port(), free_port()
        await call(http, "POST", "/proxies", {"name": "one", "listen": f"localhost:{ports[0]}", "upstream": "x:1"})
        await add_toxic(http, "one", {"type": "latency", "attributes": {"latency": 100}})
        await call(http, "POST", "/proxies", {"name": "two", "listen": f"localhost:{ports[1]}", "upstream": "x:2"})
        items = [
            {"name": "one", "listen": f"localhost:{ports[0]}", "upstream": "x:1"},
            {"name": "two", "listen": f"127.0.0.1:{ports[2]}", "upstream": "x:3"},
        ]
        status, body = await call(http, "POST", "/populate", items)
        assert isinstance(body, dict)
        assert status == 201
        assert [p["listen"] for p in body["proxies"]] == [f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[2]}"]
        assert [t["name"] for t in body["proxies"][0]["toxics"]] == ["latency_downstream"]
        assert await listening(f"127.0.0.1:{ports[2]}") and not await listening(f"127.0.0.1:{ports[1]}")

    async def test_populate_validates_everything_first(self, http: aiohttp.ClientSession) -> None:
        """A nameless second item is 400 'at proxy 2' and nothing is created."""
        items = [
            {"name": "one", "listen": "127.0.0.1:0", "upstream": "x:1"},
            {"listen": "127.0.0.1:0", "upstream": "x:2"},
        ]
        status, body = await call(http, "POST", "/populate", items)
        assert (status, body) == (400, {"error": "missing required field: name at proxy 2", "status": 400})
        assert await call(http, "GET", "/proxies") == (200, {})

    async def test_populate_stops_at_bad_listen(self, http: aiohttp.ClientSession) -> None:
        """A listen without port fails with 500; the item before it stays, the one after is not created."""
        items = [
            {"name": "one", "listen": "127.0.0.1:0", "upstream": "x:1"},
            {"name": "two", "listen": "local373", "upstream": "x:2"},
            {"name": "three", "listen": "127.0.0.1:0", "upstream": "x:3"},
        ]
        status, body = await call(http, "POST", "/populate", items)
        assert isinstance(body, dict)
        assert status == 500
        assert body["error"] == "listen tcp: address local373: missing port in address"
        assert [p["name"] for p in body["proxies"]] == ["one"]
        _, proxies = await call(http, "GET", "/proxies")
        assert isinstance(proxies, dict)
        assert list(proxies) == ["one"]
        assert await listening(proxies["one"]["listen"])

    async def test_empty_populate_returns_empty_list(self, http: aiohttp.ClientSession) -> None:
        """[chaoslab] an empty array gives {"proxies": []}, not null."""
        assert await call(http, "POST", "/populate", []) == (201, {"proxies": []})


class TestToxicsApi:
    """Toxic CRUD on a proxy."""

    async def test_new_proxy_has_no_toxics(self, http: aiohttp.ClientSession) -> None:
        """GET …/toxics of a new proxy is []."""
        await create_proxy(http, "a", "x:1")
        assert await call(http, "GET", "/proxies/a/toxics") == (200, [])

    async def test_add_toxic_echoes_everything(self, http: aiohttp.ClientSession) -> None:
        """A named latency toxic is echoed with status 200 and listed with toxicity 1."""
        await create_proxy(http, "a", "x:1")
        body = {
            "name": "foobar",
            "type": "latency",
            "stream": "downstream",
            "attributes": {"latency": 100, "jitter": 10},
        }
        expected = {
            "attributes": {"latency": 100, "jitter": 10},
            "name": "foobar",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1,
        }
        assert await call(http, "POST", "/proxies/a/toxics", body) == (200, expected)
        assert await call(http, "GET", "/proxies/a/toxics") == (200, [expected])
        assert await call(http, "GET", "/proxies/a/toxics/foobar") == (200, expected)

    async def test_defaults_and_zero_attributes(self, http: aiohttp.ClientSession) -> None:
        """Unnamed toxics get <type>_<stream>; unset attributes read back 0; noop defaults downstream."""
        await create_proxy(http, "a", "x:1")
        up = await add_toxic(http, "a", {"type": "latency", "stream": "upstream"})
        down = await add_toxic(http, "a", {"type": "latency"})
        noop = await add_toxic(http, "a", {"type": "noop"})
        assert (up["name"], down["name"], noop["name"]) == ("latency_upstream", "latency_downstream", "noop_downstream")
        assert down["attributes"] == {"latency": 0, "jitter": 0}
        assert (noop["attributes"], noop["stream"], noop["toxicity"]) == ({}, "downstream", 1)
        _, listed = await call(http, "GET", "/proxies/a")
        assert isinstance(listed, dict)
        assert [t["name"] for t in listed["toxics"]] == ["latency_upstream", "latency_downstream", "noop_downstream"]

    async def test_conflicting_names_are_409_across_streams(self, http: aiohttp.ClientSession) -> None:
        """The same name, in the same or the other direction, is 409 and the original is unchanged."""
        await create_proxy(http, "a", "x:1")
        original = await add_toxic(http, "a", {"name": "t", "type": "latency", "attributes": {"latency": 5}})
        conflict = {"error": "toxic already exists", "status": 409}
        assert await call(http, "POST", "/proxies/a/toxics", {"name": "t", "type": "bandwidth"}) == (409, conflict)
        assert await call(
            http, "POST", "/proxies/a/toxics", {"name": "t", "type": "latency", "stream": "upstream"}
        ) == (409, conflict)
        assert await call(http, "GET", "/proxies/a/toxics/t") == (200, original)

    async def test_toxicity_and_update_merge(self, http: aiohttp.ClientSession) -> None:
        """Toxicity 0.2 is echoed; updates merge attributes and keep toxicity when absent."""
        await create_proxy(http, "a", "x:1")
        created = await add_toxic(
            http, "a", {"name": "l", "type": "latency", "toxicity": 0.2, "attributes": {"latency": 100, "jitter": 10}}
        )
        assert created["toxicity"] == 0.2
        status, updated = await call(
            http, "PATCH", "/proxies/a/toxics/l", {"attributes": {"latency": 1000}, "toxicity": 0.5}
        )
        assert isinstance(updated, dict)
        assert (status, updated["attributes"], updated["toxicity"]) == (200, {"latency": 1000, "jitter": 10}, 0.5)
        _, updated = await call(http, "POST", "/proxies/a/toxics/l", {"attributes": {"latency": 500}})
        assert isinstance(updated, dict)
        assert (updated["attributes"], updated["toxicity"]) == ({"latency": 500, "jitter": 10}, 0.5)

    async def test_remove_toxic(self, http: aiohttp.ClientSession) -> None:
        """DELETE removes the toxic (204); afterwards it is 404."""
        await create_proxy(http, "a", "x:1")
        await add_toxic(http, "a", {"type": "latency"})
        assert await call(http, "DELETE", "/proxies/a/toxics/latency_downstream") == (204, None)
        assert await call(http, "GET", "/proxies/a/toxics") == (200, [])
        assert await call(http, "GET", "/proxies/a/toxics/latency_downstream") == (
            404,
            {"error": "toxic not found", "status": 404},
        )
        assert await call(http, "DELETE", "/proxies/a/toxics/latency_downstream") == (
            404,
            {"error": "toxic not found", "status": 404},
        )

    async def test_invalid_stream_and_type(self, http: aiohttp.ClientSession) -> None:
        """A bad stream (even "") and an unknown type (even "down") are 400."""
        await create_proxy(http, "a", "x:1")
        bad_stream = {"error": "stream was invalid, can be either upstream or downstream", "status": 400}
        assert await call(http, "POST", "/proxies/a/toxics", {"type": "latency", "stream": "walrustream"}) == (
            400,
            bad_stream,
        )
        assert await call(http, "POST", "/proxies/a/toxics", {"type": "latency", "stream": ""}) == (400, bad_stream)
        bad_type = {"error": "invalid toxic type", "status": 400}
        assert await call(http, "POST", "/proxies/a/toxics", {"type": "down"}) == (400, bad_type)
        assert await call(http, "POST", "/proxies/a/toxics", {}) == (400, bad_type)

    async def test_stream_is_case_insensitive_and_echoed(self, http: aiohttp.ClientSession) -> None:
        """stream "UPSTREAM" is accepted and echoed as sent."""
        await create_proxy(http, "a", "x:1")
        toxic = await add_toxic(http, "a", {"type": "noop", "stream": "UPSTREAM"})
        assert (toxic["stream"], toxic["name"]) == ("UPSTREAM", "noop_UPSTREAM")

    async def test_invalid_attribute_values_are_400(self, http: aiohttp.ClientSession) -> None:
        """Non-integer attributes, a negative rate and a zero slicer size are 400, nothing is added."""
        await create_proxy(http, "a", "x:1")
        for body in (
            {"type": "latency", "attributes": {"latency": "100"}},
            {"type": "latency", "attributes": {"latency": 100.5}},
            {"type": "bandwidth", "attributes": {"rate": -1}},
            {"type": "slicer", "attributes": {"average_size": 0}},
        ):
            status, _ = await call(http, "POST", "/proxies/a/toxics", body)
            assert status == 400, body
        assert await call(http, "GET", "/proxies/a/toxics") == (200, [])

    async def test_every_type_accepts_its_attributes(self, http: aiohttp.ClientSession) -> None:
        """The node client's list of toxics and attributes is accepted and echoed."""
        await create_proxy(http, "a", "x:1")
        cases = {
            "latency": {"latency": 1000, "jitter": 100},
            "bandwidth": {"rate": 1000},
            "slow_close": {"delay": 1000},
            "timeout": {"timeout": 5000},
            "slicer": {"average_size": 1000, "size_variation": 1000, "delay": 1000},
            "reset_peer": {"timeout": 1000},
            "limit_data": {"bytes": 42},
        }
        for toxic_type, attributes in cases.items():
            toxic = await add_toxic(http, "a", {"type": toxic_type, "attributes": attributes})
            assert toxic["attributes"] == attributes

    async def test_toxics_on_disabled_proxy_then_reset(self, http: aiohttp.ClientSession) -> None:
        """A toxic added to a disabled proxy is kept; /reset re-enables on the same listen and removes it."""
        proxy = await create_proxy(http, "a", "x:1")
        await call(http, "POST", "/proxies/a", {"enabled": False})
        await add_toxic(http, "a", {"type": "latency"})
        async with http.post("/reset") as response:
            assert response.status == 204
        _, after = await call(http, "GET", "/proxies/a")
        assert after == {**proxy, "toxics": [], "enabled": True}
        assert await listening(proxy["listen"])

    async def test_toxic_on_missing_proxy_is_404(self, http: aiohttp.ClientSession) -> None:
        """Toxic routes of an unknown proxy are 404 proxy not found."""
        assert await call(http, "GET", "/proxies/x/toxics") == (404, {"error": "proxy not found", "status": 404})
        assert await call(http, "POST", "/proxies/x/toxics", {"type": "noop"}) == (
            404,
            {"error": "proxy not found", "status": 404},
        )


class TestNullBodies:
    """A JSON null body decodes to "nothing set" (§1.4)."""

    async def test_null_bodies(self, http: aiohttp.ClientSession) -> None:
        """null: create proxy → missing name, create toxic → invalid type, populate → 201 with none."""
        async with http.post("/proxies", data=b"null") as response:
            assert (response.status, (await response.json())["error"]) == (400, "missing required field: name")
        await create_proxy(http, "a", "x:1")
        async with http.post("/proxies/a/toxics", data=b"null") as response:
            assert (response.status, (await response.json())["error"]) == (400, "invalid toxic type")
        async with http.post("/populate", data=b"null") as response:
            assert (response.status, await response.json()) == (201, {"proxies": []})
