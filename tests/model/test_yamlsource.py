"""YAML reading with line numbers and guard rails."""

from __future__ import annotations

import pytest
import yaml

from chaoslab.model.yamlsource import MAX_DEPTH, MAX_NODES, YamlLimitError, parse_yaml


class TestLines:
    """Every key and list item remembers its line."""

    def test_nested_paths(self) -> None:
        """Keys, nested keys and list items map to their 1-based lines."""
        doc = parse_yaml("a: 1\nb:\n  c: 2\n  d:\n    - x\n    - {e: 3}\n")
        assert doc.lines == {
            (): 1,
            ("a",): 1,
            ("b",): 2,
            ("b", "c"): 3,
            ("b", "d"): 4,
            ("b", "d", 0): 5,
            ("b", "d", 1): 6,
            ("b", "d", 1, "e"): 6,
        }

    def test_line_of_falls_back_to_ancestor(self) -> None:
        """A path the file does not have gets the line of its nearest existing ancestor."""
        doc = parse_yaml("a: 1\nb:\n  c: 2\n")
        assert doc.line_of(("b", "missing", 3)) == 2
        assert doc.line_of(("nothing",)) == 1

    def test_merge_keys(self) -> None:
        """``<<: *anchor`` merges, and the merged keys keep the anchor's lines."""
        doc = parse_yaml("base: &b {x: 1}\nuse:\n  <<: *b\n  y: 2\n")
        assert doc.data == {"base": {"x": 1}, "use": {"x": 1, "y": 2}}
        assert (doc.line_of(("use", "x")), doc.line_of(("use", "y"))) == (1, 4)


class TestScalars:
    """Scalars follow YAML 1.2 where YAML 1.1 surprises."""

    def test_yes_no_on_off_are_strings(self) -> None:
        """Only true/false are booleans."""
        doc = parse_yaml("a: yes\nb: no\nc: on\nd: off\ne: true\nf: False\n")
        assert doc.data == {"a": "yes", "b": "no", "c": "on", "d": "off", "e": True, "f": False}

    def test_empty_document(self) -> None:
        """An empty document has no data."""
        assert parse_yaml("").data is None
        assert parse_yaml("# only a comment\n").data is None


class TestLimits:
    """Documents chaoslab refuses."""

    def test_duplicate_key(self) -> None:
        """The second occurrence is reported with the line of the first."""
        with pytest.raises(YamlLimitError) as err:
            parse_yaml("a: 1\nb: 2\na: 3\n")
        assert err.value.problem == "duplicate key 'a' (first on line 1)"
        assert err.value.problem_mark is not None and err.value.problem_mark.line + 1 == 3

    def test_duplicate_key_in_nested_mapping(self) -> None:
        """Nested mappings are checked too; equal keys in different mappings are fine."""
        assert parse_yaml("a: {x: 1}\nb: {x: 2}\n").data == {"a": {"x": 1}, "b": {"x": 2}}
        with pytest.raises(YamlLimitError):
            parse_yaml("a: {x: 1, x: 2}\n")

    def test_recursive_alias(self) -> None:
        """An alias inside the node it refers to."""
        with pytest.raises(YamlLimitError) as err:
            parse_yaml("a: &x [1, *x]\n")
        assert err.value.problem == "an alias refers to a node that contains it"

    def test_expansion(self) -> None:
        """Aliases count every time they are used."""
        lines = ["a0: &a0 [" + ", ".join(["1"] * 10) + "]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 6)]
        with pytest.raises(YamlLimitError) as err:
            parse_yaml("\n".join(lines))
        assert err.value.problem == f"document expands to more than {MAX_NODES} values (through aliases?)"

    def test_shared_alias_within_limit(self) -> None:
        """Moderate reuse of an anchor is fine."""
        doc = parse_yaml("t: &t {timeout: 5s}\na: *t\nb: *t\n")
        assert doc.data["b"] == {"timeout": "5s"}

    def test_depth(self) -> None:
        """Nesting deeper than MAX_DEPTH levels, refused before Python's recursion limit."""
        with pytest.raises(YamlLimitError) as err:
            parse_yaml("a: " + "[" * 400 + "]" * 400)
        assert err.value.problem == f"nesting deeper than {MAX_DEPTH} levels"
        assert parse_yaml("a: " + "[" * 30 + "]" * 30).data is not None

    def test_syntax_errors_are_yaml_errors(self) -> None:
        """Plain syntax errors stay PyYAML's marked errors."""
        with pytest.raises(yaml.MarkedYAMLError):
            parse_yaml("a: [1, 2\nb: 3\n")
        with pytest.raises(yaml.MarkedYAMLError):
            parse_yaml("---\na: 1\n---\nb: 2\n")
