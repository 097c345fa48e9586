"""Sparse HDR histograms: the recorder's bucket layout, percentiles, merges and bytes."""

from __future__ import annotations

import doctest
import random

import pytest
from hdrh.histogram import HdrHistogram

import chaoslab.hdr
from chaoslab.hdr import SparseHistogram, bucket_index, get_varint, highest_equivalent, merge_all, put_varint
from chaoslab.load.histogram import LatencyHistogram


def _recorded(values: list[int]) -> LatencyHistogram:
    hist = LatencyHistogram()
    for value in values:
        hist.record(value)
    return hist


class TestLayout:
    def test_same_buckets_as_the_recorder(self) -> None:
        """Every value lands in the bucket the recorder's LatencyHistogram uses, with the same top value."""
        rng = random.Random(3)
        values = [rng.randrange(0, 10**9) for _ in range(2000)] + list(range(0, 5000))
        hist = _recorded(values)
        ours = SparseHistogram.of(values)
        assert ours.buckets == tuple(sorted(hist._counts.items()))
        assert [highest_equivalent(i) for i, _ in ours.buckets] == [v for v, _ in hist.buckets()]

    def test_index_is_hdrhistograms_counts_index(self) -> None:
        """A bucket index is HdrHistogram's counts index for a lowest value of 1 µs and 3 figures."""
        theirs = HdrHistogram(1, 3_600_000_000, 3)
        for value in (0, 1, 2047, 2048, 2049, 4095, 4096, 123_456, 9_876_543, 3_600_000_000):
            assert bucket_index(value) == theirs._counts_index_for(value), value

    def test_small_values_are_exact(self) -> None:
        """Below 2,048 µs a bucket holds one value."""
        assert [highest_equivalent(bucket_index(v)) for v in (0, 1, 999, 2047)] == [0, 1, 999, 2047]


class TestPercentiles:
    def test_percentiles_match_the_recorder(self) -> None:
        """On 5,000 log-normal latencies the percentiles equal the recorder's, exactly."""
        rng = random.Random(11)
        values = [int(rng.lognormvariate(9.0, 1.2)) for _ in range(5000)]
        hist = _recorded(values)
        ours = SparseHistogram.of(values)
        for p in (50.0, 95.0, 99.0, 100.0):
            assert ours.percentile_us(p) == hist.value_at_percentile(p), p

    def test_count_above_decides_the_p95_against_a_limit(self) -> None:
        """p95 > limit exactly when more than total − rank(95) samples are above the limit."""
        rng = random.Random(2)
        for _ in range(300):
            values = [int(rng.lognormvariate(8.5, 1.0)) for _ in range(rng.randrange(1, 60))]
            hist = SparseHistogram.of(values)
            limit = rng.choice(values) + rng.randrange(-50, 50)
            over = hist.count_above(limit) > hist.total - chaoslab.hdr.wanted_rank(95.0, hist.total)
            assert over == (hist.percentile_us(95.0) > limit)

    def test_empty(self) -> None:
        """An empty histogram has no samples, p95 0 and nothing above any limit."""
        empty = SparseHistogram()
        assert (empty.total, empty.percentile_us(95), empty.count_above(0)) == (0, 0, 0)


class TestMergeAndBytes:
    def test_merge_is_exact(self) -> None:
        """Merged parts equal the histogram of all values."""
        rng = random.Random(7)
        values = [rng.randrange(0, 2_000_000) for _ in range(3000)]
        parts = [SparseHistogram.of(values[i::3]) for i in range(3)]
        assert merge_all(parts) == SparseHistogram.of(values)
        assert merge_all([]) == SparseHistogram()

    def test_merge_refuses_other_precision(self) -> None:
        """Histograms of different significant figures cannot be added."""
        with pytest.raises(ValueError, match="precision"):
            SparseHistogram.of([5], figures=3).merge(SparseHistogram.of([5], figures=2))

    def test_bytes_round_trip(self) -> None:
        """Decoding the bytes gives back the same histogram; a typical window takes ~2 bytes per bucket."""
        rng = random.Random(5)
        hist = SparseHistogram.of(int(rng.lognormvariate(8.0, 0.5)) for _ in range(400))
        data = hist.encode()
        assert SparseHistogram.decode(data) == hist
        assert len(data) <= 3 * len(hist.buckets) + 8

    def test_varints(self) -> None:
        """Unsigned LEB128 round trip; negative values are refused."""
        out = bytearray()
        for value in (0, 1, 127, 128, 300, 2**40):
            put_varint(out, value)
        pos, seen = 0, []
        while pos < len(out):
            value, pos = get_varint(out, pos)
            seen.append(value)
        assert seen == [0, 1, 127, 128, 300, 2**40]
        with pytest.raises(ValueError):
            put_varint(out, -1)


def test_docstring_examples() -> None:
    """The module's examples run."""
    assert doctest.testmod(chaoslab.hdr).failed == 0
