"""Requests per second: a Locust swarm (1 and 2 local workers) vs chaoslab's built-in generator, one run.

    .venv/bin/python -m benchmarks.locust.bench [--duration 10] [--repeats 3] [--users 50] [--out results.json]

Target: nginx (``return 200``, one worker) on 127.0.0.1 in a temporary prefix, ended by its PID.
Each round runs, one after the other and interleaved across rounds:

- ``builtin``: chaoslab's open-loop generator in this process, asked for far more than it can send
  (20,000 req/s, 50 connections, at most 200 in flight), so what it completes is its ceiling;
- ``locust-1`` / ``locust-2``: chaoslab's Locust engine (master + 1 or 2 local workers,
  ``--users`` FastHttpUsers with no pacing), started and measured through the harness exactly as
  ``load.engine: locust`` runs it.

Figures are completed requests per second over the steady part of the load (from 1 s after the
swarm started, to 0.5 s before the end) as the timeline counts them; the median of ``--repeats``
rounds is reported with the ratio to the built-in generator measured in the same run. Nothing is
pinned: on a 2-core machine nginx, the master and the workers share both cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.peers import nginx
from chaoslab.clock import RunClock
from chaoslab.load.generator import LoadGenerator
from chaoslab.load.locust.runner import LocustLoadGenerator
from chaoslab.load.recorder import Recorder
from chaoslab.model.experiment import LoadSpec

WINDOW_S = 0.5


def steady_rate(recorder: Recorder, from_s: float, to_s: float) -> tuple[float, int]:
    """Completed requests per second over whole windows inside [from_s, to_s), and their count."""
    count = 0
    for signal_ in recorder.signals().values():
        for w in signal_.windows:
            if from_s <= w.start_s and w.start_s + WINDOW_S <= to_s:
                count += w.count
    first = int(-(-from_s // WINDOW_S))
    last = int(to_s // WINDOW_S)
    windows = max(last - first, 1)
    return count / (windows * WINDOW_S), count


async def builtin(url: str, duration_s: float) -> dict[str, Any]:
    """The built-in generator, overloaded: what it completes is its ceiling."""
    spec = LoadSpec.model_validate(
        {"rate": "20000/s", "connections": 50, "max_in_flight": 200, "mix": [{"name": "r", "url": url}]}
    )
    clock = RunClock()
    recorder = Recorder(WINDOW_S, clock)
    cpu0 = time.process_time()
    await LoadGenerator(spec, {}, recorder, clock).run(0.0, duration_s)
    cpu_s = time.process_time() - cpu0
    rate, count = steady_rate(recorder, 1.0, duration_s - 0.5)
    total = sum(w.count for s in recorder.signals().values() for w in s.windows)
    return {"req_per_s": rate, "requests": count, "cpu_us_per_request": 1e6 * cpu_s / max(total, 1)}


async def swarm(url: str, duration_s: float, workers: int, users: int) -> dict[str, Any]:
    """chaoslab's Locust engine with ``workers`` local workers and unpaced users."""
    spec = LoadSpec.model_validate(
        {
            "engine": "locust",
            "rate": f"{users * 10_000}/s",  # 10,000 task starts per user per second: no pacing wait at all
            "mix": [{"name": "r", "url": url}],
            "locust": {"workers": workers, "users": users, "spawn_rate": 1000},
        }
    )
    clock = RunClock()
    recorder = Recorder(WINDOW_S, clock)
    gen = LocustLoadGenerator(spec, {}, recorder, clock)
    task = asyncio.create_task(gen.run(0.0, 600.0))
    await asyncio.wait_for(gen.started.wait(), 60)
    started_s = clock.elapsed()
    await asyncio.sleep(duration_s)
    end_s = clock.elapsed()
    gen.finish()
    await task
    rate, count = steady_rate(recorder, started_s + 1.0, end_s - 0.5)
    # the workers' own CPU (what they report with their tallies), per request they completed
    cpu_us = 1e6 * gen.collector.cpu_s / max(gen.collector.requests, 1)
    return {"req_per_s": rate, "requests": count, "startup_s": started_s, "cpu_us_per_request": cpu_us}


async def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {"builtin": [], "locust-1": [], "locust-2": []}
    load_before = os.getloadavg()
    with nginx() as (url, _nginx_pid):
        for round_ in range(args.repeats):
            results["builtin"].append(await builtin(url, args.duration))
            results["locust-1"].append(await swarm(url, args.duration, 1, args.users))
            results["locust-2"].append(await swarm(url, args.duration, 2, args.users))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]['req_per_s']:.0f}/s" for k, v in results.items()))
    med = {k: statistics.median(r["req_per_s"] for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r["cpu_us_per_request"] for r in v) for k, v in results.items()}
    print(f"\ncpus {os.cpu_count()}, load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}")
    print("| load | req/s (median) | vs built-in | generator CPU µs per request |\n| --- | ---: | ---: | ---: |")
    for name, rate in med.items():
        print(f"| {name} | {rate:,.0f} | {rate / med['builtin']:.2f}× | {cpu[name]:.0f} |")
    if args.out:
        summary = {"median": med, "cpu_us_per_request": cpu, "rounds": results, "load_before": load_before}
        args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()  # as `chaoslab run` does
    except ImportError:
        pass
    asyncio.run(main())
