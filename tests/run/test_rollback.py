"""``chaoslab rollback`` on ledgers of dead runs: what it reverts, and what it says when it cannot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaoslab.run.ledger import FaultStatus, read_ledger
from chaoslab.run.rollback import rollback_all

DEAD_PID = 2**22 + 4321
"""A PID no live process has here (above the kernel's default pid_max)."""


def write_ledger(state: Path, run_id: str, lines: list[dict[str, Any]]) -> Path:
    """A ledger file as a dead run left it: its header (owner gone) and ``lines``, no end."""
    path = state / "runs" / run_id / "ledger.jsonl"
    path.parent.mkdir(parents=True)
    header = {
        "at": 1.0,
        "type": "run",
        "run_id": run_id,
        "pid": DEAD_PID,
        "pid_create_time": 1.0,
        "experiment": "e",
        "topology": {"name": "t", "services": {"store": {}}},
        "run_dir": str(state / "not-a-run-dir"),
        "refs": {},
    }
    path.write_text("".join(json.dumps(line) + "\n" for line in [header, *lines]))
    return path


def disk_fill(label: str, fill_dir: Path, record: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The intent and applied lines of a disk fill, as version 1 of the ledger wrote them."""
    record = record or {
        "kind": "disk_fill",
        "service": "store",
        "path": str(fill_dir.parent),
        "fill_dir": str(fill_dir),
        "cap": 1024,
        "written": 0,
        "files": 0,
    }
    base = {"type": "fault", "label": label, "family": "disk", "kind": "disk_fill", "target": "store"}
    return [{**base, "state": "intent", "record": record}, {**base, "state": "applied", "record": record}]


class TestRollback:
    """Dead runs' faults are reverted from their ledgers; the unreadable is reported, never guessed."""

    async def test_a_version_1_ledger_is_rolled_back(self, tmp_path: Path) -> None:
        """A disk fill left by a dead run of the previous version is removed, and the ledger with it."""
        fill_dir = tmp_path / "data" / ".chaoslab-fill-old-f0"
        fill_dir.mkdir(parents=True)
        (fill_dir / "fill-00000.bin").write_bytes(b"\0" * 1024)
        ledger = write_ledger(tmp_path / "state", "old", disk_fill("f0-disk_fill", fill_dir))
        report = await rollback_all(tmp_path / "state")
        assert [(a.what, a.ok, a.detail) for a in report.actions] == [
            ("revert f0-disk_fill (disk_fill on store)", True, "")
        ]
        assert not fill_dir.exists()
        assert not ledger.parent.exists()

    async def test_a_record_this_version_cannot_read(self, tmp_path: Path) -> None:
        """A record missing what revert needs: the action fails, says why in one line, and the ledger stays."""
        fill_dir = tmp_path / "data" / ".chaoslab-fill-odd-f0"
        fill_dir.mkdir(parents=True)
        broken = {"kind": "disk_fill", "service": "store", "where": str(fill_dir)}
        ledger = write_ledger(tmp_path / "state", "odd", disk_fill("f0-disk_fill", fill_dir, broken))
        report = await rollback_all(tmp_path / "state")
        (action,) = report.actions
        assert not action.ok
        assert action.detail.startswith(
            "LedgerRecordError: the disk_fill record cannot be read by this chaoslab (DiskFillRecord: path: "
        )
        assert "\n" not in action.detail
        assert fill_dir.exists()
        state = read_ledger(ledger)
        assert [(f.label, f.state) for f in state.pending_faults()] == [("f0-disk_fill", FaultStatus.REVERT_FAILED)]
        assert not state.ended

    async def test_a_kind_no_installed_family_knows(self, tmp_path: Path) -> None:
        """A fault of a plugin that is not installed here is named, with what to do."""
        line = {"type": "fault", "label": "f0-note", "family": "note", "kind": "note", "target": "store"}
        write_ledger(tmp_path / "state", "plug", [{**line, "state": "intent", "record": {"kind": "note"}}])
        report = await rollback_all(tmp_path / "state")
        (action,) = report.actions
        assert (action.ok, action.detail) == (
            False,
            "no fault driver for kind 'note' (family 'note') in this chaoslab; revert it by hand",
        )

    async def test_unreadable_lines_are_reported(self, tmp_path: Path) -> None:
        """A complete line of unknown shape is not skipped silently: rollback reports it and keeps the ledger."""
        ledger = write_ledger(tmp_path / "state", "torn", [{"type": "fault", "label": "f0", "state": "sideways"}])
        report = await rollback_all(tmp_path / "state")
        (action,) = report.actions
        assert action.what == f"read the ledger {ledger}"
        assert not action.ok
        assert action.detail.startswith("line(s) 2 cannot be read by this chaoslab")
        assert ledger.exists()

    async def test_a_live_owner_is_left_alone(self, tmp_path: Path) -> None:
        """A run whose owner still runs (this process) is skipped, not touched."""
        import os

        import psutil

        ledger = write_ledger(tmp_path / "state", "live", [])
        lines = ledger.read_text().splitlines()
        header = json.loads(lines[0])
        header.update(pid=os.getpid(), pid_create_time=psutil.Process().create_time())
        ledger.write_text(json.dumps(header) + "\n")
        report = await rollback_all(tmp_path / "state")
        assert report.actions == []
        assert report.skipped == [f"run live is still running (pid {os.getpid()}); not touched"]
