"""The plan: an experiment turned into timed phases and fault steps, before anything runs.

Pure: the same experiment always gives the same plan. Offsets are seconds from the run's start.
The recovery watch lasts up to ``recovery.budget + recovery.stable_for`` (recovery needs
``stable_for`` of health after it starts) and ends early once recovery is established.

A fault is reverted at ``start + duration`` (at most the end of the fault phase). A kill's
``restart_after`` is its duration: the service (or container) is started again then, by the
same revert that would otherwise run at the end of the fault phase, so the restart — and the
time the service takes to come back — is measured like any revert.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from chaoslab.model.faults import FaultBase
from chaoslab.model.loading import Experiment, resolve_known_refs, runtime_refs
from chaoslab.redact import redact_text
from chaoslab.units import format_duration

PHASE_NAMES = ("warmup", "baseline", "fault", "recovery")


@dataclass(frozen=True, slots=True)
class PlannedPhase:
    """A phase with its offsets; the recovery phase's end is its longest possible end."""

    name: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Length of the phase."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class PlannedFault:
    """A fault with the run times at which it is applied and reverted."""

    index: int
    fault: FaultBase
    apply_at_s: float
    revert_at_s: float

    @property
    def label(self) -> str:
        """A unique, stable name within the run: ``f0-latency``."""
        return f"f{self.index}-{self.fault.kind}"


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything that will happen, in order, and what undoes each fault."""

    experiment: Experiment
    phases: tuple[PlannedPhase, ...]
    faults: tuple[PlannedFault, ...]

    def phase(self, name: str) -> PlannedPhase:
        """The phase called ``name``."""
        return next(p for p in self.phases if p.name == name)

    @property
    def max_duration_s(self) -> float:
        """The longest the run can last (the recovery watch may end early)."""
        return self.phases[-1].end_s

    def targets(self) -> tuple[str, ...]:
        """Every target a fault acts on, in first-use order."""
        return tuple(dict.fromkeys(f.fault.target for f in self.faults))

    def due(self, t_s: float) -> tuple[PlannedFault, ...]:
        """Faults that should be applied at or before ``t_s``."""
        return tuple(f for f in self.faults if f.apply_at_s <= t_s)


def build_plan(experiment: Experiment) -> Plan:
    """Turn an experiment into its plan."""
    spec = experiment.spec
    t = 0.0
    phases: list[PlannedPhase] = []
    lengths = (
        ("warmup", spec.phases.warmup),
        ("baseline", spec.phases.baseline),
        ("fault", spec.phases.fault),
        ("recovery", spec.recovery.budget + spec.recovery.stable_for),
    )
    for name, length in lengths:
        phases.append(PlannedPhase(name, t, t + length))
        t += length
    fault_phase = phases[2]
    faults = tuple(
        PlannedFault(
            index=i,
            fault=fault,
            apply_at_s=fault_phase.start_s + fault.start,
            revert_at_s=min(
                fault_phase.end_s, fault_phase.start_s + fault.start + held_for_s(fault, fault_phase.end_s)
            ),
        )
        for i, fault in enumerate(spec.faults)
    )
    return Plan(experiment=experiment, phases=tuple(phases), faults=tuple(faults))


def held_for_s(fault: FaultBase, longest_s: float) -> float:
    """How long a fault is held before its revert: ``duration``, or a kill's ``restart_after`` if shorter."""
    held = fault.duration or longest_s
    restart_after = getattr(fault, "restart_after", None)
    if restart_after is not None:
        held = min(held, float(restart_after))
    return held


def render_plan(plan: Plan) -> str:
    """The plan as readable text: phases, load, faults with their undo, targets, verdict rules."""
    exp = plan.experiment
    spec = exp.spec
    lines = [f"experiment {spec.name}" + (" (quick)" if exp.quick else "") + f"  topology {exp.topology.name}"]
    if spec.description:
        lines.extend(
            textwrap.wrap(" ".join(spec.description.split()), width=100, initial_indent="  ", subsequent_indent="  ")
        )
    if exp.parameters:
        shown = ", ".join(f"{k}={_param_text(v)}" for k, v in sorted(exp.parameters.items()))
        lines.extend(textwrap.wrap(f"parameters: {shown}", width=100, initial_indent="  ", subsequent_indent="    "))
    lines.append("")
    lines.append("phases:")
    for phase in plan.phases:
        note = " (ends early once recovered)" if phase.name == "recovery" else ""
        lines.append(
            f"  {phase.name:<9} {format_duration(phase.start_s):>7} → {format_duration(phase.end_s):>7}"
            f"  ({format_duration(phase.duration_s)}){note}"
        )
    load = spec.load
    lines.append("")
    lines.append(
        f"load: {load.engine}, {load.rate:g}/s open-loop, profile {load.profile.kind}, {load.connections} connections"
    )
    # ${service:api} shown as the address it stands for; run-time-only refs (${run_dir}) stay as written
    refs = runtime_refs(exp.topology)
    total = sum(r.weight for r in load.mix)
    for request in load.mix:
        url = resolve_known_refs(request.url, refs)
        lines.append(
            f"  {request.signal_name:<20} {request.weight / total:>5.0%}  {request.method} {url}"
            f"  (timeout {format_duration(request.timeout)})"
        )
    lines.append("")
    lines.append("faults:")
    for planned in plan.faults:
        lines.append(f"  [{planned.label}] at {format_duration(planned.apply_at_s)}: {planned.fault.describe()}")
        lines.append(f"      undo at {format_duration(planned.revert_at_s)} (or on any exit): {planned.fault.undo()}")
    lines.append("")
    lines.append("targets:")
    for target in plan.targets():
        lines.append(f"  {target:<20} {_describe_target(exp, target)}")
    services = ", ".join(f"{name} ({svc.launch.kind})" for name, svc in exp.topology.services.items())
    lines.append(f"services: {services}")
    lines.append(f"toxiproxy: {exp.topology.toxiproxy}")
    lines.append("")
    ss = spec.steady_state
    lines.append(
        f"judged per {format_duration(ss.window)} window (≥{ss.min_samples} samples): "
        f"p95 ≤ max({ss.band.p95_factor:g}× baseline, baseline + {format_duration(ss.band.p95_margin)}), "
        f"error rate ≤ baseline + {ss.band.error_rate_margin * 100:g} percentage point(s)"
    )
    for slo in ss.slos:
        lines.append(f"  SLO {slo.signal}: " + ", ".join(slo.objectives()))
    impact = ", ".join(spec.expected_impact) or "none"
    lines.append(f"expected impact: {impact}; anything else degraded for ≥{format_duration(ss.sustained)} is a cascade")
    lines.append(
        f"recovery: within {format_duration(spec.recovery.budget)} of revert, "
        f"healthy for {format_duration(spec.recovery.stable_for)}"
    )
    for rule in spec.abort:
        lines.append(f"abort when: {_describe_abort(rule)}")
    # a parameter or URL may hold a literal secret (db_password=..., postgres://app:PASS@...)
    return redact_text("\n".join(lines))


def _param_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _describe_target(exp: Experiment, target: str) -> str:
    """What a fault target is: a link with its proxy addresses, a service with its address, or the host."""
    topology = exp.topology
    if target in topology.links:
        link = topology.links[target]
        return f"link: proxy {link.listen} → {link.upstream}"
    if target in topology.services:
        service = topology.services[target]
        where = service.url or service.address or "no address"
        return f"service: {where} (launch: {service.launch.kind})"
    return "the host running chaoslab" if target == "host" else "unknown"


def _describe_abort(rule: object) -> str:
    when = getattr(rule, "when", "?")
    for_s = getattr(rule, "for_", 0.0)
    if when == "error_rate":
        signal = getattr(rule, "signal", None) or "any signal"
        return f"error rate of {signal} > {getattr(rule, 'above', 0) * 100:g}% for {format_duration(for_s)}"
    if when == "unhealthy":
        return f"{getattr(rule, 'service', '?')} unhealthy for {format_duration(for_s)}"
    if when == "host_disk":
        return f"filesystem of {getattr(rule, 'path', '/')} above {getattr(rule, 'above', 0) * 100:g}% used"
    return str(when)
