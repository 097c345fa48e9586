"""``chaoslab demo up|down|status``: the demo system (docs/demo.md) running until you stop it.

``up`` starts a small background supervisor (``chaoslab demo up --foreground``) that launches
the embedded Toxiproxy, PostgreSQL, vector and api with the same launcher as ``chaoslab run``
(so ``restart: on-failure`` works), writes ``<state dir>/demo/state.json`` (its PID, every
service PID, the run directory, the URLs) and waits for SIGTERM. ``down`` sends that PID SIGTERM
and, should it be gone, stops exactly the recorded service PIDs. ``status`` shows each service's
PID and health::

    chaoslab demo up --set mode=resilient
    curl -s localhost:28080/documents/1
    chaoslab demo down
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psutil

from chaoslab.errors import ExitCode, HarnessError, SpecError
from chaoslab.files import write_atomic
from chaoslab.model.loading import load_topology, parse_overrides, runtime_refs
from chaoslab.redact import redact_data, redact_text
from chaoslab.system.processes import process_identity, same_process, stop_pid

UP_TIMEOUT_S = 120.0
DOWN_TIMEOUT_S = 40.0


def demo_state_dir() -> Path:
    """Where the running demo records itself: ``<state dir>/demo``."""
    from chaoslab.run.notes import state_dir

    return state_dir() / "demo"


def state_file() -> Path:
    """The demo's state file."""
    return demo_state_dir() / "state.json"


@dataclass(frozen=True, slots=True)
class DemoState:
    """What ``up`` recorded: the supervisor and every service it started."""

    status: str
    supervisor_pid: int
    supervisor_create_time: float | None
    run_dir: str
    topology: str
    parameters: dict[str, Any]
    toxiproxy_url: str | None
    services: dict[str, dict[str, Any]]

    @staticmethod
    def read(path: Path) -> DemoState | None:
        """The recorded state, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads(path.read_text())
            return DemoState(
                status=str(data["status"]),
                supervisor_pid=int(data["supervisor_pid"]),
                supervisor_create_time=data.get("supervisor_create_time"),
                run_dir=str(data["run_dir"]),
                topology=str(data.get("topology", "demo")),
                parameters=dict(data.get("parameters", {})),
                toxiproxy_url=data.get("toxiproxy_url"),
                services=dict(data.get("services", {})),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        """Write atomically (readers never see half a file), secrets in parameters or URLs masked."""
        write_atomic(path, json.dumps(redact_data(_as_dict(self)), indent=2))


def _as_dict(state: DemoState) -> dict[str, Any]:
    return {name: getattr(state, name) for name in DemoState.__slots__}


def pid_alive(pid: int, create_time: float | None) -> bool:
    """Whether ``pid`` is still the process that was recorded (same start time), not a reused number."""
    try:
        return same_process(pid, create_time) is not None
    except psutil.Error:  # not ours to look at (AccessDenied): not the demo's process either
        return False


@click.group("demo")
def demo_group() -> None:
    """Start, stop and inspect the demo system (api, vector, PostgreSQL, embedded Toxiproxy)."""


@demo_group.command("up")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Topology parameter (mode=resilient).")
@click.option("--topology", default="demo", show_default=True, help="Topology name or file.")
@click.option("--foreground", is_flag=True, help="Run the supervisor in this terminal until Ctrl-C.")
def up_command(overrides: tuple[str, ...], topology: str, foreground: bool) -> None:
    """Start the demo system and leave it running (stop it with `chaoslab demo down`)."""
    values = parse_overrides(overrides)
    load_topology(topology, overrides=values)  # exit 2 on a bad topology or parameter, before anything starts
    existing = DemoState.read(state_file())
    if existing is not None and pid_alive(existing.supervisor_pid, existing.supervisor_create_time):
        raise SpecError(
            f"the demo is already running (supervisor PID {existing.supervisor_pid}); run `chaoslab demo down`"
        )
    if existing is not None:
        state_file().unlink(missing_ok=True)  # a stale file from a supervisor that died
    if foreground:
        try:
            asyncio.run(_supervise(topology, values))
        except KeyboardInterrupt:
            pass
        return
    directory = demo_state_dir()
    directory.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "chaoslab", "demo", "up", "--foreground", "--topology", topology]
    for pair in overrides:
        argv += ["--set", pair]
    with (directory / "demo.log").open("ab") as log:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + UP_TIMEOUT_S
    while time.monotonic() < deadline:
        state = DemoState.read(state_file())
        if state is not None and state.supervisor_pid == child.pid and state.status == "up":
            _print_state(state, check_health=False)
            click.echo("stop it with: chaoslab demo down")
            return
        if child.poll() is not None:
            tail = (directory / "demo.log").read_text(errors="replace")[-800:]
            raise HarnessError(f"the demo did not start (exit {child.returncode}): {tail.strip()}")
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    raise HarnessError(f"the demo was not up within {UP_TIMEOUT_S:g}s; see {directory / 'demo.log'}")


async def _supervise(topology_ref: str, values: dict[str, Any]) -> None:
    """Launch everything, record the state, wait for SIGTERM/SIGINT, stop everything."""
    from chaoslab.run.ledger import Ledger
    from chaoslab.run.notes import state_dir
    from chaoslab.system.launcher import Launcher

    topology = load_topology(topology_ref, overrides=values)
    run_id = "demo-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    run_dir = Path(tempfile.mkdtemp(prefix=f"chaoslab-{run_id}-"))
    run_dir.chmod(0o711)  # PostgreSQL runs as another user and must reach its directory
    refs = runtime_refs(topology, {"run_dir": str(run_dir), "state_dir": str(state_dir())})
    # the ledger lets `chaoslab rollback` stop the services should this supervisor be killed -9
    ledger = Ledger.create(
        run_id, experiment="demo", topology=topology.model_dump(mode="json", by_alias=True), run_dir=str(run_dir)
    )
    launcher = Launcher(topology, run_id=run_id, run_dir=run_dir, refs=refs, ledger=ledger)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    me = psutil.Process()
    try:
        url = await launcher.start_toxiproxy()
        await launcher.create_links()
        await launcher.start_services()
        services = {
            name: {
                "processes": [[pid, process_identity(pid)] for pid in launcher.pids(name)],
                "url": spec.url,
                "address": spec.address,
                "health": spec.probe.url if spec.probe is not None else None,
            }
            for name, spec in topology.services.items()
        }
        DemoState(
            status="up",
            supervisor_pid=me.pid,
            supervisor_create_time=me.create_time(),
            run_dir=str(run_dir),
            topology=topology_ref,
            parameters=dict(topology.parameters),
            toxiproxy_url=url,
            services=services,
        ).write(state_file())
        click.echo(f"demo up (toxiproxy {url}); stop with Ctrl-C or `chaoslab demo down`", err=True)
        await stop.wait()
    finally:
        problems = await launcher.stop_all()
        for problem in problems:
            click.echo(f"chaoslab: warning: {redact_text(problem)}", err=True)
        ledger.close(remove=not problems)
        state = DemoState.read(state_file())
        if state is not None and state.supervisor_pid == me.pid:
            state_file().unlink(missing_ok=True)
        shutil.rmtree(run_dir, ignore_errors=True)


@demo_group.command("down")
def down_command() -> None:
    """Stop the demo started by `chaoslab demo up` (exactly the recorded PIDs)."""
    state = DemoState.read(state_file())
    if state is None:
        click.echo("the demo is not running (no state file)")
        return
    if pid_alive(state.supervisor_pid, state.supervisor_create_time):
        os.kill(state.supervisor_pid, signal.SIGTERM)
        deadline = time.monotonic() + DOWN_TIMEOUT_S
        while time.monotonic() < deadline and pid_alive(state.supervisor_pid, state.supervisor_create_time):
            time.sleep(0.2)
    leftovers = []
    # the supervisor stops its services itself; these are only left if it died or hung
    for name, service in state.services.items():
        for pid, create_time in service.get("processes", []):
            if pid_alive(int(pid), create_time):
                leftovers.append(f"{name}:{pid}")
                stop_pid(int(pid), create_time, sig=signal.SIGINT if name == "postgres" else signal.SIGTERM)
    if pid_alive(state.supervisor_pid, state.supervisor_create_time):
        os.kill(state.supervisor_pid, signal.SIGKILL)
        leftovers.append(f"supervisor:{state.supervisor_pid}")
    state_file().unlink(missing_ok=True)
    if leftovers:
        click.echo(f"stopped leftover processes: {', '.join(leftovers)}; run `chaoslab rollback` to unmount/clean")
    click.echo("demo down")


@demo_group.command("status")
def status_command() -> None:
    """Show whether the demo runs, each service's PID and health (exit 1 when it is not up)."""
    state = DemoState.read(state_file())
    if state is None or not pid_alive(state.supervisor_pid, state.supervisor_create_time):
        click.echo("the demo is not running" + (" (stale state file)" if state is not None else ""))
        raise click.exceptions.Exit(int(ExitCode.FAIL))
    _print_state(state, check_health=True)


def _print_state(state: DemoState, *, check_health: bool) -> None:
    mode = state.parameters.get("mode", "?")
    click.echo(f"demo up: supervisor PID {state.supervisor_pid}, mode {mode}, toxiproxy {state.toxiproxy_url}")
    click.echo(f"  run dir {state.run_dir}")
    for name, service in state.services.items():
        where = service.get("url") or service.get("address") or ""
        pids = ",".join(str(pid) for pid, _ in service.get("processes", [])) or "-"
        health = ""
        if check_health and (service.get("health") or service.get("address")):
            ok = _healthy(str(service["health"])) if service.get("health") else _accepts(str(service["address"]))
            health = "  healthy" if ok else "  NOT HEALTHY"
        click.echo(f"  {name:<10} pid {pids:<8} {where}{health}")


def _healthy(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _accepts(address: str) -> bool:
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except (OSError, ValueError):
        return False
