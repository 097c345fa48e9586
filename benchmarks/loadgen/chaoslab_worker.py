"""One chaoslab load-generator run in its own process (the benchmark pins it to a core); prints JSON.

python -m benchmarks.loadgen.chaoslab_worker --url http://127.0.0.1:8089/ --rate 5000 --duration 10
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import uvloop

from chaoslab.clock import RunClock
from chaoslab.load.generator import LoadGenerator
from chaoslab.load.histogram import LatencyHistogram
from chaoslab.load.recorder import Recorder
from chaoslab.model.experiment import LoadSpec
from chaoslab.timeline import ErrorClass, SignalKind


class WholeRunRecorder(Recorder):
    """A recorder that also keeps one histogram over the whole run (for a run-level p99)."""

    def __init__(self, window_s: float, clock: RunClock) -> None:
        super().__init__(window_s, clock)
        self.whole = LatencyHistogram()

    def record(
        self,
        signal: str,
        intended_s: float,
        done_s: float,
        error: ErrorClass | None,
        *,
        kind: SignalKind = SignalKind.LOAD,
        service: str | None = None,
    ) -> None:
        """Record into the window and into the whole-run histogram."""
        self.whole.record(int((done_s - intended_s) * 1e6))
        super().record(signal, intended_s, done_s, error, kind=kind, service=service)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """One open-loop run; the figures as plain data."""
    spec = LoadSpec.model_validate(
        {
            "rate": f"{args.rate}/s",
            "connections": args.connections,
            "max_in_flight": args.max_in_flight,
            "mix": [{"name": "get", "url": args.url, "timeout": "5s"}],
        }
    )
    clock = RunClock()
    recorder = WholeRunRecorder(1.0, clock)
    generator = LoadGenerator(spec, {}, recorder, clock, client=args.client)
    start_s = 0.2
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    await generator.run(start_s, start_s + args.duration)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    windows = recorder.signals()["get"].windows
    # Skip the first window (connections opening) for the steady figures.
    steady = [w for w in windows if w.index >= 1 + int(start_s)]
    ok = sum(w.ok for w in windows)
    errors: dict[str, int] = {}
    for w in windows:
        for name, count in w.errors.items():
            errors[name] = errors.get(name, 0) + count
    gen = generator.generator_windows()
    p50, p99, p999 = recorder.whole.percentiles(50, 99, 99.9)
    return {
        "client": args.client,
        "rate": args.rate,
        "duration_s": args.duration,
        "offered": sum(w.offered for w in windows),
        "unsent": sum(w.unsent for w in windows),
        "completed": sum(w.count for w in windows),
        "ok": ok,
        "errors": errors,
        "achieved_per_s": ok / args.duration,
        "steady_achieved_per_s": (sum(w.ok for w in steady) / len(steady)) if steady else None,
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
        "p999_ms": p999 / 1000,
        "max_ms": recorder.whole.max_us / 1000,
        "window_p99_ms": [w.p99_ms for w in windows],
        "saturated_windows": sum(1 for g in gen if g.saturated),
        "windows": len(gen),
        "gen_cpu_percent": [g.cpu_percent for g in gen],
        "lag_p99_ms": [g.lag_p99_ms for g in gen],
        "cpu_s": cpu,
        "wall_s": wall,
        "cpu_us_per_request": 1e6 * cpu / max(ok, 1),
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main() -> None:
    """Parse arguments, run, print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--max-in-flight", type=int, default=2000)
    parser.add_argument("--client", choices=["lean", "aiohttp"], default="lean")
    args = parser.parse_args()
    print(json.dumps(uvloop.run(run(args))))


if __name__ == "__main__":
    main()
