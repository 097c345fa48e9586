"""YAML reading that remembers the line of every key, so errors can point at it.

Also the guard rails a hostile or broken file needs before anything else looks at it:
duplicate keys are rejected (PyYAML silently keeps the last), aliases may not refer to
themselves, and the expanded document is bounded in size and depth (``a: &a [*a, *a, ...]``
"billion laughs" files would otherwise take minutes and gigabytes to walk).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

MAX_NODES = 50_000
"""Most YAML nodes a document may expand to (aliases count each time they are used)."""

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists a document may have."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """A parsed YAML document and the 1-based line of each path in it."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None


class YamlLimitError(yaml.MarkedYAMLError):
    """A document that parses but that chaoslab refuses: duplicate keys, recursive aliases, too big or too deep."""


class _Loader(yaml.SafeLoader):
    """SafeLoader without the YAML 1.1 surprise of ``on``/``off``/``yes``/``no`` being booleans.

    It also stops composing past :data:`MAX_DEPTH` levels, before PyYAML's recursive composer
    runs into Python's recursion limit.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Compose one node, refusing to go deeper than MAX_DEPTH."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                raise YamlLimitError(
                    problem=f"nesting deeper than {MAX_DEPTH} levels",
                    problem_mark=self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in value if tag != "tag:yaml.org,2002:bool"]
    for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def parse_yaml(text: str) -> SourceDoc:
    """Parse one YAML document, keeping line numbers; raises ``yaml.YAMLError`` on bad syntax or limits."""
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            # PyYAML's composer recurses once per nesting level
            raise YamlLimitError(problem=f"nesting deeper than {MAX_DEPTH} levels") from None
        if node is None:
            return SourceDoc(None, {})
        lines: dict[Path_, int] = {}
        _Walker(lines).walk(node, ())
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return SourceDoc(data, lines)


class _Walker:
    """Records the line of every path, enforcing the limits on the way."""

    def __init__(self, lines: dict[Path_, int]) -> None:
        self.lines = lines
        self.visited = 0
        self.stack: set[int] = set()

    def walk(self, node: yaml.Node, path: Path_) -> None:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise YamlLimitError(
                problem=f"document expands to more than {MAX_NODES} values (through aliases?)",
                problem_mark=node.start_mark,
            )
        if len(path) > MAX_DEPTH:
            raise YamlLimitError(problem=f"nesting deeper than {MAX_DEPTH} levels", problem_mark=node.start_mark)
        if id(node) in self.stack:
            raise YamlLimitError(problem="an alias refers to a node that contains it", problem_mark=node.start_mark)
        self.lines.setdefault(path, node.start_mark.line + 1)
        if not isinstance(node, yaml.CollectionNode):
            return
        self.stack.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                self._mapping(node, path)
            else:
                for index, item in enumerate(node.value):
                    self.lines[(*path, index)] = item.start_mark.line + 1
                    self.walk(item, (*path, index))
        finally:
            self.stack.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> None:
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                # merged keys keep the line of the mapping they came from
                self.walk(value_node, path)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.walk(key_node, path)
                self.walk(value_node, path)
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise YamlLimitError(
                    problem=f"duplicate key {key!r} (first on line {first_line[key]})", problem_mark=key_node.start_mark
                )
            first_line[key] = line
            self.lines[(*path, key)] = line
            self.walk(value_node, (*path, key))
