"""Fault drivers, one module per family; :func:`driver_for` picks the driver of a fault kind."""

from __future__ import annotations

import importlib

from chaoslab.errors import FaultError
from chaoslab.faults.base import FaultContext, FaultDriver, LedgerRecord
from chaoslab.system.processes import ServiceControl

DRIVER_MODULES: dict[str, str] = {
    "toxiproxy": "chaoslab.faults.toxiproxy:ToxiproxyDriver",
    "process": "chaoslab.faults.process:ProcessDriver",
    "container": "chaoslab.faults.container:ContainerDriver",
    "pool": "chaoslab.faults.pool:PoolDriver",
    "disk": "chaoslab.faults.disk:DiskFillDriver",
    "pressure": "chaoslab.faults.pressure:PressureDriver",
}
"""Fault family (``FaultBase.family``) → ``module:class`` of its driver."""


def driver_for(family: str) -> FaultDriver:
    """A driver instance for a fault family; imported lazily (docker and asyncpg are heavy)."""
    target = DRIVER_MODULES.get(family)
    if target is None:
        raise FaultError(f"no driver for fault family {family!r}")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    driver_cls = getattr(module, attr)
    driver: FaultDriver = driver_cls()
    return driver


__all__ = ["DRIVER_MODULES", "FaultContext", "FaultDriver", "LedgerRecord", "ServiceControl", "driver_for"]
