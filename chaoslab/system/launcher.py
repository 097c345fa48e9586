"""The launcher: starts the topology's services (local processes, PostgreSQL, containers) and
the embedded Toxiproxy server, creates the links, supervises, and stops exactly what it started.

It is also the :class:`~chaoslab.system.processes.ServiceControl` that process faults use: it knows
each service's PIDs, restarts services like a supervisor would (``restart: on-failure`` /
``always``), and waits for health after a restart. Everything started is written to the run's
ledger first, so ``chaoslab rollback`` can stop it after a ``kill -9`` of the harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, RetryError, retry_if_result, stop_after_delay, wait_fixed

from chaoslab.demo.seed import seed_demo
from chaoslab.errors import HarnessError, SpecError
from chaoslab.log import get_logger
from chaoslab.model.loading import resolve_runtime_refs
from chaoslab.model.topology import ServiceSpec, TopologySpec
from chaoslab.system.containers import ContainerBackend
from chaoslab.system.entries import (
    ContainerEntry,
    ContainerStatus,
    MountEntry,
    MountStatus,
    ProcessEntry,
    ProcessStatus,
    SystemEntry,
)
from chaoslab.system.postgres import PostgresServer
from chaoslab.system.processes import LedgerWriter, free_port, matched_pids, process_identity

log = get_logger("launcher")

EventSink = Callable[[str, str, dict[str, Any]], None]
"""Receives (kind, message, data) for the timeline's events: restarts, exits."""


@dataclass
class _Managed:
    """A service this launcher runs."""

    name: str
    spec: ServiceSpec
    process: asyncio.subprocess.Process | None = None
    postgres: PostgresServer | None = None
    container_id: str | None = None
    supervisor: asyncio.Task[None] | None = None
    restarts: int = 0
    stopping: bool = False
    log_path: Path | None = None
    mounts: list[Path] = field(default_factory=list)


def topological_order(topology: TopologySpec) -> list[str]:
    """Service names with every service after the ones it ``depends_on``; raises on cycles."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in visiting:
            raise SpecError(f"services: depends_on cycle {' → '.join((*chain, name))}")
        if name not in topology.services:
            raise SpecError(f"services.{chain[-1]}.depends_on: unknown service {name!r}")
        visiting.add(name)
        for dep in topology.services[name].depends_on:
            visit(dep, (*chain, name))
        visiting.discard(name)
        order.append(name)

    for service in topology.services:
        visit(service, ())
    return order


class Launcher:
    """Starts, supervises and stops the services of one run."""

    def __init__(
        self,
        topology: TopologySpec,
        *,
        run_id: str,
        run_dir: Path,
        refs: Mapping[str, str],
        ledger: LedgerWriter | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.topology = topology
        self.run_id = run_id
        self.run_dir = run_dir
        self.refs = dict(refs)
        self.ledger = ledger
        self.on_event = on_event
        self.managed: dict[str, _Managed] = {}
        self.started_order: list[str] = []
        self.toxiproxy_url: str | None = None
        self._toxiproxy_proc: asyncio.subprocess.Process | None = None
        self._containers: ContainerBackend | None = None
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ toxiproxy and links

    async def start_toxiproxy(self, port: int | None = None) -> str:
        """Use the topology's Toxiproxy URL, or start the embedded server; returns its URL."""
        if self.topology.toxiproxy != "embedded":
            url = self.topology.toxiproxy.rstrip("/")
            if not await _toxiproxy_answers(url):
                raise HarnessError(f"Toxiproxy at {url} does not answer GET /version")
            self.toxiproxy_url = url
            return url
        port = port or free_port()
        log_path = self.run_dir / "logs" / "toxiproxy.log"
        argv = [sys.executable, "-m", "chaoslab", "--quiet", "toxiproxy", "--host", "127.0.0.1", "--port", str(port)]
        proc = await self._spawn("toxiproxy", argv, log_path, env=None, cwd=None)
        self._toxiproxy_proc = proc
        url = f"http://127.0.0.1:{port}"

        async def answers() -> bool:
            if proc.returncode is not None:
                raise HarnessError(f"embedded Toxiproxy exited: {_tail(log_path)}")
            return await _toxiproxy_answers(url)

        if not await _wait_until(answers, 20.0):
            raise HarnessError(f"embedded Toxiproxy did not answer on {url}: {_tail(log_path)}")
        self.toxiproxy_url = url
        return url

    async def create_links(self) -> None:
        """Create (or update) one proxy per link through ``/populate``."""
        if not self.topology.links:
            return
        assert self.toxiproxy_url is not None
        body = [
            {"name": link.proxy_name or name, "listen": link.listen, "upstream": link.upstream, "enabled": True}
            for name, link in self.topology.links.items()
        ]
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.toxiproxy_url}/populate", json=body) as resp,
        ):
            if resp.status >= 300:
                text = await resp.text()
                raise HarnessError(f"creating links in Toxiproxy failed ({resp.status}): {text.strip()[:200]}")

    # ------------------------------------------------------------------ services

    async def start_services(self) -> None:
        """Start every launched service in dependency order, waiting for each to be healthy."""
        for name in topological_order(self.topology):
            spec = self.topology.services[name]
            if spec.launch.kind == "external":
                continue
            await self._start(name, spec)
            self.started_order.append(name)
            await self.wait_healthy(name)

    async def _start(self, name: str, spec: ServiceSpec) -> None:
        managed = self.managed.get(name) or _Managed(name=name, spec=spec)
        self.managed[name] = managed
        managed.stopping = False
        await self._mount_tmpfs(managed)
        launch = spec.launch
        if launch.kind == "process":
            argv = [self._resolve(part) for part in launch.command]
            env = {k: self._resolve(v) for k, v in launch.env.items()}
            managed.log_path = self.run_dir / "logs" / f"{name}.log"
            for path in spec.paths.values():
                Path(self._resolve(path)).mkdir(parents=True, exist_ok=True)
            managed.process = await self._spawn(
                name, argv, managed.log_path, env=env, cwd=self._resolve(launch.cwd) if launch.cwd else None
            )
            if launch.restart != "no" and managed.supervisor is None:
                managed.supervisor = asyncio.create_task(self._supervise(managed), name=f"supervise-{name}")
        elif launch.kind == "postgres":
            await self._start_postgres(managed)
        elif launch.kind == "container":
            await self._start_container(managed)

    async def _spawn(
        self, name: str, argv: list[str], log_path: Path, *, env: Mapping[str, str] | None, cwd: str | None
    ) -> asyncio.subprocess.Process:
        full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        with log_path.open("ab") as log_fh:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log_fh,
                    stderr=subprocess.STDOUT,
                    env=full_env,
                    cwd=cwd,
                    start_new_session=True,  # a Ctrl-C in the terminal reaches the harness only
                )
            except OSError as exc:
                raise HarnessError(f"cannot start {name}: {argv[0]}: {exc.strerror}") from None
        self._ledger(
            ProcessEntry(
                pid=proc.pid,
                state=ProcessStatus.STARTED,
                service=name,
                create_time=process_identity(proc.pid),
                argv=tuple(argv),
            )
        )
        log.info("started", service=name, pid=proc.pid)
        return proc

    async def _supervise(self, managed: _Managed) -> None:
        """Restart the service when it dies, like a supervisor (restart: on-failure/always)."""
        policy = managed.spec.launch.restart
        while True:
            proc = managed.process
            if proc is None:
                return
            code = await proc.wait()
            self._ledger(ProcessEntry(pid=proc.pid, state=ProcessStatus.STOPPED, exit_code=code))
            if managed.stopping:
                return
            if policy == "on-failure" and code == 0:
                self._event("service_exit", f"{managed.name} exited cleanly", {"service": managed.name, "code": code})
                return
            managed.restarts += 1
            self._event(
                "service_restart",
                f"{managed.name} exited ({_describe_exit(code)}); restarting",
                {"service": managed.name, "code": code, "restarts": managed.restarts},
            )
            await asyncio.sleep(min(0.1 * managed.restarts, 2.0))
            if managed.stopping:
                return
            try:
                await self._start(managed.name, managed.spec)
            except HarnessError as exc:
                self._event("service_restart_failed", str(exc), {"service": managed.name})
                return

    async def _start_postgres(self, managed: _Managed) -> None:
        launch = managed.spec.launch
        assert launch.port is not None
        if managed.postgres is None:
            managed.postgres = PostgresServer(
                port=launch.port, max_connections=launch.max_connections, base_dir=self.run_dir / f"pg-{managed.name}"
            )
        server = managed.postgres
        await asyncio.to_thread(server.start)
        pid = server.pid
        if pid is not None:
            self._ledger(
                ProcessEntry(
                    pid=pid,
                    state=ProcessStatus.STARTED,
                    service=managed.name,
                    create_time=process_identity(pid),
                    stop_signal=int(signal.SIGINT),
                )
            )
        await _prepare_database(server.dsn(), launch.seed)

    async def _start_container(self, managed: _Managed) -> None:
        if self._containers is None:
            self._containers = await asyncio.to_thread(ContainerBackend)
        backend = self._containers
        image = managed.spec.launch.image or ""
        await asyncio.to_thread(backend.ensure_image, image)
        refs = dict(self.refs)
        cid = await asyncio.to_thread(backend.start, managed.name, managed.spec, run_id=self.run_id, refs=refs)
        managed.container_id = cid
        self._ledger(ContainerEntry(id=cid, state=ContainerStatus.STARTED, service=managed.name))

    async def _mount_tmpfs(self, managed: _Managed) -> None:
        if managed.mounts or not managed.spec.tmpfs:
            return
        for path_name, size in managed.spec.tmpfs.items():
            raw = managed.spec.paths.get(path_name)
            if raw is None:
                raise SpecError(f"services.{managed.name}.tmpfs: {path_name!r} is not one of the service's paths")
            path = Path(self._resolve(raw))
            path.mkdir(parents=True, exist_ok=True)
            if os.geteuid() != 0:
                log.warning("tmpfs needs root; using a plain directory", service=managed.name, path=str(path))
                continue
            self._ledger(MountEntry(path=str(path), state=MountStatus.INTENT))
            result = await asyncio.to_thread(
                subprocess.run,
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                capture_output=True,
                check=False,
            )
            if result.returncode != 0:
                raise HarnessError(f"cannot mount tmpfs at {path}: {result.stderr.decode(errors='replace').strip()}")
            managed.mounts.append(path)
            self._ledger(MountEntry(path=str(path), state=MountStatus.MOUNTED))

    async def wait_healthy(self, name: str, timeout_s: float | None = None) -> None:
        """Wait until the service's probe (or, without one, its process) says it is up."""
        managed = self.managed.get(name)
        spec = self.topology.services[name]
        limit = timeout_s if timeout_s is not None else spec.launch.ready_timeout

        async def healthy() -> bool:
            process = managed.process if managed is not None else None
            if process is not None and process.returncode is not None and spec.launch.restart == "no":
                raise HarnessError(
                    f"service {name} exited during start-up "
                    f"({_describe_exit(process.returncode)}): {_tail(managed.log_path if managed else None)}"
                )
            return await check_health(spec, self.pids(name), resolve=self._resolve)

        if not await _wait_until(healthy, limit):
            where = f": {_tail(managed.log_path)}" if managed and managed.log_path else ""
            raise HarnessError(f"service {name} was not healthy within {limit:g}s{where}")

    # ------------------------------------------------------------------ ServiceControl

    def pids(self, service: str) -> list[int]:
        """PIDs of the service's main process (launched, or found by pidfile/cmdline)."""
        managed = self.managed.get(service)
        if managed is not None:
            if managed.process is not None and managed.process.returncode is None:
                return [managed.process.pid]
            if managed.postgres is not None and managed.postgres.pid is not None:
                return [int(managed.postgres.pid)]
            if managed.container_id is not None and self._containers is not None:
                return list(self._containers.host_pids(managed.container_id))
            return []
        spec = self.topology.services.get(service)
        if spec is None or spec.process is None:
            return []
        return matched_pids(spec)

    def is_supervised(self, service: str) -> bool:
        """Whether the launcher restarts the service when it dies."""
        managed = self.managed.get(service)
        return managed is not None and managed.spec.launch.kind == "process" and managed.spec.launch.restart != "no"

    async def restart(self, service: str) -> None:
        """Stop the service (if running) and start it again; wait for health."""
        managed = self.managed.get(service)
        if managed is None:
            raise HarnessError(f"service {service} was not started by chaoslab; cannot restart it")
        await self._stop_one(managed)
        await self._start(service, managed.spec)
        await self.wait_healthy(service)

    async def ensure_running(self, service: str) -> None:
        """Start the service if it is not running; wait for health."""
        managed = self.managed.get(service)
        if managed is None:
            return
        if not self.pids(service):
            if self.is_supervised(service):
                # the supervisor is already bringing it back; give it the chance first
                with contextlib.suppress(HarnessError):
                    await self.wait_healthy(service, timeout_s=5.0)
                    return
            await self._start(service, managed.spec)
        await self.wait_healthy(service)

    # ------------------------------------------------------------------ stopping

    async def stop_all(self) -> list[str]:
        """Stop every service and the embedded Toxiproxy, newest first; returns problems found."""
        problems: list[str] = []
        for name in reversed(list(self.managed)):
            try:
                await self._stop_one(self.managed[name])
            except Exception as exc:  # keep stopping the others; report every failure
                problems.append(f"stopping {name}: {exc}")
            for path in reversed(self.managed[name].mounts):
                result = await asyncio.to_thread(
                    subprocess.run, ["umount", str(path)], capture_output=True, check=False
                )
                if result.returncode != 0:
                    problems.append(f"unmounting {path}: {result.stderr.decode(errors='replace').strip()}")
                else:
                    self._ledger(MountEntry(path=str(path), state=MountStatus.UNMOUNTED))
            self.managed[name].mounts.clear()
        if self._toxiproxy_proc is not None:
            await self._terminate(self._toxiproxy_proc, "toxiproxy")
            self._toxiproxy_proc = None
        if self._containers is not None:
            with contextlib.suppress(Exception):
                self._containers.close()
        return problems

    async def _stop_one(self, managed: _Managed) -> None:
        managed.stopping = True
        if managed.supervisor is not None:
            managed.supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await managed.supervisor
            managed.supervisor = None
        if managed.process is not None:
            await self._terminate(managed.process, managed.name)
            managed.process = None
        if managed.postgres is not None:
            pid = managed.postgres.pid
            await asyncio.to_thread(managed.postgres.stop)
            if pid is not None:
                self._ledger(ProcessEntry(pid=pid, state=ProcessStatus.STOPPED))
        if managed.container_id is not None and self._containers is not None:
            await asyncio.to_thread(self._containers.stop_and_remove, managed.container_id)
            self._ledger(ContainerEntry(id=managed.container_id, state=ContainerStatus.REMOVED))
            managed.container_id = None

    async def _terminate(self, proc: asyncio.subprocess.Process, name: str) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 8.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._ledger(ProcessEntry(pid=proc.pid, state=ProcessStatus.STOPPED))
        log.info("stopped", service=name, pid=proc.pid)

    # ------------------------------------------------------------------ helpers

    def _resolve(self, text: str) -> str:
        return resolve_runtime_refs(text, self.refs)

    def _ledger(self, entry: SystemEntry) -> None:
        if self.ledger is not None:
            self.ledger.append(entry)

    def _event(self, kind: str, message: str, data: dict[str, Any]) -> None:
        log.info(kind, message=message)
        if self.on_event is not None:
            self.on_event(kind, message, data)


async def check_health(spec: ServiceSpec, pids: list[int], *, resolve: Callable[[str], str] = str) -> bool:
    """One readiness check from the service's probe (or its process being alive).

    ``resolve`` turns the probe's URL or DSN into what is used (``${service:...}``, ``${env:...}``).
    """
    probe = spec.probe
    try:
        if probe is None or probe.type in ("process", "container"):
            return bool(pids) or spec.launch.kind == "external"
        if probe.type == "http":
            assert probe.url is not None
            timeout = aiohttp.ClientTimeout(total=probe.timeout)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(resolve(probe.url)) as resp:
                return resp.status == probe.expect_status
        if probe.type == "tcp":
            assert probe.address is not None
            host, _, port = probe.address.rpartition(":")
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), probe.timeout)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        if probe.type == "postgres":
            import asyncpg

            assert probe.dsn is not None
            conn = await asyncpg.connect(resolve(probe.dsn), timeout=probe.timeout)
            try:
                return bool(await conn.fetchval("SELECT 1") == 1)
            finally:
                await conn.close()
    except (OSError, TimeoutError, aiohttp.ClientError, ValueError):
        return False
    except Exception as exc:  # asyncpg raises its own tree; not ready yet is all it means here
        log.debug("probe failed", error=str(exc))
        return False
    return False


async def _prepare_database(admin_dsn: str, seed: str | None) -> None:
    """Create the ``chaoslab`` role and database, then seed them (``seed: demo``)."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'chaoslab'"):
            await conn.execute("CREATE ROLE chaoslab LOGIN")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'chaoslab'"):
            await conn.execute("CREATE DATABASE chaoslab OWNER chaoslab")
    finally:
        await conn.close()
    if seed == "demo":
        await seed_demo(admin_dsn.rsplit("/", 1)[0].replace("postgres@", "chaoslab@") + "/chaoslab")


async def _wait_until(check: Callable[[], Awaitable[bool]], limit_s: float) -> bool:
    """Poll ``check`` every 100 ms: True once it says so, False after ``limit_s``; its errors propagate."""
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_delay(limit_s), wait=wait_fixed(0.1), retry=retry_if_result(lambda ok: not ok)
        ):
            with attempt:
                ok = await check()
            if attempt.retry_state.outcome is None or not attempt.retry_state.outcome.failed:
                attempt.retry_state.set_result(ok)
    except RetryError:
        return False
    return True


async def _toxiproxy_answers(url: str) -> bool:
    try:
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(f"{url}/version") as resp:
            return resp.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


def _tail(path: Path | None, size: int = 400) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return " | ".join(text[-size:].strip().splitlines()[-4:])


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
