"""Delivery: did the harness do what the experiment asked? No verdict on load that was not sent.

For each judged phase (``baseline``, ``fault``, ``recovery``), from the timeline:

- **unsent**: requests the schedule made due but the generator could not send (the load
  signals' ``offered`` and ``unsent``), as a share of the offered requests;
- **behind**: the load generator's windows in which it fell behind — it sent fewer requests
  than were due, used more than :data:`BEHIND_CPU_PERCENT` of a core, or dispatched with a lag
  p99 above :data:`BEHIND_LAG_MS` — as a share of its windows. (The generator's own
  ``saturated`` flag, shown in the reports, is stricter: a lag of 10 ms already sets it, and a
  busy machine sets it now and then. A lag under the default band's 50 ms latency margin cannot
  by itself push a healthy window out of its band.);
- **late probes**: probe attempts that could not start on time (the probe signals' ``offered``
  and ``unsent``), as a share of the due ones.

A phase is *short* when a share exceeds its limit — :data:`UNSENT_LIMIT` (1 %),
:data:`BEHIND_LIMIT` (half the windows), :data:`LATE_PROBES_LIMIT` (5 %) — and, for windows and
probes, at least two of them are concerned (one busy moment of a shared machine is noise; a
generator at its limit is behind in nearly every window). ``load.allow_shortfall`` raises every
limit to the share it states (never lowers one). A run with a short phase gets no pass or fail:
its verdict is ``inconclusive`` (exit 3, "the harness could not deliver the experiment"), with
the figures in every report. A window belongs to the phase holding its middle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chaoslab.timeline import GeneratorWindow, Signal, SignalKind, Timeline

JUDGED_PHASES = ("baseline", "fault", "recovery")
"""The phases whose load and probes must have been delivered for a verdict."""

UNSENT_LIMIT = 0.01
"""Share of a phase's offered requests that may go unsent."""

BEHIND_LIMIT = 0.5
"""Share of a phase's generator windows in which the generator may fall behind."""

BEHIND_LAG_MS = 50.0
"""A generator window whose dispatch lag p99 exceeds this fell behind (the default band's latency margin)."""

BEHIND_CPU_PERCENT = 90.0
"""A generator window in which the generator used more CPU than this fell behind (it was at its limit)."""

MIN_EVENTS = 2
"""Behind windows or late probes needed, besides the share, to make a phase short."""

LATE_PROBES_LIMIT = 0.05
"""Share of a phase's due probe attempts that may start late."""


@dataclass(frozen=True, slots=True)
class PhaseDelivery:
    """What one judged phase asked of the harness and what it delivered."""

    phase: str
    offered: int
    unsent: int
    windows: int
    """Load generator windows in the phase."""
    behind: int
    probes_due: int
    probes_late: int
    short: tuple[str, ...] = ()
    """The limits broken: ``unsent``, ``behind``, ``late_probes`` (after any allowance)."""
    beyond_default: tuple[str, ...] = ()
    """The default limits broken (an allowance may have excused them)."""

    @property
    def unsent_share(self) -> float:
        """Unsent / offered (0 without load)."""
        return self.unsent / self.offered if self.offered else 0.0

    @property
    def behind_share(self) -> float:
        """Saturated / generator windows (0 without any)."""
        return self.behind / self.windows if self.windows else 0.0

    @property
    def late_share(self) -> float:
        """Late / due probe attempts (0 without probes)."""
        return self.probes_late / self.probes_due if self.probes_due else 0.0

    def describe(self, rule: str, limits: Mapping[str, float]) -> str:
        """One line of figures for a broken rule: ``fault phase: 21.3% of 642,000 offered requests … (limit 1%)``."""
        limit = f"(limit {limits[rule] * 100:g}%)"
        if rule == "unsent":
            what = f"{self.unsent_share * 100:.1f}% of {self.offered:,} offered requests were not sent"
        elif rule == "behind":
            what = f"the load generator fell behind in {self.behind} of {self.windows} windows"
        else:
            what = f"{self.probes_late} of {self.probes_due} probe attempts could not start on time"
        return f"{self.phase} phase: {what} {limit}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "phase": self.phase,
            "offered": self.offered,
            "unsent": self.unsent,
            "windows": self.windows,
            "behind": self.behind,
            "probes_due": self.probes_due,
            "probes_late": self.probes_late,
            "short": list(self.short),
            "beyond_default": list(self.beyond_default),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseDelivery:
        """Inverse of :meth:`to_dict`."""
        return cls(
            phase=str(data["phase"]),
            offered=int(data["offered"]),
            unsent=int(data["unsent"]),
            windows=int(data["windows"]),
            behind=int(data["behind"]),
            probes_due=int(data["probes_due"]),
            probes_late=int(data["probes_late"]),
            short=tuple(str(r) for r in data.get("short") or ()),
            beyond_default=tuple(str(r) for r in data.get("beyond_default") or ()),
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """Delivery per judged phase, the limits applied, and the allowance stated by the experiment."""

    phases: tuple[PhaseDelivery, ...]
    limits: Mapping[str, float]
    allow_shortfall: float | None = None

    @property
    def short(self) -> bool:
        """Whether any judged phase broke a limit: the verdict is then inconclusive."""
        return any(p.short for p in self.phases)

    def shortfalls(self) -> list[str]:
        """One line of figures per broken limit, in phase order."""
        return [p.describe(rule, self.limits) for p in self.phases for rule in p.short]

    def excused(self) -> list[str]:
        """One line per default limit broken but allowed by ``allow_shortfall``."""
        defaults = default_limits()
        return [
            p.describe(rule, defaults) + f", allowed up to {self.limits[rule] * 100:g}% by load.allow_shortfall"
            for p in self.phases
            for rule in p.beyond_default
            if rule not in p.short
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "short": self.short,
            "limits": dict(self.limits),
            "allow_shortfall": self.allow_shortfall,
            "phases": [p.to_dict() for p in self.phases],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        """Inverse of :meth:`to_dict`."""
        allow = data.get("allow_shortfall")
        return cls(
            phases=tuple(PhaseDelivery.from_dict(p) for p in data.get("phases") or ()),
            limits={str(k): float(v) for k, v in (data.get("limits") or default_limits()).items()},
            allow_shortfall=None if allow is None else float(allow),
        )


def default_limits() -> dict[str, float]:
    """The limits without an allowance."""
    return {"unsent": UNSENT_LIMIT, "behind": BEHIND_LIMIT, "late_probes": LATE_PROBES_LIMIT}


def limits_for(allow_shortfall: float | None) -> dict[str, float]:
    """The limits with ``allow_shortfall`` applied (it raises each limit to itself, never lowers one)."""
    limits = default_limits()
    if allow_shortfall is None:
        return limits
    return {rule: max(limit, allow_shortfall) for rule, limit in limits.items()}


def _phase_of(mid_s: float, spans: Iterable[tuple[str, float, float]]) -> str | None:
    return next((name for name, start, end in spans if start <= mid_s < end), None)


def _broken(item: PhaseDelivery, limits: Mapping[str, float]) -> tuple[str, ...]:
    shares = {"unsent": item.unsent_share, "behind": item.behind_share, "late_probes": item.late_share}
    counts = {"unsent": item.unsent, "behind": item.behind, "late_probes": item.probes_late}
    least = {"unsent": 1, "behind": MIN_EVENTS, "late_probes": MIN_EVENTS}
    return tuple(
        rule
        for rule in ("unsent", "behind", "late_probes")
        if shares[rule] > limits[rule] + 1e-12 and counts[rule] >= least[rule]
    )


def fell_behind(window: GeneratorWindow) -> bool:
    """Whether the generator fell behind in ``window`` (see the module docstring)."""
    cpu = window.cpu_percent or 0.0
    return window.sent < window.offered or cpu > BEHIND_CPU_PERCENT or window.lag_p99_ms > BEHIND_LAG_MS


def delivery_of(timeline: Timeline, allow_shortfall: float | None = None) -> Delivery:
    """Delivery per judged phase of ``timeline`` (see the module docstring)."""
    w = timeline.window_s
    spans = [(p.name, p.start_s, p.end_s) for p in timeline.phases if p.name in JUDGED_PHASES]
    tallies = {name: [0, 0, 0, 0, 0, 0] for name, _, _ in spans}  # offered unsent windows behind due late

    def add(signals: Iterable[Signal], offered_at: int) -> None:
        for signal in signals:
            for window in signal.windows:
                phase = _phase_of((window.index + 0.5) * w, spans)
                if phase is not None:
                    tallies[phase][offered_at] += window.offered
                    tallies[phase][offered_at + 1] += window.unsent

    add((s for s in timeline.signals.values() if s.kind is SignalKind.LOAD), 0)
    add((s for s in timeline.signals.values() if s.kind is SignalKind.PROBE), 4)
    for gen in timeline.generator:
        phase = _phase_of((gen.index + 0.5) * w, spans)
        if phase is not None:
            tallies[phase][2] += 1
            tallies[phase][3] += int(fell_behind(gen))
    limits = limits_for(allow_shortfall)
    defaults = default_limits()
    phases = []
    for name, _, _ in spans:
        offered, unsent, windows, behind, due, late = tallies[name]
        item = PhaseDelivery(name, offered, unsent, windows, behind, due, late)
        phases.append(
            PhaseDelivery(
                name,
                offered,
                unsent,
                windows,
                behind,
                due,
                late,
                short=_broken(item, limits),
                beyond_default=_broken(item, defaults),
            )
        )
    return Delivery(tuple(phases), limits, allow_shortfall)
