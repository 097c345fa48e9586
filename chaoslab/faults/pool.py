"""Connection-pool faults: hold PostgreSQL connections until the server refuses more; hold idle
keep-alive HTTP connections to a service.

PostgreSQL: connections are opened with asyncpg under a per-run ``application_name``
(``chaoslab-<run>-<label>``), up to ``max_connections − superuser_reserved_connections`` minus
what is already in use (or exactly ``connections``), less ``leave_free``. With ``sleep`` each one
also runs ``pg_sleep`` so its backend is busy, not idle. Revert closes them and then terminates
any backend still carrying the application name — which is how a rollback from another process
(after ``kill -9``) frees backends stuck in ``pg_sleep``.

Ledger records (:class:`PoolRecord`)::

    {"kind": "pool_exhaustion", "service": "db", "application_name": "chaoslab-r1-pool",
     "sleep": true, "taken": 17, "planned": 17}
    {"kind": "http_connection_hold", "service": "api", "host": "127.0.0.1", "port": 8080,
     "key": "chaoslab-r1-hold", "taken": 50, "local_ports": [40112, ...]}
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import psutil

from chaoslab.errors import FaultError, RevertError
from chaoslab.faults.base import FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.faults.resolve import run_label, service_spec, with_refs
from chaoslab.model.faults import HttpConnectionHoldFault, PoolExhaustionFault

PoolFault = PoolExhaustionFault | HttpConnectionHoldFault
"""The faults this family applies."""

# PostgreSQL truncates identifiers (application_name included) to NAMEDATALEN − 1 bytes.
PG_NAME_MAX = 63
# Without a fault duration, pg_sleep still has to end some day: an hour is past any experiment.
DEFAULT_SLEEP_S = 3600.0
CONNECT_TIMEOUT_S = 5.0
# Opening thousands of connections at once would look like a SYN flood to the target.
CONNECT_CONCURRENCY = 32


@dataclass
class _HeldPostgres:
    """The connections of one pool_exhaustion fault, in this process."""

    connections: list[asyncpg.Connection] = field(default_factory=list)
    sleepers: list[asyncio.Task[Any]] = field(default_factory=list)


@dataclass
class _HeldHttp:
    """The sockets of one http_connection_hold fault, in this process."""

    writers: list[asyncio.StreamWriter] = field(default_factory=list)


# What this process holds, by application name / record key; empty in a rollback process.
_HELD_PG: dict[str, _HeldPostgres] = {}
_HELD_HTTP: dict[str, _HeldHttp] = {}


def slots_to_take(max_connections: int, reserved: int, in_use: int, leave_free: int, connections: int | None) -> int:
    """How many connections to open: ``connections`` if given, else the ordinary slots still free.

    >>> slots_to_take(20, 3, 2, 0, None)
    15
    >>> slots_to_take(20, 3, 2, 5, None)
    10
    >>> slots_to_take(20, 3, 2, 0, 4)
    4
    """
    if connections is not None:
        return max(connections - leave_free, 0)
    return max(max_connections - reserved - in_use - leave_free, 0)


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """What matters of an HTTP response head for holding its connection open."""

    keep_alive: bool
    content_length: int
    chunked: bool

    @classmethod
    def parse(cls, head: bytes) -> ResponseHead:
        """Parse a status line and headers; HTTP/1.1 keeps alive unless ``Connection: close``.

        >>> ResponseHead.parse(b"HTTP/1.0 200 OK\\r\\nContent-Length: 5\\r\\n\\r\\n")
        ResponseHead(keep_alive=False, content_length=5, chunked=False)
        >>> ResponseHead.parse(b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n")
        ResponseHead(keep_alive=True, content_length=0, chunked=True)
        """
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, sep, value = line.partition(":")
            if sep:
                headers[key.strip().lower()] = value.strip().lower()
        connection = headers.get("connection", "")
        keep_alive = "keep-alive" in connection if lines[0].startswith("HTTP/1.0") else "close" not in connection
        return cls(
            keep_alive=keep_alive,
            content_length=int(headers.get("content-length", "0") or 0),
            chunked="chunked" in headers.get("transfer-encoding", ""),
        )


class PoolRecord(LedgerRecord):
    """The connections a pool fault holds: named before any is opened, counted once held.

    ``pool_exhaustion`` fills ``application_name`` (and the PostgreSQL figures); an
    ``http_connection_hold`` fills ``host``, ``port``, ``path``, ``key`` and ``local_ports``.
    """

    service: str
    taken: int = 0
    application_name: str | None = None
    sleep: bool = False
    planned: int | None = None
    max_connections: int | None = None
    reserved: int | None = None
    refused: str | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None
    key: str | None = None
    local_ports: tuple[int, ...] = ()


def _dsn(ctx: FaultContext, service: str) -> str:
    spec = service_spec(ctx, service)
    if spec.dsn is None:
        raise FaultError(f"service {service!r} has no 'dsn' in the topology; pool_exhaustion needs one")
    return with_refs(ctx, spec.dsn)


async def _connect(dsn: str, settings: dict[str, str]) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S, server_settings=settings)


def _http_address(ctx: FaultContext, service: str) -> tuple[str, int, str]:
    spec = service_spec(ctx, service)
    if spec.url is not None:
        parts = urlsplit(spec.url)
        default_port = 443 if parts.scheme == "https" else 80
        return parts.hostname or "127.0.0.1", parts.port or default_port, parts.path or "/"
    if spec.address is not None:
        host, _, port = spec.address.rpartition(":")
        return host, int(port), "/"
    raise FaultError(f"service {service!r} has no 'url' or 'address' in the topology to hold connections to")


class PoolDriver(FaultDriver[PoolFault, PoolRecord]):
    """Exhausts a PostgreSQL server's connection slots, or holds idle HTTP connections."""

    def prepare(self, fault: PoolFault, ctx: FaultContext, label: str) -> PoolRecord:
        """Name the connections (application name / key) before any is opened."""
        if isinstance(fault, PoolExhaustionFault):
            _dsn(ctx, fault.target)
            return PoolRecord(
                kind=fault.kind,
                service=fault.target,
                application_name=run_label(ctx, label, PG_NAME_MAX),
                sleep=fault.sleep,
            )
        if isinstance(fault, HttpConnectionHoldFault):
            host, port, path = _http_address(ctx, fault.target)
            return PoolRecord(
                kind=fault.kind, service=fault.target, host=host, port=port, path=path, key=run_label(ctx, label)
            )
        raise FaultError(f"the pool driver cannot apply {type(fault).__name__}")

    async def apply(self, fault: PoolFault, ctx: FaultContext, record: PoolRecord) -> PoolRecord:
        """Open and hold the connections; the record says how many were taken."""
        if isinstance(fault, PoolExhaustionFault):
            return await self._exhaust(fault, ctx, record)
        if isinstance(fault, HttpConnectionHoldFault):
            return await self._hold_http(fault, record)
        raise FaultError(f"the pool driver cannot apply {type(fault).__name__}")

    async def _exhaust(self, fault: PoolExhaustionFault, ctx: FaultContext, record: PoolRecord) -> PoolRecord:
        dsn = _dsn(ctx, fault.target)
        name = str(record.application_name)
        held = _HELD_PG.setdefault(name, _HeldPostgres())
        settings = {"application_name": name}
        try:
            first = await _connect(dsn, settings)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            raise FaultError(f"cannot connect to {fault.target!r}: {exc}") from exc
        held.connections.append(first)
        if first.get_server_version().major >= 14:
            # Backends of a dead harness notice within a second and free their slot, even in pg_sleep.
            settings["client_connection_check_interval"] = "1000"
            await first.execute("SET client_connection_check_interval = 1000")
        max_connections = int(await first.fetchval("SHOW max_connections"))
        reserved = int(await first.fetchval("SHOW superuser_reserved_connections"))
        # Client backends in use, ours included; it is one of the connections we hold.
        in_use = int(
            await first.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        )
        planned = slots_to_take(max_connections, reserved, in_use - 1, fault.leave_free, fault.connections)
        record = record.but(planned=planned, max_connections=max_connections, reserved=reserved)
        if planned == 0:
            await first.close()
            held.connections.remove(first)
            return record.but(taken=0)
        refused: str | None = None
        while len(held.connections) < planned:
            try:
                held.connections.append(await _connect(dsn, settings))
            except (asyncpg.TooManyConnectionsError, asyncpg.InsufficientPrivilegeError) as exc:
                # Someone else took the last slots meanwhile: the pool is exhausted all the same.
                refused = str(exc)
                break
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                raise FaultError(
                    f"opened {len(held.connections)} of {planned} connections to {fault.target!r}, then: {exc}"
                ) from exc
        if fault.sleep:
            sleep_s = fault.duration if fault.duration is not None else DEFAULT_SLEEP_S
            for conn in held.connections:
                held.sleepers.append(
                    asyncio.get_running_loop().create_task(conn.execute(f"SELECT pg_sleep({sleep_s})"))
                )
            await asyncio.sleep(0)
        return record.but(taken=len(held.connections), refused=refused)

    async def _hold_http(self, fault: HttpConnectionHoldFault, record: PoolRecord) -> PoolRecord:
        host, port, path = str(record.host), int(record.port or 0), str(record.path)
        held = _HELD_HTTP.setdefault(str(record.key), _HeldHttp())
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n\r\n").encode()

        async def one() -> asyncio.StreamWriter | None:
            async with gate:
                try:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
                except (OSError, TimeoutError):
                    return None
                try:
                    # One complete request and response, so the connection is an idle keep-alive one.
                    writer.write(request)
                    await writer.drain()
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT_S)
                    response = ResponseHead.parse(head)
                    if response.chunked:
                        await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), CONNECT_TIMEOUT_S)
                    elif response.content_length:
                        await asyncio.wait_for(reader.readexactly(response.content_length), CONNECT_TIMEOUT_S)
                    if not response.keep_alive:
                        writer.close()
                        return None
                except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                    writer.close()
                    return None
                return writer

        results = await asyncio.gather(*(one() for _ in range(fault.connections)))
        held.writers.extend(w for w in results if w is not None)
        local_ports = [int(w.get_extra_info("sockname")[1]) for w in held.writers]
        if not held.writers:
            raise FaultError(
                f"could not open any keep-alive connection to {host}:{port} "
                "(nothing listens, or the server closes connections after each response)"
            )
        return record.but(taken=len(held.writers), local_ports=tuple(local_ports))

    async def revert(self, record: PoolRecord, ctx: FaultContext) -> None:
        """Close what this process holds; for PostgreSQL also terminate leftover backends by name."""
        if record.kind == "pool_exhaustion":
            await self._release_pg(record, ctx)
        elif record.kind == "http_connection_hold":
            held_http = _HELD_HTTP.pop(str(record.key), None)
            if held_http is not None:
                for writer in held_http.writers:
                    writer.close()
                for writer in held_http.writers:
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()

    async def _release_pg(self, record: PoolRecord, ctx: FaultContext) -> None:
        name = str(record.application_name)
        held = _HELD_PG.pop(name, None)
        if held is not None:
            for task in held.sleepers:
                task.cancel()
            for conn in held.connections:
                conn.terminate()
            for task in held.sleepers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        dsn = _dsn(ctx, record.service)
        last: Exception | None = None
        # The server may be full of our stray backends: retry while they die of their closed sockets.
        for _ in range(10):
            try:
                conn = await _connect(dsn, {})
            except (asyncpg.TooManyConnectionsError, asyncpg.InsufficientPrivilegeError) as exc:
                last = exc
                await asyncio.sleep(0.5)
                continue
            except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as exc:
                # The server itself is gone: nothing of ours can be holding a slot.
                last = exc
                return
            try:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    name,
                )
            finally:
                await conn.close()
            return
        raise RevertError(f"cannot connect to {record.service!r} to close the held connections: {last}")

    async def check_reverted(self, record: PoolRecord, ctx: FaultContext) -> str | None:
        """No backend with our application name / no connection from our local ports remains."""
        if record.kind == "pool_exhaustion":
            name = str(record.application_name)
            try:
                conn = await _connect(_dsn(ctx, record.service), {})
            except (OSError, TimeoutError) as exc:
                return f"cannot connect to {record.service!r} to check: {exc}"
            try:
                # pg_terminate_backend only signals; the backends leave pg_stat_activity shortly after.
                for _ in range(50):
                    left = int(
                        await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name)
                    )
                    if left == 0:
                        return None
                    await asyncio.sleep(0.1)
            finally:
                await conn.close()
            return f"{left} connection(s) named {name!r} are still open on {record.service!r}"
        if record.kind == "http_connection_hold":
            ports = set(record.local_ports)
            target = record.port
            left = sum(
                1
                for c in psutil.net_connections(kind="tcp")
                if c.laddr
                and c.raddr
                and c.laddr.port in ports
                and c.raddr.port == target
                and c.status == psutil.CONN_ESTABLISHED
            )
            return None if left == 0 else f"{left} held connection(s) to {record.service!r} are still open"
        return None

    def detail(self, record: PoolRecord) -> dict[str, Any]:
        """How many connections were taken (and planned)."""
        out: dict[str, Any] = {"connections_taken": record.taken}
        if record.planned is not None:
            out["connections_planned"] = record.planned
        return out


FAMILY: FaultFamily[PoolFault, PoolRecord] = FaultFamily(
    name="pool",
    models=(PoolExhaustionFault, HttpConnectionHoldFault),
    driver=PoolDriver,
    record=PoolRecord,
)
"""Hold PostgreSQL connections or idle HTTP keep-alive connections."""
