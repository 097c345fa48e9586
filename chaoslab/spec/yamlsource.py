"""YAML reading that remembers the line of every key, so errors can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


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


class _Loader(yaml.SafeLoader):
    """SafeLoader without the YAML 1.1 surprise of ``on``/``off``/``yes``/``no`` being booleans."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in value if tag != "tag:yaml.org,2002:bool"]
    for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    __import__("re").compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def parse_yaml(text: str) -> SourceDoc:
    """Parse one YAML document, keeping line numbers; raises ``yaml.YAMLError`` on bad syntax."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return SourceDoc(None, {})
        lines: dict[Path_, int] = {}
        _walk(node, (), lines)
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return SourceDoc(data, lines)


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                lines[(*path, key)] = key_node.start_mark.line + 1
                _walk(value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), lines)
