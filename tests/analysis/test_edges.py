"""Edge cases: empty timelines, missing phases, zero-length phases, aborts before the fault, tiny windows."""

from __future__ import annotations

import pytest

from chaoslab.analysis import Verdict, analyse
from chaoslab.testing import TimelineBuilder, experiment_spec
from chaoslab.timeline import Timeline


class TestEmpty:
    """Timelines with nothing to judge."""

    def test_empty_timeline_is_an_error_verdict(self) -> None:
        """No signals and no phases: verdict error (exit 3), nothing crashes."""
        analysis = analyse(Timeline(window_s=1.0, signals={}), experiment_spec())
        assert (analysis.verdict, analysis.exit_code) == (Verdict.ERROR, 3)
        assert analysis.reasons == ("the timeline has no signals: nothing to judge",)
        assert (analysis.health, analysis.cascade, analysis.recovery_time_s) == ({}, (), None)
        assert analysis.warnings == ()

    def test_no_fault_is_an_error_verdict(self) -> None:
        """Signals but no fault phase or fault record: nothing was tested."""
        tl = TimelineBuilder().phases(warmup=2, baseline=10).signal("api:search", "h" * 12).build()
        analysis = analyse(tl, experiment_spec())
        assert (analysis.verdict, analysis.exit_code) == (Verdict.ERROR, 3)
        assert analysis.reasons == ("no fault was injected: nothing to judge",)

    def test_signal_without_windows(self) -> None:
        """A signal with no windows at all is no data everywhere and does not block recovery."""
        tl = (
            TimelineBuilder()
            .phases(baseline=5, fault=2, recovery=6)
            .fault()
            .signal("api:search", "hhhhh dd hhhhhh")
            .signal("api:never", "")
            .build()
        )
        analysis = analyse(tl, experiment_spec())
        assert analysis.health["api:never"] == "nnnnnnnnnnnnn"
        assert analysis.recovery_time_s == 0.0
        assert analysis.verdict is Verdict.PASS

    def test_window_size_must_be_positive(self) -> None:
        """A timeline with a zero window size is refused with a message saying so."""
        with pytest.raises(ValueError, match=r"window_s must be positive, got 0\.0"):
            analyse(Timeline(window_s=0.0, signals={}), experiment_spec())


class TestAborted:
    """Runs stopped early."""

    def test_aborted_before_the_fault_phase(self) -> None:
        """Aborted in the baseline: verdict aborted, no impact, no recovery, baseline still reported."""
        tl = TimelineBuilder().phases(warmup=2, baseline=4).signal("api:search", "hh hhhh").build()
        analysis = analyse(tl, experiment_spec(), aborted="host disk above 98%")
        assert (analysis.verdict, analysis.exit_code) == (Verdict.ABORTED, 3)
        assert analysis.baseline["api:search"].windows == 4
        assert (analysis.time_to_impact_s, analysis.recovery_time_s, analysis.recovered) == (None, None, False)
        assert analysis.impact["api:search"].degraded_windows == 0

    def test_aborted_during_the_fault(self) -> None:
        """Aborted mid-fault with the fault reverted at the abort: recovery is still measured."""
        tl = (
            TimelineBuilder()
            .phases(warmup=2, baseline=10, fault=3, recovery=8)
            .fault()
            .signal("api:search", "hh hhhhhhhhhh xxx hhhhhhhh")
            .build()
        )
        analysis = analyse(tl, experiment_spec(), aborted="error rate of api:search above 90% for 3s")
        assert analysis.verdict is Verdict.ABORTED
        assert analysis.recovery_time_s == 0.0
        assert analysis.impact["api:search"].peak_error_rate == 1.0

    def test_fault_never_reverted(self) -> None:
        """A fault without reverted_at_s is taken as removed at the end of the fault phase."""
        tl = (
            TimelineBuilder()
            .phases(baseline=5, fault=3, recovery=7)
            .fault(never_reverted=True)
            .signal("api:search", "hhhhh ddd dhhhhhh")
            .build()
        )
        assert analyse(tl, experiment_spec(), revert_failed=True).recovery_time_s == 1.0


class TestOddShapes:
    """Unusual but legal phase layouts."""

    def test_zero_length_fault_phase(self) -> None:
        """A fault phase of zero length: injection and removal coincide; recovery from that instant."""
        tl = (
            TimelineBuilder()
            .phases(warmup=0, baseline=5, fault=0, recovery=8)
            .fault()
            .signal("api:search", "hhhhh ddhhhhhh")
            .build()
        )
        analysis = analyse(tl, experiment_spec())
        assert (analysis.time_to_impact_s, analysis.recovery_time_s, analysis.recovery_from_injection_s) == (
            0.0,
            2.0,
            2.0,
        )

    def test_no_recovery_phase_uses_the_rest_of_the_data(self) -> None:
        """Without a recovery phase, windows after the fault phase are still watched."""
        tl = TimelineBuilder().phases(baseline=5, fault=2).fault().signal("api:search", "hhhhh dd dhhhhh").build()
        assert analyse(tl, experiment_spec()).recovery_time_s == 1.0

    def test_tenth_of_a_second_windows(self) -> None:
        """Phase edges that are not exact in binary (0.1 × n) still land on window edges."""
        tl = (
            TimelineBuilder(window_s=0.1)
            .phases(warmup=0.3, baseline=1.0, fault=0.7, recovery=2.0)
            .fault()
            .signal("api:search", "hhh hhhhhhhhhh ddddddd dddhhhhhhhhhhhhhhhhh")
            .signal("api:documents", "hhh hhhhhhhhhh hhddddh hhhhhhhhhhhhhhhhhhhh")
            .build()
        )
        spec = experiment_spec(steady_state={"window": "100ms", "sustained": "300ms"}, recovery={"stable_for": "1s"})
        analysis = analyse(tl, spec)
        assert analysis.baseline["api:search"].windows == 10
        assert analysis.recovery_time_s == 0.3
        assert analysis.recovery_from_injection_s == 1.0
        [entry] = analysis.cascade
        assert (entry.onset_s, entry.end_s) == (1.5, 1.9)

    def test_window_size_from_the_timeline(self) -> None:
        """The timeline's window size is used even when the experiment says another (e.g. --quick)."""
        tl = TimelineBuilder(window_s=0.5).phases(baseline=2, fault=1, recovery=3).fault()
        tl.signal("api:search", "hhhh dd dhhhhh")
        analysis = analyse(tl.build(), experiment_spec(recovery={"stable_for": "2s"}))
        assert analysis.recovery_time_s == 0.5
