"""The harness side of ``load.engine: locust``: a headless Locust master and workers as child processes.

:class:`LocustLoadGenerator` has the built-in :class:`~chaoslab.load.generator.LoadGenerator`'s
interface (``run(start_s, end_s)``, ``generator_windows()``), so the engine, analysis and
reports do not care which one made the load. It writes a configuration and a locustfile
(generated from the request mix, or chaoslab's plugin beside the user's own), starts

- a headless master (``--master --expect-workers N``) and ``locust.workers`` local workers, or
- a master that also waits for remote workers (``locust.expect_workers``), or
- with ``workers: 0`` and no remote workers, one local Locust process,

each in its own process group (a Ctrl-C in the terminal reaches chaoslab only) and in the run's
ledger (``chaoslab rollback`` stops them after a ``kill -9``). The master prints every worker's
per-window batch as a JSON line; they are replayed into the Recorder on chaoslab's clock.
Leaving ``run`` in any way (the end of the load, cancellation, an error) stops exactly the
processes started here: SIGTERM to the master (its workers quit and send their last tallies),
then SIGTERM and SIGKILL to whatever of them is left.

The configuration holds the request mix with its ``${env:...}`` and ``${file:...}`` references
resolved (headers, bodies, the login header): it is written readable by its owner only (0600) into
a private directory (0700) inside the run directory, and removed when the swarm stops — or by
``chaoslab rollback``, which removes the run directory of a run killed with ``kill -9``. Remote
workers receive it from the master over Locust's own connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslab.clock import RunClock
from chaoslab.errors import HarnessError
from chaoslab.load.locust.aggregate import CpuSample, SwarmCollector
from chaoslab.load.locust.config import CONFIG_ENV, LINE_PREFIX, MixEntry, SwarmConfig
from chaoslab.load.locust.locustfile_gen import mix_locustfile, plugin_locustfile
from chaoslab.load.mix import login_headers
from chaoslab.load.profiles import Profile, profile_from_spec
from chaoslab.load.recorder import Recorder
from chaoslab.log import get_logger
from chaoslab.model.experiment import LoadSpec, LocustSpec, RequestSpec
from chaoslab.model.loading import resolve_runtime_refs
from chaoslab.system.entries import ProcessEntry, ProcessStatus
from chaoslab.system.processes import LedgerWriter, free_port, process_identity
from chaoslab.timeline import GeneratorWindow, SignalKind

log = get_logger("locust")

STARTUP_S = 3.0
"""Locust processes are started this long before the load's start (importing Locust takes ~1 s)."""

LOCAL_WORKERS_WAIT_S = 30
"""How long the master waits for local workers to connect before giving up."""

MASTER_EXIT_WAIT_S = 10.0
"""How long the master may take to stop its workers, collect their last tallies and exit."""

WORKER_EXIT_WAIT_S = 5.0
"""How long workers may take to exit after the master told them to quit."""

STOP_SIGNAL = signal.SIGUSR1
"""Asks a master (or a single local process) to stop gracefully (``chaoslab.load.locust.plugin.stop_gracefully``)."""

KILL_WAIT_S = 3.0
"""How long a process may take to go after SIGTERM before it gets SIGKILL."""


@dataclass
class SwarmProcess:
    """One Locust process this generator started."""

    role: str
    proc: asyncio.subprocess.Process
    create_time: float | None
    log_path: Path
    returncode: int | None = None


def _service_of(url: str) -> str | None:
    """``api`` for a URL written ``${service:api}/...`` (the signal's service), else None."""
    if url.startswith("${service:"):
        end = url.find("}")
        return url[len("${service:") : end] if end > 0 else None
    return None


def mix_entries(mix: tuple[RequestSpec, ...], refs: Mapping[str, str]) -> tuple[MixEntry, ...]:
    """The request mix with run references (``${service:api}``) resolved, for the generated locustfile."""
    return tuple(
        MixEntry(
            name=r.name,
            signal=r.signal_name,
            weight=r.weight,
            method=r.method,
            url=resolve_runtime_refs(r.url, refs),
            headers={k: resolve_runtime_refs(v, refs) for k, v in r.headers.items()},
            json_body=_resolve_json(r.json_body, refs),
            body=resolve_runtime_refs(r.body, refs) if r.body is not None else None,
            timeout_s=float(r.timeout),
            expect_status=tuple(r.expect_status),
        )
        for r in mix
    )


def _resolve_json(value: Any, refs: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return resolve_runtime_refs(value, refs)
    if isinstance(value, list):
        return [_resolve_json(v, refs) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_json(v, refs) for k, v in value.items()}
    return value


def parse_line(line: str) -> dict[str, Any] | None:
    """The harness message on one line of the master's stdout (None for Locust's own output)."""
    at = line.find(LINE_PREFIX)
    if at < 0:
        return None
    try:
        data = json.loads(line[at + len(LINE_PREFIX) :])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class LocustLoadGenerator:
    """Load from a Locust swarm, measured per window on the run clock; the built-in generator's interface."""

    def __init__(
        self,
        spec: LoadSpec,
        refs: Mapping[str, str],
        recorder: Recorder,
        clock: RunClock,
        *,
        seed: int | None = None,
        profile: Profile | None = None,
        ledger: LedgerWriter | None = None,
        base_dir: Path | None = None,
        experiment: str = "chaoslab",
        python: str = sys.executable,
        master_bind_host: str | None = None,
    ) -> None:
        self.spec = spec
        self.settings: LocustSpec = spec.locust or LocustSpec()
        self.refs = dict(refs)
        self.recorder = recorder
        self.clock = clock
        self.window_s = recorder.window_s
        self._seed = seed if seed is not None else spec.seed
        self._profile = profile
        self.ledger = ledger
        self.base_dir = base_dir
        self.experiment = experiment
        self.python = python
        self.master_bind_host = master_bind_host
        """Where the master listens; default: loopback, or all interfaces when remote workers are expected."""
        # Wall time at run offset 0, taken together with the run clock: request start times (wall clock,
        # as Locust reports them) map onto run offsets with it.
        self.t0_wall = time.time() - clock.elapsed()
        self.collector = SwarmCollector(recorder, self.window_s)
        self.processes: list[SwarmProcess] = []
        self.master_port: int | None = None
        self.workdir: Path | None = None
        self.started = asyncio.Event()
        """Set once the swarm's test started (the master's ``test_start``)."""
        self._finish = asyncio.Event()
        self.ended = False
        self._reader: asyncio.Task[None] | None = None
        self.max_timeout_s = max(float(r.timeout) for r in spec.mix)
        recorder.expect_latency_up_to(self.max_timeout_s)
        for request in spec.mix:
            recorder.declare(request.signal_name, kind=SignalKind.LOAD, service=_service_of(request.url))

    # ----------------------------------------------------------------- setup

    def config(self, start_s: float, end_s: float, extra_headers: Mapping[str, str]) -> SwarmConfig:
        """The configuration the Locust processes run with."""
        profile = self._profile or profile_from_spec(self.spec.profile, self.spec.rate, begin_s=start_s)
        return SwarmConfig(
            t0_wall=self.t0_wall,
            window_s=self.window_s,
            start_s=start_s,
            end_s=end_s,
            users=self.settings.users,
            spawn_rate=self.settings.spawn_rate,
            profile_points=profile.points,
            profile_linear=profile.linear,
            base_rate=profile.base_rate,
            mix=mix_entries(self.spec.mix, self.refs),
            extra_headers=dict(extra_headers),
            owner_pid=os.getpid(),
            seed=self._seed,
            # Users stopped at end_s finish their request (--stop-timeout), then two flushes carry the last tallies.
            drain_s=self.max_timeout_s + 1.0,
        )

    def _locustfiles(self, workdir: Path) -> list[str]:
        """``-f`` files: chaoslab's first (its shape wins), then the user's own locustfile if any."""
        own = self.settings.locustfile
        if own is None:
            path = workdir / "chaoslab_locustfile.py"
            path.write_text(mix_locustfile(self.experiment, self.spec.mix), encoding="utf-8")
            return [str(path)]
        ours = workdir / "chaoslab_plugin.py"
        ours.write_text(plugin_locustfile(self.experiment), encoding="utf-8")
        theirs = Path(resolve_runtime_refs(own, self.refs)).expanduser()
        if not theirs.is_absolute() and self.base_dir is not None:
            theirs = self.base_dir / theirs
        if not theirs.is_file():
            raise HarnessError(f"locustfile {str(theirs)!r} not found (load.locust.locustfile)")
        return [str(ours), str(theirs.resolve())]

    def expected_workers(self) -> int:
        """Workers the master waits for: ``expect_workers`` (local ones included) or the local ``workers``."""
        return self.settings.expect_workers or self.settings.workers

    def commands(self, files: list[str], port: int) -> tuple[list[str], list[list[str]]]:
        """The master's (or the single local process's) command and the local workers' commands."""
        base = [
            *(self.python, "-m", "locust", "-f", ",".join(files), "--exit-code-on-error", "0"),
            # a stopped user finishes the request it is in: its answer is measured, not lost
            *("--stop-timeout", str(math.ceil(self.max_timeout_s + 0.5))),
        ]
        expected = self.expected_workers()
        if expected == 0:
            return [*base, "--headless", "--only-summary"], []
        remote = self.settings.expect_workers is not None
        # Remote workers must reach the master: it binds all interfaces then; local-only runs stay on loopback.
        bind_host = self.master_bind_host or ("*" if remote else "127.0.0.1")
        wait_s = LOCAL_WORKERS_WAIT_S if not remote else max(LOCAL_WORKERS_WAIT_S, 300)
        master = [
            *base,
            "--headless",
            "--only-summary",
            "--master",
            "--master-bind-host",
            bind_host,
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(expected),
            "--expect-workers-max-wait",
            str(wait_s),
        ]
        worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        return master, [list(worker) for _ in range(self.settings.workers)]

    async def _spawn(self, role: str, argv: list[str], env: Mapping[str, str], workdir: Path) -> SwarmProcess:
        log_path = workdir / f"{role}.log"
        with log_path.open("ab") as log_fh:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE if role == "master" else log_fh,
                    stderr=log_fh,
                    env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
                    cwd=str(workdir),
                    start_new_session=True,  # its own process group: a terminal Ctrl-C reaches chaoslab only
                    limit=1 << 24,  # a batch line can be long (many buckets)
                )
            except OSError as exc:
                raise HarnessError(f"cannot start locust {role}: {argv[0]}: {exc.strerror}") from None
        created = process_identity(proc.pid)
        swarm = SwarmProcess(role, proc, created, log_path)
        self.processes.append(swarm)
        if self.ledger is not None:
            self.ledger.append(
                ProcessEntry(
                    pid=proc.pid,
                    state=ProcessStatus.STARTED,
                    service=f"locust-{role}",
                    create_time=created,
                    argv=tuple(argv),
                )
            )
        log.info("started", role=role, pid=proc.pid)
        return swarm

    # ------------------------------------------------------------------ run

    async def run(self, start_s: float, end_s: float) -> None:
        """Run the swarm so that its users load the target from run offset ``start_s`` to ``end_s``."""
        if not math.isfinite(end_s) or end_s < start_s:
            raise ValueError(f"expected a finite end after the start, got {start_s}..{end_s}")
        if self.python == sys.executable and importlib.util.find_spec("locust") is None:
            raise HarnessError("load.engine: locust needs Locust in this environment: pip install 'chaoslab[locust]'")
        extra: dict[str, str] = {}
        if self.spec.login is not None:
            extra = await login_headers(self.spec.login, self.refs)  # the built-in generator's login step
        # the run directory when there is one: `chaoslab rollback` removes it after a kill -9
        run_dir = self.refs.get("run_dir")
        parent = run_dir if run_dir and Path(run_dir).is_dir() else None
        workdir = Path(tempfile.mkdtemp(prefix="chaoslab-locust-", dir=parent))
        self.workdir = workdir
        try:
            config_path = workdir / "config.json"
            _write_private(config_path, self.config(start_s, end_s, extra).to_json())
            files = self._locustfiles(workdir)
            remote = self.settings.expect_workers is not None
            self.master_port = self.settings.master_bind_port if remote else free_port()
            master_cmd, worker_cmds = self.commands(files, self.master_port)
            env = {CONFIG_ENV: str(config_path)}
            await self.clock.sleep_until_offset(max(0.0, start_s - STARTUP_S))
            master = await self._spawn("master", master_cmd, env, workdir)
            for i, cmd in enumerate(worker_cmds):
                await self._spawn(f"worker-{i + 1}", cmd, env, workdir)
            self._reader = asyncio.create_task(self._read(master), name="locust-master-stdout")
            # At end_s the harness stops the swarm gracefully (in stop()): users finish their request and the
            # workers' last tallies come through. The shape would stop it a little later by itself.
            while master.proc.returncode is None and self.clock.elapsed() < end_s and not self._finish.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        master.proc.wait(), timeout=min(0.5, max(end_s - self.clock.elapsed(), 0.01))
                    )
            if master.proc.returncode is not None:
                await self._finish_reading()
                raise HarnessError(
                    f"locust master exited with code {master.proc.returncode} before the end of the load: "
                    f"{_tail(master.log_path)}"
                )
        finally:
            await asyncio.shield(self.stop())

    def finish(self) -> None:
        """End the load now, as at its planned end: users finish their request and the last tallies come in."""
        self._finish.set()

    async def _read(self, master: SwarmProcess) -> None:
        stream = master.proc.stdout
        assert stream is not None
        while True:
            raw = await stream.readline()
            if not raw:
                return
            message = parse_line(raw.decode(errors="replace"))
            if message is not None:
                self.handle(message)

    def handle(self, message: Mapping[str, Any]) -> None:
        """Act on one message from the master: a batch of tallies, or a state change."""
        kind = message.get("type")
        if kind == "windows":
            worker = str(message.get("worker") or "")
            self.collector.add_records(message.get("records") or [], worker)
            cpu = message.get("cpu")
            if cpu:
                self.collector.add_cpu(CpuSample(worker, float(cpu[0]), float(cpu[1]), float(cpu[2])))
        elif kind == "started":
            self.started.set()
            log.info("swarm started", workers=message.get("workers"))
        elif kind == "end":
            self.ended = True

    async def _finish_reading(self) -> None:
        if self._reader is None:
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._reader), timeout=2.0)

    # ------------------------------------------------------------------ stop

    async def stop(self) -> None:
        """Stop every process started here (the master first, so that workers send their last tallies)."""
        masters = [p for p in self.processes if p.role == "master"]
        workers = [p for p in self.processes if p.role != "master"]
        for master in masters:
            if master.proc.returncode is None:
                # SIGUSR1: chaoslab's plugin stops the users, collects the workers' last tallies and quits
                _signal_group(master, STOP_SIGNAL)
                await _wait(master, MASTER_EXIT_WAIT_S)
        await self._finish_reading()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        # the master told its workers to quit: give them a moment, all at once
        await asyncio.gather(*(_wait(w, WORKER_EXIT_WAIT_S if masters else 0.0) for w in workers))
        for swarm in self.processes:
            if swarm.proc.returncode is None:
                _signal_group(swarm, signal.SIGTERM)
        await asyncio.gather(*(_terminate(swarm) for swarm in self.processes))
        for swarm in self.processes:
            swarm.returncode = swarm.proc.returncode
            if self.ledger is not None and swarm.proc.returncode is not None:
                self.ledger.append(
                    ProcessEntry(pid=swarm.proc.pid, state=ProcessStatus.STOPPED, exit_code=swarm.proc.returncode)
                )
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def pids(self) -> list[int]:
        """PIDs of the Locust processes started by this generator (running or not)."""
        return [p.proc.pid for p in self.processes]

    def generator_windows(self) -> tuple[GeneratorWindow, ...]:
        """Requests and the busiest worker's CPU per window (a closed-loop swarm has no dispatch lag)."""
        return self.collector.generator_windows()


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: the configuration holds the mix's resolved secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _signal_group(swarm: SwarmProcess, sig: int) -> None:
    """Signal the process group of a process we started (it leads its own session), if it is still ours."""
    if swarm.proc.returncode is not None:
        return  # reaped: the PID may belong to someone else now
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(swarm.proc.pid, sig)


async def _terminate(swarm: SwarmProcess) -> None:
    """After SIGTERM: wait, then SIGKILL what is still there."""
    if not await _wait(swarm, KILL_WAIT_S):
        _signal_group(swarm, signal.SIGKILL)
        await _wait(swarm, KILL_WAIT_S)


async def _wait(swarm: SwarmProcess, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for a process to exit; True when it did."""
    if swarm.proc.returncode is not None:
        return True
    try:
        await asyncio.wait_for(swarm.proc.wait(), timeout=max(timeout_s, 0.01))
    except TimeoutError:
        return False
    return True


def _tail(path: Path, size: int = 600) -> str:
    try:
        data = path.read_bytes()[-size:]
    except OSError:
        return ""
    return data.decode(errors="replace").strip()
