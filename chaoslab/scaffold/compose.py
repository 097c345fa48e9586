"""Reading a Docker Compose file: services, ports, health checks, dependencies, networks and environment.

What ``chaoslab init --from-compose`` needs of a Compose file, as frozen values. It follows the
Compose specification where that matters for finding services and their dependencies:
variables (``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$$``) from the environment and
the ``.env`` file beside the Compose file, ``ports`` in short and long syntax, ``expose``,
``healthcheck`` (list and string forms, ``disable``), ``depends_on`` (list and mapping),
``networks`` (list and mapping, with aliases), ``network_mode``, ``environment`` (list and
mapping), ``env_file`` (string, list, ``path``/``required``), ``profiles``, ``extends`` (same
file or another) and YAML anchors and merge keys. ``include:`` and Compose file format 1 (no
``services:``) are refused.

Every problem is a one-line :class:`~chaoslab.errors.SpecError` naming the file, the line, the
field and the value. Values are never echoed when they come from an environment variable or an
env file (they may be secrets): errors name the variable instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from chaoslab.errors import SpecError
from chaoslab.model.loading import read_document
from chaoslab.model.messages import describe_value
from chaoslab.model.yamlsource import Path_, SourceDoc

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PORT_RANGE_LIMIT = 100
"""Most ports one ``ports``/``expose`` range may stand for (a typo like 1-65535 is refused, not expanded)."""


@dataclass(frozen=True, slots=True)
class Port:
    """One port of a service: the container port, and the host port it is published on (None: not published)."""

    target: int
    published: int | None = None
    host_ip: str = ""
    protocol: str = "tcp"


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One environment variable of a service."""

    name: str
    value: str
    """After interpolation: what the container sees."""
    raw: str | None
    """As written under ``environment:`` (before interpolation); None when it comes from an env file."""
    source: str
    """``environment`` or the env file it was read from."""


@dataclass(frozen=True, slots=True)
class Service:
    """One Compose service, with what chaoslab needs to find, probe and proxy it."""

    name: str
    image: str = ""
    ports: tuple[Port, ...] = ()
    expose: tuple[int, ...] = ()
    healthcheck: tuple[str, ...] | None = None
    """The test as an argv: ``("CMD", "curl", ...)`` or ``("CMD-SHELL", "curl ...")``; None: none or disabled."""
    depends_on: tuple[str, ...] = ()
    depends_on_form: str = "list"
    """``list`` or ``mapping``: how the file writes it (an override should write it the same way)."""
    waits_for_completion: tuple[str, ...] = ()
    links: tuple[tuple[str, str], ...] = ()
    """Legacy ``links:`` as (service, alias): a dependency the service reaches by that alias."""
    """Dependencies it waits for to *finish* (``condition: service_completed_successfully``): one-shot jobs."""
    networks: tuple[str, ...] = ("default",)
    network_mode: str | None = None
    aliases: frozenset[str] = frozenset()
    """Every host name the service answers to: its name, ``hostname``, ``container_name``, network aliases."""
    environment: tuple[EnvVar, ...] = ()
    profiles: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    line: int | None = None

    def env(self, name: str) -> EnvVar | None:
        """The variable ``name``, if the service has it."""
        return next((var for var in self.environment if var.name == name), None)


@dataclass(frozen=True, slots=True)
class ComposeApp:
    """A Compose file's active services (profiles applied), in file order."""

    path: Path
    project: str
    services: Mapping[str, Service]
    declared_networks: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()
    """Services left out because none of their profiles is active."""
    lines: Mapping[str, int] = field(default_factory=dict)


def project_name(directory: Path) -> str:
    """Compose's default project name: the directory's name, lower-cased, without other characters than ``a-z0-9_-``."""
    name = re.sub(r"[^a-z0-9_-]", "", directory.name.lower()).lstrip("_-")
    return name or "app"


def read_compose(
    path: Path,
    *,
    environ: Mapping[str, str],
    profiles: Sequence[str] = (),
    project: str | None = None,
) -> ComposeApp:
    """Read and check a Compose file (and the ``.env``, ``extends`` and ``env_file`` files it uses)."""
    where = str(path)
    doc = read_document(path)
    variables = {**_dotenv_file(path.parent / ".env", required=False), **environ}
    reader = _Reader(path.parent, variables)
    data = reader.interpolate_doc(doc, where)
    for key in ("include",):
        if key in data:
            raise SpecError(
                f"'{key}' is not supported by chaoslab init: merge the included files first "
                "(docker compose config > merged.yml)",
                file=where,
                line=doc.line_of((key,)),
                field=key,
            )
    services_raw = data.get("services")
    if services_raw is None:
        raise SpecError(
            "expected a 'services' mapping (Compose file format 1, without 'services:', is not supported)",
            file=where,
            line=doc.line_of(()),
            field="services",
        )
    if not isinstance(services_raw, dict) or not services_raw:
        raise SpecError(
            f"expected a mapping of service names to services, got {describe_value(services_raw)}",
            file=where,
            line=doc.line_of(("services",)),
            field="services",
        )
    declared = data.get("networks") or {}
    if not isinstance(declared, dict):
        raise SpecError(
            f"expected a mapping of network names, got {describe_value(declared)}",
            file=where,
            line=doc.line_of(("networks",)),
            field="networks",
        )
    name = project or _project_of(data, doc, where) or project_name(path.parent.resolve())
    services: dict[str, Service] = {}
    for service_name, raw in services_raw.items():
        resolved = reader.extended(service_name, raw, doc, where, services_raw, ())
        services[str(service_name)] = _service(str(service_name), resolved, doc, where, reader)
    _check_references(services, set(declared), doc, where)
    services = _with_link_aliases(services)
    active_profiles = set(profiles)
    active = {n: s for n, s in services.items() if not s.profiles or active_profiles & set(s.profiles)}
    inactive = tuple(n for n in services if n not in active)
    if not active:
        raise SpecError(
            f"no service is active without a profile; pass --profile (profiles: "
            f"{', '.join(sorted({p for s in services.values() for p in s.profiles}))})",
            file=where,
            field="services",
        )
    lines = {n: doc.line_of(("services", n)) or 0 for n in services}
    return ComposeApp(path, name, active, tuple(str(n) for n in declared), inactive, lines)


def _project_of(data: Mapping[str, Any], doc: SourceDoc, where: str) -> str | None:
    value = data.get("name")
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise SpecError(
            f"expected a project name of lower-case letters, digits, '_' and '-', got {describe_value(value)}",
            file=where,
            line=doc.line_of(("name",)),
            field="name",
        )
    return value


# ---------------------------------------------------------------------------------------------
# variables


def interpolate(text: str, variables: Mapping[str, str], fail: Callable[[str], SpecError]) -> str:
    """Compose's variable substitution in one string; ``fail(message)`` makes the error for a bad reference."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            if end < 0:
                raise fail(f"unclosed ${{ in {text!r}")
            out.append(_expression(text[i + 2 : end], variables, fail))
            i = end + 1
        else:
            match = _NAME.match(text, i + 1)
            if match is None:
                out.append("$")
                i += 1
            else:
                out.append(variables.get(match.group(0), ""))
                i = match.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _expression(body: str, variables: Mapping[str, str], fail: Callable[[str], SpecError]) -> str:
    match = _NAME.match(body)
    if match is None:
        raise fail(f"invalid variable reference ${{{body}}}")
    name, rest = match.group(0), body[match.end() :]
    value = variables.get(name)
    if not rest:
        return value or ""
    for op in (":-", "-", ":?", "?", ":+", "+"):
        if rest.startswith(op):
            arg = interpolate(rest[len(op) :], variables, fail)
            unset_or_empty = value is None or (op.startswith(":") and value == "")
            if op in (":-", "-"):
                return arg if unset_or_empty else str(value)
            if op in (":?", "?"):
                if unset_or_empty:
                    raise fail(f"variable {name} is required: {arg or 'not set'}")
                return str(value)
            return "" if unset_or_empty else arg
    raise fail(f"invalid variable reference ${{{body}}}")


def parse_dotenv(text: str, where: str) -> dict[str, str]:
    """An env file's variables (``KEY=VALUE``, ``export KEY=VALUE``, quotes, ``#`` comments)."""
    result: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ").lstrip()
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key):
            # the value is not shown: env files hold secrets
            raise SpecError(f"expected KEY=VALUE, got a line starting {key[:20]!r}", file=where, line=number)
        if not sep:
            continue  # "KEY" alone takes the value from the shell: nothing to read here
        value = value.strip()
        if value[:1] in ("'", '"') and value.endswith(value[0]) and len(value) >= 2:
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        result[key] = value
    return result


def _dotenv_file(path: Path, *, required: bool) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        if required:
            raise SpecError("env file not found", file=str(path)) from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read env file: {exc}", file=str(path)) from None
    return parse_dotenv(text, str(path))


# ---------------------------------------------------------------------------------------------
# services


class _Reader:
    """Interpolation and ``extends`` resolution, with the files each value came from."""

    def __init__(self, directory: Path, variables: Mapping[str, str]) -> None:
        self.directory = directory
        self.variables = variables
        self.raw_env: dict[tuple[str, str], str] = {}
        self._other: dict[Path, tuple[dict[str, Any], SourceDoc]] = {}

    def interpolate_doc(self, doc: SourceDoc, where: str) -> dict[str, Any]:
        def walk(value: Any, path: Path_) -> Any:
            if isinstance(value, dict):
                return {k: walk(v, (*path, k)) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v, (*path, i)) for i, v in enumerate(value)]
            if not isinstance(value, str) or "$" not in value:
                return value

            def fail(message: str) -> SpecError:
                return SpecError(message, file=where, line=doc.line_of(path), field=_dotted(path))

            if len(path) >= 4 and path[0] == "services" and path[2] == "environment":
                # kept as written: an override must not copy the values of secrets it interpolated
                raw_value = value if isinstance(path[3], str) else value.partition("=")[2]
                self.raw_env[(f"{where}#{path[1]}", _env_key(path, value))] = raw_value
            return interpolate(value, self.variables, fail)

        data = walk(doc.data, ())
        assert isinstance(data, dict)  # read_document guarantees a mapping
        return data

    def extended(
        self,
        name: Any,
        raw: Any,
        doc: SourceDoc,
        where: str,
        services: Mapping[str, Any],
        chain: tuple[str, ...],
    ) -> dict[str, Any]:
        """The service's mapping with its ``extends`` base merged in (Compose's merge rules)."""
        path: Path_ = ("services", name)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise SpecError(
                f"expected a mapping of service fields, got {describe_value(raw)}",
                file=where,
                line=doc.line_of(path),
                field=_dotted(path),
            )
        ext = raw.get("extends")
        if ext is None:
            return {**raw, "__where__": where, "__doc__": doc}
        if isinstance(ext, str):
            ext = {"service": ext}
        if not isinstance(ext, dict) or not isinstance(ext.get("service"), str):
            raise SpecError(
                f"expected 'extends: SERVICE' or a mapping with 'service' (and 'file'), got {describe_value(ext)}",
                file=where,
                line=doc.line_of((*path, "extends")),
                field=_dotted((*path, "extends")),
            )
        base_name = ext["service"]
        key = f"{where}#{base_name}"
        if key in chain:
            raise SpecError(
                f"extends cycle: {' → '.join((*chain, key))}",
                file=where,
                line=doc.line_of((*path, "extends")),
                field=_dotted((*path, "extends")),
            )
        if "file" in ext:
            other_path = self.directory / str(ext["file"])
            base_services, base_doc, base_where = self._services_of(other_path, doc, where, path)
        else:
            base_services, base_doc, base_where = services, doc, where
        if base_name not in base_services:
            known = ", ".join(sorted(map(str, base_services)))
            raise SpecError(
                f"extends names no service {base_name!r} in {base_where} (services: {known})",
                file=where,
                line=doc.line_of((*path, "extends", "service")),
                field=_dotted((*path, "extends", "service")),
            )
        base = self.extended(base_name, base_services[base_name], base_doc, base_where, base_services, (*chain, key))
        # Compose never shares these through extends
        for private in ("depends_on", "links", "volumes_from"):
            base.pop(private, None)
        own = {k: v for k, v in raw.items() if k != "extends"}
        merged = _merge_service(base, own)
        merged["__where__"], merged["__doc__"] = where, doc
        return merged

    def _services_of(
        self, path: Path, doc: SourceDoc, where: str, at: Path_
    ) -> tuple[Mapping[str, Any], SourceDoc, str]:
        if path not in self._other:
            if not path.is_file():
                raise SpecError(
                    f"extends names a file that does not exist: {path}",
                    file=where,
                    line=doc.line_of((*at, "extends", "file")),
                    field=_dotted((*at, "extends", "file")),
                )
            other_doc = read_document(path)
            self._other[path] = (self.interpolate_doc(other_doc, str(path)), other_doc)
        data, other_doc = self._other[path]
        services = data.get("services")
        if not isinstance(services, dict):
            raise SpecError(
                "expected a 'services' mapping", file=str(path), line=other_doc.line_of(()), field="services"
            )
        return services, other_doc, str(path)


def _env_key(path: Path_, value: str) -> str:
    if isinstance(path[3], str):
        return path[3]
    return value.partition("=")[0]


def _merge_service(base: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """Compose's merge: mappings merge, ``ports``/``expose`` lists add up, anything else is replaced."""
    merged = dict(base)
    for key, value in own.items():
        old = merged.get(key)
        if key in ("environment", "labels") and old is not None:
            merged[key] = {**_env_mapping(old), **_env_mapping(value)}
        elif key in ("ports", "expose", "env_file", "profiles") and isinstance(old, list) and isinstance(value, list):
            merged[key] = [*old, *(v for v in value if v not in old)]
        elif isinstance(old, dict) and isinstance(value, dict):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged


def _env_mapping(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {str(item).partition("=")[0]: str(item).partition("=")[2] for item in value}
    return {}


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)


class _Field:
    """Where one service field is, for its error messages."""

    def __init__(self, service: str, raw: Mapping[str, Any]) -> None:
        self.service = service
        self.where: str = raw["__where__"]
        self.doc: SourceDoc = raw["__doc__"]

    def error(self, message: str, *path: str | int) -> SpecError:
        full: Path_ = ("services", self.service, *path)
        return SpecError(message, file=self.where, line=self.doc.line_of(full), field=_dotted(full))


_FIELD_NAMES = """
    image build ports expose healthcheck depends_on networks network_mode environment env_file profiles
    hostname container_name command entrypoint volumes restart labels deploy working_dir user links logging
    ulimits cap_add cap_drop init tty stdin_open secrets configs extra_hosts dns platform pull_policy
    stop_signal stop_grace_period tmpfs shm_size sysctls privileged read_only devices domainname mem_limit
    cpus cpu_shares mem_reservation security_opt volumes_from pid ipc develop scale attach annotations
    group_add userns_mode runtime isolation cgroup_parent mac_address oom_score_adj storage_opt
    external_links post_start pre_stop extends mem_swappiness memswap_limit cpu_count cpu_percent cpu_quota
    cpu_period cpuset blkio_config device_cgroup_rules credential_spec models provider gpus
"""
_KNOWN_FIELDS = frozenset(_FIELD_NAMES.split())
"""The service fields of the Compose specification; anything else is a typo (``x-`` extensions aside)."""


def _service(name: str, raw: dict[str, Any], doc: SourceDoc, where: str, reader: _Reader) -> Service:
    at = _Field(name, raw)
    fields = {k: v for k, v in raw.items() if not k.startswith("__")}
    for key in fields:
        if key not in _KNOWN_FIELDS and not str(key).startswith("x-"):
            raise at.error(f"unknown service field {key!r}", key)
    image = fields.get("image", "")
    if image is not None and not isinstance(image, str):
        raise at.error(f"expected an image name, got {describe_value(image)}", "image")
    if not image and "build" not in fields:
        raise at.error("expected 'image' or 'build'", "image")
    networks, aliases = _networks(fields.get("networks"), at)
    names = {name, *aliases}
    for key in ("hostname", "container_name"):
        if isinstance(fields.get(key), str):
            names.add(fields[key])
    depends, form, completed = _depends_on(fields.get("depends_on"), at)
    network_mode = fields.get("network_mode")
    if network_mode is not None and not isinstance(network_mode, str):
        raise at.error(
            f"expected a network mode like host or bridge, got {describe_value(network_mode)}", "network_mode"
        )
    if network_mode is not None and "networks" in fields:
        raise at.error("'network_mode' and 'networks' cannot be used together", "network_mode")
    return Service(
        name=name,
        image=image or "",
        ports=_ports(fields.get("ports"), at),
        expose=_expose(fields.get("expose"), at),
        healthcheck=_healthcheck(fields.get("healthcheck"), at),
        depends_on=depends,
        depends_on_form=form,
        waits_for_completion=completed,
        networks=networks if network_mode is None else (),
        network_mode=network_mode,
        aliases=frozenset(names),
        environment=_environment(fields, at, reader),
        profiles=_strings(fields.get("profiles"), at, "profiles"),
        command=_command(fields.get("command")),
        links=_legacy_links(fields.get("links"), at),
        line=doc.line_of(("services", name)),
    )


def _strings(value: Any, at: _Field, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise at.error(f"expected a list of names, got {describe_value(value)}", key)
    return tuple(value)


def _legacy_links(value: Any, at: _Field) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise at.error(f"expected a list like [db, 'db:database'], got {describe_value(value)}", "links")
    pairs = [item.partition(":") for item in value]
    return tuple((name, alias or name) for name, _, alias in pairs)


def _command(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def _port_number(value: Any, at: _Field, *path: str | int) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 0 < int(text) <= 65535:
        raise at.error(f"expected a port number 1-65535, got {describe_value(value)}", *path)
    return int(text)


def _port_range(text: str, at: _Field, *path: str | int) -> list[int]:
    first, sep, last = text.partition("-")
    start = _port_number(first, at, *path)
    end = _port_number(last, at, *path) if sep else start
    if end < start or end - start >= _PORT_RANGE_LIMIT:
        raise at.error(f"expected a port range of at most {_PORT_RANGE_LIMIT} ports, got {text!r}", *path)
    return list(range(start, end + 1))


def _ports(value: Any, at: _Field) -> tuple[Port, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise at.error(f"expected a list of ports, got {describe_value(value)}", "ports")
    result: list[Port] = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            result.extend(_long_port(item, at, index))
        elif isinstance(item, int | str) and not isinstance(item, bool):
            result.extend(_short_port(str(item), at, index))
        else:
            raise at.error(
                f"expected a port like 8000:80 or a mapping with 'target', got {describe_value(item)}", "ports", index
            )
    return tuple(result)


def _short_port(text: str, at: _Field, index: int) -> list[Port]:
    spec, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    host_ip = ""
    if spec.startswith("["):  # [::1]:8000:80
        close = spec.find("]")
        if close < 0:
            raise at.error(f"expected a port like [::1]:8000:80, got {text!r}", "ports", index)
        host_ip, spec = spec[1:close], spec[close + 1 :].lstrip(":")
    parts = spec.split(":")
    if len(parts) == 3:
        host_ip, published, target = parts
    elif len(parts) == 2:
        published, target = parts
    elif len(parts) == 1:
        published, target = "", parts[0]
    else:
        raise at.error(f"expected a port like 8000, 8000:80 or 127.0.0.1:8000:80, got {text!r}", "ports", index)
    targets = _port_range(target, at, "ports", index)
    if not published:
        return [Port(t, None, host_ip, protocol) for t in targets]
    publishes = _port_range(published, at, "ports", index)
    if len(publishes) == 1 and len(targets) > 1:
        publishes = publishes * len(targets)
    if len(publishes) != len(targets):
        raise at.error(f"expected ranges of the same length, got {text!r}", "ports", index)
    return [Port(t, p, host_ip, protocol) for p, t in zip(publishes, targets, strict=True)]


def _long_port(item: Mapping[str, Any], at: _Field, index: int) -> list[Port]:
    unknown = set(item) - {"target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"}
    if unknown:
        key = sorted(unknown)[0]
        raise at.error(
            f"unknown port field {key!r} (expected target, published, host_ip, protocol, mode)", "ports", index, key
        )
    if "target" not in item:
        raise at.error("expected 'target' (the container port)", "ports", index)
    target = _port_number(item["target"], at, "ports", index, "target")
    host_ip = str(item.get("host_ip") or "")
    protocol = str(item.get("protocol") or "tcp")
    published = item.get("published")
    if published is None or published == "":
        return [Port(target, None, host_ip, protocol)]
    ports = _port_range(str(published), at, "ports", index, "published")
    # a range publishes the target on whichever host port is free: only a single port is known
    return [Port(target, ports[0] if len(ports) == 1 else None, host_ip, protocol)]


def _expose(value: Any, at: _Field) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise at.error(f"expected a list of ports, got {describe_value(value)}", "expose")
    result: list[int] = []
    for index, item in enumerate(value):
        result.extend(_port_range(str(item).partition("/")[0], at, "expose", index))
    return tuple(result)


def _healthcheck(value: Any, at: _Field) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise at.error(f"expected a mapping with 'test', got {describe_value(value)}", "healthcheck")
    if value.get("disable") is True:
        return None
    test = value.get("test")
    if test is None:
        return None  # inherits the image's HEALTHCHECK: nothing chaoslab can read
    if isinstance(test, str):
        return ("CMD-SHELL", test)
    if not isinstance(test, list) or not test or not all(isinstance(t, str) for t in test):
        raise at.error(
            f"expected a command list like [CMD, curl, ...] or a string, got {describe_value(test)}",
            "healthcheck",
            "test",
        )
    if test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL"):
        raise at.error(
            f"expected the test to start with CMD, CMD-SHELL or NONE, got {test[0]!r}", "healthcheck", "test", 0
        )
    return tuple(test)


def _depends_on(value: Any, at: _Field) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    if value is None:
        return (), "list", ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value), "list", ()
    if isinstance(value, dict):
        completed: list[str] = []
        for dep, options in value.items():
            if options is not None and not isinstance(options, dict):
                raise at.error(
                    f"expected a mapping like {{condition: service_healthy}}, got {describe_value(options)}",
                    "depends_on",
                    dep,
                )
            condition = (options or {}).get("condition", "service_started")
            if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                raise at.error(
                    "expected condition service_started, service_healthy or "
                    f"service_completed_successfully, got {condition!r}",
                    "depends_on",
                    dep,
                    "condition",
                )
            if condition == "service_completed_successfully":
                completed.append(str(dep))
        return tuple(str(k) for k in value), "mapping", tuple(completed)
    raise at.error(f"expected a list of service names or a mapping, got {describe_value(value)}", "depends_on")


def _networks(value: Any, at: _Field) -> tuple[tuple[str, ...], set[str]]:
    if value is None:
        return ("default",), set()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value), set()
    if isinstance(value, dict):
        aliases: set[str] = set()
        for net, options in value.items():
            if options is None:
                continue
            if not isinstance(options, dict):
                raise at.error(
                    f"expected a mapping like {{aliases: [...]}}, got {describe_value(options)}", "networks", net
                )
            found = options.get("aliases") or []
            if not isinstance(found, list):
                raise at.error(
                    f"expected a list of host names, got {describe_value(found)}", "networks", net, "aliases"
                )
            aliases.update(str(a) for a in found)
        return tuple(str(k) for k in value), aliases
    raise at.error(f"expected a list of network names or a mapping, got {describe_value(value)}", "networks")


def _environment(fields: Mapping[str, Any], at: _Field, reader: _Reader) -> tuple[EnvVar, ...]:
    found: dict[str, EnvVar] = {}
    env_files = fields.get("env_file")
    if env_files is not None:
        items = [env_files] if isinstance(env_files, str) else env_files
        if not isinstance(items, list):
            raise at.error(f"expected a file name or a list, got {describe_value(env_files)}", "env_file")
        for index, item in enumerate(items):
            required = True
            if isinstance(item, dict):
                required = item.get("required", True) is not False
                item = item.get("path")
            if not isinstance(item, str):
                raise at.error(f"expected a file name, got {describe_value(item)}", "env_file", index)
            path = Path(at.where).parent / item
            for key, value in _dotenv_file(path, required=required).items():
                found[key] = EnvVar(key, value, None, item)
    environment = fields.get("environment")
    if environment is None:
        return tuple(found.values())
    if isinstance(environment, list):
        pairs: list[tuple[str, Any]] = []
        for index, item in enumerate(environment):
            if not isinstance(item, str):
                raise at.error(f"expected KEY=VALUE, got {describe_value(item)}", "environment", index)
            key, sep, value = item.partition("=")
            pairs.append((key, value if sep else None))
    elif isinstance(environment, dict):
        pairs = list(environment.items())
    else:
        raise at.error(f"expected a mapping or a list of KEY=VALUE, got {describe_value(environment)}", "environment")
    for key, value in pairs:
        if value is None:
            continue  # taken from the shell when Compose starts: unknown here
        text = _env_text(value)
        raw = reader.raw_env.get((f"{at.where}#{at.service}", str(key)), text)
        found[str(key)] = EnvVar(str(key), text, raw, "environment")
    return tuple(found.values())


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _with_link_aliases(services: Mapping[str, Service]) -> dict[str, Service]:
    """Legacy ``links: [db:database]`` make ``database`` a name of ``db``, and the link a dependency."""
    extra: dict[str, set[str]] = {}
    for service in services.values():
        for target, alias in service.links:
            extra.setdefault(target, set()).add(alias)
    result: dict[str, Service] = {}
    for name, service in services.items():
        deps = tuple(dict.fromkeys([*service.depends_on, *(target for target, _ in service.links)]))
        result[name] = replace(service, aliases=service.aliases | extra.get(name, set()), depends_on=deps)
    return result


def _check_references(services: Mapping[str, Service], declared: set[str], doc: SourceDoc, where: str) -> None:
    for name, service in services.items():
        for dep in (*service.depends_on, *(target for target, _ in service.links)):
            if dep not in services:
                raise SpecError(
                    f"depends_on names no service {dep!r} (services: {', '.join(services)})",
                    file=where,
                    line=doc.line_of(("services", name, "depends_on")),
                    field=f"services.{name}.depends_on",
                )
        for net in service.networks:
            if net != "default" and net not in declared:
                raise SpecError(
                    f"network {net!r} is not declared under the top-level 'networks' "
                    f"(declared: {', '.join(sorted(declared)) or 'none'})",
                    file=where,
                    line=doc.line_of(("services", name, "networks")),
                    field=f"services.{name}.networks",
                )
        mode = service.network_mode or ""
        if mode.startswith("service:") and mode.removeprefix("service:") not in services:
            raise SpecError(
                f"network_mode names no service {mode.removeprefix('service:')!r}",
                file=where,
                line=doc.line_of(("services", name, "network_mode")),
                field=f"services.{name}.network_mode",
            )
