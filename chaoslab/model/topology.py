"""The topology: the services of the system under test, how to launch or reach them, and the links.

A topology is YAML; an experiment names one by path or by name (``demo`` is shipped inside
the package). Example::

    name: shop
    toxiproxy: embedded              # or http://127.0.0.1:8474 for a running Toxiproxy
    services:
      api:
        url: http://127.0.0.1:8080
        probe: {type: http, url: "${service:api}/health"}
    links:
      api->db: {listen: "127.0.0.1:15432", upstream: "127.0.0.1:5432"}
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator, model_validator

from chaoslab.model.references import without_secret_refs
from chaoslab.model.types import FROZEN, Duration, JsonValue, Size

ParamValue = str | int | float | bool


class ProbeSpec(BaseModel):
    """How chaoslab checks a service's health, on its own interval."""

    model_config = FROZEN

    type: Literal["http", "tcp", "postgres", "process", "container"]
    url: str | None = None
    expect_status: int = 200
    json_field: str | None = None
    json_value: JsonValue = None
    address: str | None = None
    dsn: str | None = None
    interval: Duration = 0.25
    timeout: Duration = 1.0

    @model_validator(mode="after")
    def _needs_target(self) -> ProbeSpec:
        needed = {"http": "url", "tcp": "address", "postgres": "dsn"}.get(self.type)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"a {self.type} probe needs '{needed}'")
        return self


class ContainerRef(BaseModel):
    """How to find a service's container: by name, or by compose project and service labels."""

    model_config = FROZEN

    name: str | None = None
    compose_project: str | None = None
    compose_service: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> ContainerRef:
        if self.name is None and self.compose_service is None:
            raise ValueError("a container needs 'name' or 'compose_service'")
        return self


def _scalars_to_str(value: object) -> object:
    """Command lines and environments are strings; numbers from parameters are written out."""
    if isinstance(value, list | tuple):
        return [str(v).lower() if isinstance(v, bool) else str(v) if isinstance(v, int | float) else v for v in value]
    if isinstance(value, dict):
        return {k: str(v) if isinstance(v, int | float) else v for k, v in value.items()}
    return value


class LaunchSpec(BaseModel):
    """How chaoslab starts a service, or ``external`` when something else runs it."""

    model_config = FROZEN

    kind: Literal["process", "postgres", "container", "external"] = "external"
    command: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    restart: Literal["no", "on-failure", "always"] = "no"
    ready_timeout: Duration = 30.0
    # postgres launcher
    port: int | None = Field(default=None, ge=1, le=65535)
    max_connections: int = Field(default=100, ge=5)
    seed: str | None = None
    # container launcher
    image: str | None = None
    mounts: dict[str, str] = Field(default_factory=dict)

    _coerce = field_validator("command", "env", mode="before")(lambda cls, v: _scalars_to_str(v))

    @model_validator(mode="after")
    def _complete(self) -> LaunchSpec:
        if self.kind == "process" and not self.command:
            raise ValueError("a process launch needs 'command'")
        if self.kind == "postgres" and self.port is None:
            raise ValueError("a postgres launch needs 'port'")
        if self.kind == "container" and not self.image:
            raise ValueError("a container launch needs 'image'")
        return self


class ProcessMatch(BaseModel):
    """How to find an externally started service's process: a pidfile or an exact command line."""

    model_config = FROZEN

    pidfile: str | None = None
    cmdline: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_way(self) -> ProcessMatch:
        if self.pidfile is None and not self.cmdline:
            raise ValueError("a process match needs 'pidfile' or 'cmdline'")
        return self


class ServiceSpec(BaseModel):
    """One named part of the system under test."""

    model_config = FROZEN

    description: str = ""
    url: str | None = None
    address: str | None = None
    launch: LaunchSpec = LaunchSpec()
    probe: ProbeSpec | None = None
    container: ContainerRef | None = None
    process: ProcessMatch | None = None
    paths: dict[str, str] = Field(default_factory=dict)
    tmpfs: dict[str, Size] = Field(default_factory=dict)
    """Names of ``paths`` that the launcher mounts as a tmpfs of this size (when root), so a
    disk-fill fault fills a small filesystem of its own and never the machine's disk."""
    dsn: str | None = None
    depends_on: tuple[str, ...] = ()


class LinkSpec(BaseModel):
    """A network path between two services, carried by one Toxiproxy proxy."""

    model_config = FROZEN

    listen: str
    upstream: str
    proxy_name: str | None = None

    @field_validator("listen", "upstream")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError(f"expected host:port, got {value!r}")
        return value


class TopologySpec(BaseModel):
    """The services, links and Toxiproxy that an experiment acts on."""

    model_config = FROZEN

    name: str
    description: str = ""
    toxiproxy: str = "embedded"
    allow_non_loopback: bool = False
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    services: dict[str, ServiceSpec]
    links: dict[str, LinkSpec] = Field(default_factory=dict)
    state_dir: str | None = None

    @field_validator("toxiproxy")
    @classmethod
    def _toxiproxy(cls, value: str) -> str:
        if value != "embedded" and not value.startswith(("http://", "https://")):
            raise ValueError(f"expected 'embedded' or an http:// URL, got {value!r}")
        return value

    @field_validator("services")
    @classmethod
    def _some_services(cls, value: dict[str, ServiceSpec]) -> dict[str, ServiceSpec]:
        if not value:
            raise ValueError("expected at least one service, got none")
        return value

    @model_validator(mode="after")
    def _loopback_only(self) -> TopologySpec:
        if self.allow_non_loopback:
            return self
        for name, link in self.links.items():
            for address in (link.listen, link.upstream):
                if not is_loopback(address.rpartition(":")[0]):
                    raise ValueError(
                        f"links.{name}: address {address!r} is not on loopback; "
                        "set allow_non_loopback: true in the topology to allow it"
                    )
        for name, service in self.services.items():
            # ${env:...} in a URL's user information is a secret, not a part of its host
            if service.url is not None and not is_loopback(urlsplit(without_secret_refs(service.url)).hostname or ""):
                raise ValueError(
                    f"services.{name}.url: {service.url!r} is not on loopback; "
                    "set allow_non_loopback: true in the topology to allow it"
                )
        if self.toxiproxy != "embedded" and not is_loopback(
            urlsplit(without_secret_refs(self.toxiproxy)).hostname or ""
        ):
            raise ValueError(
                f"toxiproxy: {self.toxiproxy!r} is not on loopback; "
                "set allow_non_loopback: true in the topology to allow it"
            )
        return self

    def target_names(self) -> frozenset[str]:
        """Every name a fault may target: services, links and the host."""
        return frozenset(self.services) | frozenset(self.links) | {"host"}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ::1."""
    host = host.strip("[]")
    if host in ("localhost", "") or host.endswith(".localhost"):
        return host != ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
