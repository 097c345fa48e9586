"""Atomic file writes: a reader sees the old file or the whole new one, and no temporary file is left."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chaoslab.files import write_atomic


def test_writes_and_replaces(tmp_path: Path) -> None:
    """A new file is created (with its parents); a second write replaces it whole."""
    path = tmp_path / "a" / "b" / "out.json"
    assert write_atomic(path, "first") == path
    assert path.read_text(encoding="utf-8") == "first"
    write_atomic(path, "second, longer ✓")
    assert path.read_text(encoding="utf-8") == "second, longer ✓"
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]


def test_mode_is_applied(tmp_path: Path) -> None:
    """``mode=0o600`` keeps the file to its owner; the default follows the umask like ``open``."""
    private = write_atomic(tmp_path / "journal.json", "{}", mode=0o600)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    umask = os.umask(0o022)
    try:
        shared = write_atomic(tmp_path / "report.html", "<html>")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """A write that fails half-way (text that cannot be encoded) keeps the previous content."""
    path = write_atomic(tmp_path / "state.json", "old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "x" * 10_000 + "\udcff", encoding="ascii")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
