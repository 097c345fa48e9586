"""Fault drivers, one module per family; :mod:`chaoslab.faults.registry` maps each kind to its driver.

The family modules (``toxiproxy``, ``process``, ``container``, ``pool``, ``disk``, ``pressure``)
each declare a ``FAMILY``: their fault models, their driver and their ledger record type.
Importing this package imports none of them (docker and asyncpg are heavy); the registry does.
"""

from __future__ import annotations

from chaoslab.faults.base import AnyDriver, FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.system.processes import ServiceControl

__all__ = ["AnyDriver", "FaultContext", "FaultDriver", "FaultFamily", "LedgerRecord", "ServiceControl"]
