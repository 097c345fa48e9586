"""The embedded Toxiproxy-compatible server: ``ToxiproxyServer`` (in-process) and ``chaoslab toxiproxy``."""

from chaoslab.proxy.api import TOXIPROXY_VERSION
from chaoslab.proxy.server import ToxiproxyServer

__all__ = ["TOXIPROXY_VERSION", "ToxiproxyServer"]
