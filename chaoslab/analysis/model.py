"""The values analysis produces: baseline, band, impact, cascade entry, SLO result, verdict, Analysis.

Every value is a frozen dataclass whose ``to_dict`` gives the plain JSON the journal stores under
``analysis`` (docs/reports.md, "The journal") and whose ``from_dict`` reads it back exactly. Numbers are rounded when
the value is built (``ms`` to 3 decimals, times and rates to 6), so a round trip through JSON is
lossless.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chaoslab.analysis.delivery import Delivery
from chaoslab.errors import ExitCode


class Verdict(StrEnum):
    """The outcome of an experiment (docs/analysis.md, "Words")."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    """The harness could not deliver the experiment (load not sent, probes late): no pass or fail."""
    ABORTED = "aborted"
    ERROR = "error"


class BandSource(StrEnum):
    """Where a signal's tolerance band came from."""

    BASELINE = "baseline"
    """Derived from the signal's baseline with the experiment's default ``band``."""
    OVERRIDE = "override"
    """A ``steady_state.bands`` entry matched the signal (fields it sets win over the default)."""
    NO_BASELINE = "no_baseline"
    """No baseline data: no latency limit unless ``p95_max`` is set; error rate judged from zero."""


class Health(StrEnum):
    """How one window of one signal is judged; the characters of the ``health`` strings."""

    HEALTHY = "h"
    DEGRADED = "d"
    NO_DATA = "n"


H = Health.HEALTHY.value
"""The character of a healthy window (a plain ``str``: health strings are scanned in hot loops)."""
D = Health.DEGRADED.value
"""The character of a degraded window."""
N = Health.NO_DATA.value
"""The character of a no-data window."""


def exit_code_for(verdict: Verdict | str, revert_failed: bool = False) -> int:
    """The process exit code of a verdict: a failed revert is 4 whatever the verdict (docs/analysis.md).

    >>> exit_code_for("pass"), exit_code_for("fail"), exit_code_for("inconclusive"), exit_code_for("pass", True)
    (0, 1, 3, 4)
    """
    if revert_failed:
        return int(ExitCode.REVERT_FAILED)
    return int(
        {
            Verdict.PASS: ExitCode.PASS,
            Verdict.FAIL: ExitCode.FAIL,
            Verdict.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
            Verdict.ABORTED: ExitCode.ABORTED,
            Verdict.ERROR: ExitCode.ABORTED,
        }[Verdict(verdict)]
    )


def rnd(value: float | None, digits: int = 6) -> float | None:
    """``value`` rounded for the journal, None kept."""
    return None if value is None else round(float(value), digits)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class BaselineStats:
    """One signal's statistics over the baseline phase (windows with enough samples only)."""

    windows: int
    samples: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    throughput: float | None
    stable: bool
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "windows": self.windows,
            "samples": self.samples,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "error_rate": self.error_rate,
            "throughput": self.throughput,
            "stable": self.stable,
            "warning": self.warning,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            windows=int(data["windows"]),
            samples=int(data["samples"]),
            p50_ms=_opt_float(data.get("p50_ms")),
            p95_ms=_opt_float(data.get("p95_ms")),
            p99_ms=_opt_float(data.get("p99_ms")),
            error_rate=_opt_float(data.get("error_rate")),
            throughput=_opt_float(data.get("throughput")),
            stable=bool(data["stable"]),
            warning=data.get("warning"),
        )


@dataclass(frozen=True, slots=True)
class Band:
    """One signal's tolerance band: a window is healthy when inside both limits."""

    p95_max_ms: float | None
    """None: latency is not judged (no baseline and no ``p95_max``)."""
    error_rate_max: float
    min_samples: int
    source: BandSource

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "p95_max_ms": self.p95_max_ms,
            "error_rate_max": self.error_rate_max,
            "min_samples": self.min_samples,
            "source": self.source.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Band:
        """Inverse of :meth:`to_dict`."""
        return cls(
            p95_max_ms=_opt_float(data.get("p95_max_ms")),
            error_rate_max=float(data["error_rate_max"]),
            min_samples=int(data["min_samples"]),
            source=BandSource(data["source"]),
        )


@dataclass(frozen=True, slots=True)
class SignalImpact:
    """What the fault did to one signal, from the first injection to the end of the run."""

    expected: bool
    time_to_impact_s: float | None
    degraded_windows: int
    peak_p95_ms: float | None
    peak_error_rate: float | None
    first_degraded_s: float | None
    """Start of the first degraded window."""
    last_degraded_s: float | None
    """End of the last degraded window."""
    onset_s: float | None = None
    """When the first degradation began, located to the request (never before the injection)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "expected": self.expected,
            "time_to_impact_s": self.time_to_impact_s,
            "degraded_windows": self.degraded_windows,
            "peak_p95_ms": self.peak_p95_ms,
            "peak_error_rate": self.peak_error_rate,
            "first_degraded_s": self.first_degraded_s,
            "last_degraded_s": self.last_degraded_s,
            "onset_s": self.onset_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignalImpact:
        """Inverse of :meth:`to_dict`."""
        return cls(
            expected=bool(data["expected"]),
            time_to_impact_s=_opt_float(data.get("time_to_impact_s")),
            degraded_windows=int(data["degraded_windows"]),
            peak_p95_ms=_opt_float(data.get("peak_p95_ms")),
            peak_error_rate=_opt_float(data.get("peak_error_rate")),
            first_degraded_s=_opt_float(data.get("first_degraded_s")),
            last_degraded_s=_opt_float(data.get("last_degraded_s")),
            onset_s=_opt_float(data.get("onset_s")),
        )


@dataclass(frozen=True, slots=True)
class CascadeEntry:
    """A signal outside the expected impact that was degraded for a sustained stretch."""

    signal: str
    service: str | None
    onset_s: float
    """When the first sustained degraded stretch began, located to the request."""
    peak_s: float
    """Start of the worst window (relative to the band) between onset and end."""
    peak_p95_ms: float | None
    peak_error_rate: float | None
    end_s: float
    """When the last sustained degraded stretch ended, located to the request."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "signal": self.signal,
            "service": self.service,
            "onset_s": self.onset_s,
            "peak_s": self.peak_s,
            "peak": {"p95_ms": self.peak_p95_ms, "error_rate": self.peak_error_rate},
            "end_s": self.end_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CascadeEntry:
        """Inverse of :meth:`to_dict`."""
        peak = data.get("peak") or {}
        return cls(
            signal=str(data["signal"]),
            service=data.get("service"),
            onset_s=float(data["onset_s"]),
            peak_s=float(data["peak_s"]),
            peak_p95_ms=_opt_float(peak.get("p95_ms")),
            peak_error_rate=_opt_float(peak.get("error_rate")),
            end_s=float(data["end_s"]),
        )


@dataclass(frozen=True, slots=True)
class SloResult:
    """One objective of one SLO on one signal, judged over the fault and recovery windows."""

    signal: str
    objective: str
    """E.g. ``p95 < 500ms`` or ``success ≥ 99.5%``."""
    observed: str
    """E.g. ``2400ms``, ``97.5%`` or ``no data``."""
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"signal": self.signal, "objective": self.objective, "observed": self.observed, "ok": self.ok}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SloResult:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["signal"]), str(data["objective"]), str(data["observed"]), bool(data["ok"]))


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything analysis concludes from one timeline; ``to_dict`` is the journal's ``analysis``."""

    baseline: Mapping[str, BaselineStats]
    bands: Mapping[str, Band]
    health: Mapping[str, str]
    impact: Mapping[str, SignalImpact]
    time_to_impact_s: float | None
    recovery_time_s: float | None
    """Removal → recovery, when recovery came within the budget; else None."""
    recovery_from_injection_s: float | None
    recovered: bool
    recovery_budget_s: float
    stable_for_s: float
    cascade: tuple[CascadeEntry, ...]
    slos: tuple[SloResult, ...]
    warnings: tuple[str, ...]
    verdict: Verdict
    reasons: tuple[str, ...]
    exit_code: int
    revert_failed: bool = field(default=False)
    """Kept to recompute ``exit_code``; not part of ``to_dict`` (the exit code carries it)."""
    removed_at_s: float | None = None
    """The removal: when chaoslab stopped holding the (last) fault; recovery is counted from it."""
    recovered_at_s: float | None = None
    """When the first lasting healthy run began, located to the request — also after the budget."""
    recovery_observed_s: float | None = None
    """``recovered_at_s − removed_at_s`` whether or not within the budget (``recovery_time_s`` is only within)."""
    delivery: Delivery | None = None
    """What the harness delivered per judged phase; a short phase makes the verdict inconclusive."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data with exactly the journal's ``analysis`` keys."""
        return {
            "baseline": {k: v.to_dict() for k, v in self.baseline.items()},
            "bands": {k: v.to_dict() for k, v in self.bands.items()},
            "health": dict(self.health),
            "impact": {k: v.to_dict() for k, v in self.impact.items()},
            "time_to_impact_s": self.time_to_impact_s,
            "recovery_time_s": self.recovery_time_s,
            "recovery_from_injection_s": self.recovery_from_injection_s,
            "recovered": self.recovered,
            "removed_at_s": self.removed_at_s,
            "recovered_at_s": self.recovered_at_s,
            "recovery_observed_s": self.recovery_observed_s,
            "delivery": None if self.delivery is None else self.delivery.to_dict(),
            "recovery_budget_s": self.recovery_budget_s,
            "stable_for_s": self.stable_for_s,
            "cascade": [c.to_dict() for c in self.cascade],
            "slos": [s.to_dict() for s in self.slos],
            "warnings": list(self.warnings),
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Analysis:
        """Inverse of :meth:`to_dict`."""
        exit_code = int(data["exit_code"])
        return cls(
            baseline={str(k): BaselineStats.from_dict(v) for k, v in (data.get("baseline") or {}).items()},
            bands={str(k): Band.from_dict(v) for k, v in (data.get("bands") or {}).items()},
            health={str(k): str(v) for k, v in (data.get("health") or {}).items()},
            impact={str(k): SignalImpact.from_dict(v) for k, v in (data.get("impact") or {}).items()},
            time_to_impact_s=_opt_float(data.get("time_to_impact_s")),
            recovery_time_s=_opt_float(data.get("recovery_time_s")),
            recovery_from_injection_s=_opt_float(data.get("recovery_from_injection_s")),
            recovered=bool(data["recovered"]),
            recovery_budget_s=float(data["recovery_budget_s"]),
            stable_for_s=float(data["stable_for_s"]),
            cascade=tuple(CascadeEntry.from_dict(c) for c in data.get("cascade") or ()),
            slos=tuple(SloResult.from_dict(s) for s in data.get("slos") or ()),
            warnings=tuple(str(w) for w in data.get("warnings") or ()),
            verdict=Verdict(data["verdict"]),
            reasons=tuple(str(r) for r in data.get("reasons") or ()),
            exit_code=exit_code,
            revert_failed=exit_code == int(ExitCode.REVERT_FAILED),
            removed_at_s=_opt_float(data.get("removed_at_s")),
            recovered_at_s=_opt_float(data.get("recovered_at_s")),
            recovery_observed_s=_opt_float(data.get("recovery_observed_s")),
            delivery=None if data.get("delivery") is None else Delivery.from_dict(data["delivery"]),
        )

    @property
    def passed(self) -> bool:
        """Whether the verdict is pass (a failed revert still makes the exit code 4)."""
        return self.verdict is Verdict.PASS
