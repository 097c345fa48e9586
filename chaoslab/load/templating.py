"""Request templating: ``${service:api}`` resolved once, ``{randint:A:B}`` and ``{choice:a,b}`` per request.

Templates are compiled once into literal parts and generators that draw from a seeded
``random.Random``, so a seeded run sends the same sequence of requests. A template without
per-request placeholders renders to the same text every time (and callers may cache it).
In a JSON body, a string that is exactly one ``{randint:...}`` placeholder becomes a number.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.model.loading import resolve_runtime_refs

_PLACEHOLDER = re.compile(r"\{(randint|choice):([^{}]*)\}")

Draw = Callable[[random.Random], str | int]


def _compile_placeholder(kind: str, arg: str, source: str) -> Draw:
    """The generator for one ``{kind:arg}`` placeholder."""
    if kind == "randint":
        low_text, sep, high_text = arg.partition(":")
        try:
            low, high = int(low_text), int(high_text)
        except ValueError:
            raise SpecError(
                f"expected {{randint:LOW:HIGH}} with integers, got {{randint:{arg}}} in {source!r}"
            ) from None
        if not sep or low > high:
            raise SpecError(f"expected {{randint:LOW:HIGH}} with LOW <= HIGH, got {{randint:{arg}}} in {source!r}")
        return lambda rng: rng.randint(low, high)
    options = tuple(o.strip() for o in arg.split(","))
    if not arg or any(not o for o in options):
        raise SpecError(f"expected {{choice:a,b,...}} with non-empty options, got {{choice:{arg}}} in {source!r}")
    return lambda rng: rng.choice(options)


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled text template: literal parts interleaved with per-request draws."""

    source: str
    parts: tuple[str | Draw, ...]

    @property
    def is_static(self) -> bool:
        """True when every rendering gives the same text."""
        return all(isinstance(p, str) for p in self.parts)

    def render(self, rng: random.Random) -> str:
        """The text for one request."""
        return "".join(p if isinstance(p, str) else str(p(rng)) for p in self.parts)

    def render_value(self, rng: random.Random) -> str | int:
        """Like :meth:`render`, but a template that is one ``randint`` placeholder gives an ``int``."""
        if len(self.parts) == 1 and not isinstance(self.parts[0], str):
            return self.parts[0](rng)
        return self.render(rng)


def compile_template(text: str, refs: Mapping[str, str] | None = None) -> Template:
    """Resolve ``${...}`` references now (when ``refs`` is given) and compile the per-request placeholders."""
    resolved = resolve_runtime_refs(text, refs) if refs is not None else text
    parts: list[str | Draw] = []
    pos = 0
    for match in _PLACEHOLDER.finditer(resolved):
        if match.start() > pos:
            parts.append(resolved[pos : match.start()])
        parts.append(_compile_placeholder(match.group(1), match.group(2), text))
        pos = match.end()
    if pos < len(resolved) or not parts:
        parts.append(resolved[pos:])
    return Template(text, tuple(parts))


@dataclass(frozen=True, slots=True)
class JsonTemplate:
    """A JSON body whose strings (keys are left alone) may hold placeholders."""

    value: Any
    is_static: bool

    def render(self, rng: random.Random) -> Any:
        """The JSON value for one request."""
        return _render_json(self.value, rng) if not self.is_static else self.value

    def render_bytes(self, rng: random.Random) -> bytes:
        """The JSON text for one request, UTF-8, compact."""
        return json.dumps(self.render(rng), separators=(",", ":")).encode()


def compile_json(value: Any, refs: Mapping[str, str] | None = None) -> JsonTemplate:
    """Compile every string in a JSON value (recursively) as a :class:`Template`."""
    static = [True]

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            template = compile_template(node, refs)
            if template.is_static:
                return template.render(random.Random(0))
            static[0] = False
            return template
        if isinstance(node, Mapping):
            return {str(k): walk(v) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v) for v in node]
        return node

    compiled = walk(value)
    return JsonTemplate(compiled, static[0])


def _render_json(node: Any, rng: random.Random) -> Any:
    if isinstance(node, Template):
        return node.render_value(rng)
    if isinstance(node, dict):
        return {k: _render_json(v, rng) for k, v in node.items()}
    if isinstance(node, list):
        return [_render_json(v, rng) for v in node]
    return node
