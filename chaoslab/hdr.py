"""Sparse HDR latency histograms as frozen values, and the compact bytes they are saved as.

The bucket layout is HdrHistogram's with a lowest discernible value of 1 µs: values below
``2 × half`` are exact; above, each power of two is split into ``half`` linear sub-buckets
(``half`` = 1,024 for 3 significant figures). A bucket **index** here is HdrHistogram's
*counts index* for that layout, so a histogram saved by chaoslab converts to HdrHistogram's
by copying ``(index, count)`` pairs. The recorder's ``LatencyHistogram`` records into the
same buckets; this module is the pure half that every layer may import (analysis reads
histograms back from journals and must not import the load generator).

Percentiles report a bucket's highest equivalent value, capped at the exact maximum, exactly
as the recorder's ``LatencyHistogram`` does, so a window rebuilt from saved buckets gives the
same p95 as the window the recorder reduced.

Bytes: unsigned LEB128 varints. A histogram is ``n, then n × (index delta, count)`` (indices
ascending, the first delta from 0), then the maximum as its distance below the top of the
highest bucket (0 for values under 2,048 µs; the maximum itself when empty): about two bytes
per occupied bucket before compression.

>>> h = SparseHistogram.of([1500, 1500, 2000, 250_000])
>>> h.total, h.percentile_us(50), h.percentile_us(100), h.count_above(2000)
(4, 1500, 250000, 1)
>>> SparseHistogram.decode(h.encode()) == h
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_FIGURES = 3
"""Significant figures kept by default (HdrHistogram's usual 3: within 0.1 % of each value)."""

MAX_VALUE_US = 3_600_000_000
"""Values above one hour are clamped (a latency can be no longer than a run)."""


@lru_cache(maxsize=8)
def sub_bucket_bits(figures: int) -> int:
    """Bits of the sub-bucket count for ``figures`` significant figures (11 for 3)."""
    if not 1 <= figures <= 5:
        raise ValueError(f"expected 1..5 significant figures, got {figures}")
    # the smallest power of two that holds 2 × 10^figures, as in HdrHistogram
    return (2 * int(10**figures) - 1).bit_length()


def bucket_index(value_us: int, figures: int = DEFAULT_FIGURES) -> int:
    """The bucket (HdrHistogram counts index) of ``value_us``; negative values count as 0."""
    value_us = min(max(value_us, 0), MAX_VALUE_US)
    bits = sub_bucket_bits(figures)
    shift = value_us.bit_length() - bits
    return value_us if shift <= 0 else shift * (1 << (bits - 1)) + (value_us >> shift)


def highest_equivalent(index: int, figures: int = DEFAULT_FIGURES) -> int:
    """The largest value (µs) that falls into bucket ``index``."""
    half = 1 << (sub_bucket_bits(figures) - 1)
    if index < 2 * half:
        return index
    shift = index // half - 1
    sub = index - shift * half
    return ((sub + 1) << shift) - 1


def wanted_rank(percentile: float, total: int) -> int:
    """How many samples must lie at or below a percentile's value (the recorder's rounding)."""
    return max(1, int(percentile / 100.0 * total + 0.5)) if percentile < 100 else total


def put_varint(out: bytearray, value: int) -> None:
    """Append ``value`` (≥ 0) as an unsigned LEB128 varint."""
    if value < 0:
        raise ValueError(f"varints are unsigned, got {value}")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def get_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it."""
    result = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


@dataclass(frozen=True, slots=True)
class SparseHistogram:
    """Latency counts per bucket (ascending ``(index, count)`` pairs), with the exact maximum."""

    buckets: tuple[tuple[int, int], ...] = ()
    max_us: int = 0
    figures: int = DEFAULT_FIGURES

    @classmethod
    def of(cls, values_us: Iterable[int], figures: int = DEFAULT_FIGURES) -> SparseHistogram:
        """The histogram of some latencies (µs)."""
        counts: dict[int, int] = {}
        top = 0
        for value in values_us:
            value = min(max(int(value), 0), MAX_VALUE_US)
            index = bucket_index(value, figures)
            counts[index] = counts.get(index, 0) + 1
            top = max(top, value)
        return cls(tuple(sorted(counts.items())), top, figures)

    @property
    def total(self) -> int:
        """How many samples."""
        return sum(count for _, count in self.buckets)

    def percentile_us(self, percentile: float) -> int:
        """The value at ``percentile`` (0 when empty), as the recorder reports it."""
        total = self.total
        if total == 0:
            return 0
        wanted = wanted_rank(percentile, total)
        seen = 0
        for index, count in self.buckets:
            seen += count
            if seen >= wanted:
                return min(highest_equivalent(index, self.figures), self.max_us)
        return self.max_us

    def count_above(self, limit_us: float) -> int:
        """Samples whose reported value exceeds ``limit_us`` (a bucket counts as its top, capped at the max)."""
        if self.max_us <= limit_us:
            return 0
        return sum(count for index, count in self.buckets if highest_equivalent(index, self.figures) > limit_us)

    def merge(self, *others: SparseHistogram) -> SparseHistogram:
        """The histogram of every sample of ``self`` and ``others`` (exact; same precision only)."""
        counts = dict(self.buckets)
        top = self.max_us
        for other in others:
            if other.figures != self.figures:
                raise ValueError("cannot merge histograms of different precision")
            for index, count in other.buckets:
                counts[index] = counts.get(index, 0) + count
            top = max(top, other.max_us)
        return SparseHistogram(tuple(sorted(counts.items())), top, self.figures)

    def encode_into(self, out: bytearray) -> None:
        """Append the histogram's bytes (see the module docstring)."""
        put_varint(out, len(self.buckets))
        previous = 0
        for index, count in self.buckets:
            put_varint(out, index - previous)
            put_varint(out, count)
            previous = index
        top = highest_equivalent(previous, self.figures) if self.buckets else 0
        # the maximum lies in the highest bucket, so its distance below that bucket's top is small
        put_varint(out, top - self.max_us if self.buckets else self.max_us)

    def encode(self) -> bytes:
        """The histogram's bytes."""
        out = bytearray()
        self.encode_into(out)
        return bytes(out)

    @classmethod
    def decode_from(
        cls, data: bytes | memoryview, pos: int, figures: int = DEFAULT_FIGURES
    ) -> tuple[SparseHistogram, int]:
        """The histogram at ``pos`` and the position after it."""
        n, pos = get_varint(data, pos)
        buckets: list[tuple[int, int]] = []
        index = 0
        for _ in range(n):
            delta, pos = get_varint(data, pos)
            count, pos = get_varint(data, pos)
            index += delta
            buckets.append((index, count))
        below, pos = get_varint(data, pos)
        max_us = highest_equivalent(index, figures) - below if buckets else below
        return cls(tuple(buckets), max_us, figures), pos

    @classmethod
    def decode(cls, data: bytes, figures: int = DEFAULT_FIGURES) -> SparseHistogram:
        """Inverse of :meth:`encode`."""
        hist, _ = cls.decode_from(data, 0, figures)
        return hist


def merge_all(histograms: Sequence[SparseHistogram], figures: int = DEFAULT_FIGURES) -> SparseHistogram:
    """One histogram of every sample of ``histograms`` (empty when there are none)."""
    if not histograms:
        return SparseHistogram(figures=figures)
    return histograms[0].merge(*histograms[1:])
