"""The Analysis value: the journal keys, JSON round trip."""

from __future__ import annotations

import json

from chaoslab.analysis import Analysis, analyse
from chaoslab.testing import TimelineBuilder, experiment_spec

KEYS = {
    "baseline",
    "bands",
    "health",
    "impact",
    "time_to_impact_s",
    "recovery_time_s",
    "recovery_from_injection_s",
    "recovered",
    "removed_at_s",
    "recovered_at_s",
    "recovery_observed_s",
    "delivery",
    "recovery_budget_s",
    "stable_for_s",
    "cascade",
    "slos",
    "warnings",
    "verdict",
    "reasons",
    "exit_code",
}


def rich() -> Analysis:
    """An analysis with something in every field: cascade, SLOs, warnings, a failed revert."""
    tl = (
        TimelineBuilder(window_s=0.5)
        .phases(warmup=1, baseline=5, fault=2.5, recovery=6)
        .fault(injected_at_s=6.2, reverted_at_s=8.4)
        .signal("api:search", "hh hhhhhhhhhh ddddd hhhhhhhhhhhh", override={4: {"p95_ms": 40.0}})
        .signal("api:documents", "hh hhhhhhhhhh hhddd dhhhhhhhhhhh", override={15: {"p95_ms": 2400.0}})
        .probe("probe:vector", "hh h.h.h.h.h. xxxxx h.h.h.h.h.h.")
        .build()
    )
    spec = experiment_spec(
        steady_state={"window": "500ms", "slos": [{"signal": "api:documents", "p95": "500ms", "success": "99%"}]},
        recovery={"stable_for": "2s"},
        expected_impact=["api:search", "vector:*"],
    )
    return analyse(tl, spec, revert_failed=True)


class TestToDict:
    """The journal's ``analysis`` object."""

    def test_exact_keys(self) -> None:
        """to_dict has exactly the contract's keys."""
        assert set(rich().to_dict()) == KEYS

    def test_nested_keys(self) -> None:
        """Baseline, band, impact, cascade and SLO entries have the contract's keys."""
        data = rich().to_dict()
        assert set(data["baseline"]["api:search"]) == {
            "windows",
            "samples",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "error_rate",
            "throughput",
            "stable",
            "warning",
        }
        assert set(data["bands"]["api:search"]) == {"p95_max_ms", "error_rate_max", "min_samples", "source"}
        assert set(data["impact"]["api:search"]) == {
            "expected",
            "time_to_impact_s",
            "degraded_windows",
            "peak_p95_ms",
            "peak_error_rate",
            "first_degraded_s",
            "last_degraded_s",
            "onset_s",
        }
        assert set(data["cascade"][0]) == {"signal", "service", "onset_s", "peak_s", "peak", "end_s"}
        assert set(data["cascade"][0]["peak"]) == {"p95_ms", "error_rate"}
        assert set(data["slos"][0]) == {"signal", "objective", "observed", "ok"}

    def test_values_are_plain_json(self) -> None:
        """The dict survives json.dumps / json.loads unchanged."""
        data = rich().to_dict()
        assert json.loads(json.dumps(data)) == data


class TestRoundTrip:
    """from_dict(to_dict(a)) == a."""

    def test_round_trip(self) -> None:
        """Every field, including the failed revert behind exit code 4, comes back equal."""
        analysis = rich()
        assert analysis.exit_code == 4
        assert analysis.cascade and analysis.slos and analysis.warnings
        again = Analysis.from_dict(json.loads(json.dumps(analysis.to_dict())))
        assert again == analysis
        assert again.to_dict() == analysis.to_dict()

    def test_round_trip_of_a_pass(self) -> None:
        """A plain pass round-trips too."""
        tl = (
            TimelineBuilder()
            .phases(baseline=5, fault=2, recovery=6)
            .fault()
            .signal("api:search", "hhhhh dd hhhhhh")
            .build()
        )
        analysis = analyse(tl, experiment_spec(recovery={"stable_for": "2s"}))
        assert Analysis.from_dict(analysis.to_dict()) == analysis


class TestPublicApi:
    """The names other parts import from chaoslab.analysis."""

    def test_all(self) -> None:
        """``__all__`` pins the public names; each is importable."""
        import chaoslab.analysis as analysis_pkg

        assert sorted(analysis_pkg.__all__) == [
            "Analysis",
            "Band",
            "BandSource",
            "BaselineStats",
            "CascadeEntry",
            "Delivery",
            "Health",
            "PhaseDelivery",
            "SignalImpact",
            "SloResult",
            "Verdict",
            "analyse",
            "exit_code_for",
            "unjudged",
        ]
        assert all(hasattr(analysis_pkg, name) for name in analysis_pkg.__all__)
