"""The public API: ``chaoslab.__all__`` is pinned, and every public item of the package has a docstring."""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import chaoslab

PACKAGE = Path(chaoslab.__file__).resolve().parent

PUBLIC = [
    "AbortError",
    "ChaoslabError",
    "ExitCode",
    "Experiment",
    "ExperimentSpec",
    "FaultError",
    "HarnessError",
    "Plan",
    "RevertError",
    "SafetyError",
    "SpecError",
    "Timeline",
    "TopologySpec",
    "__version__",
    "build_plan",
    "load_experiment",
    "load_topology",
    "render_plan",
]


def is_protocol_stub(cls: ast.ClassDef, func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A ``def f(...) -> T: ...`` inside a Protocol: it restates an interface documented elsewhere (asyncio)."""
    is_protocol = any(
        (isinstance(b, ast.Name) and b.id == "Protocol") or (isinstance(b, ast.Attribute) and b.attr == "Protocol")
        for b in cls.bases
    )
    body_is_ellipsis = (
        len(func.body) == 1
        and isinstance(func.body[0], ast.Expr)
        and isinstance(func.body[0].value, ast.Constant)
        and func.body[0].value.value is Ellipsis
    )
    return is_protocol and body_is_ellipsis


def undocumented(path: Path) -> list[str]:
    """Public module-level functions and classes, and public methods of public classes, without a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    missing = [] if (ast.get_docstring(tree) or "").strip() else ["<module>"]
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or node.name.startswith("_"):
            continue
        if not (ast.get_docstring(node) or "").strip():
            missing.append(node.name)
        if not isinstance(node, ast.ClassDef):
            continue
        for item in node.body:
            if not isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) or item.name.startswith("_"):
                continue
            if any(isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter") for d in item.decorator_list):
                continue  # the property's getter carries the docstring
            if is_protocol_stub(node, item):
                continue
            if not (ast.get_docstring(item) or "").strip():
                missing.append(f"{node.name}.{item.name}")
    return missing


class TestPublicApi:
    """What ``import chaoslab`` offers."""

    def test_all_is_pinned(self) -> None:
        """The exported names change only on purpose (update this list, the README and CHANGELOG)."""
        assert sorted(chaoslab.__all__) == PUBLIC

    def test_every_name_exists(self) -> None:
        """Each exported name is an attribute of the package."""
        assert [name for name in chaoslab.__all__ if not hasattr(chaoslab, name)] == []

    def test_every_export_is_documented(self) -> None:
        """Each exported class and function has a one-line summary."""
        for name in chaoslab.__all__:
            if name == "__version__":
                continue
            doc = getattr(chaoslab, name).__doc__ or ""
            assert doc.strip().splitlines()[0].strip(), name

    def test_version_matches_metadata(self) -> None:
        """__version__ is the installed distribution's version."""
        assert chaoslab.__version__ == importlib.metadata.version("chaoslab")


class TestDocstrings:
    """Every public item of every module in the package has a docstring (read from source, nothing imported)."""

    def test_modules_found(self) -> None:
        """The walk sees the package's modules."""
        names = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}
        assert {"__init__.py", "errors.py", "units.py", "plan.py", "cli.py", "model/loading.py"} <= names

    def test_every_public_item_has_a_docstring(self) -> None:
        """Modules, public classes, functions and methods all have a docstring."""
        missing = {
            path.relative_to(PACKAGE).as_posix(): found
            for path in sorted(PACKAGE.rglob("*.py"))
            if (found := undocumented(path))
        }
        assert missing == {}

    def test_detects_a_missing_docstring(self, tmp_path: Path) -> None:
        """The check itself finds an undocumented function, method and module."""
        path = tmp_path / "m.py"
        path.write_text("class A:\n    '''Doc.'''\n    def f(self):\n        pass\ndef g():\n    pass\n")
        assert undocumented(path) == ["<module>", "A.f", "g"]
