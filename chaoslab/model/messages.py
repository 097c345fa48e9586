"""Turning pydantic validation errors into one-line messages that point into the YAML file.

A pydantic location such as ``('faults', 0, 'latency', 'jiter')`` mixes keys of the document
with the tags pydantic inserts for unions (``latency`` here is the fault kind, not the
``latency`` field). :func:`locate` walks the location together with the model's types and the
raw data to recover the document path, so the line and the "did you mean" list are right.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from chaoslab.errors import SpecError
from chaoslab.model.yamlsource import Path_, SourceDoc
from chaoslab.redact import MASK, is_secret_name

_TAG_NAMES = {"kind": "fault kind", "when": "abort condition", "type": "probe type"}


@dataclass(frozen=True, slots=True)
class Provenance:
    """Values that did not come straight from the document: ``--set`` fields, parameters, quick patches."""

    set_paths: Mapping[Path_, str] = field(default_factory=dict)
    params: Mapping[Path_, str] = field(default_factory=dict)
    set_params: Mapping[str, str] = field(default_factory=dict)
    quick_paths: frozenset[Path_] = frozenset()

    def set_override(self, path: Path_) -> str | None:
        """The ``--set`` text whose dotted path overlaps ``path``, if any."""
        for set_path, text in self.set_paths.items():
            cut = min(len(set_path), len(path))
            if set_path[:cut] == path[:cut]:
                return text
        return None


class _Hidden:
    """The value of a field named like a secret, in a message: shown as ``***``."""

    def __repr__(self) -> str:
        return MASK


HIDDEN = _Hidden()
"""Stands for a secret field's value in messages."""


def describe_value(value: Any) -> str:
    """A short description of a YAML value for "got ..." in messages: ``a list``, ``a string ('x')``."""
    if isinstance(value, _Hidden):
        return f"a hidden value ({MASK})"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list | tuple):
        return "a list" if value else "an empty list"
    if isinstance(value, str):
        return f"a string ({shown(value)})" if value else "an empty string"
    if isinstance(value, int | float):
        return f"a number ({shown(value)})"
    return f"a {type(value).__name__}"


def shown(value: Any, limit: int = 60) -> str:
    """A value as it appears in a message: strings quoted and cut, numbers plain, the rest described."""
    if isinstance(value, _Hidden):
        return MASK
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 2] + "…'"
    if isinstance(value, bool) or value is None or isinstance(value, dict | list | tuple):
        return describe_value(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= limit else f"{value:.3g}"
    return describe_value(value)


def did_you_mean(word: object, choices: Iterable[object]) -> str:
    """``; did you mean 'x'?`` for the closest choice, or an empty string."""
    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""


_PLAIN_KEY = re.compile(r"^[^\s.'\"]+$")


def dotted(path: Path_) -> str:
    """``faults.0.latency`` from ``('faults', 0, 'latency')``; odd keys are quoted (``load.'a b'``)."""
    return ".".join(str(p) if isinstance(p, int) or _PLAIN_KEY.match(str(p)) else repr(str(p)) for p in path)


# ---------------------------------------------------------------------------------------------
# walking a pydantic location through the model's types


@dataclass(frozen=True, slots=True)
class Located:
    """A pydantic error location mapped onto the document."""

    path: Path_
    parent_type: Any
    declared_type: Any
    key_error: bool


def _strip(tp: Any) -> tuple[Any, str | None]:
    """Unwrap ``Annotated`` and ``X | None``, returning the core type and its discriminator."""
    discriminator: str | None = None
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            base, *meta = typing.get_args(tp)
            for item in meta:
                if isinstance(item, FieldInfo) and isinstance(item.discriminator, str):
                    discriminator = item.discriminator
            tp = base
            continue
        members = _union_members(tp)
        if members is not None:
            non_none = [m for m in members if m is not type(None)]
            if len(non_none) == 1 and len(non_none) != len(members):
                tp = non_none[0]
                continue
        return tp, discriminator


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tag_values(member: Any, discriminator: str) -> tuple[str, ...]:
    member, _ = _strip(member)
    if not _is_model(member) or discriminator not in member.model_fields:
        return ()
    return tuple(str(a) for a in typing.get_args(member.model_fields[discriminator].annotation))


def union_tags(tp: Any, discriminator: str) -> tuple[str, ...]:
    """Every tag value a discriminated union accepts, in declaration order."""
    members = _union_members(_strip(tp)[0]) or ()
    return tuple(sorted(tag for member in members for tag in _tag_values(member, discriminator)))


def _field(model: type[BaseModel], name: str | int) -> tuple[Any, str | None] | None:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            disc = info.discriminator if isinstance(info.discriminator, str) else None
            return info.annotation, disc
    return None


def locate(model: type[BaseModel], loc: tuple[int | str, ...], data: Any) -> Located:
    """Map a pydantic location onto the raw document, skipping the union tags pydantic inserts."""
    tp: Any = model
    disc: str | None = None
    node: Any = data
    path: list[str | int] = []
    parent: Any = None
    declared: Any = model
    key_error = False
    for part in loc:
        if part == "[key]":
            key_error = True
            continue
        core, inner_disc = _strip(tp)
        disc = disc or inner_disc
        members = _union_members(core)
        if members is not None:
            if disc is not None:
                chosen = next((m for m in members if str(part) in _tag_values(m, disc)), None)
                if chosen is not None:
                    tp, disc = chosen, None
                    continue
            elif isinstance(part, str) and not (isinstance(node, dict) and part in node):
                # a smart union names the member it tried ('str', 'int', 'SomeModel', 'function-after[...]')
                named = next((m for m in members if getattr(m, "__name__", None) == part), None)
                tp, disc = (named, None) if named is not None else (core, None)
                continue
        parent = core
        tp, disc = _child(core, part)
        declared = tp
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return Located(tuple(path), parent, declared, key_error)


def _child(tp: Any, part: str | int) -> tuple[Any, str | None]:
    if _is_model(tp):
        found = _field(tp, part)
        return found if found is not None else (None, None)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (tuple, list) and args:
        return args[0], None
    if origin is dict and len(args) == 2:
        return args[1], None
    return None, None


def allowed_keys(tp: Any) -> list[str]:
    """The keys a mapping of type ``tp`` may have (its fields, by alias), or none if it is not a model."""
    core, _ = _strip(tp)
    if _is_model(core):
        return sorted(info.alias or name for name, info in core.model_fields.items())
    return []


def expected_of(tp: Any) -> str | None:
    """What a value of type ``tp`` looks like, in words, for "expected ..."."""
    core, _ = _strip(tp)
    members = _union_members(core)
    if members is not None:
        words = list(dict.fromkeys(w for m in members if m is not type(None) for w in [expected_of(m)] if w))
        if not words:
            return None
        joined = ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]
        return joined
    if core is bool:
        return "true or false"
    if core is int:
        return "an integer"
    if core is float:
        return "a number"
    if core is str:
        return "a string"
    if _is_model(core) or typing.get_origin(core) is dict or core is dict:
        return "a mapping"
    if typing.get_origin(core) in (list, tuple):
        return "a list"
    if typing.get_origin(core) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(core))
    return None


# ---------------------------------------------------------------------------------------------
# choosing and wording the error


_TYPE_ERRORS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "string_too_short": "a non-empty string",
}

_PRIORITY = {"union_tag_invalid": 0, "union_tag_not_found": 0, "extra_forbidden": 1, "invalid_key": 1}


def _pick(errors: list[Any], model: type[BaseModel], data: Any, doc: SourceDoc) -> tuple[Any, Located]:
    """The error to report: structural ones first (bad kind, unknown key), then in document order.

    Errors whose location is an ancestor of another error's (``faults`` has too few items after
    its only item failed) are consequences and are dropped.
    """
    located = [(err, locate(model, err["loc"], data)) for err in errors]
    paths = [loc.path for _, loc in located]

    def is_consequence(path: Path_) -> bool:
        return any(len(other) > len(path) and other[: len(path)] == path for other in paths)

    candidates = [(e, loc) for e, loc in located if not is_consequence(loc.path)] or located
    return min(
        candidates,
        key=lambda pair: (_PRIORITY.get(pair[0]["type"], 2), doc.line_of(pair[1].path) or 0),
    )


def to_spec_error(
    exc: ValidationError,
    model: type[BaseModel],
    data: Any,
    *,
    file: str,
    doc: SourceDoc,
    provenance: Provenance | None = None,
) -> SpecError:
    """The most useful of ``exc``'s errors as a one-line :class:`SpecError` pointing into ``doc``."""
    provenance = provenance or Provenance()
    err, where = _pick(exc.errors(include_url=False), model, data, doc)
    if any(is_secret_name(part) for part in where.path) and isinstance(err.get("input"), str | int | float):
        err = {**err, "input": HIDDEN}  # "expected ..., got ***": the field's name says its value is a secret
    message, field_path = _message(err, where, data)
    set_text = provenance.set_override(field_path)
    if set_text is not None and err["type"] != "missing":
        return SpecError(message, field=f"--set {set_text}")
    if field_path in provenance.params:
        name = provenance.params[field_path]
        how = f", set by --set {provenance.set_params[name]}" if name in provenance.set_params else ""
        message += f" (from ${{{name}}}{how})"
    line_path = field_path
    if any(field_path[: len(q)] == q for q in provenance.quick_paths):
        line_path = ("quick", *field_path)
        field_path = line_path
    return SpecError(message, file=file, line=doc.line_of(line_path), field=dotted(field_path) or None)


def _message(err: Any, where: Located, data: Any) -> tuple[str, Path_]:
    kind: str = err["type"]
    path = where.path
    found = err.get("input")
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    if kind == "missing":
        return f"missing required field {path[-1]!r}", path
    if kind == "extra_forbidden":
        key = path[-1]
        allowed = allowed_keys(where.parent_type)
        hint = did_you_mean(key, allowed)
        known = f" (expected one of: {', '.join(allowed)})" if allowed and not hint else ""
        return f"unknown key {shown(key)}{hint}{known}", path
    if kind == "invalid_key" or where.key_error:
        return f"expected a string key, got {describe_value(found)}", path
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = str(ctx.get("discriminator", "'kind'")).strip("'")
        choices = union_tags(where.declared_type, tag)
        what = _TAG_NAMES.get(tag, tag)
        article = "an" if what[0] in "aeiou" else "a"
        if kind == "union_tag_not_found":
            return f"missing {tag!r}: expected {article} {what} (one of: {', '.join(choices)})", path
        value = _get(data, (*path, tag))
        if not isinstance(value, str):
            return f"expected {article} {what} (one of: {', '.join(choices)}), got {describe_value(value)}", (
                *path,
                tag,
            )
        return (
            f"unknown {what} {shown(value)}{did_you_mean(value, choices)} (expected one of: {', '.join(choices)})",
            (*path, tag),
        )
    if kind == "literal_error":
        words = expected_of(where.declared_type) or f"one of {ctx.get('expected', '')}"
        return f"expected {words}, got {shown(found)}", path
    if kind in _TYPE_ERRORS:
        declared = expected_of(where.declared_type) if kind not in ("int_from_float", "finite_number") else None
        return f"expected {declared or _TYPE_ERRORS[kind]}, got {describe_value(found)}", path
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}[kind]
        bound = next(iter(ctx.values()), "?")
        return f"expected a value {op} {shown(bound)}, got {shown(found)}", path
    if kind in ("too_short", "too_long"):
        count = ctx.get("min_length" if kind == "too_short" else "max_length", "?")
        what = "at least" if kind == "too_short" else "at most"
        items = "item" if count == 1 else "items"
        return f"expected {what} {count} {items}, got {_count(found)}", path
    if kind == "string_pattern_mismatch":
        return f"expected a string matching {ctx.get('pattern', '')}, got {shown(found)}", path
    message = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if kind == "value_error":
        # a model-level check may name the field itself: "links.a->b: address ... is not on loopback"
        named = _NAMED_FIELD.match(message)
        if named and not path:
            inner = tuple(int(p) if p.isdigit() else p for p in named.group(1).split("."))
            return named.group(2), inner
        return message, path  # the validator's own words already say what is wrong
    if "got" not in message:
        message = f"{message}, got {describe_value(found)}"
    return message, path


_NAMED_FIELD = re.compile(r"^([A-Za-z_][\w\-<>:]*(?:\.[\w\-<>:]+)*): (.+)$")


def _count(value: Any) -> str:
    if isinstance(value, list | tuple | dict):
        return "none" if not value else f"{len(value)}"
    return describe_value(value)


def _get(data: Any, path: Path_) -> Any:
    node = data
    for part in path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node
