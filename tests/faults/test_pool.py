"""Connection-pool faults against a real PostgreSQL (max_connections=20) and a real aiohttp server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from chaoslab.errors import FaultError
from chaoslab.faults import FaultContext
from chaoslab.faults import pool as pool_module
from chaoslab.faults.pool import PoolDriver, PoolRecord, ResponseHead, slots_to_take
from chaoslab.model.faults import HttpConnectionHoldFault, PoolExhaustionFault
from chaoslab.model.topology import ServiceSpec, TopologySpec
from chaoslab.system.postgres import PostgresServer
from tests.conftest import free_port
from tests.faults.services import http_server_command, wait_accepting

CLIENT_BACKENDS = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"


def pg_topology(dsn: str) -> TopologySpec:
    """A topology with one PostgreSQL service ``db`` reached at ``dsn``."""
    return TopologySpec(name="t", services={"db": ServiceSpec(dsn=dsn)})


async def scalar(dsn: str, sql: str, *args: Any) -> Any:
    """One value from a fresh connection."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start a child process (Popen returns at once)."""
    return subprocess.Popen(args, **kwargs)


@pytest.fixture
async def app_dsn(postgres_server: PostgresServer) -> str:
    """The DSN of an ordinary (non-superuser) role, the kind of user an application connects as."""
    admin = await asyncpg.connect(postgres_server.dsn())
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'app'"):
            await admin.execute("CREATE ROLE app LOGIN")
    finally:
        await admin.close()
    return postgres_server.dsn(user="app")


class TestSlotsToTake:
    """The pure arithmetic of how many connections exhaust a server."""

    def test_ordinary_slots_left(self) -> None:
        """max_connections minus reserved minus in use: 20 − 3 − 2 = 15."""
        assert slots_to_take(20, 3, 2, 0, None) == 15

    def test_leave_free_is_subtracted(self) -> None:
        """leave_free keeps some slots open: 20 − 3 − 2 − 4 = 11."""
        assert slots_to_take(20, 3, 2, 4, None) == 11

    def test_explicit_count_wins(self) -> None:
        """An explicit ``connections`` is taken as is (less leave_free)."""
        assert slots_to_take(20, 3, 2, 1, 6) == 5

    def test_never_negative(self) -> None:
        """A server already fuller than the target gets zero new connections."""
        assert slots_to_take(20, 3, 19, 0, None) == 0


class TestResponseHead:
    """Whether a response leaves its connection open, and how long its body is."""

    def test_http11_keeps_alive_by_default(self) -> None:
        """HTTP/1.1 without a Connection header keeps the connection; the length is read."""
        head = ResponseHead.parse(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
        assert head == ResponseHead(keep_alive=True, content_length=12, chunked=False)

    def test_connection_close_does_not(self) -> None:
        """``Connection: close`` on HTTP/1.1 means the server will close it."""
        assert ResponseHead.parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").keep_alive is False

    def test_http10_needs_explicit_keep_alive(self) -> None:
        """HTTP/1.0 closes unless it says ``Connection: keep-alive``."""
        assert ResponseHead.parse(b"HTTP/1.0 200 OK\r\n\r\n").keep_alive is False
        assert ResponseHead.parse(b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n").keep_alive is True


@pytest.mark.integration
class TestPoolExhaustion:
    """pool_exhaustion against the real server."""

    async def test_takes_every_ordinary_slot_and_revert_gives_them_back(
        self, postgres_server: PostgresServer, app_dsn: str
    ) -> None:
        """While applied an application user is refused; after revert the backend count is as before."""
        dsn = postgres_server.dsn()
        # Client backends other than the one counting.
        before = await scalar(dsn, CLIENT_BACKENDS) - 1
        ctx = FaultContext(topology=pg_topology(dsn), run_id="pool1")
        driver = PoolDriver()
        fault = PoolExhaustionFault(kind="pool_exhaustion", target="db")
        record = driver.prepare(fault, ctx, "exhaust")
        assert record.application_name == "chaoslab-pool1-exhaust"
        try:
            record = await driver.apply(fault, ctx, record)
            assert record.taken == 17 - before
            assert driver.detail(record)["connections_taken"] == 17 - before
            with pytest.raises(asyncpg.TooManyConnectionsError, match="remaining connection slots are reserved"):
                await asyncpg.connect(app_dsn)
            held = await scalar(
                dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", record.application_name
            )
            assert held == 17 - before
        finally:
            await driver.revert(record, ctx)
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        assert await scalar(dsn, CLIENT_BACKENDS) - 1 == before
        assert await scalar(app_dsn, "SELECT 1") == 1

    async def test_sleep_keeps_backends_busy(self, postgres_server: PostgresServer) -> None:
        """With sleep each held backend is active in pg_sleep; leave_free and connections are honoured."""
        dsn = postgres_server.dsn()
        ctx = FaultContext(topology=pg_topology(dsn), run_id="pool2")
        driver = PoolDriver()
        fault = PoolExhaustionFault(kind="pool_exhaustion", target="db", connections=4, leave_free=1, sleep=True)
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "busy"))
        try:
            assert record.taken == 3
            for _ in range(50):
                active = await scalar(
                    dsn,
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' "
                    "AND query LIKE 'SELECT pg_sleep%'",
                    record.application_name,
                )
                if active == 3:
                    break
                await asyncio.sleep(0.05)
            assert active == 3
        finally:
            await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None

    async def test_rollback_after_kill_9_frees_sleeping_backends(
        self, postgres_server: PostgresServer, tmp_path: Path
    ) -> None:
        """Backends held in pg_sleep by a killed harness are gone after a rollback from this process."""
        dsn = postgres_server.dsn()
        before = await scalar(dsn, CLIENT_BACKENDS)
        record_file = tmp_path / "record.json"
        script = textwrap.dedent(
            f"""
            import asyncio, json, time
            from chaoslab.faults import FaultContext
            from chaoslab.faults.pool import PoolDriver
            from chaoslab.model.faults import PoolExhaustionFault
            from chaoslab.model.topology import ServiceSpec, TopologySpec
            topo = TopologySpec(name="t", services={{"db": ServiceSpec(dsn={dsn!r})}})
            ctx = FaultContext(topology=topo, run_id="pool3")
            fault = PoolExhaustionFault(kind="pool_exhaustion", target="db", connections=5, sleep=True)
            driver = PoolDriver()
            async def main():
                record = driver.prepare(fault, ctx, "p")
                record = await driver.apply(fault, ctx, record)
                open({str(record_file)!r}, "w").write(json.dumps(record.to_json()))
                print("applied", flush=True)
                await asyncio.sleep(60)
            asyncio.run(main())
            """
        )
        harness = spawn([sys.executable, "-c", script], stdout=subprocess.PIPE, cwd=os.getcwd())
        try:
            assert harness.stdout is not None
            assert harness.stdout.readline().strip() == b"applied"
        finally:
            harness.kill()
            harness.wait(5)
            if harness.stdout is not None:
                harness.stdout.close()
        record = PoolRecord.from_json(json.loads(record_file.read_text()))
        assert record.taken == 5
        ctx = FaultContext(topology=pg_topology(dsn), run_id="pool3")
        driver = PoolDriver()
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        assert await scalar(dsn, CLIENT_BACKENDS) == before

    async def test_revert_without_the_handles_terminates_backends_by_name(
        self, postgres_server: PostgresServer
    ) -> None:
        """A revert that does not hold the connections (another process) still ends them, by application name."""
        dsn = postgres_server.dsn()
        ctx = FaultContext(topology=pg_topology(dsn), run_id="pool5")
        driver = PoolDriver()
        fault = PoolExhaustionFault(kind="pool_exhaustion", target="db", connections=4, sleep=True)
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "lost"))
        # Take the handles away, as if they lived in a harness that is still alive but unreachable.
        held = pool_module._HELD_PG.pop(record.application_name)
        try:
            await driver.revert(record, ctx)
            count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
            assert await driver.check_reverted(record, ctx) is None
            assert await scalar(dsn, count, record.application_name) == 0
        finally:
            for conn in held.connections:
                conn.terminate()
            for task in held.sleepers:
                with contextlib.suppress(BaseException):
                    await task

    async def test_more_connections_than_slots_stops_at_the_refusal(self, postgres_server: PostgresServer) -> None:
        """Asking for 30 on a 20-connection server takes what the server allows and records the refusal."""
        dsn = postgres_server.dsn()
        others = await scalar(dsn, CLIENT_BACKENDS) - 1
        ctx = FaultContext(topology=pg_topology(dsn), run_id="pool4")
        driver = PoolDriver()
        fault = PoolExhaustionFault(kind="pool_exhaustion", target="db", connections=30)
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "many"))
        try:
            # A superuser may also use the 3 reserved slots: 20 in all.
            assert record.taken == 20 - others
            assert record.planned == 30
            assert "too many clients" in record.refused
        finally:
            await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None

    def test_service_without_dsn_is_refused(self) -> None:
        """A service with no dsn cannot be exhausted; prepare says so."""
        ctx = FaultContext(topology=TopologySpec(name="t", services={"db": ServiceSpec()}), run_id="x")
        fault = PoolExhaustionFault(kind="pool_exhaustion", target="db")
        with pytest.raises(FaultError, match="service 'db' has no 'dsn'"):
            PoolDriver().prepare(fault, ctx, "p")


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[web.AppRunner, int]]:
    """A real aiohttp server on 127.0.0.1; its runner tracks the open connections."""

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield runner, port
    finally:
        await runner.cleanup()


@pytest.mark.integration
class TestHttpConnectionHold:
    """http_connection_hold against a real aiohttp server."""

    async def test_holds_n_keep_alive_connections_and_revert_closes_them(
        self, http_server: tuple[web.AppRunner, int]
    ) -> None:
        """The server sees exactly 25 open connections while applied and none after revert."""
        runner, port = http_server
        topo = TopologySpec(name="t", services={"api": ServiceSpec(url=f"http://127.0.0.1:{port}")})
        ctx = FaultContext(topology=topo, run_id="h1")
        driver = PoolDriver()
        fault = HttpConnectionHoldFault(kind="http_connection_hold", target="api", connections=25)
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "hold"))
        assert record.taken == 25
        assert len(record.local_ports) == 25
        assert runner.server is not None
        assert len(runner.server.connections) == 25
        assert await driver.check_reverted(record, ctx) == "25 held connection(s) to 'api' are still open"
        await driver.revert(record, ctx)
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        for _ in range(100):
            if not runner.server.connections:
                break
            await asyncio.sleep(0.01)
        assert len(runner.server.connections) == 0

    async def test_server_without_keep_alive_fails_apply(self, tmp_path: Path) -> None:
        """An HTTP/1.0 server closes after each response, so nothing can be held: apply says so."""
        port = free_port()
        server = spawn(http_server_command(port), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await asyncio.to_thread(wait_accepting, port)
            topo = TopologySpec(name="t", services={"api": ServiceSpec(url=f"http://127.0.0.1:{port}/")})
            ctx = FaultContext(topology=topo, run_id="h3")
            driver = PoolDriver()
            fault = HttpConnectionHoldFault(kind="http_connection_hold", target="api", connections=2)
            with pytest.raises(FaultError, match="closes connections after each response"):
                await driver.apply(fault, ctx, driver.prepare(fault, ctx, "hold"))
        finally:
            server.terminate()
            server.wait(5)

    async def test_nothing_listening_fails_apply(self) -> None:
        """With no server at the address apply raises FaultError and revert is still fine."""
        port = free_port()
        topo = TopologySpec(name="t", services={"api": ServiceSpec(address=f"127.0.0.1:{port}")})
        ctx = FaultContext(topology=topo, run_id="h2")
        driver = PoolDriver()
        fault = HttpConnectionHoldFault(kind="http_connection_hold", target="api", connections=3)
        record = driver.prepare(fault, ctx, "hold")
        with pytest.raises(FaultError, match=f"could not open any keep-alive connection to 127.0.0.1:{port}"):
            await driver.apply(fault, ctx, record)
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
