"""``analyse``: the whole analysis of one timeline, in the order of docs/analysis.md.

baseline → tolerance bands → health per window → impact → recovery time → cascade → SLOs → verdict.
Pure: the timeline and the experiment in, an :class:`~chaoslab.analysis.model.Analysis` out.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from chaoslab.analysis.bands import band_for
from chaoslab.analysis.baseline import assess_stability, baseline_of
from chaoslab.analysis.cascade import cascade_of, in_onset_order
from chaoslab.analysis.delivery import delivery_of
from chaoslab.analysis.frame import EPS, RunFrame
from chaoslab.analysis.health import health_string, min_samples_for, window_map
from chaoslab.analysis.impact import earliest_impact_s, impact_of
from chaoslab.analysis.locate import Locator
from chaoslab.analysis.model import Analysis, Band, BaselineStats, CascadeEntry, SignalImpact, rnd
from chaoslab.analysis.recovery import Track, recovery_of
from chaoslab.analysis.resources import judge_rss_growth
from chaoslab.analysis.slo import judge_slos
from chaoslab.analysis.verdict import decide
from chaoslab.model.experiment import ExperimentSpec
from chaoslab.timeline import Signal, SignalKind, Timeline


def is_expected(signal: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``signal`` is in the expected impact (patterns are fnmatch patterns)."""
    return any(signal == p or fnmatchcase(signal, p) for p in patterns)


def service_of(signal: Signal) -> str | None:
    """The service a signal belongs to: its own, else guessed from its name (``api:search`` → api)."""
    if signal.service:
        return signal.service
    head, sep, tail = signal.name.partition(":")
    if not sep:
        return None
    return tail if signal.kind is SignalKind.PROBE else head


def analyse(
    timeline: Timeline,
    spec: ExperimentSpec,
    *,
    aborted: str | None = None,
    revert_failed: bool = False,
    error: str | None = None,
) -> Analysis:
    """Judge ``timeline`` against ``spec``: the journal's ``analysis``, verdict and exit code.

    >>> from chaoslab.testing import TimelineBuilder, experiment_spec
    >>> tl = TimelineBuilder().phases(baseline=10, fault=5, recovery=10).fault().signal("api:search", "h" * 25).build()
    >>> analyse(tl, experiment_spec(expected_impact=["api:search"])).verdict.value
    'pass'
    """
    steady = spec.steady_state
    frame = RunFrame.of(timeline)
    warnings: list[str] = []

    baselines: dict[str, BaselineStats] = {}
    bands: dict[str, Band] = {}
    health: dict[str, str] = {}
    impact: dict[str, SignalImpact] = {}
    tracks: list[Track] = []
    cascade: list[CascadeEntry] = []
    windows = {name: window_map(signal) for name, signal in timeline.signals.items()}
    min_samples = {name: min_samples_for(signal, steady.min_samples) for name, signal in timeline.signals.items()}

    for name, signal in timeline.signals.items():
        wmap = windows[name]
        stats = baseline_of(wmap, frame.baseline, min_samples[name], frame.window_s)
        band = band_for(name, stats, steady, min_samples[name])
        stats = assess_stability(name, stats, wmap, frame.baseline, band)
        if stats.warning is not None:
            warnings.append(stats.warning)
        baselines[name], bands[name] = stats, band
        health[name] = health_string(wmap, band, frame.n_windows)
        expected = is_expected(name, spec.expected_impact)
        locator = Locator(signal.bins, band, frame.window_s, probe=signal.kind is SignalKind.PROBE)
        impact[name] = impact_of(wmap, health[name], band, frame, expected, locator)
        tracks.append(Track(name, signal.kind, wmap, health[name], min_samples[name], locator))
        if not expected:
            entry = cascade_of(name, service_of(signal), wmap, health[name], band, frame, steady.sustained, locator)
            if entry is not None:
                cascade.append(entry)

    for pattern in spec.expected_impact if timeline.signals else ():
        if not any(is_expected(name, (pattern,)) for name in timeline.signals):
            warnings.append(f"expected impact {pattern} names no signal in the timeline")
    if frame.injected_s is not None:
        for name, hit in impact.items():
            if hit.expected and hit.degraded_windows == 0:
                warnings.append(f"expected impact on {name} was not observed: the fault had no visible effect on it")

    recovery = recovery_of(tracks, frame, spec.recovery.stable_for)
    recovery_time_s = recovery_from_injection_s = observed_s = recovered_at_s = None
    if recovery is not None and frame.removed_s is not None:
        recovered_at_s = rnd(recovery.at_s)
        observed_s = rnd(max(0.0, recovery.at_s - frame.removed_s))
        if observed_s is not None and observed_s <= spec.recovery.budget + EPS:
            recovery_time_s = observed_s
            if frame.injected_s is not None:
                recovery_from_injection_s = rnd(max(0.0, recovery.at_s - frame.injected_s))

    slos, slo_warnings = judge_slos(steady.slos, windows, min_samples, frame)
    warnings.extend(slo_warnings)
    if steady.max_rss_growth is not None:
        rss_results, rss_warnings = judge_rss_growth(
            timeline.resources, timeline.phase("baseline"), steady.max_rss_growth
        )
        slos = [*slos, *rss_results]
        warnings.extend(rss_warnings)
    delivery = delivery_of(timeline, spec.load.allow_shortfall)
    warnings.extend(delivery.excused())
    ordered = in_onset_order(cascade)
    verdict, reasons, exit_code = decide(
        cascade=ordered,
        recovery_time_s=recovery_time_s,
        recovery_observed_s=observed_s,
        budget_s=spec.recovery.budget,
        stable_for_s=spec.recovery.stable_for,
        slos=slos,
        fault_ran=frame.injected_s is not None,
        has_signals=bool(timeline.signals),
        aborted=aborted,
        error=error,
        revert_failed=revert_failed,
        shortfalls=delivery.shortfalls(),
    )
    return Analysis(
        baseline=baselines,
        bands=bands,
        health=health,
        impact=impact,
        time_to_impact_s=earliest_impact_s(impact),
        recovery_time_s=recovery_time_s,
        recovery_from_injection_s=recovery_from_injection_s,
        recovered=recovery_time_s is not None,
        recovery_budget_s=spec.recovery.budget,
        stable_for_s=spec.recovery.stable_for,
        cascade=ordered,
        slos=tuple(slos),
        warnings=tuple(warnings),
        verdict=verdict,
        reasons=reasons,
        exit_code=exit_code,
        revert_failed=revert_failed,
        removed_at_s=rnd(frame.removed_s),
        recovered_at_s=recovered_at_s,
        recovery_observed_s=observed_s,
        delivery=delivery,
    )


def unjudged(spec: ExperimentSpec, *, error: str, revert_failed: bool = False) -> Analysis:
    """The analysis of a run that could not be analysed: no figures, verdict error, the reason why.

    Nothing is healthy in it and nothing recovered; the exit code is 3 (4 after a failed revert).

    >>> from chaoslab.testing import experiment_spec
    >>> result = unjudged(experiment_spec(), error="analysis failed: ZeroDivisionError()")
    >>> result.verdict.value, result.reasons, result.exit_code
    ('error', ('error: analysis failed: ZeroDivisionError()',), 3)
    """
    verdict, reasons, exit_code = decide(
        cascade=(),
        recovery_time_s=None,
        budget_s=spec.recovery.budget,
        stable_for_s=spec.recovery.stable_for,
        slos=(),
        fault_ran=False,
        has_signals=False,
        error=error,
        revert_failed=revert_failed,
    )
    return Analysis(
        baseline={},
        bands={},
        health={},
        impact={},
        time_to_impact_s=None,
        recovery_time_s=None,
        recovery_from_injection_s=None,
        recovered=False,
        recovery_budget_s=spec.recovery.budget,
        stable_for_s=spec.recovery.stable_for,
        cascade=(),
        slos=(),
        warnings=(),
        verdict=verdict,
        reasons=reasons,
        exit_code=exit_code,
        revert_failed=revert_failed,
    )
