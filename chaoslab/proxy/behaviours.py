"""Toxic behaviours: what each toxic type does to the chunks of one link, and its per-link state.

Each behaviour is a coroutine ``(link, instance, item, emit)``: it receives one chunk (or the end of
the stream) and passes what should go on to ``emit``, which sends it through the rest of the chain.
Waits use :meth:`ToxicInstance.sleep_until`, which an update or a removal interrupts (the held chunk
then goes on at once, as in Toxiproxy).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from chaoslab.proxy.toxics import (
    ToxicSpec,
    ToxicType,
    bandwidth_delay_s,
    bandwidth_pieces,
    jitter_ms,
    slice_sizes,
)


class Eof(Enum):
    """The end-of-stream marker that follows the data through a chain."""

    EOF = "eof"


EOF = Eof.EOF


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes from one socket read and the loop time they arrived (advanced by latency toxics)."""

    data: bytes | memoryview
    arrived_at: float


Item = Chunk | Eof
Emit = Callable[[Item], Awaitable[None]]


class ToxicInstance:
    """A toxic running on one link: its spec, its toxicity draw and its per-link state."""

    __slots__ = ("_waiter", "active", "bandwidth_debt_s", "limit_count", "removed_at", "spec", "timer")

    def __init__(self, spec: ToxicSpec, rng: random.Random) -> None:
        self.spec = spec
        self.active = rng.random() < spec.toxicity
        self.limit_count = 0
        self.bandwidth_debt_s = 0.0
        self.removed_at: int | None = None
        self.timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[bool] | None = None

    async def sleep_until(self, deadline: float | None) -> bool:
        """Wait until loop time ``deadline`` (None = forever); False when interrupted first."""
        loop = asyncio.get_running_loop()
        if deadline is not None and deadline <= loop.time():
            return True
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        handle = loop.call_at(deadline, _finish_waiter, waiter) if deadline is not None else None
        try:
            return await waiter
        finally:
            self._waiter = None
            if handle is not None:
                handle.cancel()

    def interrupt(self) -> None:
        """Release whatever this instance is waiting for (the held chunk goes on at once)."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(False)

    def cancel_timer(self) -> None:
        """Stop a pending timeout timer."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _finish_waiter(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(True)


class LinkControl(Protocol):
    """What a toxic behaviour may do to its link."""

    rng: random.Random

    def close_input(self) -> None:
        """Stop taking data from the source; queued data is dropped."""

    def arm_timeout(self, instance: ToxicInstance) -> None:
        """(Re)start the close timer of a timeout toxic."""


async def _noop(link: LinkControl, instance: ToxicInstance, item: Item, emit: Emit) -> None:
    await emit(item)


async def _latency(link: LinkControl, instance: ToxicInstance, item: Item, emit: Emit) -> None:
    if isinstance(item, Eof):
        await emit(item)
        return
    spec = instance.spec
    delay_ms = spec.attr("latency") + jitter_ms(link.rng, spec.attr("jitter"))
    if delay_ms <= 0:
        await emit(item)
        return
    release_at = item.arrived_at + delay_ms / 1000.0
    await instance.sleep_until(release_at)
    await emit(Chunk(item.data, release_at))


async def _bandwidth(link: LinkControl, instance: ToxicInstance, item: Item, emit: Emit) -> None:
    if isinstance(item, Eof):
        await emit(item)
        return
    rate = instance.spec.attr("rate")
    loop = asyncio.get_running_loop()
    if rate <= 0:
        # Rate 0 stalls the link (Toxiproxy-compatible); an update or removal lets the chunk go.
        await instance.sleep_until(None)
        await emit(item)
        return
    data = item.data
    offset = 0
    for size in bandwidth_pieces(len(data), rate):
        instance.bandwidth_debt_s += bandwidth_delay_s(size, rate)
        started = loop.time()
        completed = await instance.sleep_until(started + instance.bandwidth_debt_s)
        if not completed:
            instance.bandwidth_debt_s = 0.0
            await emit(Chunk(data[offset:], item.arrived_at))
            return
        # Subtract the time really slept, so timer overshoot is paid back by the next piece.
        instance.bandwidth_debt_s -= loop.time() - started
        await emit(Chunk(data[offset : offset + size], item.arrived_at))
        offset += size


async def _slow_close(link: LinkControl, instance: ToxicInstance, item: Item, emit: Emit) -> None:
    if isinstance(item, Eof):
        delay_ms = instance.spec.attr("delay")
        if delay_ms > 0:
            await instance.sleep_until(asyncio.get_running_loop().time() + delay_ms / 1000.0)
    await emit(item)


async def _timeout(link: LinkControl, instance: ToxicInstance, item: Item, emit: Emit) -> None:
    if isinstance(item, Eof):
        await emit(item)
        return
    # Data is dropped while the toxic is active; each chunk restarts the close timer.
    link.arm_timeout(instance)


async def _reset_peer(link: LinkControl, instance: ToxicInstance, item: Item, emit: Emit) -> None:
    link.close_input()
    timeout_ms = instance.spec.attr("timeout")
    if timeout_ms > 0:
        # [chaoslab] interruptible: an update or removal during the wait fires the reset at once.
        await instance.sleep_until(asyncio.get_running_loop().time() + timeout_ms / 1000.0)
    await emit(EOF)


async def _slicer(link: LinkControl, instance: ToxicInstance, item: Item, emit: Emit) -> None:
    if isinstance(item, Eof):
        await emit(item)
        return
    spec = instance.spec
    delay_s = spec.attr("delay") / 1_000_000.0
    sizes = slice_sizes(len(item.data), spec.attr("average_size"), spec.attr("size_variation"), link.rng)
    offset = 0
    loop = asyncio.get_running_loop()
    for index, size in enumerate(sizes):
        await emit(Chunk(item.data[offset : offset + size], item.arrived_at))
        offset += size
        if delay_s > 0 and index < len(sizes) - 1:
            if not await instance.sleep_until(loop.time() + delay_s):
                # Paused mid-chunk: the rest goes on as one piece.
                if offset < len(item.data):
                    await emit(Chunk(item.data[offset:], item.arrived_at))
                return


async def _limit_data(link: LinkControl, instance: ToxicInstance, item: Item, emit: Emit) -> None:
    if isinstance(item, Eof):
        await emit(item)
        return
    limit = instance.spec.attr("bytes")
    remaining = limit - instance.limit_count
    if remaining <= 0:
        link.close_input()
        await emit(EOF)
        return
    if len(item.data) < remaining:
        instance.limit_count += len(item.data)
        await emit(item)
        return
    instance.limit_count += remaining
    link.close_input()
    await emit(Chunk(item.data[:remaining], item.arrived_at))
    await emit(EOF)


RUNNERS: dict[ToxicType, Callable[[LinkControl, ToxicInstance, Item, Emit], Awaitable[None]]] = {
    ToxicType.NOOP: _noop,
    ToxicType.LATENCY: _latency,
    ToxicType.BANDWIDTH: _bandwidth,
    ToxicType.SLOW_CLOSE: _slow_close,
    ToxicType.TIMEOUT: _timeout,
    ToxicType.RESET_PEER: _reset_peer,
    ToxicType.SLICER: _slicer,
    ToxicType.LIMIT_DATA: _limit_data,
}
