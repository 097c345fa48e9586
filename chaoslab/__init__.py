"""chaoslab: chaos and recovery experiments with measured recovery time and cascade detection.

>>> import chaoslab
>>> exp = chaoslab.load_experiment("cascade-vector-latency", quick=True)  # doctest: +SKIP
>>> print(chaoslab.render_plan(chaoslab.build_plan(exp)))  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from chaoslab.errors import (
    AbortError,
    ChaoslabError,
    ExitCode,
    FaultError,
    HarnessError,
    RevertError,
    SafetyError,
    SpecError,
)
from chaoslab.model.experiment import ExperimentSpec
from chaoslab.model.loading import Experiment, load_experiment, load_topology
from chaoslab.model.topology import TopologySpec
from chaoslab.plan import Plan, build_plan, render_plan
from chaoslab.timeline import Timeline

__all__ = [
    "AbortError",
    "ChaoslabError",
    "ExitCode",
    "Experiment",
    "ExperimentSpec",
    "FaultError",
    "HarnessError",
    "Plan",
    "RevertError",
    "SafetyError",
    "SpecError",
    "Timeline",
    "TopologySpec",
    "__version__",
    "build_plan",
    "load_experiment",
    "load_topology",
    "render_plan",
]
