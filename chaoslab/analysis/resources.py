"""The leak check: how much each service's resident memory grew from the baseline to the end.

Judged like an SLO so that the verdict, JUnit, HTML and Markdown reports show it with no extra
code: one :class:`SloResult` per service, signal ``resources:<service>``. The reference is the
median RSS of the samples in the last third of the baseline phase (after warm-up effects); the
end level is the median of the run's last three samples (one odd sample does not decide).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from chaoslab.analysis.model import SloResult
from chaoslab.timeline import PhaseSpan, ResourceSample

END_SAMPLES = 3
"""How many of the last samples make the end level."""


def judge_rss_growth(
    resources: Mapping[str, Sequence[ResourceSample]], baseline: PhaseSpan | None, limit: float
) -> tuple[list[SloResult], list[str]]:
    """One result per service (the host excluded) and warnings for services that cannot be judged."""
    results: list[SloResult] = []
    warnings: list[str] = []
    objective = f"RSS growth < {limit * 100:.4g}%"
    for service, samples in resources.items():
        if service == "host":
            continue
        measured = [s for s in samples if s.rss_bytes is not None]
        if baseline is None:
            reference_samples: list[ResourceSample] = []
        else:
            tail_from = baseline.end_s - (baseline.end_s - baseline.start_s) / 3
            reference_samples = [s for s in measured if tail_from <= s.t_s <= baseline.end_s]
        after = [s for s in measured if baseline is None or s.t_s > baseline.end_s]
        if not reference_samples or len(after) < END_SAMPLES:
            warnings.append(f"RSS growth of {service} cannot be judged: too few resource samples")
            results.append(SloResult(f"resources:{service}", objective, "no data", False))
            continue
        start = statistics.median(s.rss_bytes for s in reference_samples if s.rss_bytes is not None)
        end = statistics.median(s.rss_bytes for s in after[-END_SAMPLES:] if s.rss_bytes is not None)
        growth = (end - start) / start if start > 0 else 0.0
        results.append(SloResult(f"resources:{service}", objective, f"{growth * 100:+.1f}%", growth < limit))
    return results, warnings
