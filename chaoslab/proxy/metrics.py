"""Toxiproxy's per-proxy byte counters in the Prometheus text format (``--proxy-metrics``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinkLabels:
    """The label set of one counter series."""

    direction: str
    listener: str
    proxy: str
    upstream: str

    def render(self) -> str:
        """``{direction="…",listener="…",proxy="…",upstream="…"}``."""
        pairs = (
            ("direction", self.direction),
            ("listener", self.listener),
            ("proxy", self.proxy),
            ("upstream", self.upstream),
        )
        return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class ProxyMetrics:
    """Received/sent byte totals per link label set, added once per link when it ends (as Toxiproxy does)."""

    def __init__(self) -> None:
        self.received_bytes: defaultdict[LinkLabels, int] = defaultdict(int)
        self.sent_bytes: defaultdict[LinkLabels, int] = defaultdict(int)

    def add(self, labels: LinkLabels, received_bytes: int, sent_bytes: int) -> None:
        """Count one finished link."""
        self.received_bytes[labels] += received_bytes
        self.sent_bytes[labels] += sent_bytes

    def render(self) -> str:
        """The exposition text."""
        lines: list[str] = []
        for metric, series, text in (
            (
                "toxiproxy_proxy_received_bytes_total",
                self.received_bytes,
                "Bytes received from the source",
            ),
            ("toxiproxy_proxy_sent_bytes_total", self.sent_bytes, "Bytes sent to the destination"),
        ):
            lines.append(f"# HELP {metric} {text}")
            lines.append(f"# TYPE {metric} counter")
            for labels in sorted(series, key=lambda item: item.render()):
                lines.append(f"{metric}{labels.render()} {series[labels]}")
        return "\n".join(lines) + "\n"
