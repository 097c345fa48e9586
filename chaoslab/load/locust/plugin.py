"""The chaoslab plugin that runs INSIDE the Locust processes (master, workers, or one local process).

Workers count every request (Locust's ``request`` event) into per-window, per-request-class
tallies on chaoslab's run clock (:class:`~chaoslab.load.locust.aggregate.WindowTally`) and send
them to the master every ``flush_interval_s`` with a custom message; the master writes each
batch to stdout as one JSON line prefixed with :data:`~chaoslab.load.locust.config.LINE_PREFIX`,
which the harness reads. Locust's own ``current_*`` statistics cover a ~10 s sliding window,
too coarse for chaoslab's 1 s windows, so they are not used.

Importing this module imports Locust (and so gevent's monkey-patching): never import it in the
harness. Locustfiles call :func:`install` once; calling it again is harmless.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from chaoslab.load.locust.aggregate import WindowTally, classify_outcome
from chaoslab.load.locust.config import CONFIG_ENV, LINE_PREFIX, MSG_CONFIG, MSG_WINDOWS, SwarmConfig

MAX_EARLY_EVENTS = 100_000
"""Requests seen before the configuration arrived are held (bounded) until it does."""


class _State:
    """The plugin's process-wide state: one per Locust process."""

    def __init__(self) -> None:
        self.installed = False
        self.config: SwarmConfig | None = None
        self.tally: WindowTally | None = None
        self.early: list[tuple[str, float, float, Any]] = []
        self.environment: Environment | None = None
        self.listeners: list[Any] = []
        self.cpu_mark: tuple[float, float] | None = None
        self.stopping = False
        self.owner_gone = False


STATE = _State()


def load_env_config() -> SwarmConfig | None:
    """The configuration named by ``CHAOSLAB_LOCUST_CONFIG`` (None when the variable is unset)."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return None
    return SwarmConfig.from_json(Path(path).read_text(encoding="utf-8"))


def config() -> SwarmConfig | None:
    """This process's configuration so far (workers may get it from the master a little later)."""
    return STATE.config


def add_config_listener(listener: Any) -> None:
    """Call ``listener(config)`` once the configuration is known (at once when it already is)."""
    STATE.listeners.append(listener)
    if STATE.config is not None:
        listener(STATE.config)


def _apply_config(cfg: SwarmConfig) -> None:
    if STATE.config is not None:
        return
    STATE.config = cfg
    STATE.tally = WindowTally(cfg.t0_wall, cfg.window_s)
    for signal_name, start_wall, latency_ms, error in STATE.early:
        STATE.tally.add(signal_name, start_wall, latency_ms, error)
    STATE.early.clear()
    for listener in STATE.listeners:
        listener(cfg)


def _emit(line: dict[str, Any]) -> None:
    """One JSON line for the harness on stdout (master or a local runner)."""
    out = sys.__stdout__ or sys.stdout
    try:
        out.write(LINE_PREFIX + json.dumps(line, separators=(",", ":")) + "\n")
        out.flush()
    except (BrokenPipeError, ValueError):  # the harness is gone (its end of the pipe closed): no one to tell
        STATE.owner_gone = True


def _run_offset(cfg: SwarmConfig, wall: float) -> float:
    return wall - cfg.t0_wall


def _flush() -> None:
    """Send (worker) or write (local runner) what was counted since the last flush, with this process's CPU."""
    env = STATE.environment
    cfg = STATE.config
    tally = STATE.tally
    if env is None or cfg is None or tally is None or env.runner is None:
        return
    records = tally.drain()
    now_wall, now_cpu = time.time(), time.process_time()
    cpu: list[float] | None = None
    if STATE.cpu_mark is not None:
        wall0, cpu0 = STATE.cpu_mark
        cpu = [round(_run_offset(cfg, wall0), 6), round(_run_offset(cfg, now_wall), 6), round(now_cpu - cpu0, 6)]
    STATE.cpu_mark = (now_wall, now_cpu)
    if not records and cpu is None:
        return
    data = {"records": records, "cpu": cpu}
    runner = env.runner
    if isinstance(runner, WorkerRunner):
        runner.send_message(MSG_WINDOWS, data)
    elif isinstance(runner, LocalRunner):
        _emit({"type": "windows", "worker": "local", **data})


def _flusher() -> None:
    while True:
        cfg = STATE.config
        gevent.sleep(cfg.flush_interval_s if cfg is not None else 0.1)
        _flush()


def stop_gracefully() -> None:
    """Stop the users (each finishes its request), let the last tallies reach the harness, then quit.

    The harness asks for this with SIGUSR1 (see :data:`STOP_SIGNAL`): a headless Locust that
    follows a shape joins the shape in its main greenlet before installing its own SIGTERM
    handler, so SIGTERM does not stop a master gracefully. On a master, ``stop()`` sends
    ``stop`` to the workers and waits until they report no users — they flush their tallies
    before that report — and only then quits.
    """
    env = STATE.environment
    if env is None or env.runner is None or STATE.stopping:
        return
    STATE.stopping = True
    runner = env.runner
    if isinstance(runner, MasterRunner):
        runner.stop()
    runner.quit()


STOP_SIGNAL = signal.SIGUSR1
"""The signal the harness sends a master or a single local Locust process to stop it gracefully."""


def _watch_owner(owner_pid: int) -> None:
    """Stop gracefully once the harness that started this process is gone (its parent changed)."""
    while True:
        gevent.sleep(0.5)
        if os.getppid() != owner_pid:
            STATE.owner_gone = True
            stop_gracefully()
            return


def _on_windows(environment: Environment, msg: Any, **_: Any) -> None:
    """Master: forward one worker's batch to the harness."""
    data = msg.data or {}
    _emit({"type": "windows", "worker": str(msg.node_id), "records": data.get("records", []), "cpu": data.get("cpu")})


def _on_config(environment: Environment, msg: Any, **_: Any) -> None:
    """Worker: the configuration from the master (kept only when no local file gave one)."""
    if msg.data:
        _apply_config(SwarmConfig.from_data(msg.data))


def _on_init(environment: Environment, **_: Any) -> None:
    STATE.environment = environment
    runner = environment.runner
    cfg = load_env_config()
    if cfg is not None:
        _apply_config(cfg)
    if isinstance(runner, MasterRunner):
        runner.register_message(MSG_WINDOWS, _on_windows)
        _emit({"type": "hello", "role": "master", "pid": os.getpid()})
    elif isinstance(runner, WorkerRunner):
        runner.register_message(MSG_CONFIG, _on_config)
    if isinstance(runner, MasterRunner | LocalRunner):
        gevent.signal_handler(STOP_SIGNAL, lambda: gevent.spawn(stop_gracefully))
    if isinstance(runner, WorkerRunner | LocalRunner):
        gevent.spawn(_flusher)
    if cfg is not None and cfg.owner_pid is not None:
        gevent.spawn(_watch_owner, cfg.owner_pid)


def _on_test_start(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner) and STATE.config is not None:
        # Sent before the spawn messages on the same connection: remote workers know the clock before any user runs.
        runner.send_message(MSG_CONFIG, json.loads(STATE.config.to_json()))
        _emit({"type": "started", "workers": runner.worker_count})
    elif isinstance(runner, LocalRunner):
        _emit({"type": "started", "workers": 0})


def _on_test_stop(environment: Environment, **_: Any) -> None:
    # The users are stopped by now: this is the last of their requests.
    _flush()


def _on_quitting(environment: Environment, **_: Any) -> None:
    _flush()
    if isinstance(environment.runner, MasterRunner | LocalRunner):
        if STATE.owner_gone:
            _remove_workdir()
        _emit({"type": "end"})


def _remove_workdir() -> None:
    """The harness died without cleaning up: remove its Locust directory (config, locustfiles, logs)."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return
    workdir = Path(path).parent
    if workdir.name.startswith("chaoslab-locust-"):  # only ever the directory the harness made for us
        shutil.rmtree(workdir, ignore_errors=True)


def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    start_time: float | None = None,
    response: Any = None,
    **_: Any,
) -> None:
    """Count one request into the window of its start time."""
    cfg = STATE.config
    status = getattr(response, "status_code", None) if response is not None else None
    started = start_time if start_time is not None else time.time() - response_time / 1000.0
    signal_name = cfg.signal_of(name) if cfg is not None else name
    error = classify_outcome(int(status or 0), exception, cfg.expect_of(name) if cfg is not None else ())
    tally = STATE.tally
    if tally is None:
        if len(STATE.early) < MAX_EARLY_EVENTS:
            STATE.early.append((signal_name, started, response_time, error))
        return
    tally.add(signal_name, started, response_time, error)


def install() -> None:
    """Register the plugin's event listeners (once per process)."""
    if STATE.installed:
        return
    STATE.installed = True
    hooks: Any = events  # Locust's EventHook.add_listener is untyped
    hooks.init.add_listener(_on_init)
    hooks.test_start.add_listener(_on_test_start)
    hooks.test_stop.add_listener(_on_test_stop)
    hooks.quitting.add_listener(_on_quitting)
    hooks.request.add_listener(_on_request)
