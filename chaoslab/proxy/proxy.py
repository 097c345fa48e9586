"""A proxy: its listener, its accepted connections and its two toxic chains.

Each accepted client connection dials the upstream at once (resolved at dial time). If the dial
fails, the client socket is closed: the client sees a successful connect followed by EOF, as with
Toxiproxy. A connection is two :class:`~chaoslab.proxy.link.Link` objects, one per direction;
when no toxic acts on a link its bytes are spliced socket to socket (Linux), see :mod:`chaoslab.proxy.link`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import random
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, cast

from chaoslab.log import get_logger
from chaoslab.proxy.addresses import AddressError, resolve_listen, split_upstream
from chaoslab.proxy.link import Link
from chaoslab.proxy.splice import SPLICE_AVAILABLE
from chaoslab.proxy.toxics import Direction, ToxicSpec, ToxicType

log = get_logger("proxy")

_CONNECTION_IDS = itertools.count(1)
READ_BUFFER_BYTES = 256 * 1024
"""Bytes asked for per socket read (uvloop's own read size)."""
WRITE_BUFFER_HIGH_BYTES = 1024 * 1024
"""Bytes buffered for a destination socket before its source stops being read."""

LinkEnded = Callable[["Proxy", Link, str], None]
"""Called once per link when it ends: proxy, link, listen address at connection time (for metrics)."""


class ProxyStartError(Exception):
    """A proxy could not bind its listen address; ``str()`` is Toxiproxy's (Go) message."""


class _ReadBuffer(threading.local):
    """One receive buffer per thread, shared by every socket: a read is consumed before the next one starts.

    Reading into it and writing straight from it saves the copy into a new ``bytes`` object per read.
    When a destination transport keeps a reference (its write could not complete at once), a fresh
    buffer replaces it, so bytes still queued for writing are never overwritten.
    """

    def __init__(self) -> None:
        self.view = memoryview(bytearray(READ_BUFFER_BYTES))

    def renew(self) -> None:
        """Leave the current buffer to whoever still references it."""
        self.view = memoryview(bytearray(READ_BUFFER_BYTES))


_READ_BUFFER = _ReadBuffer()


class _Side(asyncio.BufferedProtocol):
    """The protocol of one socket of a connection (client side or upstream side)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.transport: asyncio.Transport | None = None
        self.reads: Link | None = None  # the link whose source is this socket
        self.writes: Link | None = None  # the link whose destination is this socket
        self.early: list[bytes] = []  # bytes read before the links existed
        self.early_eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, hence the cast instead of a check.
        self.transport = cast(asyncio.Transport, transport)
        # Above the 64 KiB default so that one 256 KiB read does not pause the source every time.
        self.transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH_BYTES)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _READ_BUFFER.view

    def buffer_updated(self, nbytes: int) -> None:
        view = _READ_BUFFER.view[:nbytes]
        if self.reads is not None:
            if self.reads.feed_view(view):
                _READ_BUFFER.renew()
            return
        # uvloop may start reading right after connection_made despite pause_reading: keep the bytes.
        self.early.append(bytes(view))
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.reads is not None:
            self.reads.feed_eof()
        else:
            self.early_eof = True
        # Keep the socket open: the other direction may still have data to deliver to it.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.writes is not None:
            self.writes.dest_lost()
        if self.reads is not None:
            self.reads.feed_eof()
        else:
            self.early_eof = True
        self.connection.side_lost(self)

    def fileno(self) -> int:
        """The socket's descriptor (-1 when unknown)."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        return -1 if sock is None else int(sock.fileno())

    def attach(self, reads: Link, writes: Link) -> None:
        """Connect this socket to its links, handing over anything read before they existed."""
        self.reads, self.writes = reads, writes
        early, self.early = self.early, []
        for data in early:
            reads.feed(data)
        if self.early_eof:
            reads.feed_eof()

    def pause_writing(self) -> None:
        if self.writes is not None:
            self.writes.set_paused("dest", True)

    def resume_writing(self) -> None:
        if self.writes is not None:
            # First: a link waiting for its destination to drain enters splice mode while still paused.
            self.writes.dest_drained()
            self.writes.set_paused("dest", False)


class _ClientSide(_Side):
    """The accepted client socket: starts the upstream dial."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        # Nothing is read until the upstream socket exists; the client's bytes wait in the kernel.
        self.transport.pause_reading()
        self.connection.start()


class Connection:
    """One client connection and its upstream connection: two links."""

    def __init__(self, proxy: Proxy, listen: str) -> None:
        self.proxy = proxy
        self.id = next(_CONNECTION_IDS)
        self.listen = listen
        self.client = _ClientSide(self)
        self.upstream = _Side(self)
        self.links: dict[Direction, Link] = {}
        self._dial: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        """Register with the proxy and dial the upstream."""
        self.proxy.connections.add(self)
        self._dial = asyncio.get_running_loop().create_task(self._connect_upstream())

    async def _connect_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            host, port = split_upstream(self.proxy.upstream)
            await loop.create_connection(lambda: self.upstream, host, port)
        except (OSError, AddressError) as exc:
            log.info("upstream dial failed", proxy=self.proxy.name, upstream=self.proxy.upstream, error=str(exc))
            self.close()
            return
        if self.closed:
            self._abort_transports()
            return
        client, upstream = self.client.transport, self.upstream.transport
        assert client is not None and upstream is not None
        if self.proxy.wants_reset_linger():
            # A reset_peer toxic present at connection start turns closes into RSTs (Toxiproxy's linger 0).
            for transport in (client, upstream):
                _set_linger_zero(transport)
        chains = self.proxy.toxics
        up_fds = down_fds = None
        if self.proxy.splice:
            client_fd, upstream_fd = self.client.fileno(), self.upstream.fileno()
            if client_fd >= 0 and upstream_fd >= 0:
                up_fds, down_fds = (client_fd, upstream_fd), (upstream_fd, client_fd)
        up = Link(self, Direction.UPSTREAM, client, upstream, chains[Direction.UPSTREAM], self.proxy.link_rng(), up_fds)
        down = Link(
            self, Direction.DOWNSTREAM, upstream, client, chains[Direction.DOWNSTREAM], self.proxy.link_rng(), down_fds
        )
        self.links = {Direction.UPSTREAM: up, Direction.DOWNSTREAM: down}
        self.client.attach(up, down)
        self.upstream.attach(down, up)
        up.start()
        down.start()

    def link_finished(self, link: Link) -> None:
        """One direction closed its destination: end the other direction after its pending data."""
        self.proxy.link_ended(link, self.listen)
        other = self.links[Direction.DOWNSTREAM if link.direction is Direction.UPSTREAM else Direction.UPSTREAM]
        other.feed_eof()
        if all(candidate.finished for candidate in self.links.values()):
            self._forget()

    def side_lost(self, side: _Side) -> None:
        """A socket is gone; once both are, nothing can be delivered any more and the connection is done."""
        side.lost = True
        if side is self.client and not self.links:
            self.close()
        elif self.client.lost and self.upstream.lost:
            # Also ends links stuck in a toxic (e.g. a rate-0 bandwidth) whose sockets are both gone.
            self.close()

    def close(self) -> None:
        """Tear down both sockets at once (proxy disabled/deleted, or a timeout toxic removed)."""
        if self.closed:
            return
        self.closed = True
        for link in self.links.values():
            if not link.finished:
                self.proxy.link_ended(link, self.listen)
            link.stop()
        if self._dial is not None and not self._dial.done():
            self._dial.cancel()
        self._abort_transports()
        self._forget()

    def _abort_transports(self) -> None:
        for side in (self.client, self.upstream):
            if side.transport is not None:
                side.transport.abort()

    def _forget(self) -> None:
        self.closed = True
        self.proxy.connections.discard(self)

    def add_toxic(self, spec: ToxicSpec) -> None:
        """Install a new toxic on this connection's link of its direction."""
        link = self.links.get(spec.direction)
        if link is not None and not link.finished:
            link.add_toxic(spec)

    def update_toxic(self, spec: ToxicSpec) -> None:
        """Restart a toxic with new values on this connection."""
        link = self.links.get(spec.direction)
        if link is not None and not link.finished:
            link.update_toxic(spec)

    def remove_toxic(self, spec: ToxicSpec) -> None:
        """Remove a toxic from this connection."""
        link = self.links.get(spec.direction)
        if link is not None:
            link.remove_toxic(spec.name)


def _set_linger_zero(transport: asyncio.Transport) -> None:
    sock: Any = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Proxy:
    """A named proxy: listen address, upstream, enabled state, toxic chains, live connections."""

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        *,
        rng: random.Random,
        on_link_end: LinkEnded | None = None,
        splice: bool = SPLICE_AVAILABLE,
    ) -> None:
        self.name = name
        self.splice = splice and SPLICE_AVAILABLE
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: dict[Direction, list[ToxicSpec]] = {Direction.UPSTREAM: [], Direction.DOWNSTREAM: []}
        self.connections: set[Connection] = set()
        self._rng = rng
        self._on_link_end = on_link_end
        self._server: asyncio.base_events.Server | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listen address (before returning) and accept connections; ``listen`` becomes the real one."""
        if self.enabled:
            return
        try:
            target = resolve_listen(self.listen)
        except AddressError as exc:
            raise ProxyStartError(f"listen tcp: {exc}") from None
        sock = socket.socket(target.family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if target.family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if target.dual_stack else 1)
            sock.bind((target.host, target.port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            if exc.errno == errno.EADDRNOTAVAIL:
                reason = "cannot assign requested address"
            raise ProxyStartError(f"listen tcp {target.report()}: bind: {reason}") from None
        bound_port = int(sock.getsockname()[1])
        listen = target.report(bound_port)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: Connection(self, listen).client, sock=sock)
        self.listen = listen
        self.enabled = True
        log.info("proxy started", proxy=self.name, listen=self.listen, upstream=self.upstream)

    async def stop(self) -> None:
        """Close the listener and every connection (before returning); toxics are kept."""
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self.connections):
            connection.close()
        if server is not None:
            # Let the loop finish closing the listening socket so new connects are refused at once.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
            await asyncio.sleep(0)

    # -- toxics ------------------------------------------------------------------------------------

    def all_toxics(self) -> list[ToxicSpec]:
        """Upstream chain then downstream chain, each in creation order."""
        return [*self.toxics[Direction.UPSTREAM], *self.toxics[Direction.DOWNSTREAM]]

    def find_toxic(self, name: str) -> ToxicSpec | None:
        """The toxic named ``name`` in either direction."""
        for spec in self.all_toxics():
            if spec.name == name:
                return spec
        return None

    def add_toxic(self, spec: ToxicSpec) -> None:
        """Append to its direction's chain and install on every live connection."""
        self.toxics[spec.direction].append(spec)
        for connection in list(self.connections):
            connection.add_toxic(spec)

    def update_toxic(self, spec: ToxicSpec) -> None:
        """Replace a toxic in place and restart it on every live connection."""
        chain = self.toxics[spec.direction]
        for index, current in enumerate(chain):
            if current.name == spec.name:
                chain[index] = spec
        for connection in list(self.connections):
            connection.update_toxic(spec)

    def remove_toxic(self, spec: ToxicSpec) -> None:
        """Take a toxic out of its chain and off every live connection."""
        chain = self.toxics[spec.direction]
        chain[:] = [current for current in chain if current.name != spec.name]
        for connection in list(self.connections):
            connection.remove_toxic(spec)

    def remove_all_toxics(self) -> None:
        """Remove every toxic, newest first in each direction (as /reset does)."""
        for spec in reversed(self.all_toxics()):
            self.remove_toxic(spec)

    def wants_reset_linger(self) -> bool:
        """Whether a new connection must get linger 0 (a reset_peer toxic is installed)."""
        return any(spec.type is ToxicType.RESET_PEER and spec.toxicity > 0 for spec in self.all_toxics())

    # -- helpers for connections ------------------------------------------------------------------

    def link_rng(self) -> random.Random:
        """A generator for one link's draws, derived from the server's (seeded) generator."""
        return random.Random(self._rng.getrandbits(64))

    def link_ended(self, link: Link, listen: str) -> None:
        """Report a finished link (metrics are counted once per link, at its end)."""
        if self._on_link_end is not None:
            self._on_link_end(self, link, listen)

    def to_json(self) -> dict[str, object]:
        """The Proxy object of the API, keys in Toxiproxy's order."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [spec.to_json() for spec in self.all_toxics()],
        }
