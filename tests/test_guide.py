"""docs/your-system.md, followed literally: each command of its ``bash`` blocks, in order, on the sample app."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "your-system.md"
_EXIT = re.compile(r"#\s*exit (\d+)")


def guide_commands() -> list[tuple[str, int]]:
    """(command line, expected exit code) for each line of the guide's ``bash`` blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    commands: list[tuple[str, int]] = []
    for block in blocks:
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            expected = _EXIT.search(line)
            commands.append((line.split("#", 1)[0].strip(), int(expected.group(1)) if expected else 0))
    return commands


def test_guide_has_the_steps() -> None:
    """The page runs init, validate, check and a run, and README links it right after the two commands."""
    programs = [shlex.split(command)[:2] for command, _ in guide_commands()]
    assert ["chaoslab", "init"] in programs and ["chaoslab", "run"] in programs
    assert ["chaoslab", "check"] in programs and ["chaoslab", "validate"] in programs
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block_end = readme.index("```", readme.index("```bash") + 3)
    assert "docs/your-system.md" in readme[first_block_end : first_block_end + 1200]


def test_follow_the_guide(tmp_path: Path) -> None:
    """Each command exits as the page says; the run's first verdict is a pass with a recovery time."""
    require(
        any(Path(f"/usr/lib/postgresql/{v}/bin/initdb").exists() for v in (15, 16, 17)),
        "PostgreSQL server binaries not installed",
    )
    shutil.copytree(
        ROOT / "examples" / "sample-app",
        tmp_path / "examples" / "sample-app",
        ignore=shutil.ignore_patterns("__pycache__", "chaos", "chaoslab-reports", ".chaoslab"),
    )
    cwd = tmp_path
    env = {**os.environ, "CHAOSLAB_STATE_DIR": str(tmp_path / ".chaoslab"), "PYTHONPATH": str(ROOT)}
    env.pop("CHAOSLAB_EXPERIMENTS", None)
    ran: list[str] = []
    for command, expected in guide_commands():
        argv = shlex.split(command)
        if argv[0] == "cd":
            cwd = cwd / argv[1]
            continue
        assert argv[0] == "chaoslab", f"the guide's bash blocks hold only cd and chaoslab commands: {command}"
        result = subprocess.run(
            [sys.executable, "-m", "chaoslab", *argv[1:]],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert result.returncode == expected, f"{command}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        ran.append(command)
        if argv[1] == "init":
            written = sorted(p.name for p in (cwd / "chaos").iterdir())
            assert written == [
                "docker-compose.chaoslab.yml",
                "topology.yaml",
                "toxiproxy.json",
                "web-catalog-latency.yaml",
            ]
            assert "web re-pointed through CATALOG_URL" in result.stdout
            assert "catalog re-pointed through DATABASE_URL" in result.stdout
            assert "shop:shop" not in result.stdout  # values (passwords) are never printed
    assert any(c.startswith("chaoslab run") for c in ran)
    (journal_path,) = (cwd / "chaoslab-reports").glob("web-catalog-latency-*/journal.json")
    journal = json.loads(journal_path.read_text())
    assert journal["error"] is None
    assert (journal["verdict"], journal["analysis"]["cascade"], journal["analysis"]["recovered"]) == ("pass", [], True)
    assert [f["target"] for f in journal["faults"]] == ["web->catalog"]
