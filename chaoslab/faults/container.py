"""Container faults through the Docker Engine API: kill (a signal), stop, pause, restart.

The target is a topology service; its container is found by the service's ``container`` reference
(exact name, or compose project/service labels) or, for containers chaoslab launched, by the
``chaoslab.service``/``chaoslab.run_id`` labels. Every matching container is acted on and
recorded (id, name, state before the fault, restart policy), so ``chaoslab rollback`` can undo
it from the ledger alone.

Restart policies are respected. Docker treats ``docker kill`` as a *manual* stop and never
applies the restart policy afterwards, which is not what a crash does. So when a container has a
restart policy and its main process is visible on this host, ``container_kill`` delivers the
signal to that process directly, like a crash or the OOM killer would, and the engine's restart
policy brings the container back by itself; revert then only waits for it to run. Without a
policy (or with a remote engine) the signal goes through the API and revert starts the container.

``restart_after`` on ``container_kill`` is the fault's duration: the plan reverts the kill (starts
the container) then. A kill the restart policy answers, and ``container_restart``, are not held
(:meth:`ContainerDriver.holds`): the container's coming back is the system's recovery.
"""

from __future__ import annotations

import asyncio
import os
import signal as _signal
import time
from enum import StrEnum
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from pydantic import BaseModel, ConfigDict

from chaoslab.errors import FaultError, RevertError
from chaoslab.faults.base import FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.model.faults import (
    ContainerKillFault,
    ContainerPauseFault,
    ContainerRestartFault,
    ContainerStopFault,
)
from chaoslab.system.containers import ContainerBackend, connect, container_name

POLICY_WAIT_S = 20.0
"""How long revert waits for a restart policy to bring a killed container back before starting it."""
STOP_TIMEOUT_S = 10
"""Grace period of ``container_stop`` and ``container_restart`` before Docker sends SIGKILL."""
RESTARTING_WAIT_S = 10.0
"""How long revert lets a container in state ``restarting`` come up before starting it itself."""
KILL_WAIT_S = 10.0
"""How long ``container_kill`` with SIGKILL waits for the old main process to be gone."""
_POLL_S = 0.05


class Delivery(StrEnum):
    """How a kill signal reached the container."""

    API = "api"
    """``docker kill``: the engine marks the container as manually stopped (no restart policy)."""
    HOST_PID = "host_pid"
    """Sent to the main process from the host, like a crash: the restart policy applies."""


def restart_policy_of(attrs: dict[str, Any]) -> str:
    """The container's restart policy name (``no`` when unset)."""
    policy = (attrs.get("HostConfig") or {}).get("RestartPolicy") or {}
    return str(policy.get("Name") or "no")


class ContainerState(StrEnum):
    """Docker's container states (``State.Status``)."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"


ACTIONABLE_STATES = frozenset({ContainerState.RUNNING, ContainerState.PAUSED, ContainerState.RESTARTING})
"""States of a container a fault may act on (others are left alone and not recorded)."""

RUNNING_STATES = frozenset({ContainerState.RUNNING, ContainerState.RESTARTING})
"""States that count as "was running" before a fault (a restarting container is on its way up)."""


def state_of(attrs: dict[str, Any]) -> ContainerState:
    """The container's state from its inspect data (paused wins over running)."""
    state = attrs.get("State") or {}
    if state.get("Paused"):
        return ContainerState.PAUSED
    status = state.get("Status") or ("running" if state.get("Running") else "exited")
    try:
        return ContainerState(status)
    except ValueError:  # a state newer engines may add: treat as not running
        return ContainerState.EXITED


def was_running(previous_state: str | None) -> bool:
    """Whether a recorded previous state means the container should run after revert (unknown: yes)."""
    return previous_state is None or previous_state in RUNNING_STATES


def pid_belongs_to(pid: int, container_id: str) -> bool:
    """Whether host PID ``pid`` runs in the container (its cgroup path names the container id)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as fh:
            return container_id in fh.read()
    except OSError:
        return False


def still_wrong(attrs: dict[str, Any] | None, name: str) -> str | None:
    """None when a container's inspect data says it runs unpaused, else what is wrong."""
    if attrs is None:
        return f"container {name} no longer exists"
    state = state_of(attrs)
    if state != ContainerState.RUNNING:
        return f"container {name} is {state.value}, not running"
    return None


def _wait_main_process_gone(container: Container, timeout_s: float) -> None:
    """Wait until the container's main process at the time of the kill is gone (exited or replaced).

    The signal is asynchronous: without this, the old process may still answer a request sent
    right after apply, and a restart policy's new process would be mistaken for the old one.
    """
    old_pid = int((container.attrs.get("State") or {}).get("Pid") or 0)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs.get("State") or {}
        if not state.get("Running") or int(state.get("Pid") or 0) != old_pid:
            return
        time.sleep(_POLL_S / 5)


ContainerFault = ContainerKillFault | ContainerStopFault | ContainerPauseFault | ContainerRestartFault
"""The faults this family applies."""


class ContainerTarget(BaseModel):
    """One container a fault acts on, as it was before the fault."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    name: str
    previous_state: str | None = None
    """Its state before the fault (None: unknown, taken as running)."""
    restart_policy: str = "no"
    delivered_via: str | None = None
    """How a kill signal reached it (:class:`Delivery`)."""
    applied_at_wall: float | None = None


class ContainerRecord(LedgerRecord):
    """The containers of a service a fault acts on: ids, names, previous states and restart policies."""

    target: str
    label: str
    containers: tuple[ContainerTarget, ...] = ()
    signal: str | None = None
    """``container_kill``: the signal sent."""


class ContainerDriver(FaultDriver[ContainerFault, ContainerRecord]):
    """container_kill, container_stop, container_pause and container_restart on a service's containers."""

    def __init__(self, client: docker.DockerClient | None = None, *, policy_wait_s: float = POLICY_WAIT_S) -> None:
        self._client = client
        self.policy_wait_s = policy_wait_s

    @property
    def client(self) -> docker.DockerClient:
        """The engine client, connected on first use (planning never needs an engine)."""
        if self._client is None:
            self._client = connect()
        return self._client

    # resolution ------------------------------------------------------------------------------

    def containers_of(self, service_name: str, ctx: FaultContext) -> list[Container]:
        """The containers of a topology service: by its container reference, else the ones chaoslab launched."""
        service = ctx.topology.services.get(service_name)
        if service is None:
            known = ", ".join(sorted(ctx.topology.services)) or "none"
            raise FaultError(f"service {service_name!r} is not in topology {ctx.topology.name!r} (services: {known})")
        backend = ContainerBackend(self.client)
        if service.container is not None:
            found = backend.find(service.container)
        else:
            found = backend.find_service(service_name, ctx.run_id)
            if not found:
                by_name = backend.get(container_name(service_name, service, ctx.run_id))
                found = [by_name] if by_name is not None else []
        if not found:
            raise FaultError(f"no container found for service {service_name!r}; is it running as a container?")
        return found

    # FaultDriver ---------------------------------------------------------------------------

    def prepare(self, fault: ContainerFault, ctx: FaultContext, label: str) -> ContainerRecord:
        """Find the target containers and record their ids, names, states and restart policies."""
        if not isinstance(fault, ContainerKillFault | ContainerStopFault | ContainerPauseFault | ContainerRestartFault):
            raise FaultError(f"the container driver does not handle {fault.kind!r}")
        containers = []
        found = self.containers_of(fault.target, ctx)
        for container in found:
            attrs = container.attrs
            if state_of(attrs) not in ACTIONABLE_STATES:
                # A stopped replica of a compose service: nothing to kill, pause or stop.
                continue
            containers.append(
                ContainerTarget(
                    id=str(container.id),
                    name=str(container.name),
                    previous_state=state_of(attrs).value,
                    restart_policy=restart_policy_of(attrs),
                )
            )
        if not containers:
            names = ", ".join(f"{c.name} ({state_of(c.attrs).value})" for c in found)
            raise FaultError(f"no running container for service {fault.target!r}: {names}")
        return ContainerRecord(
            kind=fault.kind,
            target=fault.target,
            label=label,
            containers=tuple(containers),
            signal=fault.signal if isinstance(fault, ContainerKillFault) else None,
        )

    async def apply(self, fault: ContainerFault, ctx: FaultContext, record: ContainerRecord) -> ContainerRecord:
        """Kill, stop, pause or restart every recorded container."""
        done: list[ContainerTarget] = []
        for entry in record.containers:
            container = await asyncio.to_thread(self._get, entry.id)
            if container is None:
                raise FaultError(f"container {entry.name} disappeared before the fault was applied")
            delivered_via: str | None = None
            try:
                if isinstance(fault, ContainerKillFault):
                    delivered_via = await asyncio.to_thread(self._kill, container, fault.signal)
                    if fault.signal == "SIGKILL":
                        await asyncio.to_thread(_wait_main_process_gone, container, KILL_WAIT_S)
                elif isinstance(fault, ContainerStopFault):
                    await asyncio.to_thread(container.stop, timeout=STOP_TIMEOUT_S)
                elif isinstance(fault, ContainerPauseFault):
                    if state_of(container.attrs) != ContainerState.PAUSED:
                        await asyncio.to_thread(container.pause)
                elif isinstance(fault, ContainerRestartFault):
                    await asyncio.to_thread(container.restart, timeout=STOP_TIMEOUT_S)
            except docker.errors.APIError as exc:
                raise FaultError(f"{fault.kind} on container {entry.name} failed: {exc.explanation or exc}") from None
            done.append(entry.model_copy(update={"delivered_via": delivered_via, "applied_at_wall": time.time()}))
        return record.but(containers=tuple(done))

    def _get(self, container_id: str) -> Container | None:
        try:
            return self.client.containers.get(container_id)
        except docker.errors.NotFound:
            return None

    def _kill(self, container: Container, signal_name: str) -> str:
        """Deliver the signal; through the host PID when a restart policy should see it as a crash."""
        attrs = container.attrs
        pid = int((attrs.get("State") or {}).get("Pid") or 0)
        if restart_policy_of(attrs) != "no" and pid_belongs_to(pid, str(container.id)):
            try:
                os.kill(pid, int(getattr(_signal, signal_name)))
                return Delivery.HOST_PID.value
            except ProcessLookupError:
                pass
        container.kill(signal=signal_name)
        return Delivery.API.value

    async def revert(self, record: ContainerRecord, ctx: FaultContext) -> None:
        """Unpause or start each container that is not running (after giving its restart policy time)."""
        if not record.containers:
            return
        await asyncio.to_thread(self._bring_back, record, self.policy_wait_s)

    def _bring_back(self, record: ContainerRecord, policy_wait_s: float) -> None:
        problems: list[str] = []
        for entry in record.containers:
            try:
                self._bring_back_one(entry, policy_wait_s)
            except docker.errors.DockerException as exc:
                problems.append(f"container {entry.name}: {exc}")
        if problems:
            raise RevertError("; ".join(problems))

    def _bring_back_one(self, entry: ContainerTarget, policy_wait_s: float) -> None:
        container = self._get(entry.id)
        if container is None:
            # Removed since (the launcher tears down after reverting): nothing left to undo.
            return
        if not was_running(entry.previous_state):
            # It was not running before the fault; restore exactly that (unpause only).
            if state_of(container.attrs) == ContainerState.PAUSED and entry.previous_state != ContainerState.PAUSED:
                container.unpause()
            return
        if entry.delivered_via == Delivery.HOST_PID.value:
            # The restart policy brings it back by itself; start it only if it does not.
            deadline = time.monotonic() + policy_wait_s
            while time.monotonic() < deadline and state_of(container.attrs) != ContainerState.RUNNING:
                time.sleep(_POLL_S)
                container.reload()
        state = state_of(container.attrs)
        if state == ContainerState.PAUSED:
            container.unpause()
        elif state == ContainerState.RESTARTING:
            # The engine is bringing it up: `docker start` now would fail, so wait for that first.
            deadline = time.monotonic() + max(policy_wait_s, RESTARTING_WAIT_S)
            while time.monotonic() < deadline and state_of(container.attrs) == ContainerState.RESTARTING:
                time.sleep(_POLL_S)
                container.reload()
            if state_of(container.attrs) != ContainerState.RUNNING:
                container.start()
        elif state != ContainerState.RUNNING:
            container.start()

    async def check_reverted(self, record: ContainerRecord, ctx: FaultContext) -> str | None:
        """None when every container that ran before the fault runs again and none is paused."""
        return await asyncio.to_thread(self._check, record)

    def _check(self, record: ContainerRecord) -> str | None:
        for entry in record.containers:
            container = self._get(entry.id)
            attrs = container.attrs if container is not None else None
            if was_running(entry.previous_state):
                wrong = still_wrong(attrs, entry.name or entry.id[:12])
                if wrong is not None:
                    return wrong
            elif (
                attrs is not None
                and state_of(attrs) == ContainerState.PAUSED
                and entry.previous_state != ContainerState.PAUSED
            ):
                return f"container {entry.name} is still paused"
        return None

    def holds(self, record: ContainerRecord) -> bool:
        """Stops and pauses are held; a restart is not, nor a kill every container's restart policy answers."""
        if record.kind == "container_restart":
            return False
        if record.kind == "container_kill" and record.signal not in ("SIGSTOP", "SIGTSTP"):
            return not record.containers or any(c.delivered_via != Delivery.HOST_PID.value for c in record.containers)
        return True

    def detail(self, record: ContainerRecord) -> dict[str, Any]:
        """The containers acted on and how a kill was delivered."""
        detail: dict[str, Any] = {"containers": [c.name for c in record.containers]}
        delivered = sorted({c.delivered_via for c in record.containers if c.delivered_via})
        if delivered:
            detail["delivered_via"] = delivered
        return detail


FAMILY: FaultFamily[ContainerFault, ContainerRecord] = FaultFamily(
    name="container",
    models=(ContainerKillFault, ContainerStopFault, ContainerPauseFault, ContainerRestartFault),
    driver=ContainerDriver,
    record=ContainerRecord,
)
"""Kill, stop, pause and restart a service's containers through the Docker Engine API."""
