"""The JSON Schema of the experiment file format, for editors (``chaoslab schema``).

Generated from :class:`~chaoslab.model.experiment.ExperimentSpec`, then widened so that a
``${param}`` reference is accepted wherever a number, boolean or fixed word is: the schema
describes the file as written, before parameters are substituted.

>>> schema = experiment_json_schema()
>>> schema["title"], "faults" in schema["required"]
('chaoslab experiment', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chaoslab.model.experiment import experiment_model
from chaoslab.model.faults import FaultBase
from chaoslab.model.topology import TopologySpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect the schema is written in."""

PARAM_REF_PATTERN = r"^\s*\$\{\s*[A-Za-z_][A-Za-z0-9_.-]*\s*\}\s*$"
"""A whole-value ``${param}`` reference."""

_PARAM_REF = {
    "type": "string",
    "pattern": PARAM_REF_PATTERN,
    "description": "A ${parameter} reference, replaced by the parameter's value when the file is loaded.",
}
_CHILD_MAPS = ("properties", "$defs", "patternProperties")
_CHILD_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_CHILD_ONE = ("items", "additionalProperties", "not")


def experiment_json_schema(fault_models: Sequence[type[FaultBase]] | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an experiment file whose faults are ``fault_models`` (the registry's)."""
    return _finish(
        experiment_model(fault_models).model_json_schema(by_alias=True, mode="validation"),
        "chaoslab experiment",
        "A chaoslab experiment: steady load, a baseline, faults, and how recovery is judged. "
        "See docs/experiment-format.md.",
    )


def topology_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a topology file."""
    return _finish(
        TopologySpec.model_json_schema(by_alias=True, mode="validation"),
        "chaoslab topology",
        "The services of a system under test, how to launch or reach them, and the links between them. "
        "See docs/experiment-format.md.",
    )


def _finish(generated: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    schema: dict[str, Any] = _widen(generated)
    schema.setdefault("$defs", {})["ParamRef"] = dict(_PARAM_REF)
    schema["$schema"] = DIALECT
    schema["title"] = title
    schema["description"] = description
    return schema


def _needs_ref(node: dict[str, Any]) -> bool:
    """Scalar schemas a ``${param}`` string would not otherwise match."""
    if "const" in node:
        return False  # discriminator tags (kind, when) are written literally
    kind = node.get("type")
    if kind in ("number", "integer", "boolean"):
        return True
    return kind == "string" and any(k in node for k in ("enum", "pattern", "minLength", "format"))


def _widen(node: Any) -> Any:
    if isinstance(node, list):
        return [_widen(item) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _CHILD_MAPS and isinstance(value, dict):
            result[key] = {name: _widen_leaf(child) for name, child in value.items()}
        elif key in _CHILD_LISTS and isinstance(value, list):
            result[key] = [_widen(item) for item in value]
        elif key in _CHILD_ONE and isinstance(value, dict):
            result[key] = _widen_leaf(value)
        else:
            result[key] = value
    return result


def _widen_leaf(node: Any) -> Any:
    """A property's schema, with ``${param}`` allowed next to it when it is a scalar."""
    node = _widen(node)
    if not isinstance(node, dict):
        return node
    if _needs_ref(node) or ("anyOf" in node and any(isinstance(m, dict) and _needs_ref(m) for m in node["anyOf"])):
        if "anyOf" in node:
            return {**node, "anyOf": [*node["anyOf"], {"$ref": "#/$defs/ParamRef"}]}
        annotations = {k: node[k] for k in ("title", "description", "default") if k in node}
        core = {k: v for k, v in node.items() if k not in annotations}
        return {**annotations, "anyOf": [core, {"$ref": "#/$defs/ParamRef"}]}
    return node
