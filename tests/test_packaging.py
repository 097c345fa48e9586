"""The wheel carries the catalogue: built, installed into a fresh venv outside the checkout, and run from elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.demo.test_end_to_end import Ports, assert_nothing_left

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.stem for p in (ROOT / "chaoslab" / "catalogue" / "experiments").glob("*.yaml"))


def _pip(*args: str, cwd: Path) -> None:
    """This environment's pip (and its cache): the fresh venv gets no pip of its own, which keeps it fast."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=400,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv (outside the checkout) with chaoslab installed from a wheel built from a copy of the sources."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    # a copy, so the build writes its build/ and egg-info there and never into the checkout
    shutil.copytree(ROOT / "chaoslab", source / "chaoslab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    _pip("wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(source), cwd=base)
    (wheel,) = (base / "dist").glob("chaoslab-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    _pip("--python", str(venv / "bin" / "python"), "install", "-q", "--no-compile", str(wheel), cwd=base)
    yield venv


def _installed_env(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHAOSLAB_EXPERIMENTS", "VIRTUAL_ENV")}
    return {**env, "CHAOSLAB_STATE_DIR": str(cwd / ".chaoslab")}


def _chaoslab(venv: Path, args: list[str], cwd: Path, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "chaoslab"), *args],
        cwd=cwd,
        env=_installed_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_installed_package_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    """The venv imports chaoslab from its own site-packages, with the catalogue files beside it."""
    code = "import chaoslab, chaoslab.catalogue as c; print(chaoslab.__file__); print(c.builtin_experiments_dir())"
    result = subprocess.run(
        [str(installed / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        env=_installed_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    module, experiments = result.stdout.split()
    assert Path(module).is_relative_to(installed) and not Path(module).is_relative_to(ROOT)
    assert sorted(p.stem for p in Path(experiments).glob("*.yaml")) == SHIPPED
    assert (Path(experiments).parent / "runbooks" / "cascade-vector-latency.md").is_file()
    assert (Path(experiments).parent / "topologies" / "demo.yaml").is_file()


def test_list_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    """``chaoslab list`` in an empty directory shows the built-in catalogue."""
    result = _chaoslab(installed, ["list"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == SHIPPED
    assert {row[1] for row in rows} == {"built-in"}


def _headline(venv: Path, cwd: Path, mode: str) -> tuple[int, dict[str, Any]]:
    """The quick headline by name, from ``cwd``, on free ports; its exit code and journal."""
    require(
        any(Path(f"/usr/lib/postgresql/{v}/bin/initdb").exists() for v in (15, 16, 17)),
        "PostgreSQL server binaries not installed",
    )
    ports = Ports.pick()
    journal = cwd / "journal.json"
    args = ["--quiet", "run", "cascade-vector-latency", "--quick", "--set", f"mode={mode}", *ports.overrides()]
    args += ["--journal", str(journal), "--no-live", "--no-html"]
    result = _chaoslab(venv, args, cwd, timeout_s=150)
    assert journal.exists(), result.stderr[-2000:]
    data: dict[str, Any] = json.loads(journal.read_text())
    assert data["error"] is None, data["error"]
    assert_nothing_left(ports)
    return result.returncode, data


def test_headline_by_name_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    """``chaoslab run cascade-vector-latency --quick`` from elsewhere: fragile mode finds the cascade, exit 1."""
    code, journal = _headline(installed, tmp_path, "fragile")
    assert "api:documents" in [entry["signal"] for entry in journal["analysis"]["cascade"]]
    assert (code, journal["verdict"], journal["exit_code"]) == (1, "fail", 1)
    assert journal["chaoslab_version"]


@pytest.mark.slow
def test_headline_resilient_outside_the_checkout(installed: Path, tmp_path: Path) -> None:
    """The same from the wheel with ``--set mode=resilient``: no cascade, exit 0."""
    code, journal = _headline(installed, tmp_path, "resilient")
    assert journal["analysis"]["cascade"] == []
    assert (code, journal["verdict"]) == (0, "pass")
