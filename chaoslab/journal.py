"""The journal: one run saved as plain JSON (docs/reports.md, "The journal"), and read back for offline analysis.

The journal is the Timeline's serialisation plus the resolved experiment, the analysis and the
verdict. ``chaoslab analyse JOURNAL`` rebuilds the Timeline and the ExperimentSpec from it and
recomputes the same analysis.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chaoslab import __version__
from chaoslab.errors import SpecError
from chaoslab.files import write_atomic
from chaoslab.model.experiment import ExperimentSpec
from chaoslab.timeline import Timeline

SCHEMA_VERSION = 1
"""Bumped on any incompatible change of the journal's shape."""


def build_journal(
    *,
    run_id: str,
    spec: ExperimentSpec,
    topology: Mapping[str, Any],
    parameters: Mapping[str, Any],
    quick: bool,
    started_at: str,
    ended_at: str,
    host: Mapping[str, Any],
    timeline: Timeline,
    analysis: Mapping[str, Any],
    verdict: str,
    exit_code: int,
    abort_reason: str | None,
    revert_errors: list[str],
    load_profile: list[list[float]],
    error: str | None = None,
    t0_wall: float | None = None,
) -> dict[str, Any]:
    """Assemble the journal document (plain JSON data)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "chaoslab_version": __version__,
        "run_id": run_id,
        "experiment": spec.model_dump(mode="json", by_alias=True),
        "topology": dict(topology),
        "parameters": dict(parameters),
        "quick": quick,
        "started_at": started_at,
        "ended_at": ended_at,
        "t0_wall": t0_wall,
        "host": dict(host),
        **timeline.to_journal_parts(),
        "load_profile": load_profile,
        "analysis": dict(analysis),
        "verdict": verdict,
        "exit_code": exit_code,
        "abort_reason": abort_reason,
        "revert_errors": list(revert_errors),
        "error": error,
    }


def write_journal(journal: Mapping[str, Any], path: Path) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a journal; readable by the owner only."""
    return write_atomic(path, json.dumps(journal, indent=1, sort_keys=False) + "\n", mode=0o600)


def read_journal(path: Path) -> dict[str, Any]:
    """Read a journal file; bad input is a one-line SpecError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError("file not found", file=str(path)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise SpecError(f"expected a chaoslab journal (JSON), got unreadable data: {exc}", file=str(path)) from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise SpecError("expected a chaoslab journal with 'schema_version'", file=str(path))
    if data["schema_version"] != SCHEMA_VERSION:
        raise SpecError(f"schema_version: expected {SCHEMA_VERSION}, got {data['schema_version']!r}", file=str(path))
    return data


def timeline_of(journal: Mapping[str, Any], *, file: str = "<journal>") -> Timeline:
    """The Timeline saved in a journal."""
    try:
        return Timeline.from_journal_parts(journal)
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(f"timeline: cannot read it back: {exc!r}", file=file) from None


def experiment_of(journal: Mapping[str, Any], *, file: str = "<journal>") -> ExperimentSpec:
    """The resolved ExperimentSpec saved in a journal."""
    try:
        return ExperimentSpec.model_validate(journal["experiment"])
    except (KeyError, ValidationError) as exc:
        raise SpecError(f"experiment: cannot read it back: {' '.join(str(exc).split())[:200]}", file=file) from None
