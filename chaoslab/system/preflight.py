"""Before a run: is every service, link, the Toxiproxy API and the Docker engine of a topology reachable?

:func:`preflight` looks once at each part and returns one :class:`Finding` per check, with the fix
for what is wrong. It starts nothing and changes nothing: a service that chaoslab launches is not
probed (it is not running yet) — instead its port must be free and its program present; a link
through the embedded Toxiproxy needs its listen port free; a link through a running Toxiproxy
is opened through its listen address (the proxy accepts, then dials the upstream: a proxy that
closes the connection at once cannot reach the upstream) and read through the API, never changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import docker

from chaoslab.errors import HarnessError
from chaoslab.model.loading import resolve_known_refs, runtime_refs
from chaoslab.model.references import resolve_secret_refs
from chaoslab.model.topology import LinkSpec, ServiceSpec, TopologySpec, is_loopback
from chaoslab.redact import redact_text
from chaoslab.system.containers import engine_reachable
from chaoslab.system.postgres import pg_bin
from chaoslab.system.probes import container_filters, container_outcome, http_outcome
from chaoslab.system.processes import matched_pids

HOLD_S = 0.3
"""How long a connection through a proxy must stay open to count as reaching the upstream."""


class Status(Enum):
    """The outcome of one check."""

    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"
    """Not checked (started by chaoslab at run time, or not reachable from this host): says why."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: what was looked at, what was found, and the fix when it failed."""

    item: str
    check: str
    status: Status
    detail: str
    fix: str = ""


DockerPing = Callable[[], str | None]
"""None when the Docker engine answers, else why not."""
ContainerLister = Callable[[Mapping[str, Any]], list[Mapping[str, Any]]]
"""Docker ``containers.list(all=True, filters=...)`` as the containers' ``attrs``."""


def uses_docker(topology: TopologySpec, fault_kinds: Iterable[str] = ()) -> bool:
    """Whether a run of this topology (with these faults) needs the Docker engine."""
    for service in topology.services.values():
        if service.launch.kind == "container" or service.container is not None:
            return True
        if service.probe is not None and service.probe.type == "container":
            return True
    return any(kind.startswith("container_") for kind in fault_kinds)


async def preflight(
    topology: TopologySpec,
    *,
    fault_kinds: Iterable[str] = (),
    docker_ping: DockerPing | None = None,
    list_containers: ContainerLister | None = None,
    timeout_s: float = 2.0,
) -> list[Finding]:
    """Look once at every part of ``topology``; one Finding per check, in a stable order."""
    refs = runtime_refs(topology)
    findings: list[Finding] = []
    launched = {name for name, s in topology.services.items() if s.launch.kind != "external"}
    proxies: dict[str, Any] | None = None
    if topology.toxiproxy == "embedded":
        if topology.links:
            findings.append(
                Finding("toxiproxy", "embedded", Status.SKIP, "chaoslab starts its own for each run (nothing to check)")
            )
    else:
        finding, proxies = await _toxiproxy(topology.toxiproxy, timeout_s)
        findings.append(finding)
    docker_ok = True
    if uses_docker(topology, fault_kinds):
        problem = docker_ping() if docker_ping is not None else _docker_ping()
        docker_ok = problem is None
        host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        findings.append(
            Finding(
                "docker",
                f"engine at {host}",
                Status.OK if docker_ok else Status.FAIL,
                "answers" if docker_ok else problem or "does not answer",
                "" if docker_ok else "start the Docker engine, or set DOCKER_HOST to it",
            )
        )
    for name, service in topology.services.items():
        if name in launched:
            findings.extend(_launched(name, service, refs))
        else:
            findings.append(await _probe(name, service, topology, refs, timeout_s))
            if service.container is not None and docker_ok:
                findings.append(_containers(name, service, list_containers))
    for name, link in topology.links.items():
        findings.extend(await _link(name, link, topology, launched, proxies, timeout_s))
    return findings


# ---------------------------------------------------------------------------------------------
# toxiproxy and docker


async def _toxiproxy(url: str, timeout_s: float) -> tuple[Finding, dict[str, Any] | None]:
    fix = f"start Toxiproxy with its API on {url} (e.g. docker compose ... up -d toxiproxy), or correct 'toxiproxy:'"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
            async with session.get(f"{url.rstrip('/')}/version") as resp:
                if resp.status != 200:
                    return Finding(
                        "toxiproxy", f"API {url}", Status.FAIL, f"GET /version: HTTP {resp.status}", fix
                    ), None
                version = (await resp.text()).strip()[:40]
            async with session.get(f"{url.rstrip('/')}/proxies") as resp:
                proxies = await resp.json(content_type=None) if resp.status == 200 else {}
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        return Finding("toxiproxy", f"API {url}", Status.FAIL, _why(exc), fix), None
    shown = version.removeprefix('{"version":"').split('"')[0] if version.startswith("{") else version
    detail = f"answers (version {shown}), {len(proxies or {})} proxies"
    return Finding("toxiproxy", f"API {url}", Status.OK, detail), dict(proxies or {})


def _docker_ping() -> str | None:
    return engine_reachable()


def _containers(name: str, service: ServiceSpec, list_containers: ContainerLister | None) -> Finding:
    ref = service.container
    assert ref is not None
    filters = container_filters(name, ref)
    shown = ref.name or f"compose {ref.compose_project or '*'}/{ref.compose_service}"
    try:
        found = list_containers(filters) if list_containers is not None else _list_containers(filters)
    except Exception as exc:  # the docker SDK's errors and requests' connection errors alike
        return Finding(f"service {name}", f"container {shown}", Status.FAIL, _why(exc), "check the Docker engine")
    if not found:
        fix = (
            "start it (docker compose up -d), or correct services.NAME.container "
            "(the Compose project is the directory name unless set: --set compose_project=...)"
        ).replace("NAME", name)
        return Finding(f"service {name}", f"container {shown}", Status.FAIL, "no such container", fix)
    unhealthy = [attrs for attrs in found if container_outcome(attrs) is not None]
    if unhealthy:
        state = unhealthy[0].get("State") or {}
        health = (state.get("Health") or {}).get("Status")
        detail = f"{len(unhealthy)} of {len(found)} not running or not healthy ({state.get('Status')}"
        detail += f", health {health})" if health else ")"
        return Finding(f"service {name}", f"container {shown}", Status.FAIL, detail, "see docker compose ps / logs")
    return Finding(f"service {name}", f"container {shown}", Status.OK, f"{len(found)} running")


def _list_containers(filters: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    client = docker.from_env()
    try:
        return [c.attrs for c in client.containers.list(all=True, filters=dict(filters))]
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# services


def _launched(name: str, service: ServiceSpec, refs: Mapping[str, str]) -> list[Finding]:
    """A service chaoslab starts: its program must exist and its port be free (it is not probed)."""
    launch = service.launch
    item = f"service {name}"
    findings: list[Finding] = []
    if launch.kind == "process":
        program = resolve_known_refs(launch.command[0], {**refs, "python": sys.executable})
        found = program if os.sep in program and os.access(program, os.X_OK) else shutil.which(program)
        findings.append(
            Finding(item, f"program {program}", Status.OK, f"found ({found})")
            if found
            else Finding(
                item,
                f"program {program}",
                Status.FAIL,
                "not found",
                f"install it or correct services.{name}.launch.command",
            )
        )
    elif launch.kind == "postgres":
        try:
            findings.append(Finding(item, "PostgreSQL server", Status.OK, f"found ({pg_bin('initdb')})"))
        except HarnessError as exc:
            findings.append(
                Finding(
                    item, "PostgreSQL server", Status.FAIL, str(exc), "install postgresql (apt-get install postgresql)"
                )
            )
    elif launch.kind == "container":
        findings.append(
            Finding(item, f"image {launch.image}", Status.SKIP, "started by chaoslab (needs the Docker engine)")
        )
    address = _address_of(service, refs)
    if address is not None:
        findings.append(_must_be_free(item, address, f"chaoslab starts {name} there"))
    return findings


def _address_of(service: ServiceSpec, refs: Mapping[str, str]) -> str | None:
    if service.address is not None:
        return resolve_known_refs(service.address, refs)
    if service.url is not None:
        parts = urlsplit(resolve_known_refs(service.url, refs))
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.hostname}:{port}"
    if service.launch.kind == "postgres" and service.launch.port is not None:
        return f"127.0.0.1:{service.launch.port}"
    return None


def _must_be_free(item: str, address: str, why: str) -> Finding:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            return Finding(
                item,
                f"port {address} free",
                Status.FAIL,
                f"in use ({exc.strerror or exc})",
                f"{why}: stop what listens there, or move the port (a parameter: --set NAME=PORT)",
            )
    return Finding(item, f"port {address} free", Status.OK, f"free ({why})")


async def _probe(
    name: str, service: ServiceSpec, topology: TopologySpec, refs: Mapping[str, str], timeout_s: float
) -> Finding:
    """One attempt of the service's probe (or a TCP connect to its address or URL when it has none)."""
    item = f"service {name}"
    probe = service.probe
    fix = f"start {name}, or correct services.{name}.{'probe' if probe else 'url/address'} in the topology"
    started = time.perf_counter()
    try:
        if probe is not None and probe.type == "http":
            url = resolve_known_refs(probe.url or "", refs)
            check = f"http {url}"
            timeout = aiohttp.ClientTimeout(total=timeout_s)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(resolve_secret_refs(url), allow_redirects=False) as resp,
            ):
                body = await resp.read()
            error = http_outcome(resp.status, body, probe)
            if error is not None:
                expected = f"HTTP {probe.expect_status}" + (
                    f" with {probe.json_field} = {probe.json_value!r}" if probe.json_field else ""
                )
                return Finding(item, check, Status.FAIL, f"answered HTTP {resp.status}, expected {expected}", fix)
            return Finding(item, check, Status.OK, f"HTTP {resp.status} in {_ms(started)}")
        if probe is not None and probe.type == "postgres":
            dsn = resolve_known_refs(probe.dsn or "", refs)
            check = f"postgres {redact_text(dsn)}"  # ${env:...} shown as written, a literal password as ***
            conn = await asyncpg.connect(resolve_secret_refs(dsn), timeout=timeout_s)
            try:
                await conn.fetchval("SELECT 1")
            finally:
                conn.terminate()
            return Finding(item, check, Status.OK, f"SELECT 1 in {_ms(started)}")
        if probe is not None and probe.type == "process":
            pids = matched_pids(service)
            check = "process"
            if not pids:
                return Finding(
                    item, check, Status.FAIL, "no matching process", f"start {name}, or correct services.{name}.process"
                )
            return Finding(item, check, Status.OK, f"PID {', '.join(map(str, pids[:4]))}")
        if probe is not None and probe.type == "container":
            return Finding(item, "probe container", Status.SKIP, "judged by its container (below)")
        address = (
            resolve_known_refs(probe.address, refs)
            if probe is not None and probe.address
            else _address_of(service, refs)
        )
        if address is None:
            return Finding(item, "reachable", Status.SKIP, "nothing to check (no probe, url or address)")
        check = f"tcp {address}"
        await _connect(address, timeout_s)
        return Finding(item, check, Status.OK, f"accepts connections ({_ms(started)})")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # every failure of a probe is a finding, never a crash
        return Finding(item, locals().get("check", "probe"), Status.FAIL, _why(exc), fix)


async def _connect(address: str, timeout_s: float) -> None:
    host, _, port = address.rpartition(":")
    _, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), int(port)), timeout_s)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


# ---------------------------------------------------------------------------------------------
# links


async def _link(
    name: str,
    link: LinkSpec,
    topology: TopologySpec,
    launched: set[str],
    proxies: Mapping[str, Any] | None,
    timeout_s: float,
) -> list[Finding]:
    item = f"link {name}"
    findings: list[Finding] = []
    upstream_service = _service_at(link.upstream, topology)
    if topology.toxiproxy == "embedded":
        findings.append(_must_be_free(item, link.listen, "the embedded Toxiproxy listens there"))
    elif proxies is not None:
        findings.append(await _through_proxy(item, name, link, proxies, timeout_s))
    else:
        findings.append(
            Finding(item, "proxy", Status.FAIL, "not checked: Toxiproxy does not answer", "start Toxiproxy (above)")
        )
    upstream_host = link.upstream.rpartition(":")[0]
    if upstream_service in launched:
        findings.append(
            Finding(item, f"upstream {link.upstream}", Status.SKIP, f"{upstream_service} is started by chaoslab")
        )
    elif not _reachable_host(upstream_host):
        findings.append(
            Finding(
                item,
                f"upstream {link.upstream}",
                Status.SKIP,
                "not on this host's loopback (a name inside Toxiproxy's network?)"
                + (": checked through the proxy" if proxies is not None else ""),
            )
        )
    else:
        started = time.perf_counter()
        try:
            await _connect(link.upstream, timeout_s)
            findings.append(
                Finding(item, f"upstream {link.upstream}", Status.OK, f"accepts connections ({_ms(started)})")
            )
        except Exception as exc:  # a refused or timed-out connect is a finding
            fix = f"start {upstream_service or 'the upstream'}, or correct links.{name}.upstream"
            findings.append(Finding(item, f"upstream {link.upstream}", Status.FAIL, _why(exc), fix))
    return findings


async def _through_proxy(item: str, name: str, link: LinkSpec, proxies: Mapping[str, Any], timeout_s: float) -> Finding:
    proxy = proxies.get(link.proxy_name or name)
    if proxy is None:
        return Finding(item, "proxy", Status.SKIP, "not in Toxiproxy yet: chaoslab creates it when the run starts")
    listen, upstream = str(proxy.get("listen", "")), str(proxy.get("upstream", ""))
    if upstream != link.upstream or _port(listen) != _port(link.listen):
        return Finding(
            item,
            "proxy",
            Status.FAIL,
            f"Toxiproxy has it as {listen} → {upstream}, the topology as {link.listen} → {link.upstream}",
            "make them agree (the run would re-create the proxy, and the app may be pointed at the old one)",
        )
    if not proxy.get("enabled", True):
        return Finding(
            item, "proxy", Status.FAIL, "disabled in Toxiproxy", f'enable it: POST /proxies/{name} {{"enabled": true}}'
        )
    toxics = proxy.get("toxics") or []
    if toxics:
        names = ", ".join(str(t.get("name")) for t in toxics)
        return Finding(
            item, "proxy", Status.FAIL, f"has toxics left: {names}", "chaoslab rollback, or delete them through the API"
        )
    host = link.listen.rpartition(":")[0].strip("[]")
    address = f"127.0.0.1:{_port(link.listen)}" if host in ("0.0.0.0", "::", "") else link.listen
    check = f"through proxy {address}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(*_split(address)), timeout_s)
    except Exception as exc:  # not reachable from here is a finding, not a crash
        fix = "publish the proxy's port on 127.0.0.1 (the override of chaoslab init does), or check Toxiproxy's logs"
        return Finding(item, check, Status.FAIL, _why(exc), fix)
    try:
        closed = await _closed_within(reader, HOLD_S)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if closed:
        return Finding(
            item,
            check,
            Status.FAIL,
            f"Toxiproxy accepted and closed at once: it cannot reach {link.upstream}",
            f"start the upstream service, or correct links.{name}.upstream",
        )
    return Finding(item, check, Status.OK, f"open through the proxy for {HOLD_S * 1000:.0f} ms")


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the peer closes (EOF or reset) within ``seconds``; a greeting (MySQL, SSH) counts as open."""
    try:
        data = await asyncio.wait_for(reader.read(1), seconds)
    except TimeoutError:
        return False
    except OSError:
        return True
    return data == b""


def _service_at(address: str, topology: TopologySpec) -> str | None:
    refs = runtime_refs(topology)
    for name, service in topology.services.items():
        mine = _address_of(service, refs)
        if mine is not None and _port(mine) == _port(address) and _same_host(mine, address):
            return name
    host = address.rpartition(":")[0]
    return host if host in topology.services else None


def _same_host(a: str, b: str) -> bool:
    ha, hb = a.rpartition(":")[0].strip("[]"), b.rpartition(":")[0].strip("[]")
    return ha == hb or (is_loopback(ha) and is_loopback(hb))


def _reachable_host(host: str) -> bool:
    """Only loopback addresses are opened from here: chaoslab sends no traffic off this host."""
    return is_loopback(host.strip("[]"))


def _port(address: str) -> str:
    return address.rpartition(":")[2]


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f} ms"


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (
            "connection refused" if isinstance(exc.os_error, ConnectionRefusedError) else _one_line(str(exc.os_error))
        )
    return _one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def run_preflight(topology: TopologySpec, *, fault_kinds: Iterable[str] = ()) -> list[Finding]:
    """:func:`preflight` from synchronous code (the command line)."""
    return asyncio.run(preflight(topology, fault_kinds=fault_kinds))
