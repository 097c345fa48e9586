"""The container backend: services as Docker containers of a locally built image, on the host network.

No registry is reachable on the machines chaoslab is developed on, and the demo services are
plain Python, so the backend builds a tiny local image (one static ``busybox``) with
``docker import`` and bind-mounts the host's Python (``sys.prefix``, ``sys.base_prefix``, the
system libraries) and the project directory read-only at the same paths. ``${python}`` in a
container command therefore names the same interpreter inside and outside the container::

    backend = ContainerBackend()
    backend.ensure_image(LOCAL_IMAGE)
    cid = backend.start("api", service, run_id="r1", refs={"python": sys.executable})
    backend.stop_and_remove(cid)

Every container gets ``network_mode="host"`` (there is no bridge network here), the labels
``chaoslab.run_id``/``chaoslab.service`` and compose-style project/service labels, so faults find
it by name or by compose labels exactly as they would find a ``docker compose`` container.
The pure parts (image rootfs, mounts, labels, the run configuration) are separate functions.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import sys
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import docker
import docker.errors
from docker.models.containers import Container

from chaoslab.errors import HarnessError
from chaoslab.model.loading import resolve_runtime_refs
from chaoslab.model.topology import ContainerRef, ServiceSpec

LOCAL_IMAGE = f"chaoslab-local/python:{sys.version_info.major}.{sys.version_info.minor}"
"""The locally built base image: busybox only; Python and the project are bind-mounted."""

LOCAL_IMAGE_PREFIX = "chaoslab-local/"
"""Images under this repository prefix are ours: :meth:`ContainerBackend.ensure_image` builds them."""

LABEL_MANAGED = "chaoslab.managed"
LABEL_RUN_ID = "chaoslab.run_id"
LABEL_SERVICE = "chaoslab.service"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
DEFAULT_PROJECT = "chaoslab"
"""Compose project label of containers chaoslab starts, unless the topology names one."""

RESTART_POLICIES: dict[str, dict[str, Any]] = {
    "no": {"Name": "no"},
    # MaximumRetryCount 0 means "no limit", as a supervisor would.
    "on-failure": {"Name": "on-failure", "MaximumRetryCount": 0},
    "always": {"Name": "always"},
}
"""``LaunchSpec.restart`` → Docker restart policy."""

BUSYBOX_APPLETS = ("sh", "sleep", "cat", "ls", "ps", "kill", "env", "true", "false", "echo", "mkdir", "rm")
SYSTEM_LIBRARY_DIRS = ("/usr/lib", "/usr/lib64")
"""Host library directories the bind-mounted Python links against (libc, libssl, ...)."""

PROJECT_DIR = Path(__file__).resolve().parents[2]
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


# ---------------------------------------------------------------------------------------------
# pure parts


def base_rootfs_tar(busybox: bytes) -> bytes:
    """The root filesystem of the local image as a tar: busybox, its applets, empty mount points.

    ``/lib`` and ``/lib64`` point into ``/usr`` like on a merged-/usr host, so the dynamic loader
    and the libraries bind-mounted under ``/usr/lib`` are found at the paths the host Python expects.
    """
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, mode in (("bin", 0o755), ("etc", 0o755), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755)):
            _add_dir(tar, name, mode)
        for name in ("root", "usr", "usr/lib", "work", "var", "run"):
            _add_dir(tar, name, 0o755)
        _add_dir(tar, "tmp", 0o1777)
        info = tarfile.TarInfo("bin/busybox")
        info.size = len(busybox)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(busybox))
        for applet in BUSYBOX_APPLETS:
            _add_link(tar, f"bin/{applet}", "busybox")
        _add_link(tar, "lib", "usr/lib")
        _add_link(tar, "lib64", "usr/lib64")
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _add_dir(tar: tarfile.TarFile, name: str, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def outermost_paths(paths: Iterable[str]) -> list[str]:
    """``paths`` normalised, without duplicates and without any path inside another one, sorted."""
    result: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths}):
        if not any(path == kept or path.startswith(kept.rstrip("/") + "/") for kept in result):
            result.append(path)
    return result


def python_mount_paths(
    prefixes: Iterable[str], project_dir: str, library_dirs: Iterable[str] = SYSTEM_LIBRARY_DIRS
) -> list[str]:
    """Host paths to bind read-only so the host's Python and the project work inside the container."""
    return outermost_paths([*prefixes, project_dir, *library_dirs])


def host_python_paths() -> list[str]:
    """The running interpreter's prefixes (venv and base) and where its executable really lives."""
    real = os.path.realpath(sys.executable)
    return [sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(real))]


def parse_mount(host: str, target: str) -> tuple[str, str, str]:
    """One ``LaunchSpec.mounts`` entry (``host: container[:ro|:rw]``) → (host, container, mode)."""
    mode = "rw"
    if target.endswith((":ro", ":rw")):
        target, mode = target[:-3], target[-2:]
    if not os.path.isabs(host) or not os.path.isabs(target):
        raise HarnessError(f"container mount {host!r}: {target!r}: both paths must be absolute")
    return os.path.normpath(host), os.path.normpath(target), mode


def container_name(service_name: str, service: ServiceSpec, run_id: str) -> str:
    """The topology's container name for the service, else ``chaoslab-<run_id>-<service>``."""
    if service.container is not None and service.container.name:
        return service.container.name
    return _UNSAFE.sub("-", f"chaoslab-{run_id}-{service_name}").strip("-")


def container_labels(service_name: str, service: ServiceSpec, run_id: str, project: str) -> dict[str, str]:
    """chaoslab's own labels plus compose-style project/service labels (the topology's when it names them)."""
    ref = service.container
    return {
        LABEL_MANAGED: "true",
        LABEL_RUN_ID: run_id,
        LABEL_SERVICE: service_name,
        COMPOSE_PROJECT_LABEL: (ref.compose_project if ref and ref.compose_project else project),
        COMPOSE_SERVICE_LABEL: (ref.compose_service if ref and ref.compose_service else service_name),
    }


def ref_filters(ref: ContainerRef) -> dict[str, Any]:
    """Docker ``containers.list`` filters for a compose-label reference."""
    labels = [f"{COMPOSE_SERVICE_LABEL}={ref.compose_service}"]
    if ref.compose_project:
        labels.append(f"{COMPOSE_PROJECT_LABEL}={ref.compose_project}")
    return {"label": labels}


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """Everything ``docker run`` needs for one service container (pure data)."""

    image: str
    name: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, dict[str, str]] = field(default_factory=dict)
    restart_policy: dict[str, Any] = field(default_factory=dict)
    working_dir: str | None = None

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.containers.run`` (host network, detached, tini as PID 1)."""
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": list(self.command) or None,
            "name": self.name,
            "environment": dict(self.env),
            "labels": dict(self.labels),
            "volumes": {k: dict(v) for k, v in self.volumes.items()},
            "restart_policy": dict(self.restart_policy),
            "network_mode": "host",
            "detach": True,
            # tini forwards SIGTERM to the service, so `docker stop` is quick even for a
            # program without a SIGTERM handler (PID 1 ignores signals it does not handle).
            "init": True,
        }
        if self.working_dir is not None:
            kwargs["working_dir"] = self.working_dir
        return kwargs


def container_config(
    service_name: str,
    service: ServiceSpec,
    *,
    run_id: str,
    refs: Mapping[str, str],
    python_paths: Iterable[str],
    project_dir: str,
    project: str = DEFAULT_PROJECT,
) -> ContainerConfig:
    """The run configuration of a ``launch.kind: container`` service, with ``${...}`` resolved."""
    launch = service.launch
    if launch.kind != "container" or not launch.image:
        raise HarnessError(f"service {service_name} is not a container launch (kind={launch.kind})")
    volumes: dict[str, dict[str, str]] = {
        path: {"bind": path, "mode": "ro"} for path in python_mount_paths(python_paths, project_dir)
    }
    for host, target in launch.mounts.items():
        host_path, bind, mode = parse_mount(resolve_runtime_refs(host, refs), resolve_runtime_refs(target, refs))
        volumes[host_path] = {"bind": bind, "mode": mode}
    cwd = resolve_runtime_refs(launch.cwd, refs) if launch.cwd else None
    return ContainerConfig(
        image=launch.image,
        name=container_name(service_name, service, run_id),
        command=tuple(resolve_runtime_refs(arg, refs) for arg in launch.command),
        env={k: resolve_runtime_refs(v, refs) for k, v in launch.env.items()},
        labels=container_labels(service_name, service, run_id, project),
        volumes=volumes,
        restart_policy=dict(RESTART_POLICIES[launch.restart]),
        working_dir=cwd,
    )


# ---------------------------------------------------------------------------------------------
# the Docker-facing backend


PROBE_API_VERSION = "1.41"
"""API version of the reachability probe (Docker 20.10); the real client negotiates its own."""


DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def _socket_problem(docker_host: str) -> str | None:
    """Why the engine's socket does not accept a connection, or None when it does (or cannot be told)."""
    # The docker SDK leaks its socket when a connection attempt fails (a ResourceWarning), so
    # try a plain, properly closed connection first.
    try:
        if docker_host.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2.0)
                sock.connect(docker_host[len("unix://") :])
        elif docker_host.startswith("tcp://"):
            address = urlsplit(docker_host)
            with socket.create_connection((address.hostname or "127.0.0.1", address.port or 2375), timeout=2.0):
                pass
    except OSError as exc:
        return f"cannot connect to {docker_host}: {exc}"
    return None


def engine_reachable() -> str | None:
    """None when the environment's Docker engine answers a ping, else why not (one line)."""
    problem = _socket_problem(os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST)
    if problem is not None:
        return problem
    # A fixed version makes the client send nothing until ping (no version negotiation request).
    probe = docker.from_env(version=PROBE_API_VERSION)
    try:
        probe.ping()
    except Exception as exc:  # requests' connection errors are not DockerExceptions
        return " ".join(str(exc).split()) or type(exc).__name__
    finally:
        probe.close()
    return None


def connect(client: docker.DockerClient | None = None) -> docker.DockerClient:
    """``client``, or a client to the engine of the environment (``DOCKER_HOST`` or the local socket)."""
    if client is not None:
        return client
    problem = engine_reachable()
    if problem is not None:
        raise HarnessError(f"no Docker engine reachable: {problem}")
    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        raise HarnessError(f"no Docker engine reachable: {exc}") from None


def find_busybox() -> str:
    """The static busybox binary the local image is made of (Debian's ``busybox-static``)."""
    path = shutil.which("busybox")
    if path is None:
        raise HarnessError("busybox not found: install busybox-static (scripts/setup does) to build the local image")
    return path


class ContainerBackend:
    """Starts, finds, inspects and removes service containers on one Docker engine."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._owns_client = client is None
        self.client = connect(client)

    def close(self) -> None:
        """Close the engine connection if this backend opened it."""
        if self._owns_client:
            self.client.close()

    # image ---------------------------------------------------------------------------------

    def ensure_image(self, image: str) -> None:
        """Make sure ``image`` exists locally: build it when it is ours, else try to pull it."""
        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        if image.startswith(LOCAL_IMAGE_PREFIX):
            self.build_local_image(image)
            return
        try:
            self.client.images.pull(image)
        except docker.errors.DockerException as exc:
            raise HarnessError(
                f"image {image!r} is not present locally and could not be pulled ({exc}); "
                f"use {LOCAL_IMAGE!r}, which chaoslab builds itself"
            ) from None

    def build_local_image(self, image: str = LOCAL_IMAGE) -> None:
        """``docker import`` the busybox rootfs as ``image`` (idempotent: same content, same tag)."""
        repository, _, tag = image.rpartition(":")
        if not repository:
            repository, tag = image, "latest"
        rootfs = base_rootfs_tar(Path(find_busybox()).read_bytes())
        try:
            self.client.api.import_image_from_data(
                rootfs, repository=repository, tag=tag, changes=['CMD ["/bin/sh"]', "WORKDIR /"]
            )
            self.client.images.get(image)
        except docker.errors.DockerException as exc:
            raise HarnessError(f"building the local image {image!r} failed: {exc}") from None

    # containers ------------------------------------------------------------------------------

    def start(
        self,
        service_name: str,
        service: ServiceSpec,
        *,
        run_id: str,
        refs: Mapping[str, str],
        project: str = DEFAULT_PROJECT,
    ) -> str:
        """Start the service's container (host network, labels, read-only Python mounts); its id."""
        config = container_config(
            service_name,
            service,
            run_id=run_id,
            refs=refs,
            python_paths=host_python_paths(),
            project_dir=str(PROJECT_DIR),
            project=project,
        )
        self._remove_leftover(config.name)
        try:
            container = self.client.containers.run(**config.run_kwargs())
        except docker.errors.DockerException as exc:
            raise HarnessError(f"starting container {config.name} for {service_name} failed: {exc}") from None
        return str(container.id)

    def _remove_leftover(self, name: str) -> None:
        """Remove a same-named container a dead chaoslab run left behind; refuse to touch anyone else's."""
        try:
            old = self.client.containers.get(name)
        except docker.errors.NotFound:
            return
        if old.name != name:
            return
        if old.labels.get(LABEL_MANAGED) != "true":
            raise HarnessError(f"a container named {name} exists and was not started by chaoslab; remove or rename it")
        old.remove(force=True)

    def get(self, container_id: str) -> Container | None:
        """The container with this id (or name), or None when it does not exist."""
        try:
            return self.client.containers.get(container_id)
        except docker.errors.NotFound:
            return None

    def find(self, ref: ContainerRef) -> list[Container]:
        """Containers (running or not) matching ``ref``: by exact name, else by compose labels."""
        if ref.name:
            found = self.get(ref.name)
            return [found] if found is not None and found.name == ref.name else []
        return list(self.client.containers.list(all=True, filters=ref_filters(ref)))

    def find_service(self, service_name: str, run_id: str | None = None) -> list[Container]:
        """Containers chaoslab started for a service (of one run when ``run_id`` is given)."""
        labels = [f"{LABEL_SERVICE}={service_name}", f"{LABEL_MANAGED}=true"]
        if run_id is not None:
            labels.append(f"{LABEL_RUN_ID}={run_id}")
        return list(self.client.containers.list(all=True, filters={"label": labels}))

    def is_running(self, container_id: str) -> bool:
        """Whether the container exists and is running (a paused container counts as not running)."""
        container = self.get(container_id)
        if container is None:
            return False
        state = container.attrs.get("State", {})
        return bool(state.get("Running")) and not state.get("Paused") and not state.get("Restarting")

    def host_pids(self, container_id: str) -> list[int]:
        """Host PIDs of every process in the container (empty when it is not running)."""
        container = self.get(container_id)
        if container is None or not container.attrs.get("State", {}).get("Running"):
            return []
        try:
            top = container.top(ps_args="-o pid")
            return sorted(int(row[0]) for row in top.get("Processes") or [])
        except (docker.errors.APIError, ValueError, IndexError):
            # `docker top` needs ps on the engine's host; the main process is still known.
            pid = int(container.attrs.get("State", {}).get("Pid") or 0)
            return [pid] if pid > 0 else []

    def stop_and_remove(self, container_id: str, timeout_s: float = 5) -> None:
        """Stop the container (SIGTERM, SIGKILL after ``timeout_s``) and remove it; fine if it is gone."""
        container = self.get(container_id)
        if container is None:
            return
        try:
            if container.attrs.get("State", {}).get("Paused"):
                container.unpause()
            container.stop(timeout=max(0, round(timeout_s)))
            container.remove(force=True)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as exc:
            if exc.status_code == 404:
                return
            raise HarnessError(f"removing container {container_id[:12]} failed: {exc}") from None
