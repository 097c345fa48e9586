"""Listen and upstream addresses the way Toxiproxy (Go's ``net`` package) reads and reports them.

Splitting and formatting are pure; :func:`resolve_listen` does a name lookup (IPv4 first, like Go's
listener) and is the only function here that touches the system.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

DEFAULT_LISTEN = "127.0.0.1:0"
"""[chaoslab] what an omitted or empty ``listen`` binds (the real server binds all interfaces)."""


class AddressError(ValueError):
    """An address that cannot be split, parsed or resolved; ``str()`` is Go's message."""


@dataclass(frozen=True, slots=True)
class BindTarget:
    """A concrete socket address to bind: family, host literal and port."""

    family: socket.AddressFamily
    host: str
    port: int
    dual_stack: bool = False

    def report(self, port: int | None = None) -> str:
        """The address as Toxiproxy reports it (``127.0.0.1:P``, ``[::]:P``), with the real port if given."""
        return join_host_port(self.host, self.port if port is None else port)


def split_host_port(address: str) -> tuple[str, str]:
    """Split ``host:port`` / ``[v6]:port`` / ``:port`` like Go's ``net.SplitHostPort``."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise AddressError(f"address {address}: missing ']' in address")
        host, rest = address[1:end], address[end + 1 :]
        if not rest.startswith(":"):
            raise AddressError(f"address {address}: missing port in address")
        return host, rest[1:]
    if ":" not in address:
        raise AddressError(f"address {address}: missing port in address")
    host, _, port = address.rpartition(":")
    if ":" in host:
        raise AddressError(f"address {address}: too many colons in address")
    return host, port


def join_host_port(host: str, port: int | str) -> str:
    """Join like Go's ``net.JoinHostPort``: IPv6 literals get brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_port(address: str, port: str) -> int:
    """A decimal port 0..65535, else Go-style ``invalid port`` error."""
    if not port.isdigit() or int(port) > 65535:
        raise AddressError(f"address {address}: invalid port")
    return int(port)


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve_listen(address: str) -> BindTarget:
    """Where to bind ``address``: wildcards dual-stack, names to their first IPv4 address."""
    if address == "":
        address = DEFAULT_LISTEN
    host, port_text = split_host_port(address)
    port = parse_port(address, port_text)
    if host in ("", "0.0.0.0", "::") and socket.has_ipv6:
        return BindTarget(socket.AF_INET6, "::", port, dual_stack=True)
    if host == "":
        return BindTarget(socket.AF_INET, "0.0.0.0", port)
    literal = _ip_literal(host)
    if literal is not None:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return BindTarget(family, str(literal), port)
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            continue
        if infos:
            return BindTarget(family, str(infos[0][4][0]), port)
    raise AddressError(f"lookup {host}: no such host")


def resolved_listen_string(address: str) -> str:
    """The requested listen after resolution, for the "differs" test (``localhost:P`` → ``127.0.0.1:P``)."""
    host, port_text = split_host_port(address)
    if host == "":
        return address
    target = resolve_listen(address)
    if target.dual_stack:
        # Go's TCPAddr.String() prints the wildcard as given, never as "[::]".
        return join_host_port(host, port_text)
    return join_host_port(target.host, port_text)


def split_upstream(upstream: str) -> tuple[str, int]:
    """Host and port to dial for ``upstream`` (resolved at dial time, not here)."""
    host, port_text = split_host_port(upstream)
    return host or "localhost", parse_port(upstream, port_text)
