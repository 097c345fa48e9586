"""One direction of one proxied connection: source socket → toxic chain → destination socket.

A link moves bytes in one of two modes.

- **Splice** (Linux, no toxic acts on the link: none installed, or only noops and toxics that lost
  their toxicity draw): the kernel moves bytes socket → pipe → socket with ``os.splice``
  (:mod:`chaoslab.proxy.splice`); the source's transport is paused and the link watches a duplicate
  of its descriptor instead.
- **Chunked** (a toxic acts, other platforms, ``splice=False``, or a transition): the source protocol feeds
  the link (``feed``/``feed_eof``). With no toxics and nothing pending it writes straight to the
  destination. Otherwise chunks, stamped with their arrival time, go through the current chain in
  order — at once when the link is idle, else from a queue drained by one task.

Switching keeps every byte in order exactly once. A toxic that acts ends splice mode at once, inside
the API call: the bytes still in the pipe (read from the source, not yet taken by the destination)
become one chunk stamped with the time they were read and go through the new chain, toxic included;
everything read afterwards is read by the transport, so every toxic acts on all of it. When no toxic
acts any more, the link returns to splice mode only once its queue is empty and the destination
transport has sent everything it buffered, so no spliced byte can overtake a buffered one. Every
end of stream, socket error and teardown also leaves splice mode first and then follows the
chunked path, so EOF, half-close and reset behave exactly as they do there. Adding, updating or
removing toxics on a live link never loses, duplicates or reorders bytes. What each toxic does is in
:mod:`chaoslab.proxy.behaviours`.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from chaoslab.log import get_logger
from chaoslab.proxy.behaviours import EOF, RUNNERS, Chunk, Item, ToxicInstance
from chaoslab.proxy.splice import PIPES, SPLICE_FLAGS, UNSUPPORTED_ERRNOS, Pipe, splice
from chaoslab.proxy.toxics import Direction, ToxicSpec, ToxicType

if TYPE_CHECKING:
    from collections.abc import Sequence

log = get_logger("proxy.link")

QUEUE_MAX_CHUNKS = 1024
"""Chunks a link buffers before it stops reading its source (Toxiproxy's latency buffer)."""
QUEUE_MAX_BYTES = 32 * 1024 * 1024
"""Bytes a link buffers before it stops reading its source (bounds memory per link)."""


class Transport(Protocol):
    """The part of an asyncio transport a link uses."""

    def write(self, data: bytes | memoryview) -> None:
        """Send bytes (buffering what the socket does not take at once)."""

    def get_write_buffer_size(self) -> int:
        """Bytes buffered and not yet sent."""
        return 0

    def close(self) -> None:
        """Close after the buffered bytes are sent."""

    def abort(self) -> None:
        """Close at once, dropping buffered bytes."""

    def is_closing(self) -> bool:
        """Whether close or abort was called (or the peer is gone)."""
        return False

    def pause_reading(self) -> None:
        """Stop reading from the socket."""

    def resume_reading(self) -> None:
        """Read from the socket again."""

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """(low, high) water marks of the write buffer."""
        return (0, 0)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the water marks: above ``high`` the protocol is paused, at or below ``low`` resumed."""


class LinkOwner(Protocol):
    """What a link tells its connection."""

    def link_finished(self, link: Link) -> None:
        """The link closed its destination; the other direction must end too."""

    def close(self) -> None:
        """Tear the whole connection down (normal close)."""


class Link:
    """Source → toxics → destination for one direction of one connection."""

    def __init__(
        self,
        owner: LinkOwner,
        direction: Direction,
        source: Transport,
        dest: Transport,
        specs: Sequence[ToxicSpec],
        rng: random.Random,
        splice_fds: tuple[int, int] | None = None,
    ) -> None:
        self.owner = owner
        self.direction = direction
        self.source = source
        self.dest = dest
        self.rng = rng
        self.instances: list[ToxicInstance] = []
        self.received_bytes = 0
        self.sent_bytes = 0
        self.reset_on_close = False
        self.finished = False
        self._queue: deque[Item] = deque()
        self._queued_bytes = 0
        self._input_closed = False
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._pause_reasons: set[str] = set()
        # Splice mode: the socket descriptors (None = never splice), duplicates watched while splicing,
        # the pipe holding bytes the destination has not taken yet, and when those bytes were read.
        self._splice_fds = splice_fds
        self._dest_fd = -1 if splice_fds is None else splice_fds[1]  # used only while dest is not closing
        self._free_pipes = PIPES.free
        self.splicing = False
        self._splice_pending: tuple[int, int] | None = None  # destination limits to restore
        self._source_dup: int | None = None
        self._dest_dup: int | None = None  # only while waiting for the destination to be writable
        self._pipe: Pipe | None = None
        self._piped_at = 0.0
        self._toxic_acts = False
        self._started = False
        self.spliced_bytes = 0  # bytes moved socket → socket by splice (part of sent_bytes)
        self.splice_entries = 0  # times the link entered splice mode
        self.handed_over_bytes = 0  # bytes read by splice that left through the chunked path (mode switches)
        for spec in specs:
            self.add_toxic(spec)

    def start(self) -> None:
        """Begin moving data: splice when no toxic acts on the link, else read the source."""
        self._started = True
        self._maybe_splice()
        if not self._pause_reasons and not self.source.is_closing():
            # The source may have been paused before the link existed (bytes read early).
            self.source.resume_reading()

    # -- input side (called by the source protocol) -------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes read from the source."""
        if self._input_closed:
            return
        if self.splicing:
            self._leave_splice()
        self.received_bytes += len(data)
        if not self.instances and not self._busy and not self._queue and self._task is None:
            self._deliver(data)
            return
        self._queue.append(Chunk(data, asyncio.get_running_loop().time()))
        self._queued_bytes += len(data)
        if len(self._queue) >= QUEUE_MAX_CHUNKS or self._queued_bytes >= QUEUE_MAX_BYTES:
            self.set_paused("queue", True)
        self._kick()

    def feed_view(self, view: memoryview) -> bool:
        """Bytes read into a shared buffer; True when something still references it (do not reuse it)."""
        if self._input_closed:
            return False
        if self._busy or self._queue or self._task is not None or self.splicing:
            self.feed(bytes(view))
            return False
        self.received_bytes += len(view)
        if not self.instances:
            if self.dest.is_closing():
                return False
            self.sent_bytes += len(view)
            self.dest.write(view)
            referenced = self.dest.get_write_buffer_size() > 0
            if self._splice_fds is not None and self._splice_pending is None:
                self._maybe_splice()
            return referenced
        return self._run_eagerly(Chunk(view, asyncio.get_running_loop().time()))

    def feed_eof(self) -> None:
        """The source ended (EOF, error or closed): the end follows the data through the chain."""
        if self._input_closed:
            return
        if self.splicing:
            self._leave_splice()
        self._cancel_splice_pending()
        self._input_closed = True
        if not self.instances and not self._busy and not self._queue and self._task is None:
            self._finish()
            return
        self._queue.append(EOF)
        self._kick()

    def set_paused(self, reason: str, paused: bool) -> None:
        """Stop or resume reading the source; reading resumes when no reason is left."""
        before = bool(self._pause_reasons)
        if paused:
            self._pause_reasons.add(reason)
        else:
            self._pause_reasons.discard(reason)
        after = bool(self._pause_reasons)
        if before == after or self.source.is_closing():
            return
        if after:
            self.source.pause_reading()
        else:
            self.source.resume_reading()

    # -- toxic chain changes (called by the API, effective before it answers) ----------------

    def add_toxic(self, spec: ToxicSpec) -> None:
        """Append a toxic at the end of this link's chain (leaving splice mode: the pipe's bytes go through it)."""
        instance = ToxicInstance(spec, self.rng)
        self.instances.append(instance)
        self._start_instance(instance)
        self._chain_changed()
        self._kick()

    def update_toxic(self, spec: ToxicSpec) -> None:
        """Restart the named toxic with new values (held chunk released, toxicity drawn again)."""
        for instance in self.instances:
            if instance.spec.name == spec.name:
                instance.spec = spec
                instance.active = self.rng.random() < spec.toxicity
                instance.interrupt()
                instance.cancel_timer()
                self._start_instance(instance)
                self._chain_changed()
                return

    def remove_toxic(self, name: str) -> None:
        """Take the named toxic out (held chunk released); removing a timeout closes the connection."""
        for index, instance in enumerate(self.instances):
            if instance.spec.name == name:
                instance.removed_at = index
                del self.instances[index]
                instance.interrupt()
                instance.cancel_timer()
                if instance.spec.type is ToxicType.TIMEOUT:
                    self.owner.close()
                self._chain_changed()
                return

    def _chain_changed(self) -> None:
        """Leave splice mode the moment a toxic acts (the pipe's bytes go through it); return when none does."""
        # Noops and toxics that lost their toxicity draw do not change the bytes: they do not stop splicing.
        self._toxic_acts = any(
            instance.active and instance.spec.type is not ToxicType.NOOP for instance in self.instances
        )
        if not self._toxic_acts:
            self._maybe_splice()
            return
        self._cancel_splice_pending()
        if self.splicing:
            self._leave_splice()

    def stop(self) -> None:
        """Drop everything: the connection is going away."""
        self._leave_splice(keep_bytes=False)
        self._splice_pending = None
        self._input_closed = True
        self.finished = True
        self._queue.clear()
        for instance in self.instances:
            instance.interrupt()
            instance.cancel_timer()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # -- internals ----------------------------------------------------------------------------

    def _start_instance(self, instance: ToxicInstance) -> None:
        if instance.spec.type is ToxicType.TIMEOUT and instance.active:
            self.arm_timeout(instance)

    def arm_timeout(self, instance: ToxicInstance) -> None:
        """(Re)start the close timer of a timeout toxic."""
        instance.cancel_timer()
        timeout_ms = instance.spec.attr("timeout")
        if timeout_ms > 0:
            loop = asyncio.get_running_loop()
            instance.timer = loop.call_later(timeout_ms / 1000.0, self._timeout_fired, instance)

    def _timeout_fired(self, instance: ToxicInstance) -> None:
        instance.timer = None
        if self.finished or instance not in self.instances:
            return
        # The timeout toxic drops every chunk anyway: discard what is queued and end the link.
        self._input_closed = True
        self._queue.clear()
        self._queued_bytes = 0
        self._queue.append(EOF)
        self._kick()

    def _kick(self) -> None:
        """Make sure a task drains the queue (unless a chunk is being processed right now)."""
        if self._task is None and self._queue and not self._busy:
            self._task = asyncio.get_running_loop().create_task(self._drain_task())

    def _run_eagerly(self, chunk: Chunk) -> bool:
        """Walk a chunk through the chain now; most toxics finish without waiting, which saves a copy and a task
        switch. If a toxic has to wait, a task takes over the half-run coroutine. True when the chunk's buffer may
        still be referenced afterwards."""
        self._busy = True
        coroutine = self._pass(chunk, 0)
        try:
            yielded = coroutine.send(None)
        except StopIteration:
            self._busy = False
            self._kick()
            referenced = self.dest.get_write_buffer_size() > 0
            if self._splice_fds is not None and self._splice_pending is None:
                self._maybe_splice()
            return referenced
        except (OSError, RuntimeError) as exc:
            self._busy = False
            self._failed(exc)
            return True
        self._task = asyncio.get_running_loop().create_task(self._resume(coroutine, yielded))
        return True

    async def _resume(self, coroutine: Coroutine[Any, Any, None], yielded: Any) -> None:
        """Drive a coroutine started by :meth:`_run_eagerly` to its end, then drain the queue."""
        try:
            while True:
                try:
                    if yielded is None:
                        await asyncio.sleep(0)
                    else:
                        # What the coroutine yielded is an asyncio future it awaits; wait for it in its place.
                        yielded._asyncio_future_blocking = False
                        await yielded
                except asyncio.CancelledError:
                    coroutine.close()
                    raise
                try:
                    yielded = coroutine.send(None)
                except StopIteration:
                    break
                except (OSError, RuntimeError) as exc:
                    self._failed(exc)
                    return
            self._busy = False
            await self._drain()
        finally:
            self._task = None

    async def _drain_task(self) -> None:
        try:
            await self._drain()
        finally:
            self._task = None

    async def _drain(self) -> None:
        """Process queued items in order until the queue is empty."""
        while self._queue and not self.finished:
            item = self._queue.popleft()
            if isinstance(item, Chunk):
                self._queued_bytes -= len(item.data)
                if "queue" in self._pause_reasons and len(self._queue) < QUEUE_MAX_CHUNKS // 2:
                    if self._queued_bytes < QUEUE_MAX_BYTES // 2:
                        self.set_paused("queue", False)
            self._busy = True
            try:
                await self._pass(item, 0)
            except (OSError, RuntimeError) as exc:
                self._failed(exc)
                return
            finally:
                self._busy = False
        if not self._queue:
            # No toxic acts any more and their bytes are out: back to splicing once the destination drains.
            self._maybe_splice()

    def _failed(self, exc: Exception) -> None:
        # A socket that failed under a toxic ends the connection instead of leaving a silent dead task.
        log.info("link failed", direction=self.direction.value, error=str(exc))
        self.owner.close()

    async def _pass(self, item: Item, index: int) -> None:
        """Send ``item`` through the chain from position ``index`` to the destination."""
        if self.finished:
            return
        if index >= len(self.instances):
            if isinstance(item, Chunk):
                self._deliver(item.data)
            else:
                self._finish()
            return
        instance = self.instances[index]

        async def emit(out: Item) -> None:
            await self._pass(out, self._next_index(instance))

        if not instance.active:
            await emit(item)
            return
        await RUNNERS[instance.spec.type](self, instance, item, emit)

    def _next_index(self, instance: ToxicInstance) -> int:
        """Position after ``instance`` in the current chain (where it was, if it has been removed)."""
        if instance.removed_at is not None:
            return instance.removed_at
        for index, candidate in enumerate(self.instances):
            if candidate is instance:
                return index + 1
        return len(self.instances)

    def _deliver(self, data: bytes | memoryview) -> None:
        if self.dest.is_closing():
            return
        self.sent_bytes += len(data)
        self.dest.write(data)

    def close_input(self) -> None:
        """Stop taking data from the source (a toxic ended this link); queued data is dropped."""
        self._input_closed = True
        self._queue.clear()
        self._queued_bytes = 0

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self._input_closed = True
        for instance in self.instances:
            instance.cancel_timer()
        if self.reset_on_close:
            self.dest.abort()
            self.source.abort()
        else:
            self.dest.close()
        self.owner.link_finished(self)

    # -- splice mode ----------------------------------------------------------------------------

    def _splice_blocked(self) -> bool:
        """Whether something other than the destination's write buffer keeps this link off splice mode."""
        return (
            self._splice_fds is None
            or self.splicing
            or self._busy
            or bool(self._queue)
            or self._input_closed
            or self.finished
            or self.source.is_closing()
            or self.dest.is_closing()
            or self._toxic_acts
            or not self._started
        )

    def _maybe_splice(self) -> None:
        """Enter splice mode now, or as soon as the destination transport has sent what it buffers."""
        if self._splice_blocked():
            return
        if self.dest.get_write_buffer_size() == 0:
            self._enter_splice()
            return
        if self._splice_pending is None:
            # Spliced bytes must not overtake buffered ones. High water 0: the transport pauses this link
            # now and calls resume_writing (→ dest_drained) once its buffer is empty.
            self._splice_pending = self.dest.get_write_buffer_limits()
            self.dest.set_write_buffer_limits(high=0, low=0)

    def dest_drained(self) -> None:
        """The destination transport sent everything it buffered (called on its resume_writing)."""
        if self._splice_pending is not None:
            self._cancel_splice_pending()
            self._maybe_splice()

    def dest_lost(self) -> None:
        """The destination socket is gone: stop splicing into it (the bytes in the pipe are lost)."""
        self._splice_pending = None
        self._leave_splice(keep_bytes=False)

    def _cancel_splice_pending(self) -> None:
        limits, self._splice_pending = self._splice_pending, None
        if limits is not None and not self.dest.is_closing():
            low, high = limits
            self.dest.set_write_buffer_limits(high=high, low=low)

    def _enter_splice(self) -> None:
        assert self._splice_fds is not None
        try:
            # The transport owns its descriptor in the loop; a duplicate can be watched beside it.
            self._source_dup = os.dup(self._splice_fds[0])
        except OSError as exc:
            log.info("splice unavailable", direction=self.direction.value, error=str(exc))
            self._splice_fds = None
            return
        self.splicing = True
        self.splice_entries += 1
        self.set_paused("splice", True)
        asyncio.get_running_loop().add_reader(self._source_dup, self._splice_readable)

    def _leave_splice(self, *, keep_bytes: bool = True) -> None:
        """Stop splicing: watchers off, duplicates closed; bytes left in the pipe go on as one chunk."""
        if not self.splicing:
            return
        self.splicing = False
        loop = asyncio.get_running_loop()
        self._unwatch_dest(loop)
        if self._source_dup is not None:
            loop.remove_reader(self._source_dup)
            os.close(self._source_dup)
            self._source_dup = None
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            data = pipe.take() if keep_bytes and not self.dest.is_closing() else b""
            PIPES.put(pipe)
            if data:
                self.handed_over_bytes += len(data)
                self._requeue(Chunk(data, self._piped_at))
        self.set_paused("splice", False)

    def _requeue(self, chunk: Chunk) -> None:
        """Bytes read in splice mode continue on the chunked path (through the chain when there is one)."""
        if self.instances or self._queue or self._busy or self._task is not None:
            self._queue.append(chunk)
            self._queued_bytes += len(chunk.data)
            self._kick()
        else:
            self._deliver(chunk.data)

    def _splice_readable(self) -> None:
        """The source has bytes (or its end): splice them into a pipe and on to the destination.

        The hot path of a link no toxic acts on, hence inlined: two ``splice`` calls and the counters.
        """
        source_fd = self._source_dup
        assert source_fd is not None and self._pipe is None
        free = self._free_pipes
        pipe = free.pop() if free else Pipe()
        try:
            moved = splice(source_fd, pipe.write_fd, pipe.capacity, None, None, SPLICE_FLAGS)
        except BlockingIOError:
            free.append(pipe)
            return
        except OSError as exc:
            free.append(pipe)
            self._splice_failed(exc, reading=True)
            return
        if moved == 0:
            free.append(pipe)
            self.feed_eof()  # leaves splice mode, then ends the link as the chunked path does
            return
        self.received_bytes += moved
        pipe.held = moved
        self._pipe = pipe
        if not self.dest.is_closing():
            try:
                sent = splice(pipe.read_fd, self._dest_fd, moved, None, None, SPLICE_FLAGS)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                self._splice_failed(exc, reading=False)
                return
            self.sent_bytes += sent
            self.spliced_bytes += sent
            if sent == moved:
                pipe.held = 0
                self._pipe = None
                free.append(pipe)
                return
            pipe.held -= sent
        self._splice_flush()

    def _splice_flush(self) -> None:
        """Move the pipe's bytes to the destination; while it is full, wait for it instead of reading."""
        pipe = self._pipe
        assert pipe is not None and self._source_dup is not None
        if self.dest.is_closing():
            # The destination is gone (its transport was closed or failed): what is in the pipe is dropped.
            self._leave_splice(keep_bytes=False)
            return
        before = pipe.held
        try:
            pipe.flush(self._dest_fd)
        except OSError as exc:
            self._count_spliced(before - pipe.held)
            self._splice_failed(exc, reading=False)
            return
        self._count_spliced(before - pipe.held)
        loop = asyncio.get_running_loop()
        if pipe.held == 0:
            self._pipe = None
            PIPES.put(pipe)
            if self._dest_dup is not None:
                self._unwatch_dest(loop)
                loop.add_reader(self._source_dup, self._splice_readable)
            return
        if self._dest_dup is None:
            # First time this pipe's bytes did not fit: they were read just now (their arrival time).
            self._piped_at = loop.time()
            try:
                self._dest_dup = os.dup(self._dest_fd)
            except OSError as exc:
                self._splice_failed(exc, reading=False)
                return
            loop.remove_reader(self._source_dup)
            loop.add_writer(self._dest_dup, self._splice_flush)

    def _count_spliced(self, count: int) -> None:
        self.sent_bytes += count
        self.spliced_bytes += count

    @property
    def piped_bytes(self) -> int:
        """Bytes read from the source that wait in this link's pipe for the destination."""
        return 0 if self._pipe is None else self._pipe.held

    def _unwatch_dest(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop waiting for the destination to be writable (its duplicate is only held while waiting)."""
        if self._dest_dup is not None:
            loop.remove_writer(self._dest_dup)
            os.close(self._dest_dup)
            self._dest_dup = None

    def _splice_failed(self, exc: OSError, *, reading: bool) -> None:
        """A splice call failed: fall back to the chunked path, or fail the socket as its transport would."""
        if exc.errno in UNSUPPORTED_ERRNOS:
            # Nothing moved: these descriptors cannot splice; the chunked path carries on with the same bytes.
            log.info("splice unavailable", direction=self.direction.value, error=str(exc))
            self._leave_splice()
            self._splice_fds = None
            return
        if reading:
            # As the transport does on a read error: abort the source (its connection_lost ends this link).
            self._leave_splice()
            self.source.abort()
        else:
            # As the transport does on a write error: the destination's bytes are lost and it is aborted.
            self._leave_splice(keep_bytes=False)
            self.dest.abort()
