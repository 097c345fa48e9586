"""What the harness tells the Locust processes: the run's clock anchor, windows, users and mix.

The configuration is one JSON document. Local processes read it from the file named by the
``CHAOSLAB_LOCUST_CONFIG`` environment variable; the master also sends it to every worker with
a custom message when the test starts, so remote workers need nothing but the locustfile.
Pure: no Locust import.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from chaoslab.load.profiles import Profile

CONFIG_ENV = "CHAOSLAB_LOCUST_CONFIG"
"""Environment variable naming the JSON configuration file of a local master or worker."""

LINE_PREFIX = "@@chaoslab "
"""Prefix of the master's JSON lines on stdout (Locust prints its own stats there too); plain ASCII, as
control characters such as the record separator split lines in ``str.splitlines``."""

MSG_CONFIG = "chaoslab_config"
"""Custom message master → workers: the configuration."""

MSG_WINDOWS = "chaoslab_windows"
"""Custom message worker → master: per-window, per-request-class tallies."""


@dataclass(frozen=True, slots=True)
class MixEntry:
    """One request class of the generated locustfile, with its URL and headers already resolved."""

    name: str
    signal: str
    weight: float
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    body: str | None = None
    timeout_s: float = 5.0
    expect_status: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SwarmConfig:
    """Everything the plugin, the shape and the generated users need, as plain JSON data."""

    t0_wall: float
    """``time.time()`` at run offset 0: request start times (wall clock) map to run offsets with it."""
    window_s: float
    start_s: float
    end_s: float
    users: int
    spawn_rate: float
    profile_points: tuple[tuple[float, float], ...]
    """The profile's ``(t_s, multiplier)`` breakpoints (see :class:`chaoslab.load.profiles.Profile`)."""
    profile_linear: bool
    base_rate: float
    mix: tuple[MixEntry, ...]
    extra_headers: dict[str, str] = field(default_factory=dict)
    owner_pid: int | None = None
    """The harness's PID: a local Locust process whose parent changes (the harness died) quits."""
    flush_interval_s: float = 0.25
    seed: int | None = None
    drain_s: float = 0.0
    """After ``end_s`` the shape holds 0 users this long (their last requests finish and are sent) before it stops."""

    def signal_of(self, name: str) -> str:
        """The signal a Locust request name records into (the name itself when not in the mix)."""
        for entry in self.mix:
            if entry.name == name:
                return entry.signal
        return name

    def expect_of(self, name: str) -> tuple[int, ...]:
        """The statuses that count as success for a request name (empty: any status below 400)."""
        for entry in self.mix:
            if entry.name == name:
                return entry.expect_status
        return ()

    def to_json(self) -> str:
        """The configuration as one JSON document."""
        return json.dumps(asdict(self))

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SwarmConfig:
        """Rebuild a configuration from :meth:`to_json`'s data."""
        mix = tuple(
            MixEntry(**{**m, "expect_status": tuple(m.get("expect_status") or ())}) for m in data.get("mix", ())
        )
        points = tuple((float(a), float(b)) for a, b in data["profile_points"])
        return cls(**{**data, "mix": mix, "profile_points": points})

    @classmethod
    def from_json(cls, text: str) -> SwarmConfig:
        """Parse :meth:`to_json`'s output."""
        return cls.from_data(json.loads(text))

    def multiplier_at(self, t_s: float) -> float:
        """The profile's multiple of the base rate at run offset ``t_s`` (computed by :class:`Profile`)."""
        return Profile("locust", 1.0, self.profile_points, self.profile_linear).multiplier_at(t_s)

    def users_at(self, t_s: float) -> int | None:
        """How many users the swarm should run at run offset ``t_s``: ``users`` × the profile's multiple.

        0 before the load starts and for ``drain_s`` after its end, None then (the shape stops the
        test). A positive multiple never rounds down to no user at all.
        """
        if t_s >= self.end_s + self.drain_s:
            return None
        if t_s < self.start_s or t_s >= self.end_s:
            return 0
        wanted = self.users * self.multiplier_at(t_s)
        if wanted <= 0:
            return 0
        return max(1, math.floor(wanted + 0.5))

    def per_user_rate(self) -> float:
        """Requests per second one user of the generated locustfile aims at (``rate / users``)."""
        return self.base_rate / self.users
