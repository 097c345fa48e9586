"""From a Compose app to the files ``chaoslab init`` writes: topology, Compose override, Toxiproxy config, experiment.

Pure: :func:`scaffold_compose` takes the :class:`~chaoslab.scaffold.compose.ComposeApp` and returns
a :class:`Scaffold` (file names → text, and the notes to show the user). Nothing is written here.

How a Compose app becomes a topology:

- every active service is a topology service found by its Compose labels
  (``container: {compose_project, compose_service}``);
- a port published on the host (on all interfaces or loopback) makes its URL (HTTP services) or
  address (databases, caches, brokers: by image or well-known port), and its probe: an ``http``
  probe when the health check requests ``http://localhost:PORT/path``, else ``tcp``; a service
  with no published port gets a ``container`` probe (running, and healthy when it has a check);
- each dependency edge (``depends_on``, or an environment variable of one service naming another)
  to a service with a known port is a link, carried by the real Toxiproxy that the override adds
  to the app: ``listen`` and ``upstream`` are the addresses as Toxiproxy sees them inside the
  Compose network, and the proxy's port is also published on 127.0.0.1 so ``chaoslab check`` can
  open it;
- each dependent is re-pointed at its proxy through the environment variables that name the
  dependency (URLs, ``host:port``, ``*_HOST`` with its ``*_PORT``); what cannot be detected is
  listed for the user. Values read from env files are never copied when they hold a password.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaoslab.errors import SpecError
from chaoslab.scaffold.compose import ComposeApp, EnvVar, Service

TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.12.0"
TOXIPROXY_API_PORT = 8474
TOXIPROXY_SERVICE = "toxiproxy"
OVERRIDE_FILE = "docker-compose.chaoslab.yml"
TOXIPROXY_CONFIG_FILE = "toxiproxy.json"
TOPOLOGY_FILE = "topology.yaml"

# Images whose main port speaks something other than HTTP, with that port.
_DATA_IMAGES: Mapping[str, int] = {
    "postgres": 5432, "postgis": 5432, "timescaledb": 5432, "pgvector": 5432, "mysql": 3306, "mariadb": 3306,
    "percona": 3306, "redis": 6379, "valkey": 6379, "keydb": 6379, "mongo": 27017, "memcached": 11211,
    "rabbitmq": 5672, "cassandra": 9042, "scylla": 9042, "nats": 4222, "kafka": 9092, "cp-kafka": 9092,
    "zookeeper": 2181, "mssql": 1433, "cockroach": 26257, "etcd": 2379,
}  # fmt: skip
# Images that speak HTTP on a port other than 80.
_HTTP_IMAGES: Mapping[str, int] = {
    "nginx": 80, "httpd": 80, "caddy": 80, "traefik": 80, "elasticsearch": 9200, "opensearch": 9200,
    "minio": 9000, "grafana": 3000, "prometheus": 9090, "wordpress": 80, "keycloak": 8080,
}  # fmt: skip
_DATA_PORTS = frozenset(_DATA_IMAGES.values()) | {1521, 11211}
_LOCAL_HOSTS = frozenset({"", "0.0.0.0", "127.0.0.1", "localhost", "::", "::1"})
_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^@/\s]*@)?(?P<host>\[[^\]/]+\]|[^:/?#,\s@]+)(?::(?P<port>\d+))?"
)
_HOST_PORT = re.compile(r"(?<![\w@/.-])(?P<host>[A-Za-z0-9_][A-Za-z0-9_.-]*):(?P<port>\d+)(?![\w])")
_HOST_VAR = re.compile(r"^(?P<prefix>.*?)(?P<suffix>HOST|HOSTNAME|SERVER|ADDR|ADDRESS)$")
_HC_URL = re.compile(
    r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(?P<port>\d+))?(?P<path>/[^\s'\"|;&]*)?"
)
_HC_PORT = re.compile(r"(?:^|\s)(?:-p|--port)[= ]?(?P<port>\d+)\b")


@dataclass(frozen=True, slots=True)
class Link:
    """One dependency edge carried by a Toxiproxy proxy."""

    name: str
    dependent: str
    dependency: str
    upstream_port: int
    listen_port: int
    upstream_host: str
    repointed: tuple[str, ...] = ()
    """The dependent's variables changed in the override (names only: values may be secrets)."""


@dataclass(frozen=True, slots=True)
class Scaffold:
    """The files ``chaoslab init`` writes (name → text) and what the user should know or edit."""

    files: Mapping[str, str]
    experiment_file: str
    links: tuple[Link, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class _Plan:
    """Mutable scratch state while scaffolding; frozen into a Scaffold at the end."""

    app: ComposeApp
    notes: list[str] = field(default_factory=list)
    env_changes: dict[str, dict[str, str]] = field(default_factory=dict)


def image_family(image: str) -> str:
    """``docker.io/library/postgres:16-alpine`` → ``postgres``; ``bitnami/redis@sha256:..`` → ``redis``."""
    base = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return base.split(":", 1)[0].lower()


def _known(image: str, table: Mapping[str, int]) -> int | None:
    family = image_family(image)
    for name, port in table.items():
        if family == name or family.startswith(name):
            return port
    return None


def speaks_http(service: Service, port: int | None) -> bool:
    """Whether a service's port is HTTP: not a database, cache or broker by image or well-known port."""
    if _known(service.image, _DATA_IMAGES) is not None:
        return False
    return port not in _DATA_PORTS


def health_url(service: Service) -> tuple[int | None, str] | None:
    """The (port, path) an HTTP health check requests on localhost, if it does (curl, wget, ...)."""
    if service.healthcheck is None:
        return None
    match = _HC_URL.search(" ".join(service.healthcheck[1:]))
    if match is None:
        return None
    port = int(match.group("port")) if match.group("port") else None
    return port, match.group("path") or "/"


def container_ports(service: Service) -> list[int]:
    """Ports the service listens on in its container: ``ports``, ``expose``, health-check hints, image default."""
    found: list[int] = [p.target for p in service.ports if p.protocol == "tcp"]
    found += [p for p in service.expose if p not in found]
    text = " ".join(service.healthcheck[1:]) if service.healthcheck is not None else ""
    hinted = [int(m.group("port")) for m in _HC_URL.finditer(text) if m.group("port")]
    hinted += [int(m.group("port")) for m in _HC_PORT.finditer(text)]
    if service.network_mode == "host":
        # on the host network nothing is published: the port is often only an option of the command
        # (its URLs name other services, so only --port/-p count)
        hinted += [int(m.group("port")) for m in _HC_PORT.finditer(" ".join(service.command))]
    found += [p for p in hinted if p not in found]
    default = _known(service.image, _DATA_IMAGES) or _known(service.image, _HTTP_IMAGES)
    if default is not None and default not in found and not found:
        found.append(default)
    return found


def main_port(service: Service) -> int | None:
    """The port other services most likely use: the image's well-known one when it listens there, else the first."""
    ports = container_ports(service)
    default = _known(service.image, _DATA_IMAGES) or _known(service.image, _HTTP_IMAGES)
    if default in ports:
        return default
    return ports[0] if ports else None


def host_port(service: Service, target: int) -> int | None:
    """The port on this host's loopback that reaches ``target`` (published, or the same port on the host network)."""
    if service.network_mode == "host":
        return target
    for port in service.ports:
        if port.target == target and port.published is not None and port.host_ip in _LOCAL_HOSTS:
            return port.published
    return None


def scaffold_compose(
    app: ComposeApp,
    *,
    out_dir: Path,
    only_links: Sequence[str] = (),
    command: str = "chaoslab init --from-compose",
) -> Scaffold:
    """Everything ``chaoslab init --from-compose`` writes for ``app`` into ``out_dir`` (nothing is written here)."""
    plan = _Plan(app)
    for name in app.inactive:
        plan.notes.append(f"{name}: left out (its profiles are not active; pass --profile to include it)")
    app = _without_jobs_and_proxies(app, plan)
    plan.app = app
    edges = _edges(app, plan)
    if only_links:
        known = {f"{a}->{b}" for a, b in edges}
        for wanted in only_links:
            if wanted not in known:
                raise SpecError(
                    f"no dependency edge {wanted!r} in the Compose file (edges: {', '.join(sorted(known)) or 'none'})",
                    field="--link",
                )
        edges = [(a, b) for a, b in edges if f"{a}->{b}" in only_links]
    mode = _network_mode(app, edges, plan)
    links = tuple(_repoint(app, link, plan) for link in _links(app, edges, mode, plan))
    compose_dir = app.path.parent.resolve()
    files: dict[str, str] = {TOPOLOGY_FILE: _topology_text(app, links, mode, command, out_dir)}
    if links:
        config_path = os.path.relpath(out_dir.resolve() / TOXIPROXY_CONFIG_FILE, compose_dir)
        if config_path.startswith(".."):
            config_path = str(out_dir.resolve() / TOXIPROXY_CONFIG_FILE)
        else:
            config_path = f"./{config_path}"
        files[OVERRIDE_FILE] = _override_text(app, links, mode, plan, config_path, out_dir)
        files[TOXIPROXY_CONFIG_FILE] = _toxiproxy_config(links) + "\n"
    experiment_name, experiment_text = _experiment(app, links, plan, out_dir)
    experiment_file = f"{experiment_name}.yaml"
    files[experiment_file] = experiment_text
    return Scaffold(files, experiment_file, links, tuple(plan.notes))


# ---------------------------------------------------------------------------------------------
# edges and links


def _without_jobs_and_proxies(app: ComposeApp, plan: _Plan) -> ComposeApp:
    """The app without one-shot jobs (nothing to probe once they finish) and without a Toxiproxy of its own."""
    jobs = {dep for service in app.services.values() for dep in service.waits_for_completion}
    proxies = {n for n, s in app.services.items() if image_family(s.image) == "toxiproxy"}
    for name in app.services:
        if name in jobs:
            plan.notes.append(f"{name}: left out (a one-shot job: others wait for it to complete)")
        elif name in proxies:
            plan.notes.append(
                f"{name}: left out (the app runs its own Toxiproxy; the override's {TOXIPROXY_SERVICE} service "
                f"replaces its command and proxies{'' if name == TOXIPROXY_SERVICE else ': remove one of the two'})"
            )
    keep = {n: s for n, s in app.services.items() if n not in jobs | proxies}
    if not keep:
        raise SpecError("no service left once one-shot jobs and Toxiproxy are left out", file=str(app.path))
    return ComposeApp(app.path, app.project, keep, app.declared_networks, app.inactive, app.lines)


def _edges(app: ComposeApp, plan: _Plan) -> list[tuple[str, str]]:
    """Dependency edges: ``depends_on`` first, then environment variables naming another service."""
    edges: list[tuple[str, str]] = []
    for name, service in app.services.items():
        for dep in service.depends_on:
            if dep in app.services:
                edges.append((name, dep))
            else:
                plan.notes.append(f"{name}->{dep}: left out ({dep} is not active)")
    for name, service in app.services.items():
        for other_name, other in app.services.items():
            if other_name == name or (name, other_name) in edges:
                continue
            if any(_names_host(var.value, other.aliases) for var in service.environment):
                edges.append((name, other_name))
    return edges


def _names_host(value: str, names: frozenset[str]) -> bool:
    if value in names:
        return True
    hosts = {m.group("host") for m in _URL.finditer(value)} | {m.group("host") for m in _HOST_PORT.finditer(value)}
    return bool(hosts & names)


def _network_mode(app: ComposeApp, edges: list[tuple[str, str]], plan: _Plan) -> str:
    """``bridge`` (Toxiproxy joins the app's networks) or ``host`` (everything on the host network)."""
    modes = {app.services[s].network_mode or "bridge" for edge in edges for s in edge}
    return "host" if modes == {"host"} else "bridge"


def _links(app: ComposeApp, edges: list[tuple[str, str]], mode: str, plan: _Plan) -> list[Link]:
    used = {TOXIPROXY_API_PORT}
    for service in app.services.values():
        used.update(p.published for p in service.ports if p.published is not None)
        if service.network_mode == "host":
            used.update(container_ports(service))
    links: list[Link] = []
    for dependent, dependency in edges:
        name = f"{dependent}->{dependency}"
        a, b = app.services[dependent], app.services[dependency]
        modes = {a.network_mode or "bridge", b.network_mode or "bridge"}
        if not modes <= {"bridge", mode}:
            odd = a if (a.network_mode or "bridge") not in ("bridge", mode) else b
            plan.notes.append(
                f"{name}: left out ({odd.name} uses network_mode {odd.network_mode}; Toxiproxy cannot sit between them)"
            )
            continue
        upstream = _referenced_port(a, b) or main_port(b)
        if upstream is None:
            plan.notes.append(
                f"{name}: left out (no port known for {dependency}: add 'expose' to it, or add the link by hand)"
            )
            continue
        listen = upstream + 10000 if upstream + 10000 <= 65535 else 20000
        while listen in used:
            listen += 1
        used.add(listen)
        host = "127.0.0.1" if mode == "host" else dependency
        links.append(Link(name, dependent, dependency, upstream, listen, host))
    return links


def _referenced_port(a: Service, b: Service) -> int | None:
    """The port of ``b`` that a variable of ``a`` names (``db:5433``, ``postgres://db:5433/x``), if any."""
    for var in a.environment:
        for regex in (_URL, _HOST_PORT):
            for match in regex.finditer(var.value):
                if match.group("host") in b.aliases and match.group("port"):
                    return int(match.group("port"))
    return None


# ---------------------------------------------------------------------------------------------
# re-pointing the dependents


def _repoint(app: ComposeApp, link: Link, plan: _Plan) -> Link:
    """Re-point ``link.dependent``'s variables that name the dependency at the proxy; note what cannot be."""
    a, b = app.services[link.dependent], app.services[link.dependency]
    target = "127.0.0.1" if link.upstream_host == "127.0.0.1" else TOXIPROXY_SERVICE
    changes = plan.env_changes.setdefault(link.dependent, {})
    changed: list[str] = []
    named = False
    for var in a.environment:
        current = changes.get(var.name)
        value = var.value
        _, hits = _rewrite(value, b.aliases, link.upstream_port, target, link.listen_port)
        host_only = value in b.aliases and _HOST_VAR.match(var.name) is not None
        if hits == 0 and not host_only:
            if _names_host(value, b.aliases):
                named = True
                plan.notes.append(
                    f"{link.name}: {link.dependent}'s {var.name} names {link.dependency} but not port "
                    f"{link.upstream_port}: point it at {target}:{link.listen_port} yourself if it is this link"
                )
            continue
        named = True
        if var.raw is None and _has_password(value):
            plan.notes.append(
                f"{link.name}: {link.dependent}'s {var.name} (from {var.source}) holds a password, so it is not "
                f"copied: set its host to {target}:{link.listen_port} in {var.source} or in the override"
            )
            continue
        if host_only:
            changes[var.name] = target
            changed.append(var.name)
            _port_variable(a, var, link, changes, changed, plan)
            continue
        source = current if current is not None else (var.raw if var.raw is not None else value)
        rewritten, raw_hits = _rewrite(source, b.aliases, link.upstream_port, target, link.listen_port)
        if raw_hits == 0:
            plan.notes.append(
                f"{link.name}: {link.dependent}'s {var.name} reaches {link.dependency} through variables "
                f"(${{...}}): make it {target}:{link.listen_port} yourself"
            )
            continue
        changes[var.name] = rewritten
        changed.append(var.name)
    if not named:
        plan.notes.append(
            f"{link.name}: no environment variable of {link.dependent} names {link.dependency}; point "
            f"{link.dependent} at {target}:{link.listen_port} yourself (its configuration or code)"
        )
    return Link(
        link.name,
        link.dependent,
        link.dependency,
        link.upstream_port,
        link.listen_port,
        link.upstream_host,
        tuple(changed),
    )


def _rewrite(value: str, names: frozenset[str], port: int, host: str, listen: int) -> tuple[str, int]:
    """``value`` with every URL or ``host:port`` naming ``names`` at ``port`` replaced by ``host:listen``."""
    hits = 0

    def url(match: re.Match[str]) -> str:
        nonlocal hits
        if match.group("host") not in names or (match.group("port") and int(match.group("port")) != port):
            return match.group(0)
        hits += 1
        return f"{match.group('scheme')}://{match.group('userinfo') or ''}{host}:{listen}"

    def pair(match: re.Match[str]) -> str:
        nonlocal hits
        if match.group("host") not in names or int(match.group("port")) != port:
            return match.group(0)
        hits += 1
        return f"{host}:{listen}"

    value = _URL.sub(url, value)
    value = _HOST_PORT.sub(pair, value)
    return value, hits


def _port_variable(
    a: Service, var: EnvVar, link: Link, changes: dict[str, str], changed: list[str], plan: _Plan
) -> None:
    """With ``REDIS_HOST`` re-pointed, ``REDIS_PORT`` must name the proxy's port too (added when missing)."""
    match = _HOST_VAR.match(var.name)
    assert match is not None
    port_name = f"{match.group('prefix')}PORT"
    existing = a.env(port_name)
    changes[port_name] = str(link.listen_port)
    changed.append(port_name)
    if existing is None:
        plan.notes.append(
            f"{link.name}: added {port_name}={link.listen_port} beside {var.name}: check that "
            f"{link.dependent} reads it (else it connects to port {link.upstream_port} of {changes[var.name]})"
        )


def _has_password(value: str) -> bool:
    return any(":" in (match.group("userinfo") or "") for match in _URL.finditer(value))


# ---------------------------------------------------------------------------------------------
# the files


def _yaml(data: Any) -> str:
    """YAML in the project's style: block mappings, flow style for small leaf mappings and lists."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110, allow_unicode=True)


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(pad + line if line.strip() else line for line in text.splitlines(keepends=True))


def _service_entry(app: ComposeApp, service: Service) -> tuple[dict[str, Any], str]:
    """A topology service for a Compose service, and a comment saying how it is reached and probed."""
    entry: dict[str, Any] = {}
    port = main_port(service)
    published = host_port(service, port) if port is not None else None
    if published is None:
        # another port may be published (e.g. an app on 8080 with the main one internal)
        for p in service.ports:
            if p.published is not None and p.host_ip in _LOCAL_HOSTS:
                port, published = p.target, p.published
                break
    http = speaks_http(service, port)
    why: list[str] = []
    if published is not None:
        entry["url" if http else "address"] = f"http://127.0.0.1:{published}" if http else f"127.0.0.1:{published}"
        why.append(
            f"port {port} published on 127.0.0.1:{published}"
            if service.network_mode != "host"
            else f"port {port} on the host network"
        )
    check = health_url(service)
    probe: dict[str, Any]
    if check is not None and published is not None and (check[0] in (None, port) or host_port(service, check[0] or 0)):
        probe_port = host_port(service, check[0]) if check[0] is not None else published
        probe = {"type": "http", "url": f"http://127.0.0.1:{probe_port or published}{check[1]}"}
        why.append("probe: its health check's URL")
    elif published is not None:
        probe = {"type": "tcp", "address": f"127.0.0.1:{published}"}
        why.append("probe: a TCP connect to that port")
    else:
        probe = {"type": "container"}
        why.append(
            "probe: the container's state and health (no published port)"
            if service.healthcheck
            else "probe: the container is running (no published port, no health check)"
        )
    entry["probe"] = {**probe, "interval": "500ms", "timeout": "1s"}
    entry["container"] = {"compose_project": "${compose_project}", "compose_service": service.name}
    deps = tuple(d for d in service.depends_on if d in app.services)
    if deps:
        entry["depends_on"] = list(deps)
    return entry, "; ".join(w for w in why if w)


def _topology_text(app: ComposeApp, links: Sequence[Link], mode: str, command: str, out_dir: Path) -> str:
    compose_file = app.path.name
    lines = [
        f"# chaoslab topology of the Compose project {app.project!r}, written by `{command} {compose_file}`.",
        "# Services are found by their Compose labels (container: compose_project/compose_service) and",
        "# probed on the ports they publish on this host. Start the app with the override that adds",
        "# Toxiproxy and points each dependent at its proxy:",
        f"#   docker compose -f {compose_file} -f {out_dir.as_posix().rstrip('/')}/{OVERRIDE_FILE} up -d",
        "# then `chaoslab check` this file or an experiment. The format: docs/experiment-format.md.",
        f"name: {app.project}",
        f"description: the Compose app {app.project} ({', '.join(app.services)})",
        f"toxiproxy: http://127.0.0.1:{TOXIPROXY_API_PORT}   # the Toxiproxy service of {OVERRIDE_FILE}",
    ]
    if links and mode == "bridge":
        lines += [
            "# The links' listen/upstream addresses are Toxiproxy's own, inside the Compose network",
            "# (service names, not loopback): that is what this setting allows.",
            "allow_non_loopback: true",
        ]
    lines += [
        "parameters:",
        f"  compose_project: {app.project}   # docker compose -p NAME: --set compose_project=NAME",
        "services:",
    ]
    for service in app.services.values():
        entry, why = _service_entry(app, service)
        if why:
            lines.append(f"  # {service.name}: {why}")
        lines.append(_indent(_yaml({service.name: entry}), 2).rstrip("\n"))
    if links:
        lines.append("links:")
        for link in links:
            listen_host = "127.0.0.1" if mode == "host" else "0.0.0.0"
            body = {
                "listen": f"{listen_host}:{link.listen_port}",
                "upstream": f"{link.upstream_host}:{link.upstream_port}",
            }
            lines.append(f"  # {link.dependent} reaches {link.dependency} through this proxy")
            lines.append(_indent(_yaml({link.name: body}), 2).rstrip("\n"))
    else:
        lines.append("links: {}   # no dependency edge with a known port was found: add links by hand")
    return "\n".join(lines) + "\n"


def _toxiproxy_config(links: Sequence[Link]) -> str:
    proxies = [
        {
            "name": link.name,
            "listen": f"{'127.0.0.1' if link.upstream_host == '127.0.0.1' else '0.0.0.0'}:{link.listen_port}",
            "upstream": f"{link.upstream_host}:{link.upstream_port}",
            "enabled": True,
        }
        for link in links
    ]
    return json.dumps(proxies, indent=2)


def _override_text(
    app: ComposeApp, links: Sequence[Link], mode: str, plan: _Plan, config_path: str, out_dir: Path
) -> str:
    toxiproxy: dict[str, Any] = {"image": TOXIPROXY_IMAGE}
    if mode == "host":
        toxiproxy["network_mode"] = "host"
        toxiproxy["command"] = ["-host=127.0.0.1", f"-port={TOXIPROXY_API_PORT}", "-config=/config/toxiproxy.json"]
    else:
        toxiproxy["command"] = ["-host=0.0.0.0", f"-port={TOXIPROXY_API_PORT}", "-config=/config/toxiproxy.json"]
        toxiproxy["ports"] = [f"127.0.0.1:{TOXIPROXY_API_PORT}:{TOXIPROXY_API_PORT}"] + [
            f"127.0.0.1:{link.listen_port}:{link.listen_port}" for link in links
        ]
        networks: list[str] = []
        for link in links:
            for name in (link.dependent, link.dependency):
                for net in app.services[name].networks:
                    if net not in networks:
                        networks.append(net)
        if networks != ["default"]:
            toxiproxy["networks"] = networks
    toxiproxy["volumes"] = [f"{config_path}:/config/toxiproxy.json:ro"]
    services: dict[str, Any] = {TOXIPROXY_SERVICE: toxiproxy}
    for link in links:
        changes = plan.env_changes.get(link.dependent, {})
        entry = services.setdefault(link.dependent, {})
        if changes:
            entry["environment"] = dict(changes)
        if app.services[link.dependent].depends_on_form == "mapping":
            entry["depends_on"] = {TOXIPROXY_SERVICE: {"condition": "service_started"}}
        else:
            entry["depends_on"] = [TOXIPROXY_SERVICE]
    header = [
        f"# Chaos override for {app.path.name}, written by chaoslab init: adds the real Toxiproxy and points each",
        "# dependent at its proxy. Start the app with both files (the second one changes the first):",
        f"#   docker compose -f {app.path.name} -f {out_dir.as_posix().rstrip('/')}/{OVERRIDE_FILE} up -d",
        f"# Toxiproxy's API is on 127.0.0.1:{TOXIPROXY_API_PORT}; each proxy's port is published on 127.0.0.1 too",
        "# (so `chaoslab check` can open it). The proxies are created at start from toxiproxy.json.",
    ]
    for link in links:
        via = ", ".join(link.repointed) if link.repointed else "nothing detected: see the notes of chaoslab init"
        header.append(
            f"# {link.name}: proxy :{link.listen_port} → {link.upstream_host}:{link.upstream_port}; re-pointed: {via}"
        )
    return "\n".join(header) + "\n" + _yaml({"services": services})


def _experiment(app: ComposeApp, links: Sequence[Link], plan: _Plan, out_dir: Path) -> tuple[str, str]:
    depended = {d for s in app.services.values() for d in s.depends_on} | {link.dependency for link in links}
    entries = [(n, _service_entry(app, s)[0]) for n, s in app.services.items()]
    with_url = [(n, e) for n, e in entries if "url" in e]
    roots = [(n, e) for n, e in with_url if n not in depended] or with_url
    entry_name = roots[0][0] if roots else None
    if entry_name is None:
        plan.notes.append(
            "no service publishes an HTTP port on this host: the experiment's load sends to "
            "http://127.0.0.1:8080/ — change load.mix to requests your system answers"
        )
    link = next((lk for lk in links if lk.dependent == entry_name), links[0] if links else None)
    url = f"${{service:{entry_name}}}/" if entry_name else "http://127.0.0.1:8080/"
    signal = f"{entry_name or 'app'}:home"
    if link is not None:
        name = f"{link.dependent}-{link.dependency}-latency"
        hypothesis = (
            f"Hypothesis: ${{latency}} of extra latency on {link.dependent}→{link.dependency} slows "
            f"{link.dependent}'s requests but fails none of them, the other services stay healthy, and within "
            f"30 s of removing it everything is back within its baseline band. EDIT: say what you expect."
        )
        fault = f'  - {{kind: latency, target: "{link.name}", latency: "${{latency}}"}}'
        impact = f'expected_impact: ["{signal.split(":")[0]}:*"]'
    else:
        victim = next(n for n in app.services if n != entry_name) if len(app.services) > 1 else next(iter(app.services))
        name = f"{victim}-pause"
        hypothesis = (
            f"Hypothesis: pausing {victim} for 5 s slows or fails only what needs it, and within 30 s of "
            "unpausing it everything is back within its baseline band. EDIT: say what you expect."
        )
        fault = f"  - {{kind: container_pause, target: {victim}, duration: 5s}}"
        impact = f'expected_impact: ["{signal}", "probe:{victim}"]'
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", name)
    exp_path = out_dir / f"{name}.yaml"
    text = f"""\
# A starter experiment for the Compose project {app.project!r}, written by chaoslab init.
# Edit the hypothesis (description), the requests (load.mix) and the fault, then:
#   chaoslab check {exp_path.as_posix()}        # is everything reachable?
#   chaoslab run {exp_path.as_posix()} --quick  # a short run; without --quick the full one
name: {name}
description: >
{textwrap.fill(hypothesis, width=96, initial_indent="  ", subsequent_indent="  ")}
topology: {TOPOLOGY_FILE}
parameters:
  latency: 300ms
  rate: 10/s
load:
  rate: ${{rate}}
  mix:
    # EDIT: the requests your users make (method, url, json, headers, expect_status)
    - {{name: home, signal: "{signal}", url: "{url}", timeout: 5s}}
phases: {{warmup: 5s, baseline: 20s, fault: 20s}}
faults:
{fault}
steady_state:
  # a window is healthy when its p95 is within max(2 × baseline, baseline + 100 ms) and its error
  # rate within baseline + 1 point; probes are judged by an absolute 500 ms
  band: {{p95_margin: 100ms}}
  bands:
    "probe:*": {{p95_max: 500ms}}
{impact}
recovery: {{budget: 30s, stable_for: 5s}}
quick:
  phases: {{warmup: 2s, baseline: 6s, fault: 6s}}
  recovery: {{budget: 15s, stable_for: 2s}}
"""
    return name, text
