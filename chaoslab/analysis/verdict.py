"""The verdict and its reasons (docs/analysis.md, "Verdict and exit code").

``error`` (the harness failed) wins over ``aborted`` (a safety stop), which wins over the
hypothesis: pass when there is no cascade, recovery came within budget and every SLO held, else
fail. A timeline in which no fault ran, or with no signals, cannot be judged: ``error``. A run
whose load or probes the harness could not deliver (:mod:`chaoslab.analysis.delivery`) gets no
pass or fail either: ``inconclusive``, exit 3. A failed revert leaves the verdict as it is but
makes the exit code 4.
"""

from __future__ import annotations

from collections.abc import Sequence

from chaoslab.analysis.model import CascadeEntry, SloResult, Verdict, exit_code_for
from chaoslab.units import format_duration

REVERT_FAILED_REASON = "a revert failed: something may still be broken; run `chaoslab rollback`"
INCONCLUSIVE_REASON = "inconclusive: the harness could not deliver the experiment"


def decide(
    *,
    cascade: Sequence[CascadeEntry],
    recovery_time_s: float | None,
    budget_s: float,
    stable_for_s: float,
    slos: Sequence[SloResult],
    fault_ran: bool,
    has_signals: bool,
    aborted: str | None = None,
    error: str | None = None,
    revert_failed: bool = False,
    recovery_observed_s: float | None = None,
    shortfalls: Sequence[str] = (),
) -> tuple[Verdict, tuple[str, ...], int]:
    """The verdict, the reasons for it, and the exit code; ``shortfalls`` lists what the harness failed to deliver."""
    verdict, reasons = _judge(
        cascade=cascade,
        recovery_time_s=recovery_time_s,
        recovery_observed_s=recovery_observed_s,
        budget_s=budget_s,
        stable_for_s=stable_for_s,
        slos=slos,
        fault_ran=fault_ran,
        has_signals=has_signals,
        aborted=aborted,
        error=error,
        shortfalls=shortfalls,
    )
    if revert_failed:
        reasons.append(REVERT_FAILED_REASON)
    return verdict, tuple(reasons), exit_code_for(verdict, revert_failed)


def _judge(
    *,
    cascade: Sequence[CascadeEntry],
    recovery_time_s: float | None,
    recovery_observed_s: float | None,
    budget_s: float,
    stable_for_s: float,
    slos: Sequence[SloResult],
    fault_ran: bool,
    has_signals: bool,
    aborted: str | None,
    error: str | None,
    shortfalls: Sequence[str] = (),
) -> tuple[Verdict, list[str]]:
    if error is not None:
        return Verdict.ERROR, [f"error: {error}"]
    if aborted is not None:
        return Verdict.ABORTED, [f"aborted: {aborted}"]
    if not has_signals:
        return Verdict.ERROR, ["the timeline has no signals: nothing to judge"]
    if not fault_ran:
        return Verdict.ERROR, ["no fault was injected: nothing to judge"]
    if shortfalls:
        return Verdict.INCONCLUSIVE, [INCONCLUSIVE_REASON, *shortfalls]
    failures: list[str] = []
    for entry in cascade:
        failures.append(
            f"cascade: {entry.signal} degraded from {entry.onset_s:.1f}s to {entry.end_s:.1f}s (not in expected impact)"
        )
    budget = format_duration(budget_s)
    if recovery_time_s is None and recovery_observed_s is not None:
        failures.append(f"not recovered within the {budget} budget (recovered after {recovery_observed_s:.1f}s)")
    elif recovery_time_s is None:
        failures.append(f"not recovered within the {budget} budget (no {format_duration(stable_for_s)} of health)")
    broken = [s for s in slos if not s.ok]
    for slo in broken:
        failures.append(f"SLO broken: {slo.signal} {slo.objective} (observed {slo.observed})")
    if failures:
        return Verdict.FAIL, failures
    reasons = ["no cascade", f"recovered in {recovery_time_s:.1f}s (budget {budget})"]
    if slos:
        reasons.append(f"all {len(slos)} SLO objective(s) held")
    return Verdict.PASS, reasons
