"""Load-generator benchmark: chaoslab vs wrk vs Locust FastHttpUser against nginx, in one run.

    .venv/bin/python -m benchmarks.loadgen.run [--duration 10] [--repeats 3] [--out results.json]

nginx (``return 200``, one worker, no master) is pinned to core 0; every generator runs as its own
process pinned to core 1, one at a time, 50 keep-alive connections (users for Locust). Steps:

1. max: each tool as fast as it goes (chaoslab: an open-loop rate 15 % above its ceiling, found
   by 3 s runs at rising rates until it no longer keeps up, so achieved = its ceiling),
   ``--repeats`` rounds interleaved; the median is reported, with CPU µs per request from the
   kernel's accounting of the child, start-up removed (a long run minus a short run), and for
   chaoslab also as it measures its run itself.
2. accuracy: chaoslab at 25/50/75/90 % of its median max: offered vs achieved, p50/p99 and the
   windows it flagged saturated.
3. stall: chaoslab at 2,000 req/s for 20 s while nginx is frozen (SIGSTOP) for 1 s; the p99 over
   the run must include the freeze. Locust's ``constant_throughput`` at the same rate for
   comparison.

Only 127.0.0.1; every run is bounded in time; nginx is ended by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.peers import nginx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONNECTIONS = 50


def run_child(cmd: list[str], timeout_s: float, env: dict[str, str] | None = None) -> tuple[str, float]:
    """Run a pinned child to completion; its stdout and the CPU seconds the kernel charged it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["taskset", "-c", "1", *cmd], capture_output=True, text=True, timeout=timeout_s, env=env, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({out.returncode}): {out.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out.stdout, cpu


def chaoslab(url: str, rate: float, duration: float, max_in_flight: int = 2000) -> dict[str, Any]:
    """One chaoslab generator run in its own process."""
    cmd = [
        sys.executable, "-m", "benchmarks.loadgen.chaoslab_worker", "--url", url, "--rate", str(rate),
        "--duration", str(duration), "--connections", str(CONNECTIONS), "--max-in-flight", str(max_in_flight),
    ]  # fmt: skip
    stdout, cpu = run_child(cmd, duration + 60)
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["process_cpu_us_per_request"] = 1e6 * cpu / max(result["ok"], 1)
    result["process_cpu_s"] = cpu
    result["requests"] = result["completed"]
    return result


def wrk(url: str, duration: float) -> dict[str, Any]:
    """wrk, one thread, 50 connections."""
    stdout, cpu = run_child(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{int(duration)}s", url], duration + 30)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", stdout).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", stdout).group(1))  # type: ignore[union-attr]
    return {
        "achieved_per_s": rate,
        "ok": total,
        "requests": total,
        "process_cpu_s": cpu,
        "process_cpu_us_per_request": 1e6 * cpu / max(total, 1),
    }


def locust(url: str, duration: float, per_user_rate: float | None = None) -> dict[str, Any]:
    """Locust FastHttpUser headless, one process, 50 users spawned at once."""
    with tempfile.TemporaryDirectory(prefix="chaoslab-bench-locust-") as tmp:
        env = dict(os.environ)
        if per_user_rate is not None:
            env["BENCH_PER_USER_RATE"] = str(per_user_rate)
        cmd = [
            sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
            "-u", str(CONNECTIONS), "-r", "1000", "-t", f"{int(duration)}s", "--host", url.rstrip("/"),
            "--csv", f"{tmp}/loc", "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "2",
        ]  # fmt: skip
        _, cpu = run_child(cmd, duration + 60, env=env)
        lines = Path(f"{tmp}/loc_stats.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = dict(zip(header, next(line for line in lines if ",Aggregated," in line).split(","), strict=False))
    count = int(row["Request Count"])
    return {
        "achieved_per_s": count / duration,
        "ok": count - int(row["Failure Count"]),
        "p50_ms": _number(row["50%"]),
        "p99_ms": _number(row["99%"]),
        "process_cpu_us_per_request": 1e6 * cpu / max(count, 1),
        "process_cpu_s": cpu,
        "requests": count,
    }


def _number(text: str) -> float | None:
    """A CSV figure, or None for Locust's ``N/A`` (no requests)."""
    try:
        return float(text)
    except ValueError:
        return None


def freeze_later(pid: int, at_s: float, for_s: float) -> threading.Thread:
    """Freeze a process (SIGSTOP) at ``at_s`` from now for ``for_s``, in a thread."""

    def freeze() -> None:
        time.sleep(at_s)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(for_s)
        os.kill(pid, signal.SIGCONT)

    thread = threading.Thread(target=freeze, daemon=True)
    thread.start()
    return thread


def main() -> None:
    """Run the three steps and print a Markdown summary (and JSON with ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--skip-locust", action="store_true")
    args = parser.parse_args()
    for tool in ("nginx", "wrk", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install -y nginx-light wrk util-linux")
    os.chdir(ROOT)
    results: dict[str, Any] = {"max": {"chaoslab": [], "wrk": [], "locust": []}, "load_before": os.getloadavg()}
    with nginx(core=0) as (url, nginx_pid):
        # 1. max, interleaved rounds so that drift in the machine's load hits every tool alike. An
        # open-loop generator's ceiling is measured just above it (1.15 × a short overload run):
        # far above it, counting the requests it cannot send would eat into what it sends.
        calibration = ceiling_search(url, results)
        # Short runs give each tool's start-up cost, so that CPU per request can be marginal:
        # (CPU of a long run − CPU of a short run) / (requests of the long − of the short).
        short_s = 3.0
        results["short"] = {"chaoslab": chaoslab(url, round(calibration * 1.15), short_s), "wrk": wrk(url, short_s)}
        if not args.skip_locust:
            results["short"]["locust"] = locust(url, short_s)
        for round_ in range(args.repeats):
            print(f"round {round_ + 1}/{args.repeats}", file=sys.stderr)
            results["max"]["chaoslab"].append(chaoslab(url, round(calibration * 1.15), args.duration))
            results["max"]["wrk"].append(wrk(url, args.duration))
            if not args.skip_locust:
                results["max"]["locust"].append(locust(url, args.duration))
        medians = {
            tool: statistics.median(r["achieved_per_s"] for r in runs) for tool, runs in results["max"].items() if runs
        }
        cpu_medians = {
            tool: statistics.median(marginal_cpu_us(r, results["short"][tool]) for r in runs)
            for tool, runs in results["max"].items()
            if runs
        }
        results["max_median_per_s"] = medians
        results["cpu_us_per_request_median"] = cpu_medians
        # 2. accuracy at fractions of chaoslab's max
        results["accuracy"] = []
        for fraction in (0.25, 0.5, 0.75, 0.9):
            rate = round(medians["chaoslab"] * fraction)
            print(f"accuracy at {fraction:.0%} = {rate}/s", file=sys.stderr)
            run = chaoslab(url, rate, args.duration)
            run["fraction"] = fraction
            results["accuracy"].append(run)
        # 3. the stall: nginx frozen for 1 s in the middle of a 20 s run at 2,000 req/s
        print("stall", file=sys.stderr)
        freezer = freeze_later(nginx_pid, 10.0, 1.0)
        results["stall_chaoslab"] = chaoslab(url, 2000, 20.0, max_in_flight=5000)
        freezer.join()
        if not args.skip_locust:
            freezer = freeze_later(nginx_pid, 10.0, 1.0)
            results["stall_locust"] = locust(url, 20.0, per_user_rate=2000 / CONNECTIONS)
            freezer.join()
    results["load_after"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    print(summary(results))


def ceiling_search(url: str, results: dict[str, Any]) -> float:
    """chaoslab's ceiling: an overload run, then 3 s runs at rising rates while it keeps up (±2 %)."""
    best = chaoslab(url, 60_000, 3.0)["achieved_per_s"]
    steps = [{"offered": 60_000, "achieved": best}]
    rate = best * 1.15
    for _ in range(6):
        run = chaoslab(url, round(rate), 3.0)
        steps.append({"offered": round(rate), "achieved": run["achieved_per_s"]})
        best = max(best, run["achieved_per_s"])
        if run["achieved_per_s"] < 0.98 * rate:
            break
        rate *= 1.25
    results["calibration_steps"] = steps
    results["calibration_per_s"] = best
    return best


def marginal_cpu_us(long: dict[str, Any], short: dict[str, Any]) -> float:
    """CPU µs per request without start-up: the difference between a long and a short run."""
    requests = long["requests"] - short["requests"]
    if requests <= 0:
        return float("nan")
    return 1e6 * (long["process_cpu_s"] - short["process_cpu_s"]) / requests


def summary(results: dict[str, Any]) -> str:
    """The figures as Markdown tables."""
    med = results["max_median_per_s"]
    cpu = results["cpu_us_per_request_median"]
    lines = [
        "| generator (core 1) | max req/s (median) | runs | CPU µs/request (marginal) | CPU µs/request (run) |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for tool, runs in results["max"].items():
        if runs:
            rates = ", ".join(f"{r['achieved_per_s']:,.0f}" for r in runs)
            run_cpu_text = "–"
            if "cpu_us_per_request" in runs[0]:
                run_cpu_text = f"{statistics.median(r['cpu_us_per_request'] for r in runs):.1f}"
            lines.append(f"| {tool} | {med[tool]:,.0f} | {rates} | {cpu[tool]:.1f} | {run_cpu_text} |")
    if "locust" in med:
        lines.append("")
        lines.append(
            f"chaoslab / Locust FastHttpUser: {med['chaoslab'] / med['locust']:.2f}× req/s, "
            f"{cpu['locust'] / cpu['chaoslab']:.2f}× less CPU per request"
        )
    lines.append(f"chaoslab / wrk: {med['chaoslab'] / med['wrk']:.2f}× req/s")
    lines += [
        "",
        "| fraction of max | offered req/s | achieved req/s | achieved/offered | unsent | p50 ms | p99 ms "
        "| saturated windows |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in results["accuracy"]:
        lines.append(
            f"| {run['fraction']:.0%} | {run['rate']:,.0f} | {run['achieved_per_s']:,.1f} | "
            f"{run['achieved_per_s'] / run['rate']:.4f} | {run['unsent']} | {run['p50_ms']:.2f} | "
            f"{run['p99_ms']:.2f} | "
            f"{run['saturated_windows']}/{run['windows']} |"
        )
    stall = results["stall_chaoslab"]
    lines += [
        "",
        f"stall (2,000 req/s, 20 s, nginx frozen 1 s): chaoslab p99 {stall['p99_ms']:.0f} ms, p99.9 "
        f"{stall['p999_ms']:.0f} ms, max {stall['max_ms']:.0f} ms, worst window p99 "
        f"{max(p for p in stall['window_p99_ms'] if p is not None):.0f} ms; offered {stall['offered']}, "
        f"ok {stall['ok']}, unsent {stall['unsent']}",
    ]
    if "stall_locust" in results:
        loc = results["stall_locust"]
        lines.append(
            f"Locust constant_throughput at 2,000 req/s: p99 {loc['p99_ms'] or 0:.0f} ms, "
            f"achieved {loc['achieved_per_s']:,.0f} req/s"
        )
    lines.append(f"load average before/after: {results['load_before'][0]:.2f} / {results['load_after'][0]:.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
