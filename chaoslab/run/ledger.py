"""The on-disk ledger of a run: every fault and launched process, written before it happens.

One append-only JSON-lines file per run, ``<state_dir>/runs/<run_id>/ledger.jsonl``, fsync'd
after each line, so that ``chaoslab rollback`` can revert what a dead run (even ``kill -9``)
left behind. Entry types:

- ``run``: the header — run id, owner PID and its start time, the resolved topology, the
  Toxiproxy URL, the run directory.
- ``fault``: ``state`` ``intent`` (before apply) → ``applied`` → ``reverted`` | ``revert_failed``,
  each with the driver's record.
- ``process`` / ``container`` / ``mount``: something the run started or mounted, and when it
  was stopped or removed.
- ``toxiproxy``: the URL of the Toxiproxy server the run used (to remove its toxics).
- ``end``: the run finished and cleaned up; nothing is left to roll back.

Every entry is redacted before it is written (:func:`chaoslab.redact.redact_data`): a command
line, a DSN or a header holds ``***`` where a secret was. ``${env:...}`` and ``${file:...}``
references are kept, and ``chaoslab rollback`` reads them again when it needs the value.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from chaoslab.redact import redact_data, redact_text
from chaoslab.run.notes import state_dir as default_state_dir
from chaoslab.system.processes import same_process


def runs_dir(base: Path | None = None) -> Path:
    """Where run ledgers live."""
    return (base or default_state_dir()) / "runs"


class Ledger:
    """Appends entries to one run's ledger file, durably."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, run_id: str, header: dict[str, Any], base: Path | None = None) -> Ledger:
        """Start a new ledger with its header entry (owner PID and start time included)."""
        directory = runs_dir(base) / run_id
        directory.mkdir(parents=True, exist_ok=False)
        ledger = cls(directory / "ledger.jsonl")
        me = psutil.Process()
        ledger.append({"type": "run", "run_id": run_id, "pid": me.pid, "pid_create_time": me.create_time(), **header})
        return ledger

    def append(self, entry: dict[str, Any]) -> None:
        """Write one entry, its secrets masked, and fsync it before returning."""
        line = json.dumps(redact_data({"at": time.time(), **entry}), default=lambda o: redact_text(str(o))) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self, *, remove: bool) -> None:
        """Mark the run finished; remove the ledger directory when nothing needs keeping."""
        self.append({"type": "end"})
        if remove:
            shutil.rmtree(self.path.parent, ignore_errors=True)


@dataclass
class FaultEntry:
    """The last known state of one fault in a ledger."""

    label: str
    family: str
    kind: str
    target: str
    state: str
    record: dict[str, Any]


@dataclass
class LedgerState:
    """A ledger read back: what is still applied, running or mounted."""

    path: Path
    header: dict[str, Any]
    faults: dict[str, FaultEntry] = field(default_factory=dict)
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    mounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    toxiproxy_url: str | None = None
    ended: bool = False

    @property
    def run_id(self) -> str:
        """The run's id."""
        return str(self.header.get("run_id", self.path.parent.name))

    def owner_alive(self) -> bool:
        """Whether the process that owns this run still runs (same PID and start time)."""
        pid = self.header.get("pid")
        if not isinstance(pid, int):
            return False
        try:
            return same_process(pid, float(self.header.get("pid_create_time", 0))) is not None
        except psutil.AccessDenied:
            return False

    def pending_faults(self) -> list[FaultEntry]:
        """Faults not known to be reverted, most recent first (the order to revert them in)."""
        return [f for f in reversed(self.faults.values()) if f.state != "reverted"]

    def live_processes(self) -> list[dict[str, Any]]:
        """Processes the run started and did not record as stopped, most recent first."""
        return [p for p in reversed(self.processes.values()) if p.get("state") != "stopped"]


def read_ledger(path: Path) -> LedgerState:
    """Replay a ledger file into its final state; unreadable lines (a torn last write) are skipped."""
    header: dict[str, Any] = {}
    state = LedgerState(path=path, header=header)
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            kind = entry.get("type")
            if kind == "run":
                header.update(entry)
            elif kind == "fault":
                label = str(entry["label"])
                previous = state.faults.get(label)
                record = entry.get("record") or (previous.record if previous else {})
                state.faults[label] = FaultEntry(
                    label=label,
                    family=str(entry.get("family", previous.family if previous else "")),
                    kind=str(entry.get("kind", previous.kind if previous else "")),
                    target=str(entry.get("target", previous.target if previous else "")),
                    state=str(entry["state"]),
                    record=record,
                )
            elif kind == "process":
                pid = int(entry["pid"])
                state.processes[pid] = {**state.processes.get(pid, {}), **entry}
            elif kind == "container":
                cid = str(entry["id"])
                state.containers[cid] = {**state.containers.get(cid, {}), **entry}
            elif kind == "mount":
                mpath = str(entry["path"])
                state.mounts[mpath] = {**state.mounts.get(mpath, {}), **entry}
            elif kind == "toxiproxy":
                state.toxiproxy_url = entry.get("url")
            elif kind == "end":
                state.ended = True
    return state


def iter_ledgers(base: Path | None = None) -> Iterator[LedgerState]:
    """Every ledger under the state directory, oldest first."""
    directory = runs_dir(base)
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*/ledger.jsonl")):
        yield read_ledger(path)
