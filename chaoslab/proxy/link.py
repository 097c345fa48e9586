"""One direction of one proxied connection: source socket → toxic chain → destination socket.

A link is fed by its source protocol (``feed``/``feed_eof``). With no toxics and nothing pending it
writes straight to the destination (the fast path). Otherwise chunks, stamped with their arrival
time, go through the current chain in order — at once when the link is idle, else from a queue
drained by one task — so adding, updating or removing toxics on a live link never loses,
duplicates or reorders bytes. What each toxic does is in :mod:`chaoslab.proxy.behaviours`.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from chaoslab.log import get_logger
from chaoslab.proxy.behaviours import EOF, RUNNERS, Chunk, Item, ToxicInstance
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
        for spec in specs:
            self.add_toxic(spec)

    # -- input side (called by the source protocol) -------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes read from the source."""
        if self._input_closed:
            return
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
        if self._busy or self._queue or self._task is not None:
            self.feed(bytes(view))
            return False
        self.received_bytes += len(view)
        if not self.instances:
            if self.dest.is_closing():
                return False
            self.sent_bytes += len(view)
            self.dest.write(view)
            return self.dest.get_write_buffer_size() > 0
        return self._run_eagerly(Chunk(view, asyncio.get_running_loop().time()))

    def feed_eof(self) -> None:
        """The source ended (EOF, error or closed): the end follows the data through the chain."""
        if self._input_closed:
            return
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
        """Append a toxic at the end of this link's chain."""
        instance = ToxicInstance(spec, self.rng)
        self.instances.append(instance)
        self._start_instance(instance)
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
                return

    def stop(self) -> None:
        """Drop everything: the connection is going away."""
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
            return self.dest.get_write_buffer_size() > 0
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
