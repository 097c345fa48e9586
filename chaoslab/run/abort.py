"""Abort conditions: a pure monitor fed with observations, deciding when to stop a run early.

>>> monitor = AbortMonitor(rules)                                  # doctest: +SKIP
>>> monitor.observe(12.0, error_rates={"api:documents": 0.8}, health={}, disk_used={})  # doctest: +SKIP
'error rate of api:documents 80% > 50% for 10s'
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chaoslab.model.experiment import AbortSpec, ErrorRateAbort, HostDiskAbort, UnhealthyAbort
from chaoslab.units import format_duration


@dataclass
class AbortMonitor:
    """Tracks how long each abort rule has been breached; returns the reason once one trips."""

    rules: Sequence[AbortSpec]
    _since: dict[tuple[int, str], float] = field(default_factory=dict)

    def observe(
        self,
        t_s: float,
        *,
        error_rates: Mapping[str, float | None],
        health: Mapping[str, bool | None],
        disk_used: Mapping[str, float],
    ) -> str | None:
        """Feed the latest observations at run time ``t_s``; the reason to abort, or None."""
        for index, rule in enumerate(self.rules):
            for key, breached, what in self._breaches(rule, error_rates, health, disk_used):
                slot = (index, key)
                if not breached:
                    self._since.pop(slot, None)
                    continue
                since = self._since.setdefault(slot, t_s)
                if t_s - since >= rule.for_:
                    return what
        return None

    def _breaches(
        self,
        rule: AbortSpec,
        error_rates: Mapping[str, float | None],
        health: Mapping[str, bool | None],
        disk_used: Mapping[str, float],
    ) -> list[tuple[str, bool, str]]:
        if isinstance(rule, ErrorRateAbort):
            out = []
            for signal, rate in error_rates.items():
                if rule.signal is not None and not fnmatch.fnmatchcase(signal, rule.signal):
                    continue
                breached = rate is not None and rate > rule.above
                out.append(
                    (
                        signal,
                        breached,
                        f"error rate of {signal} {0 if rate is None else rate * 100:.0f}% > "
                        f"{rule.above * 100:g}% for {format_duration(rule.for_)}",
                    )
                )
            return out
        if isinstance(rule, UnhealthyAbort):
            state = health.get(rule.service)
            return [(rule.service, state is False, f"{rule.service} unhealthy for {format_duration(rule.for_)}")]
        if isinstance(rule, HostDiskAbort):
            used = disk_used.get(rule.path)
            return [
                (
                    rule.path,
                    used is not None and used > rule.above,
                    f"filesystem of {rule.path} {0 if used is None else used * 100:.1f}% used > {rule.above * 100:g}%",
                )
            ]
        return []
