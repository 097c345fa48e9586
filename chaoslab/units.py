"""Parsing of the human units used in experiment files: durations, rates, sizes, percentages.

Pure functions; each raises ``ValueError`` with a message saying what was expected.

>>> parse_duration("500ms"), parse_rate("200/s"), parse_size("64MiB"), parse_percent("1%")
(0.5, 200.0, 67108864, 0.01)
"""

from __future__ import annotations

import math
import re

_DURATION_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
}
_RATE_UNITS = {"s": 1.0, "sec": 1.0, "m": 1 / 60.0, "min": 1 / 60.0, "h": 1 / 3600.0}
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_DURATION_RE = re.compile(rf"^\s*(-?){_NUMBER}\s*([a-zµ]*)\s*$", re.IGNORECASE)
_COMPOUND_RE = re.compile(r"(\d+(?:\.\d+)?)(h|min|ms|us|µs|m|s)")

DURATION_HINT = "a duration like 500ms, 30s or 2m"
RATE_HINT = "a rate like 200/s"
SIZE_HINT = "a size like 64MiB"
PERCENT_HINT = "a percentage like 1%"


def shown_value(raw: object) -> str:
    """The value found, for "got ..." in messages, spelled as in YAML: ``'5x'``, ``true``, ``a list``."""
    if isinstance(raw, str):
        return repr(raw) if len(raw) <= 60 else repr(raw[:57]) + "…"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if raw is None:
        return "nothing (null)"
    if isinstance(raw, dict):
        return "a mapping"
    if isinstance(raw, list | tuple):
        return "a list"
    if isinstance(raw, int | float):
        return repr(raw)
    return f"a {type(raw).__name__}"


def _fail(hint: str, raw: object) -> ValueError:
    return ValueError(f"expected {hint}, got {shown_value(raw)}")


def _finite(value: float, hint: str, raw: object) -> float:
    if not math.isfinite(value):
        raise _fail(hint, raw)
    return value


def parse_duration(raw: object) -> float:
    """Seconds from ``500ms``, ``30s``, ``2m``, ``1h``, ``1m30s`` or a bare number of seconds."""
    if isinstance(raw, bool):
        raise _fail(DURATION_HINT, raw)
    if isinstance(raw, int | float):
        return _finite(float(raw), DURATION_HINT, raw)
    if not isinstance(raw, str):
        raise _fail(DURATION_HINT, raw)
    text = raw.strip().lower()
    match = _DURATION_RE.match(text)
    if match:
        sign, number, unit = match.groups()
        if unit == "":
            unit = "s"
        if unit in _DURATION_UNITS:
            value = float(number) * _DURATION_UNITS[unit]
            return _finite(-value if sign else value, DURATION_HINT, raw)
    # compound forms such as 1m30s (or 1m 30s)
    compact = "".join(text.split())
    parts = _COMPOUND_RE.findall(compact)
    if parts and "".join(n + u for n, u in parts) == compact:
        return _finite(sum(float(n) * _DURATION_UNITS[u] for n, u in parts), DURATION_HINT, raw)
    raise _fail(DURATION_HINT, raw)


def parse_rate(raw: object) -> float:
    """Events per second from ``200/s``, ``30/m``, ``5/h`` or a bare number (per second)."""
    if isinstance(raw, bool):
        raise _fail(RATE_HINT, raw)
    if isinstance(raw, int | float):
        return _finite(float(raw), RATE_HINT, raw)
    if not isinstance(raw, str):
        raise _fail(RATE_HINT, raw)
    text = raw.strip().lower().replace(" ", "")
    if "/" in text:
        number, _, unit = text.partition("/")
        if unit in _RATE_UNITS:
            try:
                return _finite(float(number) * _RATE_UNITS[unit], RATE_HINT, raw)
            except ValueError:
                pass
    else:
        try:
            return _finite(float(text), RATE_HINT, raw)
        except ValueError:
            pass
    raise _fail(RATE_HINT, raw)


def parse_size(raw: object) -> int:
    """Bytes from ``64MiB``, ``10MB``, ``512KiB``, ``1GiB`` or a bare number of bytes."""
    if isinstance(raw, bool):
        raise _fail(SIZE_HINT, raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if not isinstance(raw, str):
        raise _fail(SIZE_HINT, raw)
    match = _DURATION_RE.match(raw.strip())
    if match:
        sign, number, unit = match.groups()
        factor = _SIZE_UNITS.get(unit.lower() or "b")
        if factor is not None:
            value = int(_finite(float(number) * factor, SIZE_HINT, raw))
            return -value if sign else value
    raise _fail(SIZE_HINT, raw)


def parse_percent(raw: object) -> float:
    """A fraction from ``1%`` (0.01) or ``99.5%``; bare numbers are taken as fractions (0.01)."""
    if isinstance(raw, bool):
        raise _fail(PERCENT_HINT, raw)
    if isinstance(raw, int | float):
        return _finite(float(raw), PERCENT_HINT, raw)
    if isinstance(raw, str):
        text = raw.strip()
        if text.endswith("%"):
            try:
                return _finite(float(text[:-1]) / 100.0, PERCENT_HINT, raw)
            except ValueError:
                pass
        else:
            try:
                return _finite(float(text), PERCENT_HINT, raw)
            except ValueError:
                pass
    raise _fail(PERCENT_HINT, raw)


def format_duration(seconds: float) -> str:
    """A short human form: ``250ms``, ``12.5s``, ``2m05s``."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{seconds:.1f}s".replace(".0s", "s")
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:02.0f}s"


def format_size(size: int) -> str:
    """A short human form in binary units: ``64.0MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"
