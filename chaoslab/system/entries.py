"""What the system layer writes to a run's ledger: the processes, containers and mounts it starts.

Each is a frozen entry with a status enum, written *before* the thing exists (or, for a process,
the moment it has a PID) and again when it is gone, so that ``chaoslab rollback`` can stop what a
dead run left running. The run's ledger (:mod:`chaoslab.run.ledger`) adds the run header, the
faults and the end, and writes them all as JSON lines::

    {"type": "process", "service": "api", "pid": 4242, "create_time": 1763881234.5,
     "argv": ["python", "-m", "chaoslab.demo.api"], "state": "started"}
    {"type": "container", "service": "db", "id": "4f0c…", "state": "started"}
    {"type": "mount", "path": "/run/chaoslab/vector-data", "state": "mounted"}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import Any, ClassVar, Self


class ProcessStatus(StrEnum):
    """Where a process the run started stands."""

    STARTED = "started"
    STOPPED = "stopped"
    STOP_FAILED = "stop_failed"


class ContainerStatus(StrEnum):
    """Where a container the run started stands."""

    STARTED = "started"
    REMOVED = "removed"
    REMOVE_FAILED = "remove_failed"


class MountStatus(StrEnum):
    """Where a tmpfs mount of the run stands (``intent`` is written before ``mount`` runs)."""

    INTENT = "intent"
    MOUNTED = "mounted"
    UNMOUNTED = "unmounted"
    UMOUNT_FAILED = "umount_failed"


def entry_json(entry: Any) -> dict[str, Any]:
    """A ledger entry (a dataclass with a ``type`` tag) as one JSON object; None fields left out."""
    out: dict[str, Any] = {"type": entry.type}
    for item in dataclasses.fields(entry):
        value = getattr(entry, item.name)
        if value is None:
            continue
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[item.name] = value
    return out


def merged(earlier: Any, later: Any) -> Any:
    """``later``'s fields over ``earlier``'s, keeping what ``later`` does not say (its None fields)."""
    changes = {f.name: v for f in dataclasses.fields(later) if (v := getattr(later, f.name)) is not None}
    return dataclasses.replace(earlier, **changes)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessEntry:
    """A process the run started (a service, the embedded Toxiproxy, a Locust process), or its new status."""

    type: ClassVar[str] = "process"
    pid: int
    state: ProcessStatus
    service: str | None = None
    create_time: float | None = None
    """Its start time: with the PID, what tells it from a later process that reuses the number."""
    argv: tuple[str, ...] | None = None
    stop_signal: int | None = None
    """The signal that stops it cleanly (SIGINT for PostgreSQL); SIGTERM when not given."""
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON line."""
        return entry_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Back from a JSON line."""
        argv = data.get("argv")
        return cls(
            pid=int(data["pid"]),
            state=ProcessStatus(data["state"]),
            service=data.get("service"),
            create_time=_opt_float(data.get("create_time")),
            argv=tuple(str(a) for a in argv) if argv is not None else None,
            stop_signal=_opt_int(data.get("stop_signal")),
            exit_code=_opt_int(data.get("exit_code")),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerEntry:
    """A container the run started, or its new status."""

    type: ClassVar[str] = "container"
    id: str
    state: ContainerStatus
    service: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON line."""
        return entry_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Back from a JSON line."""
        return cls(id=str(data["id"]), state=ContainerStatus(data["state"]), service=data.get("service"))


@dataclasses.dataclass(frozen=True, slots=True)
class MountEntry:
    """A tmpfs the run mounts (written before ``mount`` runs), or its new status."""

    type: ClassVar[str] = "mount"
    path: str
    state: MountStatus

    def to_json(self) -> dict[str, Any]:
        """The JSON line."""
        return entry_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Back from a JSON line."""
        return cls(path=str(data["path"]), state=MountStatus(data["state"]))


SystemEntry = ProcessEntry | ContainerEntry | MountEntry
"""What the system layer writes to a run's ledger."""
