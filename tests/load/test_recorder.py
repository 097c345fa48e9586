"""The HDR latency histogram and the recorder, on a fake clock."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from hdrh.histogram import HdrHistogram

from chaoslab.clock import RunClock
from chaoslab.hdr import merge_all
from chaoslab.load.histogram import LatencyHistogram
from chaoslab.load.recorder import Recorder
from chaoslab.testing import FakeClock
from chaoslab.timeline import ErrorClass, SignalKind


def _recorder(window_s: float = 1.0, grace_s: float = 10.0) -> tuple[Recorder, FakeClock]:
    base = FakeClock()
    return Recorder(window_s, RunClock(base), grace_s=grace_s), base


class TestLatencyHistogram:
    def test_small_values_are_exact(self) -> None:
        """Values below 2,048 µs are kept exactly: p50 of 1..1000 is 500."""
        hist = LatencyHistogram()
        for v in range(1, 1001):
            hist.record(v)
        assert hist.percentiles(50, 99, 100) == (500, 990, 1000)
        assert (hist.total, hist.max_us, hist.min_us, hist.mean_us) == (1000, 1000, 1, 500.5)

    def test_large_values_within_a_thousandth(self) -> None:
        """A value of 1,234,567 µs is reported within 0.1 %."""
        hist = LatencyHistogram()
        hist.record(1_234_567)
        hist.record(10)
        assert hist.value_at_percentile(99.0) == 1_234_567  # capped at the exact max
        hist.record(1_234_567 * 2)
        assert hist.value_at_percentile(66.0) == pytest.approx(1_234_567, rel=1e-3)

    def test_matches_hdrhistogram(self) -> None:
        """On 20,000 log-normal latencies, percentiles agree with the hdrh package to 0.1 %."""
        rng = random.Random(5)
        ours = LatencyHistogram(3)
        theirs = HdrHistogram(1, 3_600_000_000, 3)
        for _ in range(20_000):
            v = int(rng.lognormvariate(8.0, 1.5))
            ours.record(v)
            theirs.record_value(v)
        for p in (50.0, 90.0, 99.0, 99.9):
            assert ours.value_at_percentile(p) == pytest.approx(theirs.get_value_at_percentile(p), rel=1e-3)

    def test_merge_adds_counts(self) -> None:
        """Merging two histograms gives the same percentiles as recording everything into one."""
        a, b, both = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
        for v in range(0, 100_000, 7):
            (a if v % 2 else b).record(v)
            both.record(v)
        a.add(b)
        assert a.percentiles(50, 95, 99) == both.percentiles(50, 95, 99)
        assert (a.total, a.max_us, a.min_us) == (both.total, both.max_us, 0)

    def test_negative_and_huge_values_are_clamped(self) -> None:
        """A negative latency counts as 0 and one above an hour as one hour."""
        hist = LatencyHistogram()
        hist.record(-5)
        hist.record(10**12)
        assert (hist.min_us, hist.max_us) == (0, 3_600_000_000)

    def test_empty_histogram_reports_zero(self) -> None:
        """An empty histogram's percentiles and mean are 0."""
        assert LatencyHistogram().percentiles(50, 99) == (0, 0)
        assert LatencyHistogram().mean_us == 0.0


class TestRecorder:
    def test_latency_is_from_intended_time(self) -> None:
        """A request meant for 0.5 s that finished at 0.75 s has a 250 ms latency in window 0."""
        recorder, _ = _recorder()
        recorder.record("api:search", 0.5, 0.75, None)
        window = recorder.signals()["api:search"].windows[0]
        assert (window.index, window.count, window.ok, window.p99_ms) == (0, 1, 1, 250.0)

    def test_window_is_chosen_by_intended_time(self) -> None:
        """A request meant for 0.9 s that finishes at 2.1 s belongs to window 0, not 2."""
        recorder, _ = _recorder()
        recorder.record("s", 0.9, 2.1, None)
        assert [w.index for w in recorder.signals()["s"].windows] == [0]

    def test_errors_are_counted_by_class(self) -> None:
        """Two timeouts and one 5xx out of five attempts give an error rate of 0.6."""
        recorder, _ = _recorder()
        for error in (None, ErrorClass.TIMEOUT, ErrorClass.TIMEOUT, ErrorClass.HTTP_5XX, None):
            recorder.record("s", 1.1, 1.2, error)
        window = recorder.signals()["s"].windows[0]
        assert dict(window.errors) == {"timeout": 2, "http_5xx": 1}
        assert (window.count, window.ok, window.error_rate) == (5, 2, 0.6)

    def test_offered_and_unsent(self) -> None:
        """Three requests due in window 2, one not sent, show offered 3 and unsent 1."""
        recorder, _ = _recorder()
        for sent in (True, True, False):
            recorder.offered("s", 2.5, sent=sent)
        window = recorder.signals()["s"].windows[0]
        assert (window.index, window.offered, window.unsent, window.count) == (2, 3, 1, 0)

    def test_percentiles_per_window(self) -> None:
        """Latencies 1..100 ms in one window give p50 50, p95 95, p99 99, max 100 and mean 50.5 ms."""
        recorder, _ = _recorder()
        for ms in range(1, 101):
            recorder.record("s", 3.0, 3.0 + ms / 1000, None)
        w = recorder.signals()["s"].windows[0]
        assert (w.p50_ms, w.p95_ms, w.p99_ms, w.max_ms, w.mean_ms) == pytest.approx((50, 95, 99, 100, 50.5), rel=1e-3)

    def test_tenth_of_a_second_windows(self) -> None:
        """With 0.1 s windows, requests at 0.05 s and 0.15 s land in windows 0 and 1."""
        recorder, _ = _recorder(window_s=0.1)
        recorder.record("s", 0.05, 0.06, None)
        recorder.record("s", 0.15, 0.16, None)
        assert [(w.index, w.start_s) for w in recorder.signals()["s"].windows] == [(0, 0.0), (1, pytest.approx(0.1))]

    def test_latest_is_the_last_complete_window(self) -> None:
        """At 3.2 s the latest window is window 2; a signal with nothing in it reports an empty window."""
        recorder, _ = _recorder()
        recorder.record("a", 2.1, 2.2, None)
        recorder.record("b", 0.1, 0.2, None)
        latest = recorder.latest(3.2)
        assert (latest["a"].index, latest["a"].count) == (2, 1)
        assert (latest["b"].index, latest["b"].count, latest["b"].p99_ms) == (2, 0, None)

    def test_probe_signals_keep_kind_and_service(self) -> None:
        """A probe attempt creates a PROBE signal with its service."""
        recorder, _ = _recorder()
        recorder.record("probe:api", 0.0, 0.01, ErrorClass.CHECK, kind=SignalKind.PROBE, service="api")
        signal = recorder.signals()["probe:api"]
        assert (signal.kind, signal.service, dict(signal.windows[0].errors)) == (SignalKind.PROBE, "api", {"check": 1})

    def test_declared_signal_appears_without_samples(self) -> None:
        """A declared signal is listed with no windows before its first sample."""
        recorder, _ = _recorder()
        recorder.declare("api:search", service="api")
        signal = recorder.signals()["api:search"]
        assert (signal.windows, signal.service) == ((), "api")

    def test_upto_limits_windows(self) -> None:
        """``signals(upto_s=2.0)`` leaves out windows starting at 2 s or later."""
        recorder, _ = _recorder()
        for t in (0.5, 1.5, 2.5):
            recorder.record("s", t, t, None)
        assert [w.index for w in recorder.signals(upto_s=2.0)["s"].windows] == [0, 1]

    def test_windows_close_after_the_grace(self) -> None:
        """Windows are reduced once ``grace_s`` has passed after them; their stats stay the same."""
        recorder, clock = _recorder(grace_s=2.0)
        for i in range(10):
            recorder.record("s", i + 0.5, i + 0.6, None)
        assert recorder.open_windows() == 3  # windows 7, 8 and 9 may still get answers at 9.6 s
        clock.advance(100.0)
        signals = recorder.signals()
        assert recorder.open_windows() == 0
        assert [w.p99_ms for w in signals["s"].windows] == pytest.approx([100.0] * 10, rel=1e-3)

    def test_late_answer_is_counted_not_lost(self) -> None:
        """An answer for a closed window is added to its counts and to ``late``."""
        recorder, _ = _recorder(grace_s=1.0)
        recorder.record("s", 0.5, 0.6, None)
        recorder.record("s", 5.5, 5.6, None)  # closes window 0
        recorder.record("s", 0.7, 9.0, ErrorClass.TIMEOUT)
        window = recorder.signals()["s"].windows[0]
        assert (window.count, dict(window.errors), recorder.late) == (2, {"timeout": 1}, 1)

    def test_expect_latency_raises_the_grace(self) -> None:
        """Expecting 30 s answers with 1 s windows keeps windows open for 31 s."""
        recorder, _ = _recorder(grace_s=10.0)
        recorder.expect_latency_up_to(30.0)
        assert recorder.grace_s == 31.0

    def test_memory_is_bounded_over_a_long_run(self) -> None:
        """An hour of 1 s windows at 5 requests per window grows memory by less than 4 MiB."""
        recorder, _ = _recorder(grace_s=5.0)
        rng = random.Random(1)
        tracemalloc.start()
        try:
            for second in range(3600):
                for k in range(5):
                    t = second + k / 5
                    recorder.record("api:search", t, t + rng.expovariate(50.0), None)
            current, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert recorder.open_windows() <= 7
        assert current < 4 * 1024 * 1024


class TestBins:
    def test_an_attempt_goes_into_the_bin_of_its_intended_time(self) -> None:
        """At 1 s windows (100 bins of 10 ms) a request meant for 2.3125 s is in bin 231, with its latency."""
        recorder, _ = _recorder()
        recorder.record("s", 2.3125, 2.375, ErrorClass.HTTP_5XX)
        bins = recorder.signals()["s"].bins
        assert bins is not None and bins.bin_s == pytest.approx(0.01)
        item = bins.bin(231)
        assert item is not None
        assert (item.count, item.errors, item.hist.percentile_us(100)) == (1, 1, 62_500)

    def test_bins_tile_windows_exactly(self) -> None:
        """Adding up a window's bins gives its count, errors, p50/p95/p99 and max, closed or open, late answers too."""
        recorder, clock = _recorder(window_s=0.25, grace_s=1.0)
        rng = random.Random(4)
        for i in range(4000):
            intended = i * 0.005
            done = intended + rng.expovariate(1 / 0.03)
            error = ErrorClass.TIMEOUT if rng.random() < 0.05 else None
            clock.set(done)
            recorder.record("s", intended, done, error)
        recorder.record("s", 0.1, 30.0, ErrorClass.TIMEOUT)  # a late answer for a closed window
        signal = recorder.signals()["s"]
        assert signal.bins is not None
        k = recorder.bins_per_window
        for window in signal.windows:
            parts = [b for b in signal.bins.span(window.index * k, (window.index + 1) * k) if b is not None]
            merged = merge_all([b.hist for b in parts])
            assert sum(b.count for b in parts) == window.count
            assert sum(b.errors for b in parts) == window.error_count
            got = tuple(merged.percentile_us(p) / 1000 for p in (50, 95, 99, 100))
            assert got == (window.p50_ms, window.p95_ms, window.p99_ms, window.max_ms), window.index

    def test_no_bins_before_bins_from(self) -> None:
        """Attempts intended before ``bins_from_s`` are in windows only; ``bins_from_s=None`` keeps none."""
        base = FakeClock()
        recorder = Recorder(1.0, RunClock(base), bins_from_s=5.0)
        recorder.record("s", 4.99, 5.0, None)
        recorder.record("s", 5.015, 5.02, None)
        bins = recorder.signals()["s"].bins
        assert bins is not None and bins.indices() == [501]
        none = Recorder(1.0, RunClock(base), bins_from_s=None)
        none.record("s", 1.0, 1.1, None)
        assert none.signals()["s"].bins is None

    def test_upto_limits_bins(self) -> None:
        """``signals(upto_s=2.0)`` leaves out the bins of windows starting at 2 s or later, closed or open."""
        recorder, clock = _recorder(grace_s=1.0)
        for t in (0.5, 1.5, 2.5, 6.5):
            clock.set(t)
            recorder.record("s", t, t, None)
        assert recorder.signals(upto_s=2.0)["s"].bins.indices() == [50, 150]  # type: ignore[union-attr]
        assert recorder.signals(upto_s=7.0)["s"].bins.indices() == [50, 150, 250, 650]  # type: ignore[union-attr]
