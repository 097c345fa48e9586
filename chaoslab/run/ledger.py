"""The on-disk ledger of a run: every fault and launched process, written before it happens.

One append-only JSON-lines file per run, ``<state_dir>/runs/<run_id>/ledger.jsonl``, fsync'd
after each line, so that ``chaoslab rollback`` can revert what a dead run (even ``kill -9``)
left behind. Each line is one typed, frozen entry (:data:`LedgerEntry`), tagged by ``type``:

- ``run`` (:class:`RunHeader`): run id, owner PID and its start time, the resolved topology, the
  run directory, the run's references.
- ``fault`` (:class:`FaultEntry`): ``state`` ``intent`` (before apply) → ``applied`` →
  ``reverted`` | ``revert_failed`` (:class:`FaultStatus`), with the driver's record.
- ``process`` / ``container`` / ``mount`` (:mod:`chaoslab.system.entries`): something the run
  started or mounted, and when it was stopped or removed.
- ``toxiproxy`` (:class:`ToxiproxyEntry`): the URL of the Toxiproxy server the run used.
- ``end`` (:class:`EndEntry`): the run finished and cleaned up; nothing is left to roll back.

The format is the one earlier versions wrote (same keys, same state words); a line this version
cannot read is skipped and counted (:attr:`LedgerState.unreadable`), never guessed at.

Every entry is redacted before it is written (:func:`chaoslab.redact.redact_data`): a command
line, a DSN or a header holds ``***`` where a secret was. ``${env:...}`` and ``${file:...}``
references are kept, and ``chaoslab rollback`` reads them again when it needs the value.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Self

import psutil

from chaoslab.redact import redact_data, redact_text
from chaoslab.run.notes import state_dir as default_state_dir
from chaoslab.system.entries import (
    ContainerEntry,
    ContainerStatus,
    MountEntry,
    MountStatus,
    ProcessEntry,
    ProcessStatus,
    entry_json,
    merged,
)
from chaoslab.system.processes import same_process

LEDGER_VERSION = 2
"""Written in the header; ledgers without one were written by version 1 (the same format)."""


def runs_dir(base: Path | None = None) -> Path:
    """Where run ledgers live."""
    return (base or default_state_dir()) / "runs"


class FaultStatus(StrEnum):
    """Where a fault stands in the ledger."""

    INTENT = "intent"
    """Written before apply: the fault may be on (partly) from here."""
    APPLIED = "applied"
    REVERTED = "reverted"
    """Reverted and positively checked gone."""
    REVERT_FAILED = "revert_failed"
    """Revert raised or the check still saw it: it may still be on."""


@dataclass(frozen=True, slots=True)
class RunHeader:
    """The first line: which run, which process owns it, and what rollback needs to rebuild a fault context."""

    type: ClassVar[str] = "run"
    run_id: str | None = None
    pid: int | None = None
    pid_create_time: float | None = None
    experiment: str | None = None
    topology: Mapping[str, Any] | None = None
    run_dir: str | None = None
    refs: Mapping[str, str] | None = None
    version: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON line."""
        return entry_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Back from a JSON line."""
        pid = data.get("pid")
        created = data.get("pid_create_time")
        refs = data.get("refs")
        version = data.get("version")
        return cls(
            run_id=data.get("run_id"),
            pid=int(pid) if isinstance(pid, int) else None,
            pid_create_time=float(created) if created is not None else None,
            experiment=data.get("experiment"),
            topology=data.get("topology"),
            run_dir=data.get("run_dir"),
            refs={str(k): str(v) for k, v in refs.items()} if isinstance(refs, dict) else None,
            version=int(version) if version is not None else None,
        )


@dataclass(frozen=True, slots=True)
class FaultEntry:
    """One step of a fault: its intent (with the record), applied, reverted or revert failed."""

    type: ClassVar[str] = "fault"
    label: str
    state: FaultStatus
    family: str | None = None
    kind: str | None = None
    target: str | None = None
    record: Mapping[str, Any] | None = None
    """The driver's ledger record as JSON (what revert needs)."""
    problem: str | None = None
    """Why a revert failed."""

    def to_json(self) -> dict[str, Any]:
        """The JSON line."""
        return entry_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Back from a JSON line."""
        return cls(
            label=str(data["label"]),
            state=FaultStatus(data["state"]),
            family=data.get("family"),
            kind=data.get("kind"),
            target=data.get("target"),
            record=data.get("record") or None,
            problem=data.get("problem"),
        )


@dataclass(frozen=True, slots=True)
class ToxiproxyEntry:
    """The Toxiproxy server the run used (rollback removes the run's toxics from it)."""

    type: ClassVar[str] = "toxiproxy"
    url: str

    def to_json(self) -> dict[str, Any]:
        """The JSON line."""
        return entry_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Back from a JSON line."""
        return cls(url=str(data["url"]))


@dataclass(frozen=True, slots=True)
class EndEntry:
    """The run ended and cleaned up after itself."""

    type: ClassVar[str] = "end"

    def to_json(self) -> dict[str, Any]:
        """The JSON line."""
        return entry_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Back from a JSON line."""
        return cls()


LedgerEntry = RunHeader | FaultEntry | ToxiproxyEntry | EndEntry | ProcessEntry | ContainerEntry | MountEntry
"""Any line of a ledger."""

_ENTRY_TYPES: dict[str, Any] = {
    cls.type: cls for cls in (RunHeader, FaultEntry, ToxiproxyEntry, EndEntry, ProcessEntry, ContainerEntry, MountEntry)
}


def entry_from_json(data: Mapping[str, Any]) -> LedgerEntry:
    """One ledger line back as its entry; ``ValueError``/``KeyError`` when it is not one this version knows."""
    cls = _ENTRY_TYPES.get(str(data.get("type")))
    if cls is None:
        raise ValueError(f"unknown ledger entry type {data.get('type')!r}")
    entry: LedgerEntry = cls.from_json(data)
    return entry


class Ledger:
    """Appends entries to one run's ledger file, durably."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(
        cls,
        run_id: str,
        *,
        base: Path | None = None,
        experiment: str | None = None,
        topology: Mapping[str, Any] | None = None,
        run_dir: str | None = None,
        refs: Mapping[str, str] | None = None,
    ) -> Ledger:
        """Start a new ledger with its header (this process's PID and start time as the owner)."""
        directory = runs_dir(base) / run_id
        directory.mkdir(parents=True, exist_ok=False)
        ledger = cls(directory / "ledger.jsonl")
        me = psutil.Process()
        ledger.append(
            RunHeader(
                run_id=run_id,
                pid=me.pid,
                pid_create_time=me.create_time(),
                experiment=experiment,
                topology=topology,
                run_dir=run_dir,
                refs=refs,
                version=LEDGER_VERSION,
            )
        )
        return ledger

    def append(self, entry: LedgerEntry) -> None:
        """Write one entry, its secrets masked, and fsync it before returning."""
        line = (
            json.dumps(redact_data({"at": time.time(), **entry.to_json()}), default=lambda o: redact_text(str(o)))
            + "\n"
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self, *, remove: bool) -> None:
        """Mark the run finished; remove the ledger directory when nothing needs keeping."""
        self.append(EndEntry())
        if remove:
            shutil.rmtree(self.path.parent, ignore_errors=True)


@dataclass
class LedgerState:
    """A ledger read back: the last known state of each fault, process, container and mount."""

    path: Path
    header: RunHeader = field(default_factory=RunHeader)
    faults: dict[str, FaultEntry] = field(default_factory=dict)
    processes: dict[int, ProcessEntry] = field(default_factory=dict)
    containers: dict[str, ContainerEntry] = field(default_factory=dict)
    mounts: dict[str, MountEntry] = field(default_factory=dict)
    toxiproxy_url: str | None = None
    ended: bool = False
    unreadable: list[int] = field(default_factory=list)
    """Line numbers this version could not read (a torn last line is not counted)."""

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.header.run_id or self.path.parent.name

    def owner_alive(self) -> bool:
        """Whether the process that owns this run still runs (same PID and start time)."""
        if self.header.pid is None:
            return False
        try:
            return same_process(self.header.pid, self.header.pid_create_time or 0.0) is not None
        except psutil.AccessDenied:
            return False

    def pending_faults(self) -> list[FaultEntry]:
        """Faults not known to be reverted, most recent first (the order to revert them in)."""
        return [f for f in reversed(self.faults.values()) if f.state != FaultStatus.REVERTED]

    def live_processes(self) -> list[ProcessEntry]:
        """Processes the run started and did not record as stopped, most recent first."""
        return [p for p in reversed(self.processes.values()) if p.state != ProcessStatus.STOPPED]

    def live_containers(self) -> list[ContainerEntry]:
        """Containers the run started and did not record as removed."""
        return [c for c in self.containers.values() if c.state != ContainerStatus.REMOVED]

    def live_mounts(self) -> list[MountEntry]:
        """Mounts the run made (or meant to make) and did not record as unmounted."""
        return [m for m in self.mounts.values() if m.state != MountStatus.UNMOUNTED]

    def replay(self, entry: LedgerEntry) -> None:
        """Apply one entry to the state: later entries update earlier ones of the same thing."""
        if isinstance(entry, RunHeader):
            self.header = merged(self.header, entry)
        elif isinstance(entry, FaultEntry):
            previous = self.faults.get(entry.label)
            # a state change keeps the family, kind, target and record its intent wrote
            self.faults[entry.label] = merged(previous, entry) if previous is not None else entry
        elif isinstance(entry, ProcessEntry):
            previous_process = self.processes.get(entry.pid)
            self.processes[entry.pid] = merged(previous_process, entry) if previous_process else entry
        elif isinstance(entry, ContainerEntry):
            previous_container = self.containers.get(entry.id)
            self.containers[entry.id] = merged(previous_container, entry) if previous_container else entry
        elif isinstance(entry, MountEntry):
            self.mounts[entry.path] = entry
        elif isinstance(entry, ToxiproxyEntry):
            self.toxiproxy_url = entry.url
        elif isinstance(entry, EndEntry):
            self.ended = True


def read_ledger(path: Path) -> LedgerState:
    """Replay a ledger file into its final state; unreadable lines are skipped and counted."""
    state = LedgerState(path=path)
    with path.open(encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            entry = entry_from_json(data)
        except (ValueError, KeyError, TypeError):
            if number != last or line.endswith("}"):
                state.unreadable.append(number + 1)
            # else: a torn last line, the harness died mid-write: nothing was done after it
            continue
        state.replay(entry)
    return state


def iter_ledgers(base: Path | None = None) -> Iterator[LedgerState]:
    """Every ledger under the state directory, oldest first."""
    directory = runs_dir(base)
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*/ledger.jsonl")):
        yield read_ledger(path)


__all__ = [
    "LEDGER_VERSION",
    "EndEntry",
    "FaultEntry",
    "FaultStatus",
    "Ledger",
    "LedgerEntry",
    "LedgerState",
    "RunHeader",
    "ToxiproxyEntry",
    "entry_from_json",
    "iter_ledgers",
    "read_ledger",
    "runs_dir",
]
