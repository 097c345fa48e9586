"""Delivery: a run whose load was not sent, or whose probes could not run on time, gets no verdict."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chaoslab.analysis import Verdict, analyse
from chaoslab.analysis.delivery import Delivery, delivery_of, limits_for
from chaoslab.testing import TimelineBuilder, experiment_spec
from chaoslab.timeline import GeneratorWindow, Signal, Timeline

# windows of 1 s: 0-1 warm-up, 2-11 baseline, 12-16 fault, 17-29 recovery
PHASES = {"warmup": 2, "baseline": 10, "fault": 5, "recovery": 13}
HEALTHY = "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh"


def generator_window(index: int, cause: str | None) -> GeneratorWindow:
    """A generator window of 20 requests, behind for ``cause`` (``lag``, ``cpu``, ``unsent``), else keeping up."""
    return GeneratorWindow(
        index,
        offered=20,
        sent=15 if cause == "unsent" else 20,
        lag_p99_ms=80.0 if cause == "lag" else 1.0,
        cpu_percent=95.0 if cause == "cpu" else 30.0,
        saturated=cause is not None,
    )


def timeline(
    unsent: dict[int, int] | None = None, behind: dict[int, str] | None = None, late: dict[int, int] | None = None
) -> Timeline:
    """A passing run, with ``unsent`` requests per window (of 20), generator windows ``behind``, ``late`` probes."""
    override = {i: {"unsent": n} for i, n in (unsent or {}).items()}
    probe_override = {i: {"offered": 4, "unsent": n} for i, n in (late or {}).items()}
    builder = (
        TimelineBuilder()
        .phases(**PHASES)
        .fault()
        .signal("api:search", HEALTHY, override=override)
        .probe("probe:api", "h" * 30, override=probe_override)
    )
    built = builder.build()
    probe = built.signals["probe:api"]
    windows = tuple(w if w.index in (late or {}) else replace(w, offered=4) for w in probe.windows)
    generator = tuple(generator_window(i, (behind or {}).get(i)) for i in range(30))
    signals = {**built.signals, "probe:api": Signal(probe.name, probe.kind, probe.service, windows)}
    return replace(built, signals=signals, generator=generator)


class TestLimits:
    """When a phase is short."""

    def test_delivered_run_is_judged(self) -> None:
        """Everything sent, the generator keeping up, probes on time: the verdict stands (pass)."""
        analysis = analyse(timeline(), experiment_spec())
        assert analysis.verdict is Verdict.PASS
        assert analysis.delivery is not None and not analysis.delivery.short
        assert [p.phase for p in analysis.delivery.phases] == ["baseline", "fault", "recovery"]
        fault = analysis.delivery.phases[1]
        assert (fault.offered, fault.unsent, fault.windows, fault.probes_due) == (100, 0, 5, 20)

    def test_unsent_over_one_percent_is_inconclusive(self) -> None:
        """2 of the fault phase's 100 requests unsent (2 % > 1 %): inconclusive, exit 3, the figures in the reasons."""
        analysis = analyse(timeline(unsent={13: 2}), experiment_spec())
        assert (analysis.verdict, analysis.exit_code) == (Verdict.INCONCLUSIVE, 3)
        assert analysis.reasons == (
            "inconclusive: the harness could not deliver the experiment",
            "fault phase: 2.0% of 100 offered requests were not sent (limit 1%)",
        )

    def test_one_percent_is_still_judged(self) -> None:
        """1 of 100 unsent is at the limit, not over it."""
        assert analyse(timeline(unsent={13: 1}), experiment_spec()).verdict is Verdict.PASS

    def test_generator_behind_in_most_windows(self) -> None:
        """Behind in 6 of the baseline's 10 windows (lag, CPU, unsent): inconclusive; in 5 of 10, judged."""
        causes = {2: "lag", 3: "lag", 4: "cpu", 5: "cpu", 6: "lag", 7: "lag"}
        analysis = analyse(timeline(behind=causes), experiment_spec())
        assert analysis.verdict is Verdict.INCONCLUSIVE
        assert analysis.reasons[1] == "baseline phase: the load generator fell behind in 6 of 10 windows (limit 50%)"
        del causes[7]
        assert analyse(timeline(behind=causes), experiment_spec()).verdict is Verdict.PASS

    def test_a_short_lag_is_not_falling_behind(self) -> None:
        """A 30 ms lag p99 sets the generator's saturated flag but is under the 50 ms it takes to fall behind."""
        windows = [replace(generator_window(i, "lag"), lag_p99_ms=30.0) for i in range(30)]
        analysis = analyse(replace(timeline(), generator=tuple(windows)), experiment_spec())
        assert analysis.verdict is Verdict.PASS

    def test_one_busy_window_of_two_is_noise(self) -> None:
        """In a phase of two windows, one behind is not a shortfall; both are."""
        builder = TimelineBuilder().phases(warmup=2, baseline=4, fault=2, recovery=6).fault()
        built = builder.signal("api:search", "hh hhhh dd hhhhhh").build()
        one = tuple(generator_window(i, "cpu" if i == 6 else None) for i in range(14))
        two = tuple(generator_window(i, "cpu" if i in (6, 7) else None) for i in range(14))
        assert analyse(replace(built, generator=one), experiment_spec()).verdict is Verdict.PASS
        assert analyse(replace(built, generator=two), experiment_spec()).verdict is Verdict.INCONCLUSIVE

    def test_late_probes(self) -> None:
        """2 of the recovery's 52 probe attempts late (3.8 %) is judged; 4 (7.7 %) is inconclusive."""
        assert analyse(timeline(late={20: 2}), experiment_spec()).verdict is Verdict.PASS
        analysis = analyse(timeline(late={20: 2, 21: 2}), experiment_spec())
        assert analysis.reasons[1] == "recovery phase: 4 of 52 probe attempts could not start on time (limit 5%)"

    def test_one_late_probe_is_noise(self) -> None:
        """One late probe of 4 due in the fault phase (25 %) is not a shortfall; two are."""

        def few_due(late: int) -> Timeline:
            built = timeline(late={13: late})
            probe = built.signals["probe:api"]
            windows = tuple(replace(w, offered=0) if w.index in (12, 14, 15, 16) else w for w in probe.windows)
            signals = {**built.signals, "probe:api": replace(probe, windows=windows)}
            return replace(built, signals=signals)

        assert analyse(few_due(1), experiment_spec()).verdict is Verdict.PASS
        assert analyse(few_due(2), experiment_spec()).verdict is Verdict.INCONCLUSIVE

    def test_a_failing_run_short_of_load_is_not_a_fail(self) -> None:
        """Never recovered, but 10 % unsent in the recovery phase: inconclusive, not fail."""
        builder = TimelineBuilder().phases(**PHASES).fault()
        builder.signal("api:search", "hh hhhhhhhhhh ddddd ddddddddddddd", override={20: {"unsent": 20}})
        analysis = analyse(builder.build(), experiment_spec())
        assert analysis.verdict is Verdict.INCONCLUSIVE
        assert analysis.recovered is False

    def test_aborted_and_error_win(self) -> None:
        """A safety stop or a harness error is reported as such, short of load or not."""
        short = timeline(unsent={13: 50})
        assert analyse(short, experiment_spec(), aborted="host disk full").verdict is Verdict.ABORTED
        assert analyse(short, experiment_spec(), error="boom").verdict is Verdict.ERROR

    def test_warm_up_is_not_judged(self) -> None:
        """Requests unsent during the warm-up do not matter."""
        assert analyse(timeline(unsent={0: 20, 1: 20}), experiment_spec()).verdict is Verdict.PASS


class TestAllowance:
    """``load.allow_shortfall`` states a shortfall the experiment accepts."""

    def test_allowed_shortfall_is_judged_and_reported(self) -> None:
        """70 % allowed: 8 % unsent and behind in 6 of 10 windows are judged, with warnings giving the figures."""
        spec = experiment_spec(load={"allow_shortfall": "70%"})
        behind = dict.fromkeys(range(2, 8), "lag")
        analysis = analyse(timeline(unsent={13: 8}, behind=behind), spec)
        assert analysis.verdict is Verdict.PASS
        assert [w for w in analysis.warnings if "allow_shortfall" in w] == [
            "baseline phase: the load generator fell behind in 6 of 10 windows (limit 50%), "
            "allowed up to 70% by load.allow_shortfall",
            "fault phase: 8.0% of 100 offered requests were not sent (limit 1%), "
            "allowed up to 70% by load.allow_shortfall",
        ]

    def test_beyond_the_allowance(self) -> None:
        """12 % unsent with 10 % allowed is still inconclusive, judged against 10 %."""
        spec = experiment_spec(load={"allow_shortfall": "10%"})
        analysis = analyse(timeline(unsent={13: 12}), spec)
        assert analysis.reasons[1] == "fault phase: 12.0% of 100 offered requests were not sent (limit 10%)"

    def test_allowance_never_lowers_a_limit(self) -> None:
        """``allow_shortfall: 0%`` keeps the defaults."""
        assert limits_for(0.0) == {"unsent": 0.01, "behind": 0.5, "late_probes": 0.05}
        assert limits_for(0.3) == {"unsent": 0.3, "behind": 0.5, "late_probes": 0.3}

    def test_bad_allowance_is_refused(self) -> None:
        """A shortfall above 100 % is not a share."""
        with pytest.raises(ValueError, match="allow_shortfall"):
            experiment_spec(load={"allow_shortfall": "150%"})


def test_round_trip() -> None:
    """Delivery survives the journal."""
    delivery = delivery_of(timeline(unsent={13: 8}, late={20: 3}), 0.05)
    assert Delivery.from_dict(delivery.to_dict()) == delivery
