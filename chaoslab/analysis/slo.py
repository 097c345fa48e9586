"""Absolute SLOs (``p95 < 500ms``, ``success ≥ 99.5%``), judged over the fault and recovery windows.

Latency objectives hold when **every** window with enough samples stays under the limit (a journal
keeps window percentiles, not raw samples, so a percentile cannot be pooled honestly; the
observed value is the worst window). The success objective is pooled: all successful attempts /
all attempts over those windows. An SLO's ``signal`` may be an fnmatch pattern; it is then judged
on each matching signal. An objective with no data to judge, or naming no signal, does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from chaoslab.analysis.frame import RunFrame
from chaoslab.analysis.health import has_data
from chaoslab.analysis.model import SloResult
from chaoslab.model.experiment import SloSpec
from chaoslab.timeline import WindowStats
from chaoslab.units import format_duration


def format_ms(value_ms: float) -> str:
    """A latency for people: ``2400ms``, ``57.9ms``, ``3.1ms``."""
    return f"{value_ms:.0f}ms" if value_ms >= 100 else f"{value_ms:.3g}ms"


def format_fraction(value: float) -> str:
    """A fraction as a percentage: ``97.5%``, ``100%``."""
    return f"{value * 100:.4g}%"


def objectives(slo: SloSpec) -> list[str]:
    """The objective texts of ``slo``, in the order p95, p99, success."""
    return slo.objectives()


def matching(pattern: str, names: Sequence[str]) -> list[str]:
    """Signals an SLO's ``signal`` names: the exact name, else every fnmatch match."""
    if pattern in names:
        return [pattern]
    return [n for n in names if fnmatchcase(n, pattern)]


def judge_slo(
    signal: str, slo: SloSpec, windows: Mapping[int, WindowStats], frame: RunFrame, min_samples: int
) -> list[SloResult]:
    """The results of each objective of ``slo`` on one signal."""
    used = [w for i in frame.judged if has_data(w := windows.get(i), min_samples) and w is not None]
    out: list[SloResult] = []
    for limit_s, attr, text in ((slo.p95, "p95_ms", "p95"), (slo.p99, "p99_ms", "p99")):
        if limit_s is None:
            continue
        objective = f"{text} < {format_duration(limit_s)}"
        values: list[float] = [round(v, 3) for w in used if (v := getattr(w, attr)) is not None]
        if not values:
            out.append(SloResult(signal, objective, "no data", False))
            continue
        worst = max(values)
        out.append(SloResult(signal, objective, format_ms(worst), worst < limit_s * 1000.0))
    if slo.success is not None:
        objective = f"success ≥ {format_fraction(slo.success)}"
        total = sum(w.count for w in used)
        if total == 0:
            out.append(SloResult(signal, objective, "no data", False))
        else:
            success = (total - sum(w.error_count for w in used)) / total
            out.append(SloResult(signal, objective, format_fraction(success), success >= slo.success))
    return out


def judge_slos(
    slos: Sequence[SloSpec],
    windows: Mapping[str, Mapping[int, WindowStats]],
    min_samples: Mapping[str, int],
    frame: RunFrame,
) -> tuple[list[SloResult], list[str]]:
    """Results of every SLO on every signal it names, and warnings for SLOs naming no signal."""
    results: list[SloResult] = []
    warnings: list[str] = []
    names = list(windows)
    for slo in slos:
        targets = matching(slo.signal, names)
        if not targets:
            warnings.append(f"SLO on {slo.signal} names no signal in the timeline")
            results.extend(SloResult(slo.signal, text, "no such signal", False) for text in objectives(slo))
            continue
        for name in targets:
            results.extend(judge_slo(name, slo, windows[name], frame, min_samples[name]))
    return results, warnings
