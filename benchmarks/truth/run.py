"""False alarms and recovery-time error: chaoslab's figures against known truths, many times over.

    .venv/bin/python -m benchmarks.truth.run [--demo-runs 20] [--truth-repeats 5] [--out results.json]

1. **Demo** (false alarms): ``--demo-runs`` no-op runs (``cascade-vector-latency --quick`` with a
   0 ms latency) and as many contained-fault runs (the same experiment, 800 ms on api→vector,
   ``mode=resilient``: the api's bulkheads and breaker keep the fault on ``api:search``), one
   after the other on the demo system, on ports of their own, under whatever else this shared
   machine is doing. Any cascade is a false cascade, any ``fail`` a false fail (goal: 0 of each);
   ``inconclusive`` runs are counted apart (the harness said it could not deliver).
2. **Truth** (error): each ground-truth scenario of ``tests/run/truth_scenarios.py`` (latency
   removed, link down with a 2 s warm-up, a kill restarted by chaoslab and by a supervisor, two
   signals 150 ms apart, a no-op) ``--truth-repeats`` times: chaoslab's recovery, impact and onset
   figures minus the target's own log, and whether each verdict was right.

Every run is recorded in the output JSON; ``--markdown`` prints the README's tables from it.
Only 127.0.0.1; each run is bounded (a 5-minute timeout) and leaves nothing running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 300.0
PORT_PARAMETERS = ("api_port", "vector_port", "postgres_port", "vector_link_port", "postgres_link_port")
DEMO_KINDS = {
    "no-op": ["--set", "latency=0ms"],
    "contained": ["--set", "mode=resilient"],
}


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 below the ephemeral range (which the run's own
    outgoing connections draw from, so a port from it may be taken again before a service binds it)."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(20000, 32000)
        if port in ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


def demo_run(kind: str, index: int, work: Path) -> dict[str, Any]:
    """One ``chaoslab run`` of the demo experiment; what its journal says."""
    journal = work / f"demo-{kind}-{index}.json"
    chosen = free_ports(len(PORT_PARAMETERS))
    ports = [arg for name, port in zip(PORT_PARAMETERS, chosen, strict=True) for arg in ("--set", f"{name}={port}")]
    cmd = [
        str(ROOT / ".venv" / "bin" / "chaoslab"),
        "run",
        "cascade-vector-latency",
        "--quick",
        *DEMO_KINDS[kind],
        *ports,
        "--journal",
        str(journal),
        "--report-dir",
        str(work / f"report-{kind}-{index}"),
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    record: dict[str, Any] = {"kind": kind, "index": index, "exit_code": proc.returncode, "wall_s": 0.0}
    record["wall_s"] = round(time.monotonic() - started, 1)
    if not journal.exists():
        record["error"] = proc.stderr[-500:]
        return record
    data = json.loads(journal.read_text())
    analysis = data["analysis"]
    record.update(
        verdict=data["verdict"],
        cascade=[c["signal"] for c in analysis.get("cascade") or []],
        recovery_s=analysis.get("recovery_observed_s"),
        time_to_impact_s=analysis.get("time_to_impact_s"),
        reasons=analysis.get("reasons"),
        degraded={k: v.get("degraded_windows") for k, v in (analysis.get("impact") or {}).items()},
    )
    return record


async def truth_run(name: str, index: int, work: Path) -> dict[str, Any]:
    """One ground-truth scenario; its verdict and figures beside the truth."""
    from tests.run.truth_scenarios import EXPECTED_VERDICT, SCENARIOS

    where = work / f"truth-{name}-{index}"
    where.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    out = await asyncio.wait_for(SCENARIOS[name](where), RUN_TIMEOUT_S)
    return {
        "scenario": name,
        "index": index,
        "verdict": out.verdict,
        "expected": EXPECTED_VERDICT[name],
        "wall_s": round(time.monotonic() - started, 1),
        "figures": {k: {"measured": m, "truth": round(t, 6)} for k, (m, t) in out.figures.items()},
        "errors_s": {k: None if (e := out.error(k)) is None else round(e, 6) for k in out.figures},
        "within_tolerance": out.within_tolerance(),
        "cascade": [c["signal"] for c in out.analysis["cascade"]],
    }


def _spread(values: list[float]) -> str:
    """Signed median and the largest absolute error, in ms: ``+18 (max 19)``."""
    if not values:
        return "—"
    return f"{statistics.median(values) * 1000:+.0f} (max {max(abs(v) for v in values) * 1000:.0f})"


def markdown(results: dict[str, Any]) -> str:
    """The README's tables: demo false alarms, truth errors, and every run."""
    lines = [
        "### Demo: false alarms",
        "",
        "| runs | false cascades | false fails | inconclusive | errors | recovery s (median / max) |",
    ]
    lines[-1] += ""
    lines.append("| --- | ---: | ---: | ---: | ---: | --- |")
    for kind in DEMO_KINDS:
        runs = [r for r in results["demo"] if r["kind"] == kind]
        cascades = sum(1 for r in runs if r.get("cascade"))
        fails = sum(1 for r in runs if r.get("verdict") == "fail")
        inconclusive = sum(1 for r in runs if r.get("verdict") == "inconclusive")
        errors = sum(1 for r in runs if r.get("verdict") in (None, "error", "aborted"))
        rec = [r["recovery_s"] for r in runs if r.get("recovery_s") is not None]
        rec_text = f"{statistics.median(rec):.2f} / {max(rec):.2f}" if rec else "—"
        lines.append(f"| {len(runs)} {kind} | {cascades} | {fails} | {inconclusive} | {errors} | {rec_text} |")
    lines += ["", "### Truth: error of chaoslab's figures (measured − truth, ms: median (max of |error|))", ""]
    lines.append("| scenario | runs | right verdict | within max(0.1 s, 2 %) | figure errors |")
    lines.append("| --- | ---: | ---: | ---: | --- |")
    names = list(dict.fromkeys(r["scenario"] for r in results["truth"]))
    for name in names:
        runs = [r for r in results["truth"] if r["scenario"] == name]
        right = sum(1 for r in runs if r["verdict"] == r["expected"])
        within = sum(1 for r in runs if r["within_tolerance"])
        figures = list(dict.fromkeys(k for r in runs for k in r["errors_s"]))
        text = "; ".join(
            f"{k} {_spread([e for r in runs if (e := r['errors_s'].get(k)) is not None])}" for k in figures
        )
        lines.append(f"| {name} | {len(runs)} | {right} | {within} | {text} |")
    all_errors = [abs(e) for r in results["truth"] for e in r["errors_s"].values() if e is not None]
    if all_errors:
        lines += [
            "",
            f"All {len(all_errors)} figures: |error| median {statistics.median(all_errors) * 1000:.0f} ms, "
            f"max {max(all_errors) * 1000:.0f} ms.",
        ]
    lines += [
        "",
        "### Every run",
        "",
        "| run | verdict | cascade | recovery s | impact s | wall s |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for r in results["demo"]:
        rec = "—" if r.get("recovery_s") is None else f"{r['recovery_s']:.3f}"
        imp = "—" if r.get("time_to_impact_s") is None else f"{r['time_to_impact_s']:.3f}"
        cascade = ", ".join(r.get("cascade") or []) or "—"
        verdict = r.get("verdict", "error")
        lines.append(f"| demo {r['kind']} #{r['index']} | {verdict} | {cascade} | {rec} | {imp} | {r['wall_s']} |")
    lines += ["", "| run | verdict (expected) | errors, ms |", "| --- | --- | --- |"]
    for r in results["truth"]:
        errs = ", ".join(f"{k} {e * 1000:+.0f}" if e is not None else f"{k} —" for k, e in r["errors_s"].items())
        lines.append(f"| {r['scenario']} #{r['index']} | {r['verdict']} ({r['expected']}) | {errs} |")
    return "\n".join(lines)


def main() -> None:
    """Run both parts (or print the tables of a results file with ``--markdown``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-runs", type=int, default=20, help="no-op runs, and as many contained-fault runs")
    parser.add_argument("--truth-repeats", type=int, default=5, help="runs of each ground-truth scenario")
    parser.add_argument("--out", type=Path, default=Path("truth-results.json"))
    parser.add_argument("--markdown", type=Path, help="print the README tables of this results file and exit")
    args = parser.parse_args()
    if args.markdown is not None:
        print(markdown(json.loads(args.markdown.read_text())))
        return
    sys.path.insert(0, str(ROOT))
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "demo": [], "truth": []}
    with tempfile.TemporaryDirectory(prefix="chaoslab-truth-bench-") as tmp:
        work = Path(tmp)
        for index in range(args.demo_runs):
            for kind in DEMO_KINDS:  # interleaved, so both kinds see the same machine noise
                record = demo_run(kind, index, work)
                results["demo"].append(record)
                print(json.dumps(record), flush=True)
                args.out.write_text(json.dumps(results, indent=1))
        from tests.run.truth_scenarios import SCENARIOS

        for index in range(args.truth_repeats):
            for name in SCENARIOS:
                record = asyncio.run(truth_run(name, index, work))
                results["truth"].append(record)
                print(json.dumps(record), flush=True)
                args.out.write_text(json.dumps(results, indent=1))
    results["ended"] = time.strftime("%Y-%m-%d %H:%M:%S")
    args.out.write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
