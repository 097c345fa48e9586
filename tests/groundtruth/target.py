"""Ground truth: a controllable HTTP service that logs, itself, the moments it degrades and recovers.

Run as ``python target.py --port P --control FILE [--log FILE] [...]``. The control file (JSON,
re-read every 20 ms) schedules degradations in wall-clock time::

    {"a": [{"from": 1700000000.0, "until": 1700000004.5, "mode": "error", "status": 500}],
     "b": [{"from": 1700000001.0, "until": 1700000006.0, "mode": "slow", "delay_ms": 400}]}

Endpoints: ``/a``, ``/b``, ``/c`` and ``/health`` (which can be scheduled too). ``/count``
returns how many requests each endpoint served.

Recovery behaviours a test can switch on, each a known piece of truth:

- ``--restart-delay S --marker FILE``: every start after the first (the marker file tells) waits
  ``S`` seconds before it listens, like a service with a slow start-up;
- ``--warm-tail S``: after ``--cold-gap`` seconds without a request to ``/a``, ``/b`` or ``/c``
  (a link that was down), the service answers 503 to them for ``S`` seconds from the first
  request that comes back, like a cache warming up.

With ``--log FILE`` the service appends one JSON line per moment, in wall-clock seconds, so a
test compares chaoslab's figures with the service's own account: ``ready`` (listening),
``state`` (an endpoint served its first request in a new state, ``degraded`` or ``ok``, with
the request's arrival time), ``cold`` and ``warm`` (when the warm-up began and when it ended).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from aiohttp import web

ENDPOINTS = ("a", "b", "c", "health")
LOADED = ("a", "b", "c")


class Target:
    """The service's state: the schedule, per-endpoint counters, the warm-up and the truth log."""

    def __init__(self, control: Path, *, log: Path | None = None, warm_tail_s: float = 0.0, cold_gap_s: float = 0.5):
        self.control = control
        self.schedule: dict[str, list[dict[str, Any]]] = {}
        self.counts = dict.fromkeys(ENDPOINTS, 0)
        self._mtime = 0.0
        self.log_path = log
        self.warm_tail_s = warm_tail_s
        self.cold_gap_s = cold_gap_s
        self.last_loaded: float | None = None
        self.warm_until: float | None = None
        self.states: dict[str, str] = {}

    def note(self, event: str, t: float, **data: Any) -> None:
        """Append one moment to the truth log."""
        if self.log_path is None:
            return
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"event": event, "t": t, "pid": os.getpid(), **data}) + "\n")

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

    def warming(self, endpoint: str, now: float) -> bool:
        """Whether a request to ``endpoint`` now falls in a warm-up after a quiet spell."""
        if self.warm_tail_s <= 0 or endpoint not in LOADED:
            return False
        if self.last_loaded is not None and now - self.last_loaded >= self.cold_gap_s:
            self.warm_until = now + self.warm_tail_s
            self.note("cold", now, quiet_s=now - self.last_loaded)
            self.note("warm", self.warm_until)
        self.last_loaded = now
        return self.warm_until is not None and now < self.warm_until

    def served(self, endpoint: str, state: str, now: float) -> None:
        """Log the first request an endpoint serves in a new state."""
        if self.states.get(endpoint, "ok") != state:
            self.note("state", now, endpoint=endpoint, state=state)
        self.states[endpoint] = state

    async def handle(self, request: web.Request) -> web.Response:
        """Serve one endpoint, degraded when the schedule or a warm-up says so."""
        now = time.time()
        endpoint = request.match_info.get("name", "health")
        if endpoint not in self.counts:
            raise web.HTTPNotFound()
        self.counts[endpoint] += 1
        if self.warming(endpoint, now):
            self.served(endpoint, "degraded", now)
            return web.json_response({"status": "warming up"}, status=503)
        degradation = self.active(endpoint, now)
        self.served(endpoint, "ok" if degradation is None else "degraded", now)
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


async def serve(args: argparse.Namespace) -> None:
    """Start listening (after the restart delay on a restart), log ``ready``, and serve until SIGTERM."""
    target = Target(args.control, log=args.log, warm_tail_s=args.warm_tail, cold_gap_s=args.cold_gap)
    if args.marker is not None:
        if args.marker.exists():
            target.note("starting", time.time(), delay_s=args.restart_delay)
            await asyncio.sleep(args.restart_delay)
        else:
            args.marker.write_text("started once\n")
    app = web.Application()
    app.router.add_get("/health", target.handle)
    app.router.add_get("/count", target.count)
    app.router.add_get("/{name}", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    target.note("ready", time.time())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    poll = asyncio.create_task(_poll(target))
    try:
        await stop.wait()
    finally:
        poll.cancel()
        await runner.cleanup()


def main() -> None:
    """Parse arguments and serve until stopped."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control", type=Path, required=True)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--marker", type=Path)
    parser.add_argument("--restart-delay", type=float, default=0.0)
    parser.add_argument("--warm-tail", type=float, default=0.0)
    parser.add_argument("--cold-gap", type=float, default=0.5)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
