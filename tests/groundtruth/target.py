"""Ground truth: a controllable HTTP service whose endpoints degrade and recover at set times.

Run as ``python target.py --port P --control FILE``. The control file (JSON, re-read every
20 ms) schedules degradations in wall-clock time, so a test knows exactly when each endpoint
was really unhealthy and can compare chaoslab's measured recovery time and cascade order
against it::

    {"a": [{"from": 1700000000.0, "until": 1700000004.5, "mode": "error", "status": 500}],
     "b": [{"from": 1700000001.0, "until": 1700000006.0, "mode": "slow", "delay_ms": 400}]}

Endpoints: ``/a``, ``/b``, ``/c`` and ``/health`` (which can be scheduled too). ``/count``
returns how many requests each endpoint served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web

ENDPOINTS = ("a", "b", "c", "health")


class Target:
    """The service's state: the schedule and per-endpoint counters."""

    def __init__(self, control: Path) -> None:
        self.control = control
        self.schedule: dict[str, list[dict[str, Any]]] = {}
        self.counts = dict.fromkeys(ENDPOINTS, 0)
        self._mtime = 0.0

    def reload(self) -> None:
        """Re-read the control file when it changed."""
        try:
            mtime = self.control.stat().st_mtime
        except FileNotFoundError:
            self.schedule = {}
            return
        if mtime != self._mtime:
            try:
                self.schedule = json.loads(self.control.read_text())
                self._mtime = mtime
            except ValueError:
                pass  # half-written; the next poll reads it whole

    def active(self, endpoint: str, now: float) -> dict[str, Any] | None:
        """The degradation in force for an endpoint at wall time ``now``."""
        for item in self.schedule.get(endpoint, ()):
            if float(item["from"]) <= now < float(item["until"]):
                return item
        return None

    async def handle(self, request: web.Request) -> web.Response:
        """Serve one endpoint, degraded when the schedule says so."""
        endpoint = request.match_info.get("name", "health")
        if endpoint not in self.counts:
            raise web.HTTPNotFound()
        self.counts[endpoint] += 1
        degradation = self.active(endpoint, time.time())
        if degradation is not None:
            if degradation.get("mode") == "slow":
                await asyncio.sleep(float(degradation.get("delay_ms", 300)) / 1000)
            else:
                return web.json_response({"status": "degraded"}, status=int(degradation.get("status", 500)))
        return web.json_response({"status": "ok", "endpoint": endpoint})

    async def count(self, request: web.Request) -> web.Response:
        """Requests served per endpoint."""
        return web.json_response(self.counts)


async def _poll(target: Target) -> None:
    while True:
        target.reload()
        await asyncio.sleep(0.02)


def main() -> None:
    """Parse arguments and serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control", type=Path, required=True)
    args = parser.parse_args()
    target = Target(args.control)
    app = web.Application()
    app.router.add_get("/health", target.handle)
    app.router.add_get("/count", target.count)
    app.router.add_get("/{name}", target.handle)

    async def start_poll(app: web.Application) -> Any:
        task = asyncio.create_task(_poll(target))
        yield
        task.cancel()

    app.cleanup_ctx.append(start_poll)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
