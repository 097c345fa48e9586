"""``${env:NAME}`` and ``${file:PATH}``: secrets an experiment or topology refers to, read only where used.

A reference stays in the experiment as it was written, so the journal, the ledger, the reports
and the plan show ``${env:PGPASSWORD}``, never the value. Loading only checks that the variable
is set or the file readable (a one-line exit-2 error naming file, line and field otherwise, never
the value). The value is read at the point of use — the request, the DSN handed to asyncpg, the
environment of a launched process — through :func:`resolve_secret_refs`, and remembered by
:mod:`chaoslab.redact`, which masks it wherever it would appear in text.

- ``${env:NAME}``: the environment variable ``NAME``; unset or empty is an error.
- ``${file:PATH}``: the file's UTF-8 text (at most 64 KiB) without its trailing newlines, as
  ``echo secret > file`` writes it and as Docker and Kubernetes mount secrets; ``~`` is the home
  directory, and a relative ``PATH`` is relative to the file it is written in (the experiment,
  the topology; a ``--set`` value: the current directory). An empty file is an error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.redact import MASK, remember

SECRET_REF = re.compile(r"\$\{(env|file):([^}]*)\}")
"""A ``${env:NAME}`` or ``${file:PATH}`` reference."""

MAX_SECRET_FILE_BYTES = 64 * 1024
"""A secret file larger than this is a mistake (a data file named by accident)."""

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_secret_ref(name: str) -> bool:
    """Whether the inside of ``${...}`` is an ``env:`` or ``file:`` reference."""
    return name.startswith(("env:", "file:"))


def reference_problem(name: str) -> str | None:
    """Why ``${name}`` cannot be read (unset, missing, unreadable, empty), or None when it can."""
    try:
        read_reference(name)
    except SpecError as exc:
        return exc.message
    return None


def read_reference(name: str) -> str:
    """The value of ``${env:NAME}`` or ``${file:PATH}``, remembered as a secret; a SpecError never quotes it."""
    kind, _, arg = name.partition(":")
    if kind == "env":
        value = _read_env(arg.strip())
    elif kind == "file":
        value = _read_file(arg.strip())
    else:
        raise SpecError(f"expected ${{env:NAME}} or ${{file:PATH}}, got ${{{name}}}")
    remember(value)
    return value


def _read_env(var: str) -> str:
    if not _ENV_NAME.fullmatch(var):
        raise SpecError(f"expected ${{env:NAME}} with a variable name such as PGPASSWORD, got ${{env:{var}}}")
    value = os.environ.get(var)
    if value is None:
        raise SpecError(f"environment variable {var} is not set (${{env:{var}}})")
    if value == "":
        # CI systems hand an unset secret over as an empty variable: say so instead of sending ""
        raise SpecError(f"environment variable {var} is empty (${{env:{var}}})")
    return value


def _read_file(arg: str) -> str:
    if not arg:
        raise SpecError("expected ${file:PATH} with a path, got ${file:}")
    path = Path(arg).expanduser()
    shown = f"${{file:{arg}}}"
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_SECRET_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(f"cannot read {shown}: no such file") from None
    except IsADirectoryError:
        raise SpecError(f"cannot read {shown}: it is a directory") from None
    except PermissionError:
        raise SpecError(f"cannot read {shown}: permission denied") from None
    except OSError as exc:
        raise SpecError(f"cannot read {shown}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        limit = MAX_SECRET_FILE_BYTES // 1024
        raise SpecError(f"{shown} is larger than {limit} KiB: expected a secret, not a data file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"{shown} is not UTF-8 text") from None
    value = text.rstrip("\r\n")
    if not value:
        raise SpecError(f"{shown} is empty")
    return value


def resolve_secret_refs(text: str) -> str:
    """``text`` with its ``${env:...}`` and ``${file:...}`` references replaced by their values (where used)."""
    if "${" not in text:
        return text
    return SECRET_REF.sub(lambda m: read_reference(f"{m.group(1)}:{m.group(2)}"), text)


def absolute_file_refs(value: Any, base: Path) -> Any:
    """JSON-like data with every relative ``${file:PATH}`` made absolute against ``base`` (idempotent)."""
    if isinstance(value, str):
        if "${file:" not in value:
            return value
        return SECRET_REF.sub(lambda m: _absolute(m, base), value)
    if isinstance(value, dict):
        return {k: absolute_file_refs(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [absolute_file_refs(v, base) for v in value]
    return value


def _absolute(match: re.Match[str], base: Path) -> str:
    if match.group(1) != "file" or not match.group(2).strip():
        return match.group(0)
    path = Path(match.group(2).strip()).expanduser()
    if not path.is_absolute():
        path = base.resolve() / path
    return f"${{file:{path}}}"


def without_secret_refs(text: str) -> str:
    """``text`` with each secret reference written ``***``, for shape checks (a URL's host) that need no value."""
    return SECRET_REF.sub(MASK, text)
