"""Toxic values: types, directions, attributes, validation and the pure cutting rules (slicer, bandwidth).

Everything here is pure: random draws come from a ``random.Random`` passed in.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np


class Direction(Enum):
    """Which way data flows through a toxic: client → server (upstream) or server → client (downstream)."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"

    @classmethod
    def parse(cls, stream: str) -> Direction | None:
        """Case-insensitive parse of a ``stream`` value; None when invalid."""
        try:
            return cls(stream.lower())
        except ValueError:
            return None


class ToxicType(Enum):
    """The registered toxic types and their integer attributes, in the order Toxiproxy prints them."""

    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    SLOW_CLOSE = "slow_close"
    TIMEOUT = "timeout"
    RESET_PEER = "reset_peer"
    SLICER = "slicer"
    LIMIT_DATA = "limit_data"
    NOOP = "noop"

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """Attribute keys of this type (all integers, default 0)."""
        return _ATTRIBUTES[self]


_ATTRIBUTES: dict[ToxicType, tuple[str, ...]] = {
    ToxicType.LATENCY: ("latency", "jitter"),
    ToxicType.BANDWIDTH: ("rate",),
    ToxicType.SLOW_CLOSE: ("delay",),
    ToxicType.TIMEOUT: ("timeout",),
    ToxicType.RESET_PEER: ("timeout",),
    ToxicType.SLICER: ("average_size", "size_variation", "delay"),
    ToxicType.LIMIT_DATA: ("bytes",),
    ToxicType.NOOP: (),
}

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def float32(value: float) -> float:
    """``value`` rounded to float32 and back in its shortest form (Toxiproxy stores toxicity as float32)."""
    return float(str(np.float32(value)))


@dataclass(frozen=True, slots=True)
class ToxicSpec:
    """One toxic as the API sees it: name, type, stream (as sent), toxicity and integer attributes."""

    name: str
    type: ToxicType
    stream: str
    toxicity: float
    attributes: tuple[tuple[str, int], ...]

    @property
    def direction(self) -> Direction:
        """The parsed direction of ``stream``."""
        direction = Direction.parse(self.stream)
        assert direction is not None, "stream validated at creation"
        return direction

    def attr(self, key: str) -> int:
        """An attribute value (0 when unknown)."""
        for name, value in self.attributes:
            if name == key:
                return value
        return 0

    def with_changes(self, attributes: Mapping[str, int], toxicity: float | None) -> ToxicSpec:
        """A copy with attributes merged in and toxicity replaced when given."""
        merged = {**dict(self.attributes), **attributes}
        return replace(
            self,
            attributes=tuple((key, merged[key]) for key in self.type.attribute_names),
            toxicity=self.toxicity if toxicity is None else toxicity,
        )

    def to_json(self) -> dict[str, object]:
        """The Toxic object of the API, keys in Toxiproxy's order."""
        toxicity: float | int = int(self.toxicity) if self.toxicity.is_integer() else self.toxicity
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type.value,
            "stream": self.stream,
            "toxicity": toxicity,
        }


def make_spec(
    name: str, toxic_type: ToxicType, stream: str, toxicity: float, attributes: Mapping[str, int]
) -> ToxicSpec:
    """A spec with every attribute of the type present (zero when not given)."""
    return ToxicSpec(
        name=name,
        type=toxic_type,
        stream=stream,
        toxicity=toxicity,
        attributes=tuple((key, attributes.get(key, 0)) for key in toxic_type.attribute_names),
    )


def validation_error(spec: ToxicSpec) -> str | None:
    """[chaoslab] a message for attribute values the real server crashes or hangs on, else None."""
    if spec.type is ToxicType.BANDWIDTH and spec.attr("rate") < 0:
        return f"bandwidth rate must be >= 0 KB/s (0 stalls the link), got {spec.attr('rate')}"
    if spec.type is ToxicType.SLICER:
        if spec.attr("average_size") <= 0:
            return f"slicer average_size must be > 0 bytes, got {spec.attr('average_size')}"
        if spec.attr("size_variation") < 0:
            return f"slicer size_variation must be >= 0 bytes, got {spec.attr('size_variation')}"
        if spec.attr("delay") < 0:
            return f"slicer delay must be >= 0 microseconds, got {spec.attr('delay')}"
    return None


def jitter_ms(rng: random.Random, jitter: int) -> int:
    """One jitter draw: a uniform integer in [-jitter, jitter-1] ms, 0 when jitter <= 0."""
    if jitter <= 0:
        return 0
    return rng.randrange(-jitter, jitter)


def slice_sizes(length: int, average_size: int, size_variation: int, rng: random.Random) -> list[int]:
    """Piece lengths the slicer cuts a ``length``-byte chunk into, in order (they sum to ``length``).

    A piece no longer than ``average + variation`` stays whole; a longer one is split at its middle
    moved by a uniform offset in [-variation, variation-1]. The split point is kept inside the piece,
    so a variation as large as the average cannot loop (the real server can).
    """
    limit = max(1, average_size + size_variation)
    sizes: list[int] = []
    stack = [length]
    while stack:
        size = stack.pop()
        if size <= limit:
            if size > 0:
                sizes.append(size)
            continue
        offset = rng.randrange(-size_variation, size_variation) if size_variation > 0 else 0
        cut = min(max(size // 2 + offset, 1), size - 1)
        # Right half pushed first so the left half is emitted first.
        stack.append(size - cut)
        stack.append(cut)
    return sizes


def bandwidth_pieces(length: int, rate_kbs: int) -> Iterator[int]:
    """Lengths a bandwidth toxic sends a chunk in: ``rate×100``-byte pieces (one per 100 ms), then the rest."""
    step = rate_kbs * 100
    remaining = length
    while remaining > step:
        yield step
        remaining -= step
    if remaining > 0:
        yield remaining


def bandwidth_delay_s(length: int, rate_kbs: int) -> float:
    """Seconds ``length`` bytes take at ``rate_kbs`` (1 KB = 1000 bytes)."""
    return length / (rate_kbs * 1000.0)
