"""Analysis: pure functions from a Timeline and its experiment to baseline, bands, recovery, cascade, verdict.

>>> from chaoslab.analysis import analyse  # doctest: +SKIP
>>> result = analyse(timeline, experiment)  # doctest: +SKIP
>>> result.verdict, result.recovery_time_s, result.to_dict()["exit_code"]  # doctest: +SKIP

How each number is computed: ``docs/analysis.md``.
"""

from __future__ import annotations

from chaoslab.analysis.delivery import Delivery, PhaseDelivery
from chaoslab.analysis.model import (
    Analysis,
    Band,
    BandSource,
    BaselineStats,
    CascadeEntry,
    Health,
    SignalImpact,
    SloResult,
    Verdict,
    exit_code_for,
)
from chaoslab.analysis.pipeline import analyse, unjudged

__all__ = [
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
