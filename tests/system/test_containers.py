"""The container backend: the pure run configuration, and real containers of the local image."""

from __future__ import annotations

import io
import sys
import tarfile
from typing import Any

import pytest

from chaoslab.errors import HarnessError
from chaoslab.model.loading import load_topology
from chaoslab.model.topology import ContainerRef, ServiceSpec
from chaoslab.system.containers import (
    LOCAL_IMAGE,
    ContainerBackend,
    base_rootfs_tar,
    connect,
    container_config,
    engine_reachable,
    outermost_paths,
    parse_mount,
)
from tests.conftest import free_port
from tests.fixtures_docker import HTTP_SERVER_CODE, wait_http


def service(**launch: Any) -> ServiceSpec:
    """A container service with the given launch fields on top of the local image."""
    return ServiceSpec.model_validate({"launch": {"kind": "container", "image": LOCAL_IMAGE, **launch}})


class TestReachability:
    """Telling whether an engine is there, without leaking sockets."""

    def test_missing_socket(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
        """A DOCKER_HOST socket path that does not exist is reported, and connect raises a HarnessError."""
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
        assert (
            engine_reachable() == f"cannot connect to unix://{tmp_path}/none.sock: [Errno 2] No such file or directory"
        )
        with pytest.raises(HarnessError, match="no Docker engine reachable: cannot connect to"):
            connect()


class TestRootfs:
    """The local image's root filesystem."""

    def test_busybox_applets_and_lib_links(self) -> None:
        """The tar holds busybox with applet links, /lib → usr/lib, and a world-writable sticky /tmp."""
        with tarfile.open(fileobj=io.BytesIO(base_rootfs_tar(b"\x7fELF-fake")), mode="r") as tar:
            members = {m.name: m for m in tar.getmembers()}
            busybox = tar.extractfile("bin/busybox")
            assert busybox is not None and busybox.read() == b"\x7fELF-fake"
        assert members["bin/sh"].linkname == "busybox"
        assert members["lib"].linkname == "usr/lib"
        assert members["lib64"].linkname == "usr/lib64"
        assert members["tmp"].mode == 0o1777


class TestMounts:
    """Which host paths are bind-mounted, and how mount entries are read."""

    def test_nested_paths_collapse(self) -> None:
        """A path inside another mounted path is not mounted twice; siblings with a common prefix are kept."""
        paths = ["/work/main/.venv", "/work/main", "/usr/lib", "/usr/lib64", "/usr/lib/x86_64-linux-gnu", "/work/main/"]
        assert outermost_paths(paths) == ["/usr/lib", "/usr/lib64", "/work/main"]

    def test_mount_modes(self) -> None:
        """``host: container:ro`` is read-only, a bare target is read-write, relative paths are refused."""
        assert parse_mount("/data", "/data:ro") == ("/data", "/data", "ro")
        assert parse_mount("/data/", "/srv") == ("/data", "/srv", "rw")
        with pytest.raises(HarnessError, match="both paths must be absolute"):
            parse_mount("data", "/srv")


class TestContainerConfig:
    """The pure run configuration of a container service."""

    def test_host_network_labels_policy_and_python_mounts(self) -> None:
        """${python} resolves, the restart policy maps, the labels and read-only Python mounts are set."""
        spec = service(
            command=["${python}", "-m", "x", "--dir", "${run_dir}/d"],
            env={"A": "${run_dir}"},
            restart="on-failure",
            mounts={"${run_dir}": "${run_dir}:rw"},
        )
        config = container_config(
            "api",
            spec,
            run_id="r1",
            refs={"python": "/venv/bin/python", "run_dir": "/runs/r1"},
            python_paths=["/venv", "/opt/py"],
            project_dir="/proj",
        )
        assert config.name == "chaoslab-r1-api"
        assert config.command == ("/venv/bin/python", "-m", "x", "--dir", "/runs/r1/d")
        assert config.env == {"A": "/runs/r1"}
        assert config.restart_policy == {"Name": "on-failure", "MaximumRetryCount": 0}
        assert config.labels == {
            "chaoslab.managed": "true",
            "chaoslab.run_id": "r1",
            "chaoslab.service": "api",
            "com.docker.compose.project": "chaoslab",
            "com.docker.compose.service": "api",
        }
        assert config.volumes == {
            "/opt/py": {"bind": "/opt/py", "mode": "ro"},
            "/proj": {"bind": "/proj", "mode": "ro"},
            "/usr/lib": {"bind": "/usr/lib", "mode": "ro"},
            "/usr/lib64": {"bind": "/usr/lib64", "mode": "ro"},
            "/venv": {"bind": "/venv", "mode": "ro"},
            "/runs/r1": {"bind": "/runs/r1", "mode": "rw"},
        }
        kwargs = config.run_kwargs()
        assert (kwargs["network_mode"], kwargs["detach"], kwargs["init"]) == ("host", True, True)

    def test_topology_names_and_compose_labels_win(self) -> None:
        """A container reference in the topology gives the name and the compose labels."""
        spec = ServiceSpec.model_validate(
            {
                "launch": {"kind": "container", "image": LOCAL_IMAGE},
                "container": {"name": "shop-api", "compose_project": "shop", "compose_service": "web"},
            }
        )
        config = container_config("api", spec, run_id="r1", refs={}, python_paths=[], project_dir="/p")
        assert config.name == "shop-api"
        assert config.labels["com.docker.compose.project"] == "shop"
        assert config.labels["com.docker.compose.service"] == "web"

    def test_demo_docker_topology_loads(self) -> None:
        """The shipped demo-docker topology runs vector and api as containers of the local image."""
        topology = load_topology("demo-docker")
        kinds = {name: s.launch.kind for name, s in topology.services.items()}
        assert kinds == {"postgres": "postgres", "vector": "container", "api": "container"}
        assert topology.services["api"].launch.restart == "always"
        assert {s.launch.image for s in topology.services.values() if s.launch.kind == "container"} == {
            "chaoslab-local/python:3.11"
        }


@pytest.mark.integration
@pytest.mark.docker
class TestContainerBackend:
    """Real containers on the engine."""

    def test_local_image_is_built(self, docker_client: Any, local_image: str) -> None:
        """ensure_image leaves the local image in the engine, with busybox as its shell."""
        image = docker_client.images.get(local_image)
        assert local_image in image.tags
        output = docker_client.containers.run(
            local_image, ["/bin/sh", "-c", "echo hi"], remove=True, network_mode="host"
        )
        assert output == b"hi\n"

    def test_start_find_pids_stop(self, docker_client: Any, local_image: str) -> None:
        """A started service answers on the host network, is found by name and labels, has host PIDs, and goes away."""
        backend = ContainerBackend(docker_client)
        port = free_port()
        spec = service(command=["${python}", "-c", HTTP_SERVER_CODE, str(port)])
        cid = backend.start("web", spec, run_id="rtest", refs={"python": sys.executable})
        try:
            wait_http(f"http://127.0.0.1:{port}/")
            assert backend.is_running(cid)
            assert [c.id for c in backend.find(ContainerRef(name="chaoslab-rtest-web"))] == [cid]
            by_labels = backend.find(ContainerRef(compose_project="chaoslab", compose_service="web"))
            assert cid in [c.id for c in by_labels]
            pids = backend.host_pids(cid)
            with open(f"/proc/{pids[-1]}/cmdline", "rb") as fh:
                assert str(port).encode() in fh.read().split(b"\0")
        finally:
            backend.stop_and_remove(cid, timeout_s=5)
        assert not backend.is_running(cid)
        assert backend.host_pids(cid) == []
        assert backend.find(ContainerRef(name="chaoslab-rtest-web")) == []
        backend.stop_and_remove(cid)  # already gone: no error

    def test_leftover_of_a_dead_run_is_replaced(self, docker_client: Any, local_image: str) -> None:
        """Starting a service whose chaoslab container is still there (a killed run) replaces it."""
        backend = ContainerBackend(docker_client)
        spec = service(command=["/bin/sleep", "60"])
        first = backend.start("left", spec, run_id="rleft", refs={})
        second = backend.start("left", spec, run_id="rleft", refs={})
        try:
            assert first != second
            assert backend.get(first) is None
            assert backend.is_running(second)
        finally:
            backend.stop_and_remove(second, timeout_s=0)

    def test_foreign_container_with_the_name_is_not_touched(self, docker_client: Any, local_image: str) -> None:
        """A container of the same name that chaoslab did not start makes start fail instead of removing it."""
        name = f"chaoslab-test-foreign-{free_port()}"
        foreign = docker_client.containers.run(
            local_image, ["/bin/sleep", "60"], name=name, detach=True, network_mode="host"
        )
        try:
            spec = ServiceSpec.model_validate(
                {
                    "launch": {"kind": "container", "image": LOCAL_IMAGE, "command": ["/bin/true"]},
                    "container": {"name": name},
                }
            )
            with pytest.raises(HarnessError, match="was not started by chaoslab"):
                ContainerBackend(docker_client).start("x", spec, run_id="r", refs={})
            foreign.reload()
            assert foreign.status == "running"
        finally:
            foreign.remove(force=True)

    def test_unknown_foreign_image_is_a_clear_error(self, docker_client: Any) -> None:
        """An image that is neither local nor ours and cannot be pulled gives a HarnessError naming the local image."""
        with pytest.raises(HarnessError, match="is not present locally and could not be pulled"):
            ContainerBackend(docker_client).ensure_image("127.0.0.1:1/chaoslab-none/nothing:0")
