"""Locust's FastHttpUser for the load-generator benchmark: as fast as possible, or paced per user.

Run by ``benchmarks/loadgen/run.py`` in its own process (Locust monkey-patches the standard
library with gevent). ``BENCH_PER_USER_RATE`` set: each user paces itself with
``constant_throughput`` (Locust's closest thing to an open-loop rate); unset: no wait at all.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, constant_throughput, task


class Bench(FastHttpUser):
    """GET / in a loop."""

    _rate = os.environ.get("BENCH_PER_USER_RATE")
    wait_time = constant_throughput(float(_rate)) if _rate else constant(0)

    @task
    def get(self) -> None:
        """One request."""
        self.client.get("/")
