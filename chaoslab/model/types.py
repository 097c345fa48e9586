"""Annotated pydantic types for the units used in experiment and topology files."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema

from chaoslab import units

# Each type parses and checks in one step, so a message can show the value as it was written
# ("got '-5s'"), not as it was parsed.


def _positive_duration(raw: object) -> float:
    value = units.parse_duration(raw)
    if value <= 0:
        raise ValueError(f"expected a positive duration, got {units.shown_value(raw)}")
    return value


def _non_negative_duration(raw: object) -> float:
    value = units.parse_duration(raw)
    if value < 0:
        raise ValueError(f"expected a duration ≥ 0, got {units.shown_value(raw)}")
    return value


def _positive_rate(raw: object) -> float:
    value = units.parse_rate(raw)
    if value <= 0:
        raise ValueError(f"expected a positive rate like 200/s, got {units.shown_value(raw)}")
    return value


def _non_negative_size(raw: object) -> int:
    value = units.parse_size(raw)
    if value < 0:
        raise ValueError(f"expected a size ≥ 0, got {units.shown_value(raw)}")
    return value


def _fraction(raw: object) -> float:
    value = units.parse_percent(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a percentage between 0% and 100%, got {units.shown_value(raw)}")
    return value


# JSON Schema patterns for editors: loose on purpose (the parsers in chaoslab.units decide), but
# every value the parsers accept must match, so the shipped experiments validate against the schema.
_NUM = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
DURATION_PATTERN = rf"^\s*-?{_NUM}\s*(?:[a-zA-Zµ]*)\s*$|^\s*(?:[0-9]+(?:\.[0-9]+)?\s*[a-zA-Zµ]+\s*)+$"
RATE_PATTERN = rf"^\s*-?{_NUM}\s*(?:/\s*[a-zA-Z]+)?\s*$"
SIZE_PATTERN = rf"^\s*-?{_NUM}\s*[a-zA-Z]*\s*$"
PERCENT_PATTERN = rf"^\s*-?{_NUM}\s*%?\s*$"


def _unit_schema(pattern: str, description: str, *, integer: bool = False) -> WithJsonSchema:
    number = {"type": "integer" if integer else "number"}
    return WithJsonSchema(
        {"anyOf": [number, {"type": "string", "pattern": pattern}], "description": description}, mode="validation"
    )


def _dur_ser(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


Duration = Annotated[
    float,
    BeforeValidator(_positive_duration),
    PlainSerializer(_dur_ser, return_type=str),
    _unit_schema(DURATION_PATTERN, "A positive duration: 500ms, 30s, 2m, 1m30s, or a number of seconds."),
]
"""A positive duration in seconds, written ``500ms``, ``30s`` or ``2m``."""

OptionalDuration = Annotated[
    float,
    BeforeValidator(_non_negative_duration),
    PlainSerializer(_dur_ser, return_type=str),
    _unit_schema(DURATION_PATTERN, "A duration ≥ 0: 0s, 500ms, 30s, 2m, or a number of seconds."),
]
"""A duration in seconds that may be zero."""

Rate = Annotated[
    float,
    BeforeValidator(_positive_rate),
    PlainSerializer(lambda v: f"{v:g}/s", return_type=str),
    _unit_schema(RATE_PATTERN, "A positive rate: 200/s, 30/m, 5/h, or a number per second."),
]
"""A positive rate in events per second, written ``200/s``."""

Size = Annotated[
    int,
    BeforeValidator(_non_negative_size),
    PlainSerializer(lambda v: v, return_type=int),
    _unit_schema(SIZE_PATTERN, "A size ≥ 0: 64MiB, 10MB, 512KiB, or a number of bytes.", integer=True),
]
"""A size in bytes, written ``64MiB``."""

Percent = Annotated[
    float,
    BeforeValidator(_fraction),
    PlainSerializer(lambda v: f"{v * 100:g}%", return_type=str),
    _unit_schema(PERCENT_PATTERN, "A percentage: 1%, 99.5%, or a fraction such as 0.01."),
]
"""A fraction in [0, 1], written ``1%``."""

FROZEN = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
"""Configuration shared by every spec model: immutable, unknown keys rejected."""

JsonValue = Any
"""Free-form JSON-like data (request bodies, headers)."""
