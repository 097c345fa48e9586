"""docs/experiment-format.md documents every field of the experiment and topology models."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from chaoslab.model.experiment import ExperimentSpec
from chaoslab.model.faults import FAULT_KINDS
from chaoslab.model.topology import TopologySpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "experiment-format.md"


def models_under(tp: object, seen: dict[type[BaseModel], None]) -> dict[type[BaseModel], None]:
    """Every model reachable from ``tp`` through field annotations."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if tp not in seen:
            seen[tp] = None
            for info in tp.model_fields.values():
                models_under(info.annotation, seen)
        return seen
    for arg in typing.get_args(tp):
        models_under(arg, seen)
    return seen


class TestFormatDoc:
    """The format page keeps up with the models."""

    def test_every_field_is_mentioned(self) -> None:
        """Each field (by its YAML name) of every experiment and topology model appears as `name` in the page."""
        text = DOC.read_text(encoding="utf-8")
        models = models_under(TopologySpec, models_under(ExperimentSpec, {}))
        missing = sorted(
            f"{model.__name__}.{info.alias or name}"
            for model in models
            for name, info in model.model_fields.items()
            if f"`{info.alias or name}`" not in text and f"{info.alias or name}:" not in text
        )
        assert missing == []

    def test_every_fault_kind_is_listed(self) -> None:
        """Each fault kind appears in the fault table."""
        text = DOC.read_text(encoding="utf-8")
        assert [kind for kind in FAULT_KINDS if f"`{kind}`" not in text] == []

    def test_references_and_set_are_explained(self) -> None:
        """The page explains the reference forms, --set and quick patches."""
        text = DOC.read_text(encoding="utf-8")
        for needle in ("${service:NAME}", "${link:NAME}", "${python}", "${run_dir}", "--set", "quick:"):
            assert needle in text, needle
