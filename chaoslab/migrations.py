"""Journal schema migrations: each step rewrites a journal of schema N (plain JSON data) into schema N + 1.

Schema 2 (issue 13, true recovery times) records per fault ``revert_started_s`` — the removal,
from which recovery is counted — and keeps per signal the sub-window ``bins`` that locate
recovery and onsets to the request; the analysis gains ``removed_at_s``, ``recovered_at_s``,
``recovery_observed_s``, impact ``onset_s``, ``delivery`` and the verdict ``inconclusive``.

A schema-1 journal has no bins (its instants stay at window resolution) and no
``revert_started_s``: :func:`migrate_v1_to_v2` estimates the removal from what the journal
does hold — the resolved experiment (when each fault was planned to come off), the actual
phases, the topology (whether a supervisor restarts a killed service) and each fault's
record — as the engine of schema 2 would have stamped it. ``chaoslab analyse`` then gives the
verdict schema 2 gives: a kill whose restart took longer than the budget fails, where schema 1
passed it. Each migrated journal says so in ``migrations``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from chaoslab.model.experiment import ExperimentSpec
from chaoslab.plan import held_for_s

V1_TO_V2_NOTE = (
    "schema 1 → 2: revert_started_s (the removal) estimated from the plan, the phases and the topology; "
    "no sub-window bins, so recovery and onsets are located at window resolution"
)
"""What :func:`migrate_v1_to_v2` writes into the journal's ``migrations`` list."""

RESTARTS = ("process_restart", "container_restart")
"""Fault kinds that are over once applied: the restart that follows is the recovery."""


def _service_launch(journal: Mapping[str, Any], service: str) -> Mapping[str, Any]:
    services = (journal.get("topology") or {}).get("services") or {}
    launch = (services.get(service) or {}).get("launch") or {}
    return launch if isinstance(launch, Mapping) else {}


def _index_of(record: Mapping[str, Any], position: int) -> int:
    """The fault's index in the experiment, from its label ``f3-latency`` (else its position)."""
    label = str((record.get("detail") or {}).get("label") or "")
    head = label.partition("-")[0]
    if head.startswith("f") and head[1:].isdigit():
        return int(head[1:])
    return position


def _released_at_apply(record: Mapping[str, Any], journal: Mapping[str, Any], stops: bool) -> bool:
    """Whether schema 2 would have let go of this fault at its injection (see FaultDriver.holds)."""
    kind = record.get("kind")
    if kind in RESTARTS:
        return True
    if stops:
        return False
    if kind == "process_kill":
        launch = _service_launch(journal, str(record.get("target")))
        launched = launch.get("kind", "external") != "external"
        supervised = launch.get("kind") == "process" and launch.get("restart", "on-failure") != "no"
        return not launched or supervised
    if kind == "container_kill":
        return "host_pid" in ((record.get("detail") or {}).get("delivered_via") or ())
    return False


def estimate_revert_started(
    record: Mapping[str, Any], position: int, journal: Mapping[str, Any], spec: ExperimentSpec | None
) -> float | None:
    """When schema 2 would have recorded the removal of one schema-1 fault record."""
    injected, reverted = record.get("injected_at_s"), record.get("reverted_at_s")
    if reverted is None:
        return None
    if injected is None:
        return float(reverted)
    injected, reverted = float(injected), float(reverted)
    fault = None
    if spec is not None:
        index = _index_of(record, position)
        fault = spec.faults[index] if 0 <= index < len(spec.faults) else None
    signal_name = str(getattr(fault, "signal", "") or "")
    stops = signal_name in ("SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU")
    if _released_at_apply(record, journal, stops):
        return injected
    phase = next((p for p in journal.get("phases") or () if p.get("name") == "fault"), None)
    if fault is None or phase is None:
        return reverted
    restart_after = getattr(fault, "restart_after", None)
    if restart_after is not None:
        # schema 1 restarted such a kill from a timer in its driver, that long after the kill
        return min(reverted, injected + float(restart_after))
    start, end = float(phase["start_s"]), float(phase["end_s"])
    planned = start + float(fault.start) + held_for_s(fault, end - start)
    return min(reverted, max(injected, min(end, planned)))


ANALYSIS_KEYS_V2 = ("removed_at_s", "recovered_at_s", "recovery_observed_s", "delivery")
"""Analysis keys schema 2 added; a schema-1 analysis has none of them (null)."""


def migrate_v1_to_v2(journal: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 → 2: every fault gets ``revert_started_s`` (estimated, see the module docstring); the keys
    schema 2 added to the recorded analysis and experiment are there, null (schema 1 did not measure them)."""
    spec: ExperimentSpec | None = None
    with contextlib.suppress(ValidationError, TypeError, KeyError):
        spec = ExperimentSpec.model_validate(journal["experiment"])
    faults = journal.get("faults") or []
    for position, record in enumerate(faults):
        if isinstance(record, dict) and "revert_started_s" not in record:
            started = estimate_revert_started(record, position, journal, spec)
            record["revert_started_s"] = None if started is None else round(started, 6)
    analysis = journal.get("analysis")
    if isinstance(analysis, dict) and "baseline" in analysis:
        for key in ANALYSIS_KEYS_V2:
            analysis.setdefault(key, None)
        for impact in (analysis.get("impact") or {}).values():
            if isinstance(impact, dict):
                impact.setdefault("onset_s", None)
    load = (journal.get("experiment") or {}).get("load")
    if isinstance(load, dict):
        load.setdefault("allow_shortfall", None)
    journal.setdefault("migrations", []).append(V1_TO_V2_NOTE)
    journal["schema_version"] = 2
    return journal
