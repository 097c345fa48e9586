"""A Locust ``LoadTestShape`` that follows chaoslab's profile on chaoslab's run clock (runs on the master).

Users = ``locust.users`` × the profile's multiple at the current run offset (constant, ramp,
step, spike, soak), 0 before the load's start; at the load's end the shape returns None and
the headless master stops the swarm. Imports Locust: only for locustfiles.
"""

from __future__ import annotations

import time

from locust import LoadTestShape

from chaoslab.load.locust import plugin


class ChaoslabShape(LoadTestShape):
    """Users over time from chaoslab's profile; stops the test at the load's end."""

    def tick(self) -> tuple[int, float] | None:
        """``(users, spawn rate)`` now, or None to stop."""
        cfg = plugin.config()
        if cfg is None:
            return None
        users = cfg.users_at(time.time() - cfg.t0_wall)
        if users is None:
            return None
        return users, cfg.spawn_rate
