"""Request bodies decoded with Go ``encoding/json`` rules (pure).

Only the first JSON value counts, keys match case-insensitively (exact match preferred), unknown keys
are ignored, ``null`` means "absent", and a wrong JSON type is a ``bad request body`` error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaoslab.proxy.toxics import INT64_MAX, INT64_MIN, ToxicType, float32


class BodyError(ValueError):
    """A body that does not decode; ``str()`` is the detail after ``bad request body: ``."""


_ABSENT: Any = object()


def _go_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _Pairs):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs in document order (duplicates kept, last one wins)."""


def read_json(body: bytes) -> Any:
    """The first JSON value of ``body`` (trailing bytes ignored); objects come back as :class:`_Pairs`."""
    text = body.decode("utf-8", errors="replace").lstrip(" \t\r\n")
    if not text:
        raise BodyError("EOF")
    decoder = json.JSONDecoder(object_pairs_hook=_Pairs)
    try:
        value, _ = decoder.raw_decode(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text):
            raise BodyError("unexpected EOF") from None
        raise BodyError(f"invalid character {text[exc.pos]!r} looking for beginning of value") from None
    return value


def _fields(obj: _Pairs, names: tuple[str, ...]) -> dict[str, Any]:
    """Values for ``names`` from ``obj``: exact key preferred, else case-insensitive; later keys win."""
    found: dict[str, Any] = {}
    exact: set[str] = set()
    for key, value in obj:
        if key in names:
            found[key] = value
            exact.add(key)
            continue
        for name in names:
            if key.lower() == name.lower() and name not in exact:
                found[name] = value
    return found


@dataclass(frozen=True, slots=True)
class _Field:
    struct: str
    name: str
    kind: str  # "string" | "bool" | "float32" | "int64"


def _convert(field: _Field, value: Any) -> Any:
    """A field value in its Go type, ``_ABSENT`` for null, or BodyError for a wrong JSON type."""
    if value is None:
        return _ABSENT
    where = f"Go struct field {field.struct}.{field.name} of type {field.kind}"
    kind = _go_kind(value)
    if field.kind == "string" and isinstance(value, str):
        return value
    if field.kind == "bool" and isinstance(value, bool):
        return value
    if field.kind == "float32" and kind == "number":
        return float32(float(value))
    if field.kind == "int64" and kind == "number":
        if isinstance(value, int) and INT64_MIN <= value <= INT64_MAX:
            return value
        raise BodyError(f"json: cannot unmarshal number {value} into {where}")
    raise BodyError(f"json: cannot unmarshal {kind} into {where}")


def _decode_struct(value: Any, struct: str, fields: tuple[_Field, ...]) -> dict[str, Any]:
    """Decode an object into the named fields (absent/null ones left out); the first type error wins."""
    if value is None:
        return {}
    if not isinstance(value, _Pairs):
        raise BodyError(f"json: cannot unmarshal {_go_kind(value)} into Go value of type {struct}")
    raw = _fields(value, tuple(field.name for field in fields))
    out: dict[str, Any] = {}
    first_error: BodyError | None = None
    for field in fields:
        if field.name not in raw:
            continue
        try:
            converted = _convert(field, raw[field.name])
        except BodyError as exc:
            first_error = first_error or exc
            continue
        if converted is not _ABSENT:
            out[field.name] = converted
    if first_error is not None:
        raise first_error
    return out


_PROXY_FIELDS = (
    _Field("Proxy", "name", "string"),
    _Field("Proxy", "listen", "string"),
    _Field("Proxy", "upstream", "string"),
    _Field("Proxy", "enabled", "bool"),
)


@dataclass(frozen=True, slots=True)
class ProxyBody:
    """A decoded proxy body: every field None when absent or null."""

    name: str | None = None
    listen: str | None = None
    upstream: str | None = None
    enabled: bool | None = None


def proxy_body(value: Any) -> ProxyBody:
    """Decode one proxy object (create, update, populate item)."""
    fields = _decode_struct(value, "Proxy", _PROXY_FIELDS)
    return ProxyBody(**fields)


def proxy_list_body(value: Any) -> list[ProxyBody]:
    """Decode the ``/populate`` body: a JSON array of proxies (``null`` = empty)."""
    if value is None:
        return []
    if not isinstance(value, list) or isinstance(value, _Pairs):
        raise BodyError(f"json: cannot unmarshal {_go_kind(value)} into Go value of type []Proxy")
    return [proxy_body(item) for item in value]


_TOXIC_FIELDS = (
    _Field("Toxic", "name", "string"),
    _Field("Toxic", "type", "string"),
    _Field("Toxic", "stream", "string"),
    _Field("Toxic", "toxicity", "float32"),
)


@dataclass(frozen=True, slots=True)
class ToxicBody:
    """A decoded toxic body; ``attributes`` is the raw JSON value (decoded later, per type)."""

    name: str | None = None
    type: str | None = None
    stream: str | None = None
    toxicity: float | None = None
    attributes: Any = None


def toxic_body(value: Any) -> ToxicBody:
    """Decode a toxic create/update body (attributes kept raw)."""
    fields = _decode_struct(value, "Toxic", _TOXIC_FIELDS)
    attributes = _fields(value, ("attributes",)).get("attributes") if isinstance(value, _Pairs) else None
    return ToxicBody(attributes=attributes, **fields)


def toxic_attributes(toxic_type: ToxicType, value: Any) -> dict[str, int]:
    """Decode the ``attributes`` object of a toxic type: only keys present, integers only."""
    struct = f"{toxic_type.value.title().replace('_', '')}Toxic"
    fields = tuple(_Field(struct, name, "int64") for name in toxic_type.attribute_names)
    decoded = _decode_struct(value, struct, fields)
    return {key: int(val) for key, val in decoded.items()}


def to_plain(value: Any) -> Any:
    """A decoded value with :class:`_Pairs` turned back into dicts (for logging)."""
    if isinstance(value, _Pairs):
        return {key: to_plain(val) for key, val in value}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    return value


def as_mapping(value: Any) -> Mapping[str, Any]:
    """A plain mapping view of a decoded object (empty for non-objects)."""
    return dict(value) if isinstance(value, _Pairs) else {}
