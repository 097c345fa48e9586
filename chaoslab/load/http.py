"""A lean HTTP/1.1 client for the load generator: keep-alive connections on ``asyncio.Protocol``.

Why not aiohttp for every request: aiohttp costs ~110 µs of CPU per request on this kind of
machine, a plain protocol ~25 µs (docs/measurement.md), and the generator's own CPU decides
how fast it can go before its lag shows up as the target's latency. This client sends prebuilt
request bytes on a pool of up to ``max_connections`` keep-alive connections, one request per
connection at a time (no pipelining), reads status and body framing (Content-Length, chunked,
or until close) and hands each outcome to a callback. It does no TLS, redirects or cookies;
the generator uses aiohttp for ``https`` URLs.

Outcome errors follow :class:`~chaoslab.timeline.ErrorClass`: a refused connect is ``REFUSED``,
a connection reset or closed by the peer before a whole response is ``RESET``, any other
socket error ``TRANSPORT``. Timeouts are the caller's: it calls :meth:`HttpPool.expire`.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from chaoslab.timeline import ErrorClass

MAX_HEADER_BYTES = 64 * 1024
"""A response head larger than this is a protocol error (and keeps a broken peer from growing memory)."""


class Exchange:
    """One request on its way: what to send, when it was meant to go, and how it ended."""

    __slots__ = ("conn", "deadline_s", "done", "intended_s", "is_head", "payload", "tag")

    def __init__(
        self, payload: bytes, intended_s: float, deadline_s: float, tag: int, *, is_head: bool = False
    ) -> None:
        self.payload = payload
        self.intended_s = intended_s
        self.deadline_s = deadline_s
        self.tag = tag
        self.is_head = is_head
        self.done = False
        self.conn: _Connection | None = None


Completion = Callable[[Exchange, int | None, ErrorClass | None], None]
"""Called once per exchange: ``(exchange, status or None, error class or None)``."""


def split_origin(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path?query)`` of an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an absolute http:// or https:// URL, got {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.scheme, parts.hostname, port, target


def request_head(method: str, target: str, host_header: str, headers: dict[str, str], body_len: int | None) -> bytes:
    """The request line and headers (ending in the blank line) as bytes."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
    lowered = {k.lower() for k in headers}
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    if "user-agent" not in lowered:
        lines.append("User-Agent: chaoslab")
    if body_len is not None and "content-length" not in lowered:
        lines.append(f"Content-Length: {body_len}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_HEAD, _LENGTH, _CHUNKED, _UNTIL_CLOSE = 0, 1, 2, 3


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends an exchange's bytes and frames the response."""

    __slots__ = ("buf", "exchange", "keep_alive", "lost", "pool", "remaining", "state", "status", "transport")

    def __init__(self, pool: HttpPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.buf = bytearray()
        self.state = _HEAD
        self.status = 0
        self.remaining = 0
        self.keep_alive = True
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, exchange: Exchange) -> None:
        """Write one request; the connection is busy until its response is complete."""
        self.exchange = exchange
        exchange.conn = self
        self.state = _HEAD
        self.buf.clear()
        assert self.transport is not None
        self.transport.write(exchange.payload)

    def data_received(self, data: bytes) -> None:
        if self.exchange is None:
            # Bytes nobody asked for: the peer is confused; drop the connection.
            if self.transport is not None:
                self.transport.abort()
            return
        buf = self.buf
        buf += data
        if self.state == _HEAD:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    self._fail(ErrorClass.TRANSPORT)
                return
            self._parse_head(end)
            del buf[: end + 4]
        if self.state == _LENGTH:
            if len(buf) >= self.remaining:
                self._complete()
        elif self.state == _CHUNKED:
            self._chunks()
        elif self.state == _UNTIL_CLOSE:
            buf.clear()

    def _parse_head(self, end: int) -> None:
        buf = self.buf
        try:
            self.status = int(buf[9:12])
        except ValueError:
            self.status = 0
        head = bytes(buf[:end]).lower()
        self.keep_alive = b"\r\nconnection: close" not in head and not head.startswith(b"http/1.0")
        exchange = self.exchange
        assert exchange is not None
        if exchange.is_head or self.status in (204, 304) or 100 <= self.status < 200:
            self.state, self.remaining = _LENGTH, 0
            return
        te = head.find(b"\r\ntransfer-encoding:")
        if te >= 0 and b"chunked" in head[te : head.find(b"\r\n", te + 2) if head.find(b"\r\n", te + 2) > 0 else None]:
            self.state = _CHUNKED
            return
        cl = head.find(b"\r\ncontent-length:")
        if cl >= 0:
            line_end = head.find(b"\r\n", cl + 2)
            self.state = _LENGTH
            self.remaining = int(head[cl + 17 : line_end if line_end > 0 else None].strip() or b"0")
            return
        self.state = _UNTIL_CLOSE
        self.keep_alive = False

    def _chunks(self) -> None:
        buf = self.buf
        while True:
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buf[:line_end]).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Last chunk: optional trailers, then an empty line.
                rest = buf[line_end + 2 :]
                if rest.startswith(b"\r\n") or rest.find(b"\r\n\r\n") >= 0:
                    self._complete()
                return
            if len(buf) < line_end + 2 + size + 2:
                return
            del buf[: line_end + 2 + size + 2]

    def _complete(self) -> None:
        exchange = self.exchange
        self.exchange = None
        self.buf.clear()
        if exchange is not None:
            exchange.conn = None
            self.pool._finished(self, exchange, self.status, None, self.keep_alive)

    def _fail(self, error: ErrorClass) -> None:
        exchange = self.exchange
        self.exchange = None
        if exchange is not None:
            exchange.conn = None
            self.pool._finished(self, exchange, None, error, False)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        exchange = self.exchange
        self.exchange = None
        if exchange is not None:
            exchange.conn = None
            if exc is None and self.state == _UNTIL_CLOSE:
                self.pool._finished(self, exchange, self.status, None, False)
            else:
                error = ErrorClass.RESET if exc is None or isinstance(exc, ConnectionError) else ErrorClass.TRANSPORT
                self.pool._finished(self, exchange, None, error, False)
        self.pool._lost(self)


class HttpPool:
    """Up to ``max_connections`` keep-alive connections to one host:port; excess exchanges queue in order."""

    def __init__(
        self,
        host: str,
        port: int,
        on_complete: Completion,
        *,
        max_connections: int = 64,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.on_complete = on_complete
        self.max_connections = max_connections
        self.connect_timeout_s = connect_timeout_s
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._connecting = 0
        self._queue: deque[Exchange] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.connects = 0
        """Connections opened so far (for reporting connection churn)."""

    @property
    def waiting(self) -> int:
        """Exchanges queued for a free connection (timed-out ones may still be counted until skipped)."""
        return len(self._queue)

    def submit(self, exchange: Exchange) -> None:
        """Send now on an idle connection, or queue (opening a connection when the pool has room)."""
        if self._idle:
            self._idle.pop().send(exchange)
            return
        self._queue.append(exchange)
        if len(self._all) + self._connecting < self.max_connections:
            self._open()

    def expire(self, exchange: Exchange) -> None:
        """Give up on an exchange (its deadline passed): its connection, if any, is aborted."""
        exchange.done = True
        conn = exchange.conn
        if conn is not None:
            conn.exchange = None
            exchange.conn = None
            if conn.transport is not None:
                conn.transport.abort()
            if conn.lost or conn.transport is None:
                self._lost(conn)  # connection_lost already ran (or never will): forget it now

    def _open(self) -> None:
        self._connecting += 1
        task = asyncio.get_running_loop().create_task(self._connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self), self.host, self.port),
                self.connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            self._connecting -= 1
            self._connect_failed(exc)
            return
        self._connecting -= 1
        self.connects += 1
        conn = protocol
        if conn.lost:
            # The peer closed before we could use it (a proxy whose upstream is down accepts and
            # closes at once); adding it would leave a dead connection in the pool for good.
            self._connect_failed(ConnectionResetError("closed by the peer right after connecting"))
            return
        if self._closed:
            assert conn.transport is not None
            conn.transport.abort()
            return
        sock = conn.transport.get_extra_info("socket") if conn.transport is not None else None
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._all.add(conn)
        self._idle_or_next(conn)

    def _connect_failed(self, exc: BaseException) -> None:
        """A connect failed: the oldest waiting exchange fails with it (each request pays its own connect)."""
        if isinstance(exc, ConnectionRefusedError):
            error = ErrorClass.REFUSED
        elif isinstance(exc, TimeoutError):
            error = ErrorClass.TIMEOUT
        elif isinstance(exc, ConnectionError):
            error = ErrorClass.RESET
        else:
            error = ErrorClass.TRANSPORT
        while self._queue:
            exchange = self._queue.popleft()
            if not exchange.done:
                exchange.done = True
                self.on_complete(exchange, None, error)
                break
        # More waiting work and room: try again (a refusing target gets one connect per request).
        if self._queue and not self._closed and len(self._all) + self._connecting < self.max_connections:
            self._open()

    def _idle_or_next(self, conn: _Connection) -> None:
        if conn.lost:
            self._lost(conn)
            return
        queue = self._queue
        while queue:
            exchange = queue.popleft()
            if not exchange.done:
                conn.send(exchange)
                return
        self._idle.append(conn)

    def _finished(
        self, conn: _Connection, exchange: Exchange, status: int | None, error: ErrorClass | None, keep_alive: bool
    ) -> None:
        if not exchange.done:
            exchange.done = True
            self.on_complete(exchange, status, error)
        if keep_alive and not self._closed:
            self._idle_or_next(conn)
        elif conn.transport is not None and not conn.transport.is_closing():
            conn.transport.close()

    def _lost(self, conn: _Connection) -> None:
        self._all.discard(conn)
        try:
            self._idle.remove(conn)
        except ValueError:
            pass
        if self._queue and not self._closed and len(self._all) + self._connecting < self.max_connections:
            self._open()

    def close(self) -> None:
        """Abort every connection and pending connect; queued exchanges are left to their deadlines."""
        self._closed = True
        for conn in list(self._all):
            if conn.transport is not None:
                conn.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        self._idle.clear()
