"""Benchmark of the embedded Toxiproxy server against direct loopback and socat, all in one run.

Run: ``.venv/bin/python -m benchmarks.proxy.bench`` (add ``--quick`` for a short smoke run).

Processes: an upstream server (discard + echo ports, uvloop) with a shared byte counter; the peer
under test (nothing, ``socat``, or ``python -m chaoslab toxiproxy``); and this process as the client.
Throughput is the steady-state rate the upstream receives (counter sampled after a warm-up), with
blocking sender threads. Round trips are 64-byte echo exchanges, one at a time. Every loop is
bounded in time and count; every process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.sharedctypes
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

MESSAGE = b"m" * 64
BLOCK = memoryview(b"\0" * (1024 * 1024))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- upstream server process -------------------------------------------------------------------------


def _upstream_main(discard_port: int, echo_port: int, counter: multiprocessing.sharedctypes.Synchronized[int]) -> None:
    import uvloop

    _raise_nofile()

    def discard(conn: socket.socket) -> None:
        # recv_into a reused buffer: the sink must be cheaper than any proxy it measures.
        buffer = bytearray(1024 * 1024)
        with conn:
            while received := conn.recv_into(buffer):
                counter.value += received  # type: ignore[attr-defined]

    def accept_discard() -> None:
        with socket.create_server(("127.0.0.1", discard_port), backlog=2048) as listener:
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=discard, args=(conn,), daemon=True).start()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)  # type: ignore[attr-defined]

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(Echo, "127.0.0.1", echo_port, backlog=2048)
        await asyncio.Event().wait()

    threading.Thread(target=accept_discard, daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve())


@dataclass
class Upstream:
    """The upstream server process and its ports."""

    discard_port: int
    echo_port: int
    counter: multiprocessing.sharedctypes.Synchronized[int]
    process: multiprocessing.Process


@contextlib.contextmanager
def upstream_server() -> Iterator[Upstream]:
    """Start the upstream process; stop it (by PID) afterwards."""
    counter = multiprocessing.Value("Q", 0, lock=False)
    discard_port, echo_port = _free_port(), _free_port()
    process = multiprocessing.Process(target=_upstream_main, args=(discard_port, echo_port, counter), daemon=True)
    process.start()
    _wait_port(echo_port)
    _wait_port(discard_port)
    try:
        yield Upstream(discard_port, echo_port, counter, process)  # type: ignore[arg-type]
    finally:
        process.terminate()
        process.join(5)


def _wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


# -- peers under test ------------------------------------------------------------------------------


@contextlib.contextmanager
def socat_proxy(upstream_port: int) -> Iterator[int]:
    """A socat forwarder to ``upstream_port``; yields its listen port."""
    port = _free_port()
    process = subprocess.Popen(
        [
            "socat",
            "-b",
            "262144",
            f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=2048",
            f"TCP:127.0.0.1:{upstream_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(5)


@contextlib.contextmanager
def chaoslab_server() -> Iterator[str]:
    """``python -m chaoslab toxiproxy`` on a free port; yields the API URL."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "chaoslab", "-q", "toxiproxy", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)


def _api(url: str, method: str, path: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def chaoslab_proxy(url: str, name: str, upstream_port: int, latency_toxic: bool) -> int:
    """Create a chaoslab proxy (optionally with 0 ms latency toxics both ways); returns its port."""
    proxy = _api(url, "POST", "/proxies", {"name": name, "upstream": f"127.0.0.1:{upstream_port}"})
    assert isinstance(proxy, dict)
    if latency_toxic:
        for stream in ("upstream", "downstream"):
            toxic = {"type": "latency", "stream": stream, "attributes": {"latency": 0}}
            _api(url, "POST", f"/proxies/{name}/toxics", toxic)
    return int(str(proxy["listen"]).rpartition(":")[2])


# -- measurements ----------------------------------------------------------------------------------


def throughput_mb_s(
    port: int, counter: multiprocessing.sharedctypes.Synchronized[int], connections: int, seconds: float
) -> float:
    """Steady-state MB/s (1 MB = 10^6 bytes) that reach the upstream through ``port``."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def send() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                deadline = time.monotonic() + seconds + 5
                while not stop.is_set() and time.monotonic() < deadline:
                    sock.sendall(BLOCK)
        except OSError as exc:
            if not stop.is_set():
                errors.append(exc)

    threads = [threading.Thread(target=send, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    time.sleep(min(1.0, seconds / 3))  # warm-up
    start_bytes, start_time = counter.value, time.monotonic()  # type: ignore[attr-defined]
    time.sleep(seconds)
    end_bytes, end_time = counter.value, time.monotonic()  # type: ignore[attr-defined]
    stop.set()
    for thread in threads:
        thread.join(15)
    if errors:
        raise RuntimeError(f"sender failed: {errors[0]}")
    return (end_bytes - start_bytes) / (end_time - start_time) / 1e6


def round_trips_us(port: int, count: int) -> tuple[float, float]:
    """p50 and p99 in µs of ``count`` sequential 64-byte echo exchanges over one connection."""
    samples: list[float] = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index in range(count + count // 10):
            started = time.perf_counter()
            sock.sendall(MESSAGE)
            received = 0
            while received < len(MESSAGE):
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("echo connection closed")
                received += len(chunk)
            if index >= count // 10:  # the first tenth is warm-up
                samples.append((time.perf_counter() - started) * 1e6)
    quantiles = statistics.quantiles(samples, n=100)
    return quantiles[49], quantiles[98]


async def _hold_connections(port: int, count: int, hold_s: float) -> tuple[int, int]:
    """Open ``count`` connections, echo on each, hold them ``hold_s``, echo again; (ok, errors)."""
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    errors = 0
    for _ in range(count):
        try:
            streams.append(await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10))
        except (OSError, TimeoutError):
            errors += 1

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            writer.write(MESSAGE)
            return await asyncio.wait_for(reader.readexactly(len(MESSAGE)), 10) == MESSAGE
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return False

    first = await asyncio.gather(*(exchange(r, w) for r, w in streams))
    await asyncio.sleep(hold_s)
    second = await asyncio.gather(*(exchange(r, w) for r, w in streams))
    ok = sum(1 for a, b in zip(first, second, strict=True) if a and b)
    errors += len(streams) - ok
    for _, writer in streams:
        writer.close()
    return ok, errors


# -- the run -----------------------------------------------------------------------------------------


@dataclass
class Row:
    """Figures for one peer."""

    name: str
    one_conn_mb_s: float
    many_conn_mb_s: float
    rtt_p50_us: float
    rtt_p99_us: float


REPEATS = 3
"""Throughput is the median of this many runs (the machine may be shared)."""


def measure(name: str, discard_port: int, echo_port: int, up: Upstream, seconds: float, exchanges: int) -> Row:
    """All figures for one peer."""
    # Round trips first, on a quiet machine; then throughput, with a pause for buffers to drain.
    p50, p99 = round_trips_us(echo_port, exchanges)
    figures: dict[int, list[float]] = {1: [], 64: []}
    for _ in range(REPEATS):
        for connections, runs in figures.items():
            runs.append(throughput_mb_s(discard_port, up.counter, connections, seconds))
            time.sleep(0.3)
    one, many = statistics.median(figures[1]), statistics.median(figures[64])
    row = Row(name, one, many, p50, p99)
    print(f"  {name:<24} 1 conn {one:8.0f} MB/s   64 conns {many:8.0f} MB/s   rtt p50 {p50:7.1f} µs  p99 {p99:7.1f} µs")
    return row


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print a Markdown table of figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short run (smoke test of the benchmark)")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else 3.0
    exchanges = 200 if args.quick else 5000
    held = 100 if args.quick else 1000
    _raise_nofile()
    rows: list[Row] = []
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"cpus={os.cpu_count()} load={load} python={sys.version.split()[0]} seconds={seconds} exchanges={exchanges}")
    with upstream_server() as up:
        rows.append(measure("direct loopback", up.discard_port, up.echo_port, up, seconds, exchanges))
        if shutil.which("socat"):
            with socat_proxy(up.discard_port) as discard, socat_proxy(up.echo_port) as echo_port:
                rows.append(measure("socat", discard, echo_port, up, seconds, exchanges))
        else:
            print("  socat not installed (apt-get install -y socat): peer skipped")
        with chaoslab_server() as url:
            discard = chaoslab_proxy(url, "discard", up.discard_port, latency_toxic=False)
            echo_port = chaoslab_proxy(url, "echo", up.echo_port, latency_toxic=False)
            rows.append(measure("chaoslab (no toxics)", discard, echo_port, up, seconds, exchanges))
            discard = chaoslab_proxy(url, "discard0", up.discard_port, latency_toxic=True)
            echo_port = chaoslab_proxy(url, "echo0", up.echo_port, latency_toxic=True)
            rows.append(measure("chaoslab (latency 0 ms)", discard, echo_port, up, seconds, exchanges))
            hold_port = chaoslab_proxy(url, "hold", up.echo_port, latency_toxic=False)
            ok, errors = asyncio.run(_hold_connections(hold_port, held, 1.0 if args.quick else 5.0))
            print(f"  {held} concurrent connections through chaoslab: {ok} ok, {errors} errors")
    _print_table(rows, held, ok, errors)
    return 0


def _print_table(rows: list[Row], held: int, ok: int, errors: int) -> None:
    direct = rows[0]
    peer = next((row for row in rows if row.name == "socat"), None)
    print()
    print("| peer | 1 conn MB/s | ÷ direct | ÷ socat | 64 conns MB/s | ÷ direct | ÷ socat |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        one_peer = f"{row.one_conn_mb_s / peer.one_conn_mb_s:.2f}" if peer else "n/a"
        many_peer = f"{row.many_conn_mb_s / peer.many_conn_mb_s:.2f}" if peer else "n/a"
        print(
            f"| {row.name} | {row.one_conn_mb_s:.0f} | {row.one_conn_mb_s / direct.one_conn_mb_s:.2f} | {one_peer} | "
            f"{row.many_conn_mb_s:.0f} | {row.many_conn_mb_s / direct.many_conn_mb_s:.2f} | {many_peer} |"
        )
    print()
    print("| peer | RTT p50 µs | RTT p99 µs | added p50 µs | added p99 µs | p50 ÷ direct |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.name} | {row.rtt_p50_us:.1f} | {row.rtt_p99_us:.1f} | {row.rtt_p50_us - direct.rtt_p50_us:.1f} | "
            f"{row.rtt_p99_us - direct.rtt_p99_us:.1f} | {row.rtt_p50_us / direct.rtt_p50_us:.2f} |"
        )
    print(f"\n{held} concurrent connections held through chaoslab: {ok} ok, {errors} errors")


if __name__ == "__main__":
    sys.exit(main())
