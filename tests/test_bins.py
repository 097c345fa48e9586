"""Bin series: bins of a signal as compact bytes, merged per index, round-tripped through JSON."""

from __future__ import annotations

import doctest
import json
import random

import pytest

import chaoslab.bins
from chaoslab.bins import Bin, BinSeries, bins_per_window
from chaoslab.hdr import SparseHistogram, merge_all


def _bins(n: int, seed: int = 1) -> list[Bin]:
    rng = random.Random(seed)
    out = []
    for index in sorted(rng.sample(range(n * 3), n)):
        values = [int(rng.lognormvariate(8.0, 1.0)) for _ in range(rng.randrange(1, 12))]
        errors = rng.randrange(0, len(values) + 1)
        out.append(Bin(index, len(values), errors, SparseHistogram.of(values)))
    return out


class TestBinSeries:
    def test_bins_come_back_as_built(self) -> None:
        """Every bin decodes to what was built; absent bins are None."""
        bins = _bins(200)
        series = BinSeries.build(0.01, bins)
        assert list(series) == bins
        assert series.bin(bins[0].index) == bins[0]
        assert series.bin(-1) is None and len(series) == 200

    def test_records_of_one_bin_add_up(self) -> None:
        """Two records of the same bin (a late answer, a second worker) read as their sum."""
        first = Bin(4, 3, 1, SparseHistogram.of([1000, 2000, 3000]))
        late = Bin(4, 1, 1, SparseHistogram())
        other = BinSeries.build(0.01, [Bin(4, 2, 0, SparseHistogram.of([10, 9000]))])
        merged = BinSeries.build(0.01, [first, late]).merge(other)
        got = merged.bin(4)
        assert got is not None
        assert (got.count, got.errors, got.hist.total, got.hist.max_us) == (6, 2, 5, 9000)
        assert got.hist == SparseHistogram.of([1000, 2000, 3000, 10, 9000])

    def test_span_keeps_gaps(self) -> None:
        """A span lists every index in order, None where nothing was intended."""
        series = BinSeries.build(0.01, [Bin(2, 1, 0, SparseHistogram.of([5])), Bin(4, 1, 1, SparseHistogram.of([7]))])
        assert [b.index if b else None for b in series.span(1, 6)] == [None, 2, None, 4, None]

    def test_json_round_trip_is_compact(self) -> None:
        """The JSON form reads back equal, in a few bytes per latency sample."""
        bins = _bins(1000, seed=9)
        series = BinSeries.build(0.01, bins)
        text = json.dumps(series.to_dict())
        back = BinSeries.from_dict(json.loads(text))
        assert back == series and list(back) == bins
        samples = sum(b.hist.total for b in bins)
        assert len(text) < 4 * samples  # a wide spread of latencies: ~3.4 characters each

    def test_windows_are_merges_of_their_bins(self) -> None:
        """Adding up a window's bins gives the window's histogram."""
        bins = _bins(300, seed=4)
        series = BinSeries.build(0.01, bins)
        k = bins_per_window(1.0)
        window = [b for b in series if b.index // k == 2]
        assert merge_all([b.hist for b in window]) == merge_all([b.hist for b in bins if 200 <= b.index < 300])

    def test_bad_data_is_refused_with_a_reason(self) -> None:
        """Another encoding or data that is not base64 zlib is a ValueError naming it."""
        with pytest.raises(ValueError, match="encoding"):
            BinSeries.from_dict({"bin_s": 0.01, "encoding": "other/9", "data": ""})
        with pytest.raises(ValueError, match="base64 zlib"):
            BinSeries.from_dict({"bin_s": 0.01, "data": "not base64!"})

    def test_merge_refuses_other_bin_sizes(self) -> None:
        """Series of different bin sizes cannot be merged."""
        with pytest.raises(ValueError, match="bin sizes"):
            BinSeries(0.01).merge(BinSeries(0.02))


def test_docstring_examples() -> None:
    """The module's examples run."""
    assert doctest.testmod(chaoslab.bins).failed == 0
