"""Properties of analysis over random synthetic runs (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaoslab.analysis import Analysis, Verdict, analyse, exit_code_for
from chaoslab.model.experiment import ExperimentSpec
from chaoslab.testing import TimelineBuilder, experiment_spec, signal_windows
from chaoslab.timeline import Timeline

LOAD = "hhhhhdenl."
PROBE = "hhhhx.d"


@dataclass(frozen=True)
class Run:
    """A random run: window size, phase lengths in windows, and one pattern per signal."""

    window_s: float
    warmup: int
    baseline: int
    fault: int
    recovery: int
    search: str
    documents: str
    probe: str
    budget_s: float
    stable_for_s: float
    sustained_s: float

    @property
    def windows(self) -> int:
        """Total windows."""
        return self.warmup + self.baseline + self.fault + self.recovery

    def timeline(self, shift: int = 0) -> Timeline:
        """The timeline, with ``shift`` extra healthy windows at the start (a longer warm-up)."""
        w = self.window_s
        return (
            TimelineBuilder(window_s=w)
            .phases(
                warmup=(self.warmup + shift) * w,
                baseline=self.baseline * w,
                fault=self.fault * w,
                recovery=self.recovery * w,
            )
            .fault()
            .signal("api:search", "h" * shift + self.search)
            .signal("api:documents", "h" * shift + self.documents)
            .probe("probe:vector", "h" * shift + self.probe)
            .build()
        )

    def spec(self) -> ExperimentSpec:
        """The experiment."""
        return experiment_spec(
            steady_state={"window": self.window_s, "sustained": self.sustained_s},
            recovery={"budget": self.budget_s, "stable_for": self.stable_for_s},
            expected_impact=["api:search"],
        )


@st.composite
def runs(draw: st.DrawFn) -> Run:
    """Random runs with calm baselines and arbitrary fault and recovery phases."""
    warmup = draw(st.integers(0, 3))
    baseline = draw(st.integers(3, 8))
    fault = draw(st.integers(0, 8))
    recovery = draw(st.integers(0, 25))

    def pattern(letters: str) -> str:
        calm = "h" * (warmup + baseline)
        rest = draw(st.text(st.sampled_from(letters), min_size=fault + recovery, max_size=fault + recovery))
        return calm + rest

    return Run(
        window_s=draw(st.sampled_from([0.1, 0.25, 0.5, 1.0])),
        warmup=warmup,
        baseline=baseline,
        fault=fault,
        recovery=recovery,
        search=pattern(LOAD),
        documents=pattern(LOAD),
        probe=pattern(PROBE),
        budget_s=draw(st.sampled_from([0.5, 2.0, 5.0, 30.0])),
        stable_for_s=draw(st.sampled_from([0.1, 1.0, 2.0, 5.0])),
        sustained_s=draw(st.sampled_from([0.1, 1.0, 2.0])),
    )


def check_consistent(run: Run, analysis: Analysis) -> None:
    """Invariants every analysis keeps."""
    n = run.windows
    for health in analysis.health.values():
        assert len(health) == n
        assert set(health) <= {"h", "d", "n"}
    if analysis.recovery_time_s is None:
        assert analysis.recovered is False
        assert analysis.recovery_from_injection_s is None
    else:
        assert analysis.recovered is True
        assert 0.0 <= analysis.recovery_time_s <= run.budget_s + 1e-9
        fault_s = run.fault * run.window_s
        assert analysis.recovery_from_injection_s == pytest.approx(analysis.recovery_time_s + fault_s, abs=1e-6)
    if analysis.time_to_impact_s is not None:
        assert analysis.time_to_impact_s >= 0.0
    onsets = [c.onset_s for c in analysis.cascade]
    assert onsets == sorted(onsets)
    for entry in analysis.cascade:
        assert entry.onset_s <= entry.peak_s < entry.end_s
        assert entry.end_s - entry.onset_s >= run.sustained_s - 1e-9
        assert entry.signal != "api:search"
    clean = not analysis.cascade and analysis.recovered and all(s.ok for s in analysis.slos)
    assert (analysis.verdict is Verdict.PASS) == clean
    assert analysis.exit_code == exit_code_for(analysis.verdict, False)
    assert Analysis.from_dict(analysis.to_dict()) == analysis


class TestProperties:
    """Invariants over random runs."""

    @settings(max_examples=100, deadline=None)
    @given(runs())
    def test_invariants(self, run: Run) -> None:
        """Recovery time is within [0, budget]; cascades are sorted and sustained; a pass is clean."""
        check_consistent(run, analyse(run.timeline(), run.spec()))

    @settings(max_examples=60, deadline=None)
    @given(runs(), st.integers(1, 7))
    def test_shift_moves_times_by_whole_windows(self, run: Run, k: int) -> None:
        """Starting everything k windows later moves onsets, peaks and ends by k × window and nothing else."""
        before = analyse(run.timeline(), run.spec())
        after = analyse(run.timeline(shift=k), run.spec())
        dt = k * run.window_s
        assert [c.signal for c in after.cascade] == [c.signal for c in before.cascade]
        for a, b in zip(after.cascade, before.cascade, strict=True):
            assert a.onset_s == pytest.approx(b.onset_s + dt, abs=1e-6)
            assert a.peak_s == pytest.approx(b.peak_s + dt, abs=1e-6)
            assert a.end_s == pytest.approx(b.end_s + dt, abs=1e-6)
        assert after.recovery_time_s == pytest.approx(before.recovery_time_s, abs=1e-6)
        assert after.time_to_impact_s == pytest.approx(before.time_to_impact_s, abs=1e-6)
        assert after.health == {name: "h" * k + h for name, h in before.health.items()}
        assert after.verdict is before.verdict

    @settings(max_examples=40, deadline=None)
    @given(runs())
    def test_longer_stable_for_never_recovers_sooner(self, run: Run) -> None:
        """Asking for longer health can only delay (or lose) recovery."""
        short = analyse(run.timeline(), run.spec())
        longer = experiment_spec(
            steady_state={"window": run.window_s, "sustained": run.sustained_s},
            recovery={"budget": run.budget_s, "stable_for": run.stable_for_s * 2},
        )
        long = analyse(run.timeline(), longer)
        if long.recovery_time_s is not None:
            assert short.recovery_time_s is not None
            assert short.recovery_time_s <= long.recovery_time_s + 1e-9


@st.composite
def messy_timelines(draw: st.DrawFn) -> Timeline:
    """Timelines as a real run records them: phase edges a little late, percentiles with many decimals.

    Baseline p95s sit near 10 ms and fault p95s near the derived 60 ms limit, so a window can
    land within a thousandth of a millisecond of its band.
    """
    w = draw(st.sampled_from([0.1, 0.25, 1.0]))
    counts = [draw(st.integers(1, 8)) for _ in range(4)]
    late = st.floats(0.0, 0.002 * w, allow_nan=False)
    edges = [0.0]
    for n in counts:
        edges.append(edges[-1] + n * w)
    names = ("warmup", "baseline", "fault", "recovery")
    builder = TimelineBuilder(window_s=w)
    for k, name in enumerate(names):
        builder.phase(name, edges[k] + draw(late), edges[k + 1] + draw(late))
    builder.fault(injected_at_s=edges[2] + draw(late), reverted_at_s=edges[3] + draw(late))
    near = st.floats(-0.002, 0.002, allow_nan=False)
    total = sum(counts)
    for name in ("api:search", "api:documents"):
        windows = []
        for i in range(total):
            centre = 10.0 if i < counts[0] + counts[1] else draw(st.sampled_from([10.0, 60.0]))
            count = draw(st.integers(4, 25))
            windows.append(
                signal_windows(
                    p95_ms=[centre + draw(near) + 1e-7],
                    count=count,
                    errors=draw(st.integers(0, 1)),
                    start_index=i,
                    window_s=w,
                )[0]
            )
        builder.signal(name, windows=windows)
    return builder.duration(edges[-1] + draw(late)).build()


class TestOfflineAgreement:
    """``chaoslab analyse JOURNAL`` recomputes exactly what the run computed."""

    @settings(max_examples=80, deadline=None)
    @given(messy_timelines())
    def test_journal_round_trip_gives_the_same_analysis(self, timeline: Timeline) -> None:
        """Analysing the journal's (rounded) timeline gives the same analysis as the live one."""
        spec = experiment_spec(recovery={"stable_for": "1s"})
        offline = Timeline.from_journal_parts(timeline.to_journal_parts())
        assert analyse(offline, spec).to_dict() == analyse(timeline, spec).to_dict()
