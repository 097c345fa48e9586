"""Annotated pydantic types for the units used in experiment and topology files."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, PlainSerializer

from chaoslab import units


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError(f"expected a positive duration, got {units.format_duration(value)}")
    return value


def _non_negative(value: float) -> float:
    if value < 0:
        raise ValueError(f"expected a duration ≥ 0, got {units.format_duration(value)}")
    return value


def _positive_rate(value: float) -> float:
    if value <= 0:
        raise ValueError(f"expected a positive rate like 200/s, got {value:g}/s")
    return value


def _non_negative_size(value: int) -> int:
    if value < 0:
        raise ValueError(f"expected a size ≥ 0, got {value}")
    return value


def _fraction(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a percentage between 0% and 100%, got {value * 100:g}%")
    return value


def _dur_ser(value: float) -> str:
    return f"{value * 1000:g}ms" if value < 1 else f"{value:g}s"


Duration = Annotated[
    float,
    BeforeValidator(units.parse_duration),
    AfterValidator(_positive),
    PlainSerializer(_dur_ser, return_type=str),
]
"""A positive duration in seconds, written ``500ms``, ``30s`` or ``2m``."""

OptionalDuration = Annotated[
    float,
    BeforeValidator(units.parse_duration),
    AfterValidator(_non_negative),
    PlainSerializer(_dur_ser, return_type=str),
]
"""A duration in seconds that may be zero."""

Rate = Annotated[
    float,
    BeforeValidator(units.parse_rate),
    AfterValidator(_positive_rate),
    PlainSerializer(lambda v: f"{v:g}/s", return_type=str),
]
"""A positive rate in events per second, written ``200/s``."""

Size = Annotated[
    int,
    BeforeValidator(units.parse_size),
    AfterValidator(_non_negative_size),
    PlainSerializer(lambda v: v, return_type=int),
]
"""A size in bytes, written ``64MiB``."""

Percent = Annotated[
    float,
    BeforeValidator(units.parse_percent),
    AfterValidator(_fraction),
    PlainSerializer(lambda v: f"{v * 100:g}%", return_type=str),
]
"""A fraction in [0, 1], written ``1%``."""

FROZEN = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
"""Configuration shared by every spec model: immutable, unknown keys rejected."""

JsonValue = Any
"""Free-form JSON-like data (request bodies, headers)."""
