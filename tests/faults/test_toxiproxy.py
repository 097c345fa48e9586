"""Toxiproxy faults against the embedded Toxiproxy server, with real TCP through the proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from chaoslab.errors import FaultError, SafetyError
from chaoslab.faults import FaultContext
from chaoslab.faults.toxiproxy import ToxiproxyDriver, ToxiproxyRecord, toxics_for
from chaoslab.faults.toxiproxy_client import ToxicInfo, ToxiproxyClient, ToxiproxyUnavailable
from chaoslab.model.faults import (
    FAULT_MODELS,
    LatencyFault,
    LinkDownFault,
    ToxicBase,
)
from chaoslab.model.topology import LinkSpec, ServiceSpec, TopologySpec
from tests.conftest import free_port

pytestmark = pytest.mark.integration

LINK = "api->echo"


@dataclass
class Bench:
    """An echo server, the embedded Toxiproxy with a proxy in front of it, and a client."""

    server: object
    url: str
    listen_port: int
    client: ToxiproxyClient
    ctx: FaultContext


def make_ctx(url: str, listen: str, upstream: str, run_id: str = "t1", proxy: str | None = None) -> FaultContext:
    """A context whose topology has one link, ``api->echo``."""
    topo = TopologySpec(
        name="t",
        services={"api": ServiceSpec(), "echo": ServiceSpec()},
        links={LINK: LinkSpec(listen=listen, upstream=upstream, proxy_name=proxy)},
    )
    return FaultContext(topology=topo, run_id=run_id, toxiproxy_url=url)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def bench() -> AsyncIterator[Bench]:
    """Everything up on 127.0.0.1; torn down after the test."""
    from chaoslab.proxy import ToxiproxyServer

    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    echo_port = echo.sockets[0].getsockname()[1]
    server = ToxiproxyServer(port=0, seed=1)
    await server.start()
    listen_port = free_port()
    client = ToxiproxyClient(server.url)
    await client.create_proxy(LINK, f"127.0.0.1:{listen_port}", f"127.0.0.1:{echo_port}")
    ctx = make_ctx(server.url, f"127.0.0.1:{listen_port}", f"127.0.0.1:{echo_port}")
    try:
        yield Bench(server=server, url=server.url, listen_port=listen_port, client=client, ctx=ctx)
    finally:
        await client.close()
        await server.stop()
        echo.close()
        await echo.wait_closed()


async def round_trip_s(port: int, payload: bytes = b"ping", timeout_s: float = 5.0) -> float:
    """Seconds for ``payload`` to come back through a new connection to 127.0.0.1:port."""
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(len(payload)), timeout_s)
        return time.monotonic() - start
    finally:
        writer.close()


async def apply(fault: object, ctx: FaultContext, label: str = "f") -> ToxiproxyRecord:
    """prepare + apply through the driver."""
    driver = ToxiproxyDriver()
    return await driver.apply(fault, ctx, driver.prepare(fault, ctx, label))  # type: ignore[arg-type]


EVERY_TOXIC: list[dict[str, Any]] = [
    {"kind": "latency", "latency": "150ms", "jitter": "10ms"},
    {"kind": "bandwidth", "rate": "64KB"},
    {"kind": "slow_close", "delay": "200ms"},
    {"kind": "timeout", "timeout": "1s"},
    {"kind": "reset_peer", "timeout": "500ms"},
    {"kind": "slicer", "average_size": 64, "size_variation": 8, "delay": "1ms"},
    {"kind": "limit_data", "bytes": 1000},
]


class TestToxicsFor:
    """The pure mapping of a fault to named toxics."""

    def test_both_streams_give_two_uniquely_named_toxics(self) -> None:
        """stream both → an upstream and a downstream toxic, each named after run, label and stream."""
        fault = LatencyFault(kind="latency", target=LINK, latency="800ms", jitter="50ms", stream="both")
        toxics = toxics_for(fault, "chaoslab-r1-slow")
        assert [(t.name, t.stream) for t in toxics] == [
            ("chaoslab-r1-slow-upstream", "upstream"),
            ("chaoslab-r1-slow-downstream", "downstream"),
        ]
        assert dict(toxics[0].attributes) == {"latency": 800, "jitter": 50}


class TestEveryToxicKind:
    """Each toxic kind lands on the server with its type, attributes and toxicity, and leaves on revert."""

    @pytest.mark.parametrize("params", EVERY_TOXIC, ids=[p["kind"] for p in EVERY_TOXIC])
    async def test_toxic_is_added_and_removed(self, bench: Bench, params: dict[str, object]) -> None:
        """The server shows the toxic as specified while applied, and not after revert."""
        fault = FAULT_MODELS[str(params["kind"])].model_validate({**params, "target": LINK, "toxicity": "50%"})
        assert isinstance(fault, ToxicBase)
        record = await apply(fault, bench.ctx, "k")
        on_server = await bench.client.toxics(LINK)
        assert on_server == [
            ToxicInfo(
                name="chaoslab-t1-k-downstream",
                type=fault.toxic_type,
                stream="downstream",
                toxicity=0.5,
                attributes=fault.toxic_attributes(),
            )
        ]
        driver = ToxiproxyDriver()
        await driver.revert(record, bench.ctx)
        assert await bench.client.toxics(LINK) == []
        assert await driver.check_reverted(record, bench.ctx) is None


class TestToxicEffects:
    """What the toxics do to real TCP traffic through the proxy."""

    async def test_latency_delays_and_revert_restores(self, bench: Bench) -> None:
        """200 ms downstream latency makes a round trip take ≥ 200 ms; after revert it is fast again."""
        assert await round_trip_s(bench.listen_port) < 0.1
        fault = LatencyFault(kind="latency", target=LINK, latency="200ms")
        record = await apply(fault, bench.ctx)
        assert await round_trip_s(bench.listen_port) >= 0.2
        await ToxiproxyDriver().revert(record, bench.ctx)
        assert await round_trip_s(bench.listen_port) < 0.1

    async def test_both_streams_add_latency_twice(self, bench: Bench) -> None:
        """100 ms each way is ≥ 200 ms per round trip; the two toxics are named per stream."""
        fault = LatencyFault(kind="latency", target=LINK, latency="100ms", stream="both")
        record = await apply(fault, bench.ctx, "both")
        assert record.added == ("chaoslab-t1-both-upstream", "chaoslab-t1-both-downstream")
        assert await round_trip_s(bench.listen_port) >= 0.2
        await ToxiproxyDriver().revert(record, bench.ctx)
        assert await bench.client.toxics(LINK) == []

    async def test_reset_peer_resets_the_connection(self, bench: Bench) -> None:
        """With reset_peer the client's read fails with a connection reset (or EOF), never data."""
        fault = FAULT_MODELS["reset_peer"].model_validate({"kind": "reset_peer", "target": LINK})
        record = await apply(fault, bench.ctx)
        reader, writer = await asyncio.open_connection("127.0.0.1", bench.listen_port)
        try:
            writer.write(b"ping")
            with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(reader.readexactly(4), 2.0)
        finally:
            writer.close()
        await ToxiproxyDriver().revert(record, bench.ctx)
        assert await round_trip_s(bench.listen_port) < 0.1

    async def test_timeout_zero_holds_data(self, bench: Bench) -> None:
        """timeout 0 lets no data through: the echo never arrives within 300 ms."""
        fault = FAULT_MODELS["timeout"].model_validate({"kind": "timeout", "target": LINK, "timeout": 0})
        record = await apply(fault, bench.ctx)
        with pytest.raises(TimeoutError):
            await round_trip_s(bench.listen_port, timeout_s=0.3)
        await ToxiproxyDriver().revert(record, bench.ctx)
        assert await round_trip_s(bench.listen_port) < 0.1

    async def test_limit_data_closes_after_the_limit(self, bench: Bench) -> None:
        """limit_data 10 bytes: a 100-byte echo stops after 10 bytes and the connection closes."""
        fault = FAULT_MODELS["limit_data"].model_validate({"kind": "limit_data", "target": LINK, "bytes": 10})
        record = await apply(fault, bench.ctx)
        reader, writer = await asyncio.open_connection("127.0.0.1", bench.listen_port)
        try:
            writer.write(b"x" * 100)
            received = await asyncio.wait_for(reader.read(1000), 2.0)
            rest = await asyncio.wait_for(reader.read(1000), 2.0)
        finally:
            writer.close()
        assert (len(received), rest) == (10, b"")
        await ToxiproxyDriver().revert(record, bench.ctx)

    async def test_bandwidth_slows_a_transfer(self, bench: Bench) -> None:
        """At 20 KB/s downstream, 10 KB takes ≥ 0.4 s to come back; after revert it is quick."""
        fault = FAULT_MODELS["bandwidth"].model_validate({"kind": "bandwidth", "target": LINK, "rate": "20KB"})
        record = await apply(fault, bench.ctx)
        assert await round_trip_s(bench.listen_port, b"x" * 10_000) >= 0.4
        await ToxiproxyDriver().revert(record, bench.ctx)
        assert await round_trip_s(bench.listen_port, b"x" * 10_000) < 0.2


class TestOfficialClient:
    """The official toxiproxy-python client sees chaoslab's toxics, and its own survive revert."""

    async def test_toxiproxy_python_sees_and_keeps_its_toxics(self, bench: Bench) -> None:
        """A toxic added with toxiproxy-python stays after revert; chaoslab's shows up in its listing."""
        toxiproxy = pytest.importorskip("toxiproxy")
        host, _, port = bench.url.removeprefix("http://").rpartition(":")

        def official(action: str) -> list[str]:
            # The official client is synchronous and keeps its server address process-wide.
            server = toxiproxy.Toxiproxy()
            server.update_api_consumer(host, int(port))
            proxy = server.get_proxy(LINK)
            if action == "add":
                proxy.add_toxic(type="latency", name="by-hand", attributes={"latency": 5})
            return sorted(proxy.toxics())

        await asyncio.to_thread(official, "add")
        record = await apply(LatencyFault(kind="latency", target=LINK, latency="100ms"), bench.ctx)
        assert await asyncio.to_thread(official, "list") == ["by-hand", "chaoslab-t1-f-downstream"]
        await ToxiproxyDriver().revert(record, bench.ctx)
        assert await asyncio.to_thread(official, "list") == ["by-hand"]


class TestRevertSafety:
    """Revert removes exactly what this run added, and tolerates what is already gone."""

    async def test_hand_made_toxic_survives_revert(self, bench: Bench) -> None:
        """A toxic a user added by hand (even of the same type) is still there after revert."""
        await bench.client.add_toxic(LINK, ToxicInfo("latency_downstream", "latency", attributes={"latency": 5}))
        fault = LatencyFault(kind="latency", target=LINK, latency="100ms")
        record = await apply(fault, bench.ctx)
        await ToxiproxyDriver().revert(record, bench.ctx)
        assert [t.name for t in await bench.client.toxics(LINK)] == ["latency_downstream"]

    async def test_revert_twice_and_after_manual_removal(self, bench: Bench) -> None:
        """A toxic already deleted by someone else, or by a first revert, is no error."""
        fault = LatencyFault(kind="latency", target=LINK, latency="100ms")
        record = await apply(fault, bench.ctx)
        assert await bench.client.delete_toxic(LINK, "chaoslab-t1-f-downstream") is True
        driver = ToxiproxyDriver()
        await driver.revert(record, bench.ctx)
        await driver.revert(record, bench.ctx)
        assert await driver.check_reverted(record, bench.ctx) is None

    async def test_revert_when_the_server_is_gone(self, bench: Bench) -> None:
        """With the server stopped, revert succeeds and the check reports nothing left."""
        fault = LatencyFault(kind="latency", target=LINK, latency="100ms")
        record = await apply(fault, bench.ctx)
        await bench.server.stop()  # type: ignore[attr-defined]
        driver = ToxiproxyDriver()
        await driver.revert(record, bench.ctx)
        assert await driver.check_reverted(record, bench.ctx) is None
        with pytest.raises(ToxiproxyUnavailable):
            await bench.client.toxics(LINK)

    async def test_check_reverted_reports_a_leftover_toxic(self, bench: Bench) -> None:
        """Before revert the check names the toxic still on the proxy."""
        fault = LatencyFault(kind="latency", target=LINK, latency="100ms")
        record = await apply(fault, bench.ctx)
        driver = ToxiproxyDriver()
        assert await driver.check_reverted(record, bench.ctx) == (
            f"toxic(s) chaoslab-t1-f-downstream still on proxy {LINK!r}"
        )
        await driver.revert(record, bench.ctx)

    async def test_apply_failing_half_way_is_undone_by_revert(self, bench: Bench) -> None:
        """stream both where the downstream name is taken: apply fails after the upstream toxic; revert removes it."""
        await bench.client.add_toxic(LINK, ToxicInfo("chaoslab-t1-half-downstream", "latency"))
        driver = ToxiproxyDriver()
        fault = LatencyFault(kind="latency", target=LINK, latency="100ms", stream="both")
        record = driver.prepare(fault, bench.ctx, "half")
        with pytest.raises(FaultError, match="could not add toxic: toxic already exists"):
            await driver.apply(fault, bench.ctx, record)
        assert {t.name for t in await bench.client.toxics(LINK)} == {
            "chaoslab-t1-half-upstream",
            "chaoslab-t1-half-downstream",
        }
        await driver.revert(record, bench.ctx)
        assert await bench.client.toxics(LINK) == []

    async def test_missing_proxy_fails_apply_and_revert_is_fine(self, bench: Bench) -> None:
        """A link whose proxy the server does not have: apply raises FaultError; revert succeeds."""
        ctx = make_ctx(bench.url, "127.0.0.1:1", "127.0.0.1:2", proxy="nope")
        driver = ToxiproxyDriver()
        fault = LatencyFault(kind="latency", target=LINK, latency="100ms")
        record = driver.prepare(fault, ctx, "f")
        with pytest.raises(FaultError, match="has no proxy named 'nope'"):
            await driver.apply(fault, ctx, record)
        await driver.revert(record, ctx)

    def test_unknown_link_is_a_safety_error(self, bench: Bench) -> None:
        """A link the topology does not name is refused at prepare."""
        fault = LatencyFault(kind="latency", target="api->nowhere", latency="100ms")
        with pytest.raises(SafetyError, match="link 'api->nowhere' is not in topology 't'"):
            ToxiproxyDriver().prepare(fault, bench.ctx, "f")

    def test_no_toxiproxy_url_is_refused(self) -> None:
        """Without a Toxiproxy URL there is nothing to talk to; prepare says so."""
        ctx = make_ctx("", "127.0.0.1:1", "127.0.0.1:2")
        fault = LatencyFault(kind="latency", target=LINK, latency="100ms")
        with pytest.raises(FaultError, match="no Toxiproxy URL"):
            ToxiproxyDriver().prepare(fault, ctx, "f")


class TestTwoServers:
    """One client per URL: two servers never see each other's toxics."""

    async def test_faults_go_to_their_own_server(self, bench: Bench) -> None:
        """A fault on a second server's context lands there and not on the first one."""
        from chaoslab.proxy import ToxiproxyServer

        other = ToxiproxyServer(port=0)
        await other.start()
        try:
            async with ToxiproxyClient(other.url) as client:
                await client.create_proxy(LINK, f"127.0.0.1:{free_port()}", "127.0.0.1:9")
                ctx2 = make_ctx(other.url, "127.0.0.1:1", "127.0.0.1:2", run_id="t2")
                await apply(LatencyFault(kind="latency", target=LINK, latency="1s"), ctx2, "a")
                await apply(LatencyFault(kind="latency", target=LINK, latency="2s"), bench.ctx, "b")
                assert [t.name for t in await client.toxics(LINK)] == ["chaoslab-t2-a-downstream"]
                assert [t.name for t in await bench.client.toxics(LINK)] == ["chaoslab-t1-b-downstream"]
        finally:
            await other.stop()


class TestLinkDown:
    """link_down: disable the proxy, re-enable on revert."""

    async def test_down_refuses_connections_and_revert_reenables(self, bench: Bench) -> None:
        """While down nothing accepts on the listen port; after revert the echo works again."""
        fault = LinkDownFault(kind="link_down", target=LINK)
        record = await apply(fault, bench.ctx)
        assert record.was_enabled is True
        with pytest.raises(OSError):
            await round_trip_s(bench.listen_port)
        driver = ToxiproxyDriver()
        assert await driver.check_reverted(record, bench.ctx) == f"proxy {LINK!r} is still disabled"
        await driver.revert(record, bench.ctx)
        await driver.revert(record, bench.ctx)
        assert (await bench.client.get_proxy(LINK)).enabled is True
        assert await driver.check_reverted(record, bench.ctx) is None
        assert await round_trip_s(bench.listen_port) < 0.1

    async def test_a_proxy_disabled_before_stays_disabled(self, bench: Bench) -> None:
        """Revert restores the previous state: a proxy the user had disabled is left disabled."""
        await bench.client.set_enabled(LINK, False)
        fault = LinkDownFault(kind="link_down", target=LINK)
        record = await apply(fault, bench.ctx)
        assert record.was_enabled is False
        driver = ToxiproxyDriver()
        await driver.revert(record, bench.ctx)
        assert (await bench.client.get_proxy(LINK)).enabled is False
        assert await driver.check_reverted(record, bench.ctx) is None
