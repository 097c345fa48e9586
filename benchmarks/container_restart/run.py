"""Kill → answering again: container restarted by its restart policy, by chaoslab's revert, and a local process.

One command (a Docker engine must run: ``scripts/docker-engine start``)::

    .venv/bin/python -m benchmarks.container_restart.run [--reps 5]

Each repetition starts a fresh target running the same tiny Python HTTP server on a free
127.0.0.1 port, waits until it answers, kills it with SIGKILL and measures until it answers again:

- ``policy``: a container with restart policy ``always``, killed by ``container_kill`` (signal to
  its main process, as a crash) — the engine restarts it;
- ``revert``: a container without a policy, killed through the API — ``revert`` starts it;
- ``process`` (the peer): the same server as a local process, SIGKILLed and started again at once,
  as chaoslab's process supervisor does.

It prints the median of each and its ratio to the peer, then Docker's restart back-off when the
same container is killed five times in a row.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

from chaoslab.faults.base import FaultContext
from chaoslab.faults.container import ContainerDriver
from chaoslab.model.faults import ContainerKillFault
from chaoslab.model.topology import ServiceSpec, TopologySpec
from chaoslab.system.containers import LOCAL_IMAGE, ContainerBackend
from tests.conftest import free_port
from tests.fixtures_docker import HTTP_SERVER_CODE


def answers(port: int) -> bool:
    """Whether the server answers 200 right now."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5) as response:
            return response.status == 200
    except OSError:
        return False


def wait_answering(port: int, timeout_s: float = 30.0) -> None:
    """Poll every 5 ms until the server answers."""
    deadline = time.monotonic() + timeout_s
    while not answers(port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"127.0.0.1:{port} did not answer within {timeout_s}s")
        time.sleep(0.005)


def container_spec(port: int, restart: str) -> ServiceSpec:
    """A container service running the HTTP server."""
    return ServiceSpec.model_validate(
        {
            "launch": {
                "kind": "container",
                "image": LOCAL_IMAGE,
                "command": ["${python}", "-c", HTTP_SERVER_CODE, str(port)],
                "restart": restart,
            }
        }
    )


async def kill_container(backend: ContainerBackend, restart: str, kills: int = 1) -> list[float]:
    """Seconds from each kill to answering again, for one fresh container killed ``kills`` times."""
    port = free_port()
    cid = backend.start("bench", container_spec(port, restart), run_id="bench", refs={"python": sys.executable})
    ctx = FaultContext(topology=TopologySpec.model_validate({"name": "b", "services": {"bench": {}}}), run_id="bench")
    driver = ContainerDriver(backend.client)
    times: list[float] = []
    try:
        await asyncio.to_thread(wait_answering, port)
        for i in range(kills):
            fault = ContainerKillFault(kind="container_kill", target="bench")
            record = driver.prepare(fault, ctx, f"k{i}")
            started = time.monotonic()
            record = await driver.apply(fault, ctx, record)
            if restart == "no":
                await driver.revert(record, ctx)
            await asyncio.to_thread(wait_answering, port)
            times.append(time.monotonic() - started)
    finally:
        backend.stop_and_remove(cid, timeout_s=0)
    return times


def kill_process() -> float:
    """Seconds from SIGKILL of a local server process to its restarted copy answering."""
    port = free_port()
    argv = [sys.executable, "-c", HTTP_SERVER_CODE, str(port)]
    first = subprocess.Popen(argv)
    second: subprocess.Popen[Any] | None = None
    try:
        wait_answering(port)
        started = time.monotonic()
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = subprocess.Popen(argv)
        wait_answering(port)
        return time.monotonic() - started
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


async def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    backend = ContainerBackend()
    backend.ensure_image(LOCAL_IMAGE)
    results: dict[str, list[float]] = {"policy": [], "revert": [], "process": []}
    for _ in range(args.reps):  # interleaved, so drifting machine load hits all three alike
        results["policy"] += await kill_container(backend, "always")
        results["revert"] += await kill_container(backend, "no")
        results["process"].append(await asyncio.to_thread(kill_process))
    peer = statistics.median(results["process"])
    print(f"kill → answering again, median of {args.reps} (ratio to the local-process peer)")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:8s} {median * 1000:7.0f} ms   ×{median / peer:5.1f}   (min {min(values) * 1000:.0f} ms)")
    backoff = await kill_container(backend, "always", kills=5)
    print("policy, same container killed 5× in a row (Docker's back-off): " + ", ".join(f"{t:.2f}s" for t in backoff))
    backend.close()


if __name__ == "__main__":
    asyncio.run(main())
