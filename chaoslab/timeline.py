"""The Timeline: windows × signals, plus phases, fault actions, probe health and resource samples.

Running produces it; analysis only reads it; the journal is its serialisation (with the
experiment and the analysis beside it). All times are seconds from the run's start on the
monotonic clock (``t0``); the wall-clock start is kept once, for display.

A *signal* is one measured series: a request class of the load (``api:search``) or the health
of a service from its probe (``probe:vector``). Each window of a signal holds counts, errors by
class and latency percentiles; windows with too few samples are "no data", never "healthy".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chaoslab.bins import BinSeries


class ErrorClass(StrEnum):
    """Why a request or probe failed."""

    TIMEOUT = "timeout"
    REFUSED = "refused"
    RESET = "reset"
    TRANSPORT = "transport"
    HTTP_5XX = "http_5xx"
    HTTP_429 = "http_429"
    HTTP_4XX = "http_4xx"
    CHECK = "check"
    """A probe answered but its check failed (wrong status, wrong JSON field, process gone)."""


def classify_status(status: int, expect: Sequence[int] = ()) -> ErrorClass | None:
    """The error class of an HTTP status (None for success); ``expect`` lists the only good statuses.

    >>> classify_status(503), classify_status(200, (201,))
    (<ErrorClass.HTTP_5XX: 'http_5xx'>, <ErrorClass.CHECK: 'check'>)
    """
    if expect:
        if status in expect:
            return None
    elif status < 400:
        return None
    if status == 429:
        return ErrorClass.HTTP_429
    if status >= 500:
        return ErrorClass.HTTP_5XX
    if status >= 400:
        return ErrorClass.HTTP_4XX
    return ErrorClass.CHECK


class SignalKind(StrEnum):
    """Where a signal's samples come from."""

    LOAD = "load"
    PROBE = "probe"


@dataclass(frozen=True, slots=True)
class WindowStats:
    """One window of one signal.

    ``count`` is completed attempts (ok + errors). ``offered`` is how many requests the
    schedule made due in the window and ``unsent`` how many of those the generator could not
    send (saturation); both are 0 for probes. Latencies are in milliseconds, measured from the
    intended send time, ``None`` when the window has no completed attempt.
    """

    index: int
    start_s: float
    count: int = 0
    ok: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    offered: int = 0
    unsent: int = 0

    @property
    def error_count(self) -> int:
        """Failed attempts in the window."""
        return sum(self.errors.values())

    @property
    def error_rate(self) -> float | None:
        """Failed / completed, or None without samples."""
        return self.error_count / self.count if self.count else None

    def throughput(self, window_s: float) -> float:
        """Completed attempts per second."""
        return self.count / window_s

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; empty fields are left out."""
        out: dict[str, Any] = {
            "index": self.index,
            "start_s": round(self.start_s, 6),
            "count": self.count,
            "ok": self.ok,
        }
        if self.errors:
            out["errors"] = dict(sorted(self.errors.items()))
        for name in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"):
            value = getattr(self, name)
            if value is not None:
                out[name] = round(value, 3)
        if self.offered:
            out["offered"] = self.offered
        if self.unsent:
            out["unsent"] = self.unsent
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            index=int(data["index"]),
            start_s=float(data["start_s"]),
            count=int(data.get("count", 0)),
            ok=int(data.get("ok", 0)),
            errors={str(k): int(v) for k, v in (data.get("errors") or {}).items()},
            p50_ms=_opt_float(data.get("p50_ms")),
            p95_ms=_opt_float(data.get("p95_ms")),
            p99_ms=_opt_float(data.get("p99_ms")),
            max_ms=_opt_float(data.get("max_ms")),
            mean_ms=_opt_float(data.get("mean_ms")),
            offered=int(data.get("offered", 0)),
            unsent=int(data.get("unsent", 0)),
        )


@dataclass(frozen=True, slots=True)
class Signal:
    """One signal's windows, in time order (windows with no activity may be absent), and its bins."""

    name: str
    kind: SignalKind
    service: str | None
    windows: tuple[WindowStats, ...]
    bins: BinSeries | None = None
    """Sub-window bins (:mod:`chaoslab.bins`) where they were kept; analysis locates instants with them."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind.value,
            "service": self.service,
            "windows": [w.to_dict() for w in self.windows],
        }
        if self.bins is not None:
            out["bins"] = self.bins.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signal:
        """Inverse of :meth:`to_dict`."""
        bins = data.get("bins")
        return cls(
            name=str(data["name"]),
            kind=SignalKind(data.get("kind", "load")),
            service=data.get("service"),
            windows=tuple(WindowStats.from_dict(w) for w in data.get("windows", ())),
            bins=None if bins is None else BinSeries.from_dict(bins),
        )


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    """A phase of the run: warmup, baseline, fault, recovery."""

    name: str
    start_s: float
    end_s: float

    def contains(self, t_s: float) -> bool:
        """Whether ``t_s`` falls in [start, end)."""
        return self.start_s <= t_s < self.end_s

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"name": self.name, "start_s": round(self.start_s, 6), "end_s": round(self.end_s, 6)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PhaseSpan:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["name"]), float(data["start_s"]), float(data["end_s"]))


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A fault as it happened: when it went on, when chaoslab let go of it, when its revert was verified.

    ``revert_started_s`` is the *removal*: the moment chaoslab stopped holding the fault. For a
    fault chaoslab holds (a toxic, a freeze, a service it keeps down) that is when its revert
    began; for one it does not (a kill a supervisor answers, a restart) it is the injection, since
    everything after it is the system's own recovery. ``reverted_at_s`` is when the revert was
    positively observed (a restarted service answering again). None when it never happened.
    """

    kind: str
    target: str
    description: str
    injected_at_s: float | None
    reverted_at_s: float | None
    revert_ok: bool | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    revert_started_s: float | None = None

    @property
    def removed_at_s(self) -> float | None:
        """The removal: ``revert_started_s``, else (a record without it) ``reverted_at_s``."""
        return self.revert_started_s if self.revert_started_s is not None else self.reverted_at_s

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "kind": self.kind,
            "target": self.target,
            "description": self.description,
            "injected_at_s": _round(self.injected_at_s),
            "revert_started_s": _round(self.revert_started_s),
            "reverted_at_s": _round(self.reverted_at_s),
            "revert_ok": self.revert_ok,
            "detail": dict(self.detail),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            kind=str(data["kind"]),
            target=str(data["target"]),
            description=str(data.get("description", "")),
            injected_at_s=_opt_float(data.get("injected_at_s")),
            reverted_at_s=_opt_float(data.get("reverted_at_s")),
            revert_ok=data.get("revert_ok"),
            detail=dict(data.get("detail") or {}),
            error=data.get("error"),
            revert_started_s=_opt_float(data.get("revert_started_s")),
        )


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One sample of one service's (or the host's) resources."""

    t_s: float
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    open_fds: int | None = None
    connections: int | None = None
    extra: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; missing values left out."""
        out: dict[str, Any] = {"t_s": round(self.t_s, 6)}
        for name in ("cpu_percent", "rss_bytes", "open_fds", "connections"):
            value = getattr(self, name)
            if value is not None:
                out[name] = round(value, 2) if isinstance(value, float) else value
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResourceSample:
        """Inverse of :meth:`to_dict`."""
        return cls(
            t_s=float(data["t_s"]),
            cpu_percent=_opt_float(data.get("cpu_percent")),
            rss_bytes=_opt_int(data.get("rss_bytes")),
            open_fds=_opt_int(data.get("open_fds")),
            connections=_opt_int(data.get("connections")),
            extra={str(k): float(v) for k, v in (data.get("extra") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at one instant: a phase change, a fault action, a note, an abort."""

    t_s: float
    kind: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        out: dict[str, Any] = {"t_s": round(self.t_s, 6), "kind": self.kind, "message": self.message}
        if self.data:
            out["data"] = dict(self.data)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Inverse of :meth:`to_dict`."""
        return cls(float(data["t_s"]), str(data["kind"]), str(data.get("message", "")), dict(data.get("data") or {}))


@dataclass(frozen=True, slots=True)
class GeneratorWindow:
    """The load generator's own health in one window: its lag and CPU, and whether it kept up."""

    index: int
    offered: int
    sent: int
    lag_p99_ms: float
    cpu_percent: float | None = None
    saturated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "index": self.index,
            "offered": self.offered,
            "sent": self.sent,
            "lag_p99_ms": round(self.lag_p99_ms, 3),
            "cpu_percent": None if self.cpu_percent is None else round(self.cpu_percent, 1),
            "saturated": self.saturated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratorWindow:
        """Inverse of :meth:`to_dict`."""
        return cls(
            index=int(data["index"]),
            offered=int(data["offered"]),
            sent=int(data["sent"]),
            lag_p99_ms=float(data["lag_p99_ms"]),
            cpu_percent=_opt_float(data.get("cpu_percent")),
            saturated=bool(data.get("saturated", False)),
        )


@dataclass(frozen=True, slots=True)
class Timeline:
    """Everything measured in one run, on one clock (seconds from the run's start)."""

    window_s: float
    signals: Mapping[str, Signal]
    phases: tuple[PhaseSpan, ...] = ()
    faults: tuple[FaultRecord, ...] = ()
    resources: Mapping[str, tuple[ResourceSample, ...]] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    generator: tuple[GeneratorWindow, ...] = ()
    duration_s: float = 0.0

    def phase(self, name: str) -> PhaseSpan | None:
        """The phase called ``name``, if the run reached it."""
        return next((p for p in self.phases if p.name == name), None)

    def load_signals(self) -> tuple[Signal, ...]:
        """Signals measured by the load, in insertion order."""
        return tuple(s for s in self.signals.values() if s.kind is SignalKind.LOAD)

    def probe_signals(self) -> tuple[Signal, ...]:
        """Signals measured by health probes."""
        return tuple(s for s in self.signals.values() if s.kind is SignalKind.PROBE)

    def window_start(self, index: int) -> float:
        """Start time of window ``index``."""
        return index * self.window_s

    def to_journal_parts(self) -> dict[str, Any]:
        """The journal's timeline-derived top-level fields (docs/reports.md, "The journal")."""
        return {
            "window_s": self.window_s,
            "duration_s": round(self.duration_s, 6),
            "phases": [p.to_dict() for p in self.phases],
            "faults": [f.to_dict() for f in self.faults],
            "timeline": [s.to_dict() for s in self.load_signals()],
            "probes": [s.to_dict() for s in self.probe_signals()],
            "resources": {k: [r.to_dict() for r in v] for k, v in self.resources.items()},
            "events": [e.to_dict() for e in self.events],
            "generator": [g.to_dict() for g in self.generator],
        }

    @classmethod
    def from_journal_parts(cls, data: Mapping[str, Any]) -> Timeline:
        """Inverse of :meth:`to_journal_parts` (reads a journal's top level)."""
        signals = [Signal.from_dict(s) for s in [*data.get("timeline", ()), *data.get("probes", ())]]
        return cls(
            window_s=float(data["window_s"]),
            signals={s.name: s for s in signals},
            phases=tuple(PhaseSpan.from_dict(p) for p in data.get("phases", ())),
            faults=tuple(FaultRecord.from_dict(f) for f in data.get("faults", ())),
            resources={
                str(k): tuple(ResourceSample.from_dict(r) for r in v) for k, v in (data.get("resources") or {}).items()
            },
            events=tuple(Event.from_dict(e) for e in data.get("events", ())),
            generator=tuple(GeneratorWindow.from_dict(g) for g in data.get("generator", ())),
            duration_s=float(data.get("duration_s", 0.0)),
        )


def merge_signals(*groups: Iterable[Signal]) -> dict[str, Signal]:
    """Signals from several sources keyed by name (later ones win)."""
    out: dict[str, Signal] = {}
    for group in groups:
        for signal in group:
            out[signal.name] = signal
    return out


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
