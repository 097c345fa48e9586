"""A small HDR (high dynamic range) latency histogram in microseconds, sparse and fast to record into.

The bucket layout is HdrHistogram's: values below ``2 × half`` are exact; above, each power of
two is split into ``half`` linear sub-buckets, so every recorded value is kept to within
``1 / half`` of itself (3 significant figures with the default 1,024). Counts live in a dict
keyed by bucket index: memory follows the number of distinct buckets hit (a few hundred in a
typical window), not the trackable range, and recording costs a few hundred nanoseconds
(the ``hdrh`` package takes ~12 µs per value here, too slow for a 10k req/s generator).
Percentiles report a bucket's highest equivalent value, as HdrHistogram does.
"""

from __future__ import annotations

from collections.abc import Iterator

from chaoslab.hdr import SparseHistogram

MAX_VALUE_US = 3_600_000_000
"""Values above one hour are clamped (a latency can be no longer than the run)."""


class LatencyHistogram:
    """Counts of latencies (integer microseconds) in log-linear buckets, plus the exact max and sum."""

    __slots__ = ("_counts", "_figures", "_half", "_sub_bits", "max_us", "min_us", "sum_us", "total")

    def __init__(self, significant_figures: int = 3) -> None:
        if not 1 <= significant_figures <= 5:
            raise ValueError(f"expected 1..5 significant figures, got {significant_figures}")
        # Smallest power of two that holds 2 × 10^figures, as in HdrHistogram.
        sub_bits: int = (2 * int(10**significant_figures) - 1).bit_length()
        self._figures = significant_figures
        self._sub_bits = sub_bits
        self._half = 1 << (sub_bits - 1)
        self._counts: dict[int, int] = {}
        self.total = 0
        self.sum_us = 0
        self.max_us = 0
        self.min_us = 0

    def record(self, value_us: int, count: int = 1) -> None:
        """Add ``count`` samples of ``value_us`` (negative values count as 0)."""
        if value_us < 0:
            value_us = 0
        elif value_us > MAX_VALUE_US:
            value_us = MAX_VALUE_US
        shift = value_us.bit_length() - self._sub_bits
        index = value_us if shift <= 0 else shift * self._half + (value_us >> shift)
        counts = self._counts
        counts[index] = counts.get(index, 0) + count
        if self.total == 0 or value_us < self.min_us:
            self.min_us = value_us
        self.total += count
        self.sum_us += value_us * count
        if value_us > self.max_us:
            self.max_us = value_us

    def add(self, other: LatencyHistogram) -> None:
        """Merge another histogram with the same precision into this one."""
        if other._sub_bits != self._sub_bits:
            raise ValueError("cannot merge histograms of different precision")
        counts = self._counts
        for index, count in other._counts.items():
            counts[index] = counts.get(index, 0) + count
        if other.total:
            self.min_us = other.min_us if self.total == 0 else min(self.min_us, other.min_us)
        self.total += other.total
        self.sum_us += other.sum_us
        self.max_us = max(self.max_us, other.max_us)

    def reset(self) -> None:
        """Forget every sample (the object can be reused)."""
        self._counts.clear()
        self.total = 0
        self.sum_us = 0
        self.max_us = 0
        self.min_us = 0

    def _highest_equivalent(self, index: int) -> int:
        """The largest value that falls into bucket ``index``."""
        half = self._half
        if index < 2 * half:
            return index
        shift = index // half - 1
        sub = index - shift * half
        return ((sub + 1) << shift) - 1

    def buckets(self) -> Iterator[tuple[int, int]]:
        """``(highest equivalent value in µs, count)`` per non-empty bucket, in value order."""
        for index in sorted(self._counts):
            yield self._highest_equivalent(index), self._counts[index]

    def snapshot(self) -> SparseHistogram:
        """The histogram now, as a frozen value (its buckets are the same indices)."""
        return SparseHistogram(tuple(sorted(self._counts.items())), self.max_us, self._figures)

    def value_at_percentile(self, percentile: float) -> int:
        """The smallest recorded bucket value with at least ``percentile`` % of samples at or below it (0 if empty)."""
        if self.total == 0:
            return 0
        wanted = max(1, int(percentile / 100.0 * self.total + 0.5)) if percentile < 100 else self.total
        seen = 0
        for value, count in self.buckets():
            seen += count
            if seen >= wanted:
                return min(value, self.max_us)
        return self.max_us

    def percentiles(self, *percentiles: float) -> tuple[int, ...]:
        """Several percentiles in one pass over the buckets (``percentiles`` in ascending order)."""
        if self.total == 0:
            return tuple(0 for _ in percentiles)
        wanted = [max(1, int(p / 100.0 * self.total + 0.5)) if p < 100 else self.total for p in percentiles]
        out: list[int] = []
        seen = 0
        it = self.buckets()
        value = 0
        for target in wanted:
            while seen < target:
                value, count = next(it)
                seen += count
            out.append(min(value, self.max_us))
        return tuple(out)

    @property
    def mean_us(self) -> float:
        """The exact mean (0 when empty)."""
        return self.sum_us / self.total if self.total else 0.0

    def __len__(self) -> int:
        return self.total
