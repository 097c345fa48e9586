"""Container faults against a real Docker engine: kill, stop, pause, restart, restart policies, label lookup."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from chaoslab.errors import FaultError
from chaoslab.faults.base import FaultContext
from chaoslab.faults.container import ContainerDriver, restart_policy_of, state_of, still_wrong
from chaoslab.faults.registry import builtin_registry
from chaoslab.model.faults import (
    ContainerKillFault,
    ContainerPauseFault,
    ContainerRestartFault,
    ContainerStopFault,
)
from chaoslab.model.topology import TopologySpec
from tests.conftest import free_port
from tests.fixtures_docker import wait_http


def topology(service: dict[str, Any] | None = None) -> TopologySpec:
    """A one-service topology; ``service`` adds fields (e.g. a container reference)."""
    return TopologySpec.model_validate({"name": "t", "services": {"web": service or {}}})


def context(container: Any, service: dict[str, Any] | None = None) -> FaultContext:
    """The fault context of the run that launched ``container``."""
    return FaultContext(topology=topology(service), run_id=container.labels["chaoslab.run_id"])


def answers(port: int, timeout_s: float = 0.5) -> str:
    """``ok`` when the server answers, ``refused`` or ``timeout`` otherwise."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout_s) as response:
            return "ok" if response.read() == b"ok" else "bad"
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        return "timeout" if isinstance(reason, TimeoutError) else "refused"


def wait_down(port: int, timeout_s: float = 10.0) -> None:
    """Wait until the server no longer answers."""
    deadline = time.monotonic() + timeout_s
    while answers(port, 0.3) == "ok":
        assert time.monotonic() < deadline, f"127.0.0.1:{port} still answers"
        time.sleep(0.02)


class TestPureHelpers:
    """Reading Docker inspect data."""

    def test_state_and_policy(self) -> None:
        """Paused wins over running; a missing restart policy reads as "no"."""
        paused = {"State": {"Status": "running", "Running": True, "Paused": True}}
        assert state_of(paused) == "paused"
        assert state_of({"State": {"Status": "exited"}}) == "exited"
        assert restart_policy_of({"HostConfig": {"RestartPolicy": {"Name": "always"}}}) == "always"
        assert restart_policy_of({"HostConfig": {}}) == "no"

    def test_still_wrong(self) -> None:
        """Only a running, unpaused container counts as reverted."""
        assert still_wrong({"State": {"Status": "running"}}, "a") is None
        assert still_wrong({"State": {"Status": "exited"}}, "a") == "container a is exited, not running"
        assert still_wrong(None, "a") == "container a no longer exists"

    def test_registered_for_its_family(self) -> None:
        """Every container kind resolves to this driver."""
        registry = builtin_registry()
        for kind in ("container_kill", "container_stop", "container_pause", "container_restart"):
            assert isinstance(registry.driver(kind), ContainerDriver)

    def test_unknown_service_is_refused(self) -> None:
        """A target outside the topology is a FaultError naming the known services."""
        ctx = FaultContext(topology=topology(), run_id="r")
        fault = ContainerKillFault(kind="container_kill", target="nope")
        with pytest.raises(FaultError, match=r"service 'nope' is not in topology 't' \(services: web\)"):
            ContainerDriver(client=None).prepare(fault, ctx, "f1")


@pytest.mark.integration
@pytest.mark.docker
class TestContainerKill:
    """container_kill with and without a restart policy."""

    async def test_kill_without_policy_then_revert_starts_it(self, http_container: Any, docker_client: Any) -> None:
        """SIGKILL through the API takes the server down; revert starts the container and it answers again."""
        port = free_port()
        container = http_container(port)
        ctx = context(container)
        driver = ContainerDriver(docker_client)
        fault = ContainerKillFault(kind="container_kill", target="web")
        record = driver.prepare(fault, ctx, "kill")
        assert record.containers[0].previous_state == "running"
        assert record.containers[0].name == container.name
        record = await driver.apply(fault, ctx, record)
        assert record.containers[0].delivered_via == "api"
        await asyncio.to_thread(wait_down, port)
        assert await asyncio.to_thread(answers, port) == "refused"
        container.reload()
        assert container.status == "exited"
        assert await driver.check_reverted(record, ctx) == f"container {container.name} is exited, not running"
        started = time.monotonic()
        await driver.revert(record, ctx)
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/")
        restart_s = time.monotonic() - started
        assert restart_s < 10.0
        assert await driver.check_reverted(record, ctx) is None
        await driver.revert(record, ctx)  # idempotent
        assert await asyncio.to_thread(answers, port) == "ok"

    async def test_kill_with_always_policy_comes_back_by_itself(self, http_container: Any, docker_client: Any) -> None:
        """A container with restart policy "always" killed like a crash is restarted by the engine, no revert needed."""
        port = free_port()
        container = http_container(port, restart="always")
        ctx = context(container)
        driver = ContainerDriver(docker_client)
        fault = ContainerKillFault(kind="container_kill", target="web", signal="KILL")
        record = driver.prepare(fault, ctx, "kill")
        assert record.containers[0].restart_policy == "always"
        old_pid = container.attrs["State"]["Pid"]
        started = time.monotonic()
        record = await driver.apply(fault, ctx, record)
        assert record.containers[0].delivered_via == "host_pid"
        assert driver.holds(record) is False  # the restart policy brings it back: that is its recovery
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/")
        restart_s = time.monotonic() - started
        container.reload()
        assert container.attrs["RestartCount"] == 1
        assert container.attrs["State"]["Pid"] != old_pid
        assert restart_s < 10.0
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None
        container.reload()
        assert container.attrs["RestartCount"] == 1

    async def test_restart_after_is_left_to_the_revert(self, http_container: Any, docker_client: Any) -> None:
        """restart_after is the kill's duration (the plan reverts then): the container stays down until revert."""
        port = free_port()
        container = http_container(port)
        ctx = context(container)
        driver = ContainerDriver(docker_client)
        fault = ContainerKillFault.model_validate({"kind": "container_kill", "target": "web", "restart_after": "1s"})
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "kill-ra"))
        assert driver.holds(record) is True
        await asyncio.to_thread(wait_down, port)
        await asyncio.sleep(1.5)
        assert await driver.check_reverted(record, ctx) is not None
        await driver.revert(record, ctx)
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/", 15.0)
        assert await driver.check_reverted(record, ctx) is None


@pytest.mark.integration
@pytest.mark.docker
class TestContainerStopPauseRestart:
    """container_stop, container_pause and container_restart."""

    async def test_stop_then_revert(self, http_container: Any, docker_client: Any) -> None:
        """A stopped container refuses connections; revert starts it and it answers."""
        port = free_port()
        container = http_container(port)
        ctx = context(container)
        driver = ContainerDriver(docker_client)
        fault = ContainerStopFault(kind="container_stop", target="web")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "stop"))
        assert await asyncio.to_thread(answers, port) == "refused"
        await driver.revert(record, ctx)
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/")
        assert await driver.check_reverted(record, ctx) is None

    async def test_pause_hangs_requests_until_unpaused(self, http_container: Any, docker_client: Any) -> None:
        """While paused, connections are accepted by the kernel but requests hang; revert unpauses."""
        port = free_port()
        container = http_container(port)
        ctx = context(container)
        driver = ContainerDriver(docker_client)
        fault = ContainerPauseFault(kind="container_pause", target="web")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "pause"))
        assert await asyncio.to_thread(answers, port, 0.5) == "timeout"
        assert await driver.check_reverted(record, ctx) == f"container {container.name} is paused, not running"
        await driver.revert(record, ctx)
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/")
        assert await driver.check_reverted(record, ctx) is None
        await driver.revert(record, ctx)  # idempotent
        container.reload()
        assert container.status == "running"

    async def test_restart_restarts_the_process(self, http_container: Any, docker_client: Any) -> None:
        """container_restart gives the container a new main process, which answers again."""
        port = free_port()
        container = http_container(port)
        ctx = context(container)
        old_started = container.attrs["State"]["StartedAt"]
        driver = ContainerDriver(docker_client)
        fault = ContainerRestartFault(kind="container_restart", target="web")
        record = await driver.apply(fault, ctx, driver.prepare(fault, ctx, "restart"))
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/")
        container.reload()
        assert container.attrs["State"]["StartedAt"] != old_started
        await driver.revert(record, ctx)
        assert await driver.check_reverted(record, ctx) is None


@pytest.mark.integration
@pytest.mark.docker
class TestTargetLookup:
    """Finding a service's container by compose labels or by name."""

    async def test_compose_labels_pick_only_the_matching_container(
        self, http_container: Any, docker_client: Any
    ) -> None:
        """A compose project/service reference selects that container and leaves the other one alone."""
        port_a, port_b = free_port(), free_port()
        target = http_container(port_a, service="a", compose_project="shop", compose_service="api")
        other = http_container(port_b, service="b", compose_project="other", compose_service="api")
        ctx = FaultContext(
            topology=topology({"container": {"compose_project": "shop", "compose_service": "api"}}),
            run_id="unrelated-run",
        )
        driver = ContainerDriver(docker_client)
        fault = ContainerStopFault(kind="container_stop", target="web")
        record = driver.prepare(fault, ctx, "stop")
        assert [c.id for c in record.containers] == [target.id]
        record = await driver.apply(fault, ctx, record)
        assert await asyncio.to_thread(answers, port_a) == "refused"
        assert await asyncio.to_thread(answers, port_b) == "ok"
        await driver.revert(record, ctx)
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port_a}/")
        other.reload()
        assert other.status == "running"

    async def test_by_name(self, http_container: Any, docker_client: Any) -> None:
        """A name reference selects exactly the container of that name."""
        port = free_port()
        container = http_container(port, name=f"chaoslab-test-byname-{port}")
        ctx = FaultContext(topology=topology({"container": {"name": container.name}}), run_id="x")
        record = ContainerDriver(docker_client).prepare(
            ContainerPauseFault(kind="container_pause", target="web"), ctx, "p"
        )
        assert [c.name for c in record.containers] == [container.name]

    def test_stopped_container_is_not_a_target(self, http_container: Any, docker_client: Any) -> None:
        """A service whose only container is stopped is refused, naming the container and its state."""
        container = http_container(free_port())
        container.stop(timeout=0)
        with pytest.raises(FaultError, match=rf"no running container for service 'web': {container.name} \(exited\)"):
            ContainerDriver(docker_client).prepare(
                ContainerKillFault(kind="container_kill", target="web"), context(container), "k"
            )

    def test_no_container_is_a_fault_error(self, docker_client: Any) -> None:
        """A service without any container is refused before anything is touched."""
        ctx = FaultContext(topology=topology({"container": {"name": "chaoslab-no-such-container"}}), run_id="x")
        with pytest.raises(FaultError, match="no container found for service 'web'"):
            ContainerDriver(docker_client).prepare(ContainerStopFault(kind="container_stop", target="web"), ctx, "s")
