"""The game-day plan file: a titled, led sequence of experiments with overrides and notes.

A plan (YAML)::

    title: Search cascade game day
    leader: alice
    observers: [bob, carol]
    description: Does vector latency starve document reads, and do bulkheads fix it?
    quick: false                 # default for every step
    stop_on_abort: true          # an aborted run ends the session (the report is still written)
    experiments:
      - experiment: cascade-vector-latency      # a name from experiments/ or a path (relative to the plan)
        title: Fragile api, expect a cascade
        overrides: {mode: fragile}
        notes: Watch api:documents; it shares the api's concurrency limit.
      - experiment: cascade-vector-latency
        overrides: {mode: resilient}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from chaoslab.catalogue import catalogue_dir
from chaoslab.errors import SpecError
from chaoslab.faults.registry import builtin_registry
from chaoslab.model.loading import (
    Experiment,
    find_experiment,
    load_experiment,
    read_document,
    validate_model,
)
from chaoslab.model.types import FROZEN

RUNBOOK_SUMMARY_CHARS = 900


class GameDayStep(BaseModel):
    """One experiment of the session."""

    model_config = FROZEN

    experiment: str = Field(min_length=1)
    title: str = ""
    overrides: dict[str, Any] = Field(default_factory=dict)
    quick: bool | None = None
    notes: str = ""


class GameDayPlan(BaseModel):
    """The whole session."""

    model_config = FROZEN

    title: str = Field(min_length=1)
    leader: str = ""
    observers: tuple[str, ...] = ()
    description: str = ""
    quick: bool = False
    stop_on_abort: bool = True
    experiments: tuple[GameDayStep, ...] = Field(min_length=1)


def load_plan(path: Path) -> GameDayPlan:
    """Read and validate a plan file (one-line SpecError on any problem)."""
    doc = read_document(path)
    return validate_model(GameDayPlan, doc.data, file=str(path), doc=doc)


def resolve_experiment_ref(ref: str, plan_path: Path) -> str | Path:
    """A step's experiment: a path relative to the plan when it looks like one, else a name."""
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        candidate = Path(ref)
        if not candidate.is_absolute():
            candidate = plan_path.parent / candidate
        return candidate
    return ref


def load_steps(plan: GameDayPlan, plan_path: Path, *, quick: bool | None = None) -> list[Experiment]:
    """Load every step's experiment up front: a bad step stops the session before anything runs."""
    experiments = []
    for i, step in enumerate(plan.experiments):
        ref = resolve_experiment_ref(step.experiment, plan_path)
        step_quick = quick if quick is not None else (step.quick if step.quick is not None else plan.quick)
        try:
            path = ref if isinstance(ref, Path) else find_experiment(ref)
            if isinstance(ref, Path) and not path.is_file():
                raise SpecError(f"file not found: {ref}")
            experiments.append(
                load_experiment(
                    path, overrides=step.overrides, quick=step_quick, fault_models=builtin_registry().models()
                )
            )
        except SpecError as exc:
            raise SpecError(f"experiments.{i} ({step.experiment}): {exc.one_line()}", file=str(plan_path)) from None
    return experiments


def find_runbook(experiment: Experiment) -> Path | None:
    """The experiment's runbook file: relative to the experiment, the working directory or the built-in catalogue."""
    ref = experiment.spec.runbook
    if not ref:
        return None
    candidate = Path(ref)
    if candidate.is_absolute():
        return candidate if candidate.is_file() else None
    bases = [experiment.path.parent] if experiment.path is not None else []
    if experiment.path is not None:
        bases.append(experiment.path.parent.parent)  # experiments/x.yaml → runbooks/x.md beside experiments/
    bases += [Path.cwd(), catalogue_dir()]
    for base in bases:
        if (base / candidate).is_file():
            return base / candidate
    return None


def runbook_summary(text: str, max_chars: int = RUNBOOK_SUMMARY_CHARS) -> str:
    """The first paragraphs of a Markdown runbook (headings skipped), up to ``max_chars``."""
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.strip().splitlines() if not line.lstrip().startswith("#")]
        para = "\n".join(lines).strip()
        if not para:
            continue
        if paragraphs and sum(len(p) for p in paragraphs) + len(para) > max_chars:
            break
        paragraphs.append(para)
        if len(paragraphs) == 2:
            break
    summary = "\n\n".join(paragraphs)
    return summary if len(summary) <= max_chars else summary[: max_chars - 1].rstrip() + "…"


def describe_runbook(experiment: Experiment) -> str:
    """What to show the room about the experiment's runbook."""
    ref = experiment.spec.runbook
    if not ref:
        return "(no runbook declared: add `runbook: runbooks/<name>.md` to the experiment)"
    path = find_runbook(experiment)
    if path is None:
        return f"(runbook {ref} not found)"
    try:
        return runbook_summary(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return f"(runbook {path} unreadable: {exc})"
