"""The collaborators a run is built from, as protocols: the system, the load, the probes, the samplers.

The engine (:class:`chaoslab.run.execution.Run`) takes each as a keyword argument, the way httpx
takes ``transport=``; :mod:`chaoslab.run.wiring` has the real ones and :mod:`chaoslab.testing`
the fakes. Parts that live only as long as the run are given as factories: the system is made
from a :class:`RunScope` (the run's id, directory, references, ledger and event sink), and the
load, probes and resource sampler from a :class:`MeasureScope` when the timed phases start (the
run clock with t0 = start of the warm-up, the recorder every measurement goes through).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chaoslab.clock import RunClock
from chaoslab.load.recorder import Recorder
from chaoslab.run.notes import Note
from chaoslab.system.processes import LedgerWriter, ServiceControl
from chaoslab.timeline import GeneratorWindow, ResourceSample

EventSink = Callable[[str, str, dict[str, Any]], None]
"""``(kind, message, data)``: records an event on the run clock."""


@dataclass(frozen=True, slots=True)
class RunScope:
    """What the run hands the system under test it makes."""

    run_id: str
    run_dir: Path
    """A private directory for the run's files (logs, data of launched services); removed at the end."""
    refs: Mapping[str, str]
    """The run's ``${…}`` references (``run_dir``, ``state_dir``, services)."""
    ledger: LedgerWriter
    """Where every process, container and mount is recorded before it exists."""
    on_event: EventSink


class SystemUnderTest(Protocol):
    """The system a run acts on: reached or launched before the timed phases, stopped on every way out."""

    @property
    def services(self) -> ServiceControl | None:
        """What process faults and probes use to find, restart and check services."""
        ...

    async def start_proxy(self) -> str | None:
        """Reach or start Toxiproxy and create the links; its URL (None: the topology has no links)."""
        ...

    async def start_services(self) -> None:
        """Start every launched service and wait until each is healthy."""
        ...

    def pids(self, service: str) -> list[int]:
        """PIDs of a service's main processes (for the resource sampler)."""
        ...

    async def stop(self) -> list[str]:
        """Stop everything that was started; what could not be stopped."""
        ...


@dataclass(frozen=True, slots=True)
class MeasureScope:
    """What the run hands the load, the probes and the resource sampler when the timed phases start."""

    clock: RunClock
    """The run clock: t0 is the start of the warm-up."""
    recorder: Recorder
    """Where every measurement goes, window by window."""
    refs: Mapping[str, str]
    system: SystemUnderTest
    ledger: LedgerWriter
    """Where a load that starts processes (a Locust swarm) records them first."""
    seed: int | None = None


class LoadSource(Protocol):
    """Puts load on the system from a run offset to another, recording every attempt."""

    async def run(self, start_s: float, end_s: float) -> None:
        """Send the load from run offset ``start_s`` until ``end_s`` (or cancellation)."""
        ...

    def generator_windows(self) -> tuple[GeneratorWindow, ...]:
        """The generator's own figures per window (offered, sent, lag, saturation)."""
        ...


class ProbeSource(Protocol):
    """Probes each service on its interval, recording every attempt."""

    async def run(self, end_s: float) -> None:
        """Probe until run offset ``end_s`` (or cancellation)."""
        ...

    def healthy(self, service: str) -> bool | None:
        """The latest probe result of a service (None: not probed yet)."""
        ...


class ResourceSource(Protocol):
    """Samples the resources of the services and the host."""

    async def run(self, end_s: float) -> None:
        """Sample until run offset ``end_s`` (or cancellation)."""
        ...

    def samples(self) -> dict[str, tuple[ResourceSample, ...]]:
        """The samples so far per service and ``host``."""
        ...


class NoteSource(Protocol):
    """Notes that observers (a game day's) add while the run goes on."""

    path: Path

    def read(self) -> list[Note]:
        """The notes added since the last read."""
        ...


SystemFactory = Callable[[RunScope], SystemUnderTest]
"""Makes the system under test of one run."""
LoadFactory = Callable[[MeasureScope], LoadSource]
"""Makes the load of one run when its timed phases start."""
ProbeFactory = Callable[[MeasureScope], ProbeSource]
"""Makes the probes of one run when its timed phases start."""
ResourceFactory = Callable[[MeasureScope], ResourceSource]
"""Makes the resource sampler of one run when its timed phases start."""
