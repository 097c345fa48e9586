"""The error tree: drawn in chaoslab/errors.py's docstring, matching the classes and their exit codes."""

from __future__ import annotations

import inspect
import re

import pytest

from chaoslab import errors
from chaoslab.errors import ChaoslabError, ExitCode, SafetyError, SpecError

CLASSES = {
    name: obj
    for name, obj in vars(errors).items()
    if inspect.isclass(obj) and issubclass(obj, ChaoslabError) and obj.__module__ == errors.__name__
}


def drawn_tree() -> dict[str, tuple[str | None, int | None]]:
    """Each class drawn in the docstring → (its drawn parent, the exit code written after it)."""
    doc = errors.__doc__ or ""
    body = doc.split("The tree::", 1)[1]
    result: dict[str, tuple[str | None, int | None]] = {}
    stack: list[tuple[int, str]] = []
    for line in body.splitlines():
        match = re.match(r"^(\s*[│├└─\s]*)([A-Z]\w+)\s+(.*)$", line)
        if not match:
            continue
        depth = len(match.group(1))
        name = match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        code = re.search(r"\(exit (\d)\)", match.group(3))
        result[name] = (stack[-1][1] if stack else None, int(code.group(1)) if code else None)
        stack.append((depth, name))
    return result


class TestErrorTree:
    """The docstring's tree is the truth about the classes."""

    def test_every_class_is_drawn(self) -> None:
        """Each ChaoslabError subclass in the module appears in the tree, and nothing else does."""
        assert set(drawn_tree()) == set(CLASSES)

    def test_parents_match(self) -> None:
        """Each class is drawn under its direct chaoslab base class."""
        for name, (parent, _code) in drawn_tree().items():
            bases = [b.__name__ for b in CLASSES[name].__bases__ if b.__name__ in CLASSES]
            assert bases == ([parent] if parent else []), name

    def test_exit_codes_match(self) -> None:
        """The exit code written next to each class is the one it carries."""
        for name, (_parent, code) in drawn_tree().items():
            if code is not None:
                assert int(CLASSES[name].exit_code) == code, name

    def test_root_exit_code(self) -> None:
        """The root says 3 unless a subclass says otherwise."""
        assert ChaoslabError.exit_code == ExitCode.ABORTED == 3


class TestSpecError:
    """SpecError renders one line and is also a ValueError."""

    def test_full_form(self) -> None:
        """File, line, field and message."""
        err = SpecError("expected a list, got a mapping", file="e.yaml", line=8, field="faults")
        assert str(err) == "e.yaml:8: faults: expected a list, got a mapping"
        assert (err.file, err.line, err.field, err.message) == ("e.yaml", 8, "faults", "expected a list, got a mapping")

    def test_without_line_or_file(self) -> None:
        """Missing parts are left out."""
        assert str(SpecError("bad", file="e.yaml")) == "e.yaml: bad"
        assert str(SpecError("bad", field="--set x=1")) == "--set x=1: bad"
        assert str(SpecError("bad")) == "bad"

    def test_always_one_line(self) -> None:
        """Newlines from file contents never split the message."""
        err = SpecError("unknown key 'a\nb'", file="e.yaml", line=1)
        assert str(err) == "e.yaml:1: unknown key 'a b'"
        assert err.one_line() == str(err)

    def test_is_value_error_with_exit_2(self) -> None:
        """Callers catching ValueError catch it; the CLI exits 2."""
        assert isinstance(SpecError("x"), ValueError)
        assert SpecError.exit_code == ExitCode.INVALID == 2
        assert SafetyError.exit_code == 2

    @pytest.mark.parametrize(("code", "value"), [("PASS", 0), ("FAIL", 1), ("INVALID", 2), ("ABORTED", 3)])
    def test_exit_codes_are_the_design(self, code: str, value: int) -> None:
        """Exit codes are those of the README's "Exit codes" table."""
        assert ExitCode[code] == value
        assert ExitCode.REVERT_FAILED == 4
