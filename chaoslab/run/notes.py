"""Timestamped observer notes: ``chaoslab note "..."`` appends, the running engine picks them up.

While a run is active its engine writes ``<state_dir>/active-run.json`` with the path of the
run's notes file; ``chaoslab note`` appends one JSON line ``{"wall_time", "text", "author"}``
to it. The engine turns wall time into a run offset once, when it reads the line.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslab.errors import SpecError


def state_dir() -> Path:
    """The state directory: ``$CHAOSLAB_STATE_DIR`` or ``./.chaoslab``."""
    return Path(os.environ.get("CHAOSLAB_STATE_DIR") or ".chaoslab").absolute()


def active_run_file(base: Path | None = None) -> Path:
    """Where the active run announces itself."""
    return (base or state_dir()) / "active-run.json"


@dataclass(frozen=True, slots=True)
class Note:
    """One note, at a wall-clock time."""

    wall_time: float
    text: str
    author: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"wall_time": self.wall_time, "text": self.text, "author": self.author}


def append_note(text: str, *, author: str | None = None, base: Path | None = None) -> Path:
    """Append a note to the active run's notes file; raises SpecError when no run is active."""
    text = " ".join(text.split())
    if not text:
        raise SpecError("note: expected some text, got an empty note")
    marker = active_run_file(base)
    try:
        active = json.loads(marker.read_text(encoding="utf-8"))
        notes_path = Path(active["notes_path"])
    except (OSError, ValueError, KeyError):
        raise SpecError(f"note: no active chaoslab run or game day (no {marker})") from None
    note = Note(time.time(), text, author or _user())
    with notes_path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(note.to_dict()) + "\n")
    return notes_path


def read_notes(path: Path, offset: int = 0) -> tuple[list[Note], int]:
    """Notes appended to ``path`` since byte ``offset``, and the new offset (partial lines wait)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    notes: list[Note] = []
    consumed = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        consumed += len(line)
        try:
            raw = json.loads(line)
            notes.append(Note(float(raw["wall_time"]), str(raw["text"]), str(raw.get("author", ""))))
        except (ValueError, KeyError, TypeError):
            continue
    return notes, offset + consumed


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class NotesFile:
    """The notes file of one run, read incrementally: each :meth:`read` returns the notes added since the last."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def read(self) -> list[Note]:
        """Notes appended since the last read (a partial last line waits for the next)."""
        notes, self._offset = read_notes(self.path, self._offset)
        return notes
