"""The run's scheduler: a pure function of the plan, the progress so far and the time says what is due.

Like tenacity's ``iter`` (which returns ``DoAttempt`` or ``DoSleep``), :meth:`Scheduler.step`
decides and the engine's short loop acts::

    scheduler = Scheduler(plan, recovery_check_every_s=1.0)
    progress = scheduler.start()
    while True:
        step = scheduler.step(progress, clock.elapsed())
        progress = step.progress
        for action in step.actions:
            ...                                   # apply, revert, check, publish
        if step.done:
            break
        await clock.sleep_until_offset(step.sleep_until_s)

Within one step the order is fixed: phase changes, faults to apply (``Plan.due``), faults to
revert, the watch (failed tasks, a game-day abort), the abort rules (not in the warm-up), the
notes, a live snapshot (every ``publish_every_s``), a recovery check (every
``recovery_check_every_s`` of the recovery watch). A recovery the engine observes is fed back with
:meth:`Scheduler.recovered`, and the next step ends the watch early.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from chaoslab.plan import Plan, PlannedFault, PlannedPhase

TICK_S = 0.1
"""How often the engine looks at due faults, abort rules and notes."""

PUBLISH_EVERY_S = 0.5
"""How often a live snapshot goes to the observers."""


@dataclass(frozen=True, slots=True)
class BeginPhase:
    """A phase starts now."""

    phase: PlannedPhase


@dataclass(frozen=True, slots=True)
class EndPhase:
    """A phase ends now (``early``: the recovery watch, once recovery is established)."""

    phase: PlannedPhase
    early: bool = False


@dataclass(frozen=True, slots=True)
class ApplyFault:
    """Apply a planned fault."""

    fault: PlannedFault


@dataclass(frozen=True, slots=True)
class RevertFault:
    """Revert a planned fault whose time is up."""

    fault: PlannedFault


@dataclass(frozen=True, slots=True)
class Watch:
    """Look for a failed load, probe or sampler task and a game-day abort."""


@dataclass(frozen=True, slots=True)
class CheckAbortRules:
    """Feed the abort rules the latest observations."""


@dataclass(frozen=True, slots=True)
class ReadNotes:
    """Take in the observers' notes written since the last look."""


@dataclass(frozen=True, slots=True)
class Publish:
    """Send a live snapshot to the observers."""

    phase: PlannedPhase
    left_s: float


@dataclass(frozen=True, slots=True)
class CheckRecovery:
    """Ask whether what was measured so far already shows a complete recovery."""


Action = (
    BeginPhase | EndPhase | ApplyFault | RevertFault | Watch | CheckAbortRules | ReadNotes | Publish | CheckRecovery
)
"""Something the engine does now."""


@dataclass(frozen=True, slots=True)
class Progress:
    """What has been scheduled so far: the state the scheduler decides from."""

    phase_index: int = -1
    """Index of the current phase in the plan; -1 before the first, ``len(phases)`` after the last."""
    applied: frozenset[str] = frozenset()
    """Labels of faults whose apply was scheduled."""
    reverted: frozenset[str] = frozenset()
    """Labels of faults whose timed revert was scheduled."""
    last_publish_s: float = -math.inf
    next_recovery_check_s: float = -math.inf
    recovered_at_s: float | None = None
    """When the engine saw recovery established (the watch then ends early)."""


@dataclass(frozen=True, slots=True)
class Step:
    """The actions due now, the progress after them, and when to look again (None: the timed part is over)."""

    actions: tuple[Action, ...]
    progress: Progress
    sleep_until_s: float | None = field(default=None)

    @property
    def done(self) -> bool:
        """Whether every phase has ended."""
        return self.sleep_until_s is None


@dataclass(frozen=True, slots=True)
class Scheduler:
    """Decides what is due at run time ``t`` from the plan and the progress; pure."""

    plan: Plan
    tick_s: float = TICK_S
    publish_every_s: float = PUBLISH_EVERY_S
    recovery_check_every_s: float = 1.0

    def start(self) -> Progress:
        """The progress before the first phase."""
        return Progress()

    def recovered(self, progress: Progress, t_s: float) -> Progress:
        """The progress once recovery has been seen at ``t_s``: the next step ends the watch."""
        return replace(progress, recovered_at_s=t_s)

    def step(self, progress: Progress, t_s: float) -> Step:
        """What is due at run time ``t_s``."""
        phases = self.plan.phases
        actions: list[Action] = []
        p = progress
        if p.phase_index < 0:
            p = replace(p, phase_index=0)
            actions.append(BeginPhase(phases[0]))
        while p.phase_index < len(phases):
            phase = phases[p.phase_index]
            early = p.recovered_at_s is not None and phase.name == "recovery"
            if t_s < phase.end_s and not early:
                break
            actions.append(EndPhase(phase, early=early))
            p = replace(p, phase_index=len(phases) if early else p.phase_index + 1)
            if p.phase_index < len(phases):
                actions.append(BeginPhase(phases[p.phase_index]))
        if p.phase_index >= len(phases):
            return Step(tuple(actions), p, None)
        phase = phases[p.phase_index]
        due = [f for f in self.plan.due(t_s) if f.label not in p.applied]
        actions.extend(ApplyFault(f) for f in due)
        applied = p.applied | {f.label for f in due}
        to_revert = [f for f in self.plan.faults if f.label in applied - p.reverted and f.revert_at_s <= t_s]
        actions.extend(RevertFault(f) for f in to_revert)
        p = replace(p, applied=applied, reverted=p.reverted | {f.label for f in to_revert})
        actions.append(Watch())
        if phase.name != "warmup":
            actions.append(CheckAbortRules())
        actions.append(ReadNotes())
        if t_s - p.last_publish_s >= self.publish_every_s:
            actions.append(Publish(phase, max(0.0, phase.end_s - t_s)))
            p = replace(p, last_publish_s=t_s)
        if phase.name == "recovery" and t_s >= p.next_recovery_check_s:
            actions.append(CheckRecovery())
            p = replace(p, next_recovery_check_s=t_s + self.recovery_check_every_s)
        # look again after a tick, but exactly when the next fault is due or the phase ends
        upcoming = [f.apply_at_s for f in self.plan.faults if f.label not in applied]
        upcoming += [f.revert_at_s for f in self.plan.faults if f.label in applied - p.reverted]
        return Step(tuple(actions), p, min([phase.end_s, t_s + self.tick_s, *(u for u in upcoming if u > t_s)]))
