"""Secrets kept out of everything chaoslab writes: the one place that masks them as ``***``.

A secret is recognised three ways:

- **by value**: every value read through ``${env:NAME}`` or ``${file:PATH}``, the token a login
  step received, and literal secrets found in an experiment are remembered (:func:`remember`) for
  the life of the process and masked wherever they appear in text — an exception's message, a
  service's answer quoted in an error, a log line;
- **by name**: in a mapping, the string value of a key that names a secret (``password``,
  ``passwd``, ``secret``, ``token``, ``api_key``, ``authorization``, ``cookie``, ``credential``,
  ``private_key``, anywhere in the key: ``PGPASSWORD``, ``X-Api-Key``) is masked;
- **by shape**: the password of a URL (``postgres://user:PASS@host``), an ``Authorization:`` or
  ``Cookie:`` header line, ``password=...`` / ``"token": "..."`` / ``--password ...`` in free text.

``${env:NAME}`` and ``${file:PATH}`` references themselves are not secrets (they say where the
value comes from) and are left as written, so a journal or ledger still says which variable a run
used and ``chaoslab rollback`` can read it again. The journal, the ledger, the reports, the plan,
log lines and error messages all pass through :func:`redact_data` or :func:`redact_text`.
Pure apart from the process-wide set of remembered values; imports nothing of chaoslab.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

MASK = "***"
"""What a secret is written as."""

MIN_REMEMBERED_LENGTH = 4
"""Values shorter than this are not searched for in free text (a 2-character "secret" would mask
every number in a report); they are still masked by name and by shape."""

_WORDS = r"pass(?:word|wd)|secret|token|api[-_]?key|apikey|authori[sz]ation|cookie|credential|private[-_]?key"
_SECRET_NAME = re.compile(_WORDS, re.IGNORECASE)

NOT_SECRET_NAMES = frozenset({"token_field"})
"""Keys that look like secrets but hold none: ``load.login.token_field`` names a field of the answer."""

_REFERENCE = re.compile(r"\$\{(?:env|file):[^}]*\}")
"""A ``${env:NAME}`` or ``${file:PATH}`` reference: where a secret comes from, not the secret."""

# postgres://user:PASS@host — the password part of a URL's user information
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s\"'<>]*:)(?P<value>[^@/\s\"'<>]+)(?=@)")

# Authorization: Bearer abc / Cookie: a=b — a header line, up to the end of the line
_HEADER_LINE = re.compile(
    r"(?P<head>\b(?:proxy-)?(?:authorization|cookie|set-cookie)\s*:[ \t]*)(?P<value>[^\r\n\"'{}]+)",
    re.IGNORECASE,
)

# password=abc, "token": "abc", 'api_key': 'abc', --password abc, PGPASSWORD=abc
_PAIR = re.compile(
    r"(?P<head>(?P<quote>[\"']?)(?P<dashes>--?)?(?P<key>[A-Za-z0-9_\-]*(?:" + _WORDS + r")[A-Za-z0-9_\-]*)(?P=quote)"
    r"(?:\s*[=:]\s*|(?(dashes)[ \t]+|(?!))))"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|(?:(?:Bearer|Basic|Token|Digest)[ \t]+)?[^\s,;&\"'<>)}\]]+)",
    re.IGNORECASE,
)


class _Remembered:
    """The secret values of this process, searched for in text (longest first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        """Remember ``value`` and the forms it takes when quoted into a URL, JSON or a repr."""
        if len(value) < MIN_REMEMBERED_LENGTH:
            return
        forms = {value, quote(value, safe=""), json.dumps(value)[1:-1], repr(value)[1:-1]}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= {f for f in forms if len(f) >= MIN_REMEMBERED_LENGTH}
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def pattern(self) -> re.Pattern[str] | None:
        """One alternation of every remembered form, or None when nothing is remembered."""
        return self._pattern

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._values.clear()
            self._pattern = None


_REMEMBERED = _Remembered()


def remember(value: str | None) -> None:
    """Mask ``value`` wherever it appears in text from now on (a value from env or a file, a token)."""
    if value:
        _REMEMBERED.add(value)


def forget_all() -> None:
    """Forget every remembered value (for tests that plant secrets)."""
    _REMEMBERED.clear()


def is_secret_name(key: object) -> bool:
    """Whether a mapping key names a secret: ``password``, ``PGPASSWORD``, ``X-Api-Key``, ``Authorization``..."""
    return isinstance(key, str) and key not in NOT_SECRET_NAMES and _SECRET_NAME.search(key) is not None


def has_reference(text: str) -> bool:
    """Whether ``text`` holds an ``${env:...}`` or ``${file:...}`` reference."""
    return _REFERENCE.search(text) is not None


def _keep_reference(match: re.Match[str]) -> str:
    value = match.group("value")
    if match.re is _PAIR and match.group("key") in NOT_SECRET_NAMES:
        return match.group(0)
    if _REFERENCE.fullmatch(value.strip("\"'")) or value.startswith("${"):
        return match.group(0)  # a reference says where the secret is, and is needed to read it again
    quote_char = value[0] if value[:1] in ("'", '"') and value[-1:] == value[:1] and len(value) > 1 else ""
    return f"{match.group('head')}{quote_char}{MASK}{quote_char}"


def redact_text(text: str) -> str:
    """``text`` with every secret it holds — remembered values, URL passwords, secret pairs — as ``***``."""
    if not text:
        return text
    pattern = _REMEMBERED.pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _URL_PASSWORD.sub(_keep_reference, text)
    text = _HEADER_LINE.sub(_keep_reference, text)
    return _PAIR.sub(_keep_reference, text)


def mask_value(value: str) -> str:
    """The value of a secret-named field as written: ``***``, or as is when its secret is a reference."""
    if not value or value == MASK:
        return value
    if has_reference(value):
        # "Bearer ${env:TOKEN}": the secret is in the reference; the rest is the scheme around it
        return redact_text(value)
    return MASK


def redact_data(value: Any) -> Any:
    """A copy of JSON-like data with every secret masked (by name, by shape, by value); types are kept."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if is_secret_name(key) and isinstance(item, str):
                out[key] = mask_value(item)
            else:
                out[key] = redact_data(item)
        return out
    if isinstance(value, list | tuple):
        items = _redact_argv(value)
        return items if isinstance(value, list) else tuple(items)
    return value


def _redact_argv(items: Iterable[Any]) -> list[Any]:
    """A list (a command line): ``--password VALUE`` masks the VALUE after a secret-named flag too."""
    out: list[Any] = []
    hide_next = False
    for item in items:
        if hide_next and isinstance(item, str):
            out.append(mask_value(item))
        else:
            out.append(redact_data(item))
        hide_next = isinstance(item, str) and item.startswith("-") and "=" not in item and is_secret_name(item)
    return out


def literal_secrets(value: Any) -> list[str]:
    """The secrets written literally in JSON-like data: secret-named values and URL passwords (not references)."""
    found: list[str] = []

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, str):
            if secret and not has_reference(node):
                found.append(node)
            for match in _URL_PASSWORD.finditer(node):
                if not match.group("value").startswith("${"):
                    found.append(match.group("value"))
        elif isinstance(node, Mapping):
            for key, item in node.items():
                walk(item, is_secret_name(key))
        elif isinstance(node, list | tuple):
            hide_next = False
            for item in node:
                walk(item, hide_next)
                hide_next = isinstance(item, str) and item.startswith("-") and "=" not in item and is_secret_name(item)

    walk(value, False)
    return found
