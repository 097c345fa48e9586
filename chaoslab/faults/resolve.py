"""Target resolution shared by the fault drivers: service and link lookups, safe names, PIDs.

Everything here is pure or reads only local process state; nothing is changed. Processes are
identified by PID *and* start time (:mod:`chaoslab.system.processes`), so that a rollback run
long after the fault never signals a process that merely reuses a recorded PID.
"""

from __future__ import annotations

import re

from chaoslab.errors import FaultError, SafetyError
from chaoslab.faults.base import FaultContext
from chaoslab.model.loading import resolve_runtime_refs
from chaoslab.model.topology import LinkSpec, ServiceSpec
from chaoslab.system.processes import matched_pids

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    """``text`` reduced to characters safe in file names, toxic names and application names."""
    return _UNSAFE.sub("-", text).strip("-") or "fault"


def run_label(ctx: FaultContext, label: str, max_len: int = 200) -> str:
    """``chaoslab-<run_id>-<label>``: the unique per-run prefix of everything a fault creates."""
    return f"chaoslab-{safe_name(ctx.run_id)}-{safe_name(label)}"[:max_len]


def with_refs(ctx: FaultContext, text: str) -> str:
    """``text`` with its ``${run_dir}``-style references replaced by the run's values."""
    return resolve_runtime_refs(text, ctx.refs) if "${" in text else text


def service_spec(ctx: FaultContext, name: str) -> ServiceSpec:
    """The topology's service ``name``, or a :class:`SafetyError` naming the known ones."""
    service = ctx.topology.services.get(name)
    if service is None:
        known = ", ".join(sorted(ctx.topology.services)) or "none"
        raise SafetyError(f"service {name!r} is not in topology {ctx.topology.name!r} (services: {known})")
    return service


def link_spec(ctx: FaultContext, name: str) -> LinkSpec:
    """The topology's link ``name``, or a :class:`SafetyError` naming the known ones."""
    link = ctx.topology.links.get(name)
    if link is None:
        known = ", ".join(sorted(ctx.topology.links)) or "none"
        raise SafetyError(f"link {name!r} is not in topology {ctx.topology.name!r} (links: {known})")
    return link


def proxy_name(ctx: FaultContext, link: str) -> str:
    """The Toxiproxy proxy that carries ``link``: its ``proxy_name`` or the link name itself."""
    return link_spec(ctx, link).proxy_name or link


def service_pids(ctx: FaultContext, name: str) -> list[int]:
    """PIDs of a service: from the launcher when it knows the service, else the topology's match."""
    service = service_spec(ctx, name)
    if ctx.services is not None:
        pids = ctx.services.pids(name)
        if pids:
            return pids
    if service.process is None and ctx.services is None:
        raise FaultError(
            f"service {name!r} has no process to act on: chaoslab did not launch it and its topology "
            "entry has no 'process' match (pidfile or cmdline)"
        )
    return matched_pids(service, ctx.refs)
