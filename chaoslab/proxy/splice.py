"""Zero-copy forwarding for links that no toxic acts on: socket → pipe → socket with ``os.splice`` (Linux).

The kernel moves the pages from the source socket into a pipe and from the pipe into the destination
socket; no byte is copied into Python. A pipe is only needed while it holds bytes, so empty pipes
are shared through a per-thread pool and a link keeps one only while its destination cannot take
everything at once. Everything here is plain descriptor work; when to splice is decided by
:class:`~chaoslab.proxy.link.Link`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
from types import ModuleType

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no pipes to size, and no splice anyway
    fcntl = None

SPLICE_AVAILABLE = sys.platform.startswith("linux") and hasattr(os, "splice")
"""Whether this platform has ``os.splice`` (Linux, Python ≥ 3.10); elsewhere links always use the chunked path."""

PIPE_BYTES = 1024 * 1024
"""Pipe capacity asked for (Linux's default ``pipe-max-size``); the kernel may grant less."""
POOL_MAX_PIPES = 8
"""Empty pipes kept for reuse per thread; more are closed when they come back."""

UNSUPPORTED_ERRNOS = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF})
"""Errors meaning "splice cannot be used on these descriptors" (no byte moved): fall back to the chunked path."""

SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
"""Move pages rather than copy where the kernel can; never block on the pipe."""


def _no_splice(*args: object) -> int:
    raise OSError(errno.ENOSYS, "os.splice is not available on this platform")


splice = getattr(os, "splice", _no_splice)
"""``os.splice`` (positional arguments: src, dst, count, offset_src, offset_dst, flags)."""


class Pipe:
    """A non-blocking pipe and the number of bytes it holds."""

    __slots__ = ("capacity", "held", "read_fd", "write_fd")

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.held = 0
        self.capacity = _grow(self.write_fd)

    def flush(self, dest_fd: int) -> int:
        """Move held bytes into the destination socket until it is full or the pipe is empty; bytes moved.

        Raises ``OSError`` on a socket error (``held`` already accounts for what moved before it).
        """
        moved = 0
        while self.held > 0:
            try:
                count = splice(self.read_fd, dest_fd, self.held, None, None, SPLICE_FLAGS)
            except BlockingIOError:
                break
            if count == 0:
                break
            self.held -= count
            moved += count
        return moved

    def take(self) -> bytes:
        """Read every held byte out of the pipe (the pipe is empty afterwards)."""
        parts: list[bytes] = []
        while self.held > 0:
            try:
                data = os.read(self.read_fd, self.held)
            except BlockingIOError:
                break
            if not data:
                break
            parts.append(data)
            self.held -= len(data)
        return b"".join(parts)

    def close(self) -> None:
        """Close both ends (held bytes are discarded)."""
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.held = 0


def _grow(write_fd: int) -> int:
    """Ask for a :data:`PIPE_BYTES` pipe; the capacity actually granted."""
    if fcntl is None:
        return 64 * 1024
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    get_size = getattr(fcntl, "F_GETPIPE_SZ", None)
    if set_size is not None:
        # Refused above pipe-max-size or past the per-user pipe budget: the default size still works.
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_fd, set_size, PIPE_BYTES)
    if get_size is not None:
        with contextlib.suppress(OSError):
            return int(fcntl.fcntl(write_fd, get_size))
    return 64 * 1024


class PipePool(threading.local):
    """Empty pipes shared by every link of a thread: a link borrows one for a read and returns it once empty."""

    def __init__(self) -> None:
        self.free: list[Pipe] = []

    def get(self) -> Pipe:
        """An empty pipe."""
        return self.free.pop() if self.free else Pipe()

    def put(self, pipe: Pipe) -> None:
        """Give a pipe back: kept when empty and the pool has room, else closed."""
        if pipe.held == 0 and len(self.free) < POOL_MAX_PIPES:
            self.free.append(pipe)
        else:
            pipe.close()


PIPES = PipePool()
"""The pool of the current thread."""
