"""Health probes: each service with a ``probe`` is checked on its own interval, into ``probe:<service>``.

Kinds: ``http`` (status, optionally a JSON field equal to a value), ``tcp`` (connect),
``postgres`` (``SELECT 1`` with asyncpg), ``process`` (alive and not stopped, via psutil and the
launcher's PIDs) and ``container`` (running, and healthy when it has a health check; docker SDK).
Every attempt is recorded with its latency from its scheduled time and, when it fails, an
:class:`~chaoslab.timeline.ErrorClass`: ``CHECK`` when the service answered but the check
failed (wrong status or JSON value, process gone or stopped, container not running).

Probes run on the same run clock as the load. A probe that takes longer than its interval is
not stacked up: the next one goes at the next interval boundary after it ends. Every attempt
that falls due is counted in its window's ``offered``; one that the harness could not start on
time (more than :func:`late_after_s` after it was due — a busy event loop) is also counted in
``unsent``, so analysis can tell probes that could not run on time (the run is then
inconclusive, see ``docs/analysis.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
import psutil

from chaoslab.clock import RunClock
from chaoslab.model.loading import resolve_runtime_refs, runtime_refs
from chaoslab.model.topology import ContainerRef, ProbeSpec, TopologySpec
from chaoslab.system.processes import ServiceControl, matched_pids
from chaoslab.system.transport import classify_exception
from chaoslab.timeline import ErrorClass, SignalKind, classify_status

COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
CHAOSLAB_SERVICE_LABEL = "chaoslab.service"


class SignalRecorder(Protocol):
    """Where probe attempts go: the run's per-window recorder (:class:`chaoslab.load.recorder.Recorder`)."""

    def declare(self, signal: str, *, kind: SignalKind = ..., service: str | None = ...) -> None:
        """Make a signal known before its first sample."""
        ...

    def record(
        self,
        signal: str,
        intended_s: float,
        done_s: float,
        error: ErrorClass | None,
        *,
        kind: SignalKind = ...,
        service: str | None = ...,
    ) -> None:
        """Record one finished attempt, its latency measured from ``intended_s``."""
        ...

    def offered(self, signal: str, intended_s: float, *, sent: bool, count: int = 1) -> None:
        """Count attempts due at ``intended_s``; ``sent=False``: they could not start on time."""
        ...


def probe_signal(service: str) -> str:
    """The signal name of a service's probe: ``probe:<service>``."""
    return f"probe:{service}"


LATE_PROBE_MIN_S = 0.1
"""A probe is late when it starts more than this (or a quarter of its interval, if longer) after it was due."""


def late_after_s(interval_s: float) -> float:
    """How long after it was due a probe may start and still count as on time.

    >>> late_after_s(0.25), late_after_s(2.0)
    (0.1, 0.5)
    """
    return max(LATE_PROBE_MIN_S, interval_s / 4)


def json_field(data: Any, path: str) -> Any:
    """The value at a dotted path (``status`` or ``checks.db``; list indices as numbers); KeyError if absent."""
    node = data
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit():
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node[part]
        else:
            raise KeyError(path)
    return node


def http_outcome(status: int, body: bytes, probe: ProbeSpec) -> ErrorClass | None:
    """The outcome of an HTTP probe's answer (pure): None when healthy."""
    error = classify_status(status, (probe.expect_status,))
    if error is not None:
        return error
    if probe.json_field is not None:
        try:
            value = json_field(json.loads(body), probe.json_field)
        except (ValueError, KeyError, IndexError, TypeError):
            return ErrorClass.CHECK
        if value != probe.json_value:
            return ErrorClass.CHECK
    return None


def container_filters(service: str, ref: ContainerRef | None) -> dict[str, Any]:
    """Docker ``containers.list`` filters for a service (name, compose labels, or chaoslab's own label)."""
    if ref is not None and ref.name:
        return {"name": f"^/?{ref.name}$"}
    if ref is not None and ref.compose_service:
        labels = [f"{COMPOSE_SERVICE_LABEL}={ref.compose_service}"]
        if ref.compose_project:
            labels.append(f"{COMPOSE_PROJECT_LABEL}={ref.compose_project}")
        return {"label": labels}
    return {"label": [f"{CHAOSLAB_SERVICE_LABEL}={service}"]}


def container_outcome(attrs: Mapping[str, Any]) -> ErrorClass | None:
    """Healthy when running (not paused, not restarting) and, with a health check, ``healthy`` (pure)."""
    state = attrs.get("State") or {}
    if state.get("Status") != "running" or state.get("Paused") or state.get("Restarting"):
        return ErrorClass.CHECK
    health = state.get("Health")
    if health and health.get("Status") not in ("healthy", None):
        return ErrorClass.CHECK
    return None


def _process_outcome(pids: list[int]) -> ErrorClass | None:
    """Healthy when every PID is alive and neither a zombie nor stopped (a frozen process is not healthy)."""
    if not pids:
        return ErrorClass.CHECK
    for pid in pids:
        try:
            status = psutil.Process(pid).status()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return ErrorClass.CHECK
        except psutil.AccessDenied:
            continue
        if status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD, psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
            return ErrorClass.CHECK
    return None


class ProbeRunner:
    """Runs every service's probe on its own interval until a run offset; remembers the latest result."""

    def __init__(
        self,
        topology: TopologySpec,
        recorder: SignalRecorder,
        clock: RunClock,
        *,
        services: ServiceControl | None = None,
        refs: Mapping[str, str] | None = None,
        docker_client: Any = None,
    ) -> None:
        self.topology = topology
        self.recorder = recorder
        self.clock = clock
        self.services = services
        self.refs = runtime_refs(topology, refs)
        self._docker = docker_client
        self._own_docker = False
        self._session: aiohttp.ClientSession | None = None
        self._health: dict[str, bool] = {}
        self.probes: dict[str, ProbeSpec] = {
            name: spec.probe for name, spec in topology.services.items() if spec.probe is not None
        }
        for name in self.probes:
            recorder.declare(probe_signal(name), kind=SignalKind.PROBE, service=name)

    def healthy(self, service: str) -> bool | None:
        """The latest probe result of ``service`` (None: not probed yet, or it has no probe)."""
        return self._health.get(service)

    async def check_once(self, service: str) -> bool:
        """Probe ``service`` now, record the attempt, and return whether it is healthy."""
        return await self._attempt(service, self.clock.elapsed())

    async def run(self, end_s: float) -> None:
        """Probe every service on its own interval until run offset ``end_s`` (or cancellation)."""
        if not math.isfinite(end_s):
            raise ValueError("expected a finite end for the probes")
        try:
            async with asyncio.TaskGroup() as group:
                for name in self.probes:
                    group.create_task(self._loop(name, end_s))
        finally:
            await self.close()

    async def _loop(self, service: str, end_s: float) -> None:
        interval = float(self.probes[service].interval)
        clock = self.clock
        due = clock.elapsed()
        tolerance = late_after_s(interval)
        signal = probe_signal(service)
        while due < end_s:
            await clock.sleep_until_offset(due)
            self.recorder.offered(signal, due, sent=clock.elapsed() - due <= tolerance)
            await self._attempt(service, due)
            # Skip missed ticks instead of firing a burst after a slow probe.
            now = clock.elapsed()
            due += interval
            if due < now:
                due += math.ceil((now - due) / interval) * interval

    async def _attempt(self, service: str, intended_s: float) -> bool:
        probe = self.probes.get(service)
        if probe is None:
            raise KeyError(f"service {service!r} has no probe")
        try:
            error = await asyncio.wait_for(self._check(service, probe), float(probe.timeout))
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            error = ErrorClass.TIMEOUT
        except Exception as exc:  # a failed probe is a measured outcome, never a crash
            error = _classify(exc)
        done = self.clock.elapsed()
        self.recorder.record(probe_signal(service), intended_s, done, error, kind=SignalKind.PROBE, service=service)
        self._health[service] = error is None
        return error is None

    async def _check(self, service: str, probe: ProbeSpec) -> ErrorClass | None:
        if probe.type == "http":
            return await self._http(probe)
        if probe.type == "tcp":
            return await self._tcp(probe)
        if probe.type == "postgres":
            return await self._postgres(probe)
        if probe.type == "process":
            return self._process(service)
        return await self._container(service)

    def _resolve(self, text: str | None) -> str:
        assert text is not None  # ProbeSpec validation guarantees the target of each kind
        return resolve_runtime_refs(text, self.refs)

    async def _http(self, probe: ProbeSpec) -> ErrorClass | None:
        if self._session is None:
            # A fresh connection per probe: "accepts connections" is part of being healthy.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        async with self._session.get(self._resolve(probe.url), allow_redirects=False) as response:
            body = await response.read()
            return http_outcome(response.status, body, probe)

    async def _tcp(self, probe: ProbeSpec) -> ErrorClass | None:
        host, _, port = self._resolve(probe.address).rpartition(":")
        _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None

    async def _postgres(self, probe: ProbeSpec) -> ErrorClass | None:
        import asyncpg

        conn = await asyncpg.connect(self._resolve(probe.dsn), timeout=float(probe.timeout))
        try:
            value = await conn.fetchval("SELECT 1")
        finally:
            # No goodbye round trip: a frozen server must not hold the probe (or leak the connection
            # when the probe's timeout cancels the query).
            conn.terminate()
        return None if value == 1 else ErrorClass.CHECK

    def _process(self, service: str) -> ErrorClass | None:
        if self.services is not None:
            pids = self.services.pids(service)
        else:
            pids = matched_pids(self.topology.services[service])
        return _process_outcome(pids)

    async def _container(self, service: str) -> ErrorClass | None:
        spec = self.topology.services[service]
        return await asyncio.to_thread(self._container_sync, service, spec.container)

    def _container_sync(self, service: str, ref: ContainerRef | None) -> ErrorClass | None:
        if self._docker is None:
            import docker

            self._docker = docker.from_env()
            self._own_docker = True
        found = self._docker.containers.list(all=True, filters=container_filters(service, ref))
        if not found:
            return ErrorClass.CHECK
        for container in found:
            outcome = container_outcome(container.attrs)
            if outcome is not None:
                return outcome
        return None

    async def close(self) -> None:
        """Close the HTTP session and a docker client the runner opened itself."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._own_docker and self._docker is not None:
            self._docker.close()
            self._docker = None
            self._own_docker = False


def _classify(exc: BaseException) -> ErrorClass:
    """The error class of a failed probe's exception."""
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        asyncpg = None
    if asyncpg is not None and isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        # PostgreSQL answered (e.g. "too many connections", "database is starting up").
        return ErrorClass.CHECK
    if type(exc).__module__.startswith("docker"):
        return ErrorClass.TRANSPORT
    return classify_exception(exc)
