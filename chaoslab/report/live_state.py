"""What the live view shows while a run goes on; the engine fills it, a renderer draws it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chaoslab.timeline import WindowStats


@dataclass(frozen=True, slots=True)
class FaultState:
    """One planned fault as the live view shows it."""

    label: str
    description: str
    state: str
    """``pending``, ``applied``, ``reverted``, ``revert_failed`` or ``failed``."""


@dataclass(frozen=True, slots=True)
class LiveState:
    """A snapshot of a run for the live view: phase, time, latest window per signal, faults."""

    experiment: str
    phase: str
    t_s: float
    phase_left_s: float
    total_s: float
    window_s: float
    signals: Mapping[str, WindowStats] = field(default_factory=dict)
    health: Mapping[str, bool | None] = field(default_factory=dict)
    faults: tuple[FaultState, ...] = ()
    message: str = ""
    saturated: bool = False
