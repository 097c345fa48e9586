"""Benchmark of the embedded Toxiproxy server against direct loopback and socat, all in one run.

Run: ``.venv/bin/python -m benchmarks.proxy.bench`` (``--quick`` for a short smoke run).

Processes: an upstream server (discard + echo ports, uvloop) with a shared byte counter; the peers
under test (``socat``, a minimal C splice forwarder when a C compiler is available, and
``python -m chaoslab toxiproxy`` with and without ``--no-splice``), all started once; and this process
as the client. Measurements are interleaved — each round measures every peer in turn — so that the
machine's changing load hits all peers alike; medians over the rounds are reported, and each ratio
is the median of the per-round ratios. Throughput is the steady-state rate the upstream receives
(counter sampled after a warm-up) from blocking sender threads; round trips are 64-byte echo
exchanges, one at a time, in blocks alternating between peers. Every loop is bounded in time and
count; every process started here is stopped by its PID.
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
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

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


@dataclass
class Peer:
    """One way to reach the upstream: its discard and echo ports and the PID whose CPU it costs."""

    name: str
    discard_port: int
    echo_port: int
    pid: int | None = None  # None: direct loopback (no process of its own)
    one_conn: list[float] = field(default_factory=list)  # MB/s per round
    many_conn: list[float] = field(default_factory=list)
    cpu_s_per_gb: list[float] = field(default_factory=list)  # the peer process, during the 1-connection runs
    rtt_us: list[float] = field(default_factory=list)


def _process_cpu_s(pid: int) -> float:
    """CPU seconds of a process and of its reaped children (socat forks one per connection)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system + times.children_user + times.children_system)


@contextlib.contextmanager
def _process(argv: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Start a peer process that listens on ``port``; stop it by PID afterwards."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _socat_argv(port: int, upstream_port: int) -> list[str]:
    listen = f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,backlog=2048"
    return ["socat", "-b", "262144", listen, f"TCP:127.0.0.1:{upstream_port}"]


def build_splice_forward(directory: Path) -> Path | None:
    """Compile the C splice forwarder (the ceiling of a zero-copy proxy here); None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None or not sys.platform.startswith("linux"):
        return None
    binary = directory / "splice_forward"
    source = Path(__file__).with_name("splice_forward.c")
    result = subprocess.run(
        [compiler, "-O2", "-pthread", "-o", str(binary), str(source)], capture_output=True, check=False
    )
    return binary if result.returncode == 0 else None


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


@contextlib.contextmanager
def peers(up: Upstream, build_dir: Path) -> Iterator[tuple[list[Peer], str]]:
    """Every peer, started once (an idle peer costs nothing); yields them and the splicing server's API URL."""
    with contextlib.ExitStack() as stack:
        found = [Peer("direct loopback", up.discard_port, up.echo_port)]
        if shutil.which("socat"):
            ports = (_free_port(), _free_port())
            discard = stack.enter_context(_process(_socat_argv(ports[0], up.discard_port), ports[0]))
            stack.enter_context(_process(_socat_argv(ports[1], up.echo_port), ports[1]))
            # The discard forwarder carries the throughput runs, so its CPU is the one measured.
            found.append(Peer("socat", ports[0], ports[1], discard.pid))
        else:
            print("  socat not installed (apt-get install -y socat): peer skipped")
        binary = build_splice_forward(build_dir)
        if binary is not None:
            ports = (_free_port(), _free_port())
            discard = stack.enter_context(_process([str(binary), str(ports[0]), str(up.discard_port)], ports[0]))
            stack.enter_context(_process([str(binary), str(ports[1]), str(up.echo_port)], ports[1]))
            found.append(Peer("C splice forwarder", ports[0], ports[1], discard.pid))
        else:
            print("  no C compiler: the C splice forwarder peer is skipped")
        servers: dict[str, tuple[str, int]] = {}
        for label, flags in (("splice", []), ("copy", ["--no-splice"])):
            port = _free_port()
            argv = [sys.executable, "-m", "chaoslab", "-q", "toxiproxy", "--port", str(port), *flags]
            process = stack.enter_context(_process(argv, port))
            servers[label] = (f"http://127.0.0.1:{port}", process.pid)
        for name, label, toxic in (
            ("chaoslab (no toxics, splice)", "splice", False),
            ("chaoslab (no toxics, --no-splice)", "copy", False),
            ("chaoslab (latency 0 ms)", "splice", True),
        ):
            url, pid = servers[label]
            prefix = f"{label}{int(toxic)}"
            discard = chaoslab_proxy(url, f"{prefix}_discard", up.discard_port, latency_toxic=toxic)
            echo = chaoslab_proxy(url, f"{prefix}_echo", up.echo_port, latency_toxic=toxic)
            found.append(Peer(name, discard, echo, pid))
        yield found, servers["splice"][0]


# -- measurements ----------------------------------------------------------------------------------


def throughput_mb_s(
    port: int, counter: multiprocessing.sharedctypes.Synchronized[int], connections: int, seconds: float
) -> tuple[float, float]:
    """Steady-state MB/s (1 MB = 10^6 bytes) that reach the upstream through ``port``, and the bytes counted."""
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
    return (end_bytes - start_bytes) / (end_time - start_time) / 1e6, float(end_bytes - start_bytes)


def round_trips_us(port: int, count: int, warmup: int) -> list[float]:
    """µs of ``count`` sequential 64-byte echo exchanges over one connection, after ``warmup`` unrecorded ones."""
    samples: list[float] = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index in range(warmup + count):
            started = time.perf_counter()
            sock.sendall(MESSAGE)
            received = 0
            while received < len(MESSAGE):
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("echo connection closed")
                received += len(chunk)
            if index >= warmup:
                samples.append((time.perf_counter() - started) * 1e6)
    return samples


def _percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1]


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


def measure_throughput(found: list[Peer], up: Upstream, rounds: int, seconds: float) -> None:
    """``rounds`` rounds; in each, every peer with 1 then 64 connections (CPU per GB from the 1-connection run)."""
    for round_number in range(1, rounds + 1):
        for peer in found:
            cpu_before = _process_cpu_s(peer.pid) if peer.pid else 0.0
            rate, counted = throughput_mb_s(peer.discard_port, up.counter, 1, seconds)
            time.sleep(0.3)  # senders closed; socat's children are reaped, their CPU counted
            if peer.pid:
                # Includes the warm-up and wind-down, divided by the bytes of the measured window only.
                peer.cpu_s_per_gb.append((_process_cpu_s(peer.pid) - cpu_before) / (counted / 1e9))
            peer.one_conn.append(rate)
            many, _ = throughput_mb_s(peer.discard_port, up.counter, 64, seconds)
            peer.many_conn.append(many)
            time.sleep(0.3)
            print(f"  round {round_number}  {peer.name:<34} 1 conn {rate:6.0f} MB/s   64 conns {many:6.0f} MB/s")


def measure_round_trips(found: list[Peer], blocks: int, per_block: int) -> None:
    """Round trips in ``blocks`` blocks per peer, alternating peers block by block."""
    for peer in found:
        round_trips_us(peer.echo_port, 0, per_block)  # warm-up: connections, caches, the proxy's first chunks
    for _ in range(blocks):
        for peer in found:
            peer.rtt_us.extend(round_trips_us(peer.echo_port, per_block, 50))


def _ratios(found: list[Peer], reference: Peer | None, attribute: str) -> dict[str, float | None]:
    """Per peer: the median over rounds of (peer ÷ reference) measured in the same round."""
    result: dict[str, float | None] = {}
    for peer in found:
        if reference is None:
            result[peer.name] = None
            continue
        ours, theirs = getattr(peer, attribute), getattr(reference, attribute)
        result[peer.name] = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    return result


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print Markdown tables of figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short run (smoke test of the benchmark)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds (default 3)")
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per throughput run")
    args = parser.parse_args(argv)
    seconds = 0.5 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    blocks, per_block = (2, 100) if args.quick else (10, 500)
    held = 100 if args.quick else 1000
    _raise_nofile()
    started_load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"cpus={os.cpu_count()} load={started_load} python={sys.version.split()[0]} "
        f"rounds={rounds} seconds={seconds} round trips={blocks}×{per_block}"
    )
    with (
        upstream_server() as up,
        tempfile.TemporaryDirectory(prefix="chaoslab-bench-proxy-") as build,
        peers(up, Path(build)) as (found, splice_url),
    ):
        measure_round_trips(found, blocks, per_block)
        measure_throughput(found, up, rounds, seconds)
        hold_port = chaoslab_proxy(splice_url, "hold", up.echo_port, latency_toxic=False)
        ok, errors = asyncio.run(_hold_connections(hold_port, held, 1.0 if args.quick else 5.0))
    ended_load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"  {held} concurrent connections through chaoslab (splice): {ok} ok, {errors} errors; load now {ended_load}")
    _print_tables(found, held, ok, errors)
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _print_tables(found: list[Peer], held: int, ok: int, errors: int) -> None:
    direct = found[0]
    socat = next((peer for peer in found if peer.name == "socat"), None)
    one_direct, one_socat = _ratios(found, direct, "one_conn"), _ratios(found, socat, "one_conn")
    many_direct, many_socat = _ratios(found, direct, "many_conn"), _ratios(found, socat, "many_conn")
    print()
    print(
        "| peer | 1 conn MB/s (rounds) | ÷ direct | ÷ socat | 64 conns MB/s (rounds) | ÷ direct | ÷ socat | CPU s/GB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for peer in found:
        one = f"{statistics.median(peer.one_conn):.0f} ({', '.join(f'{v:.0f}' for v in peer.one_conn)})"
        many = f"{statistics.median(peer.many_conn):.0f} ({', '.join(f'{v:.0f}' for v in peer.many_conn)})"
        cpu = f"{statistics.median(peer.cpu_s_per_gb):.3f}" if peer.cpu_s_per_gb else "—"
        print(
            f"| {peer.name} | {one} | {_fmt(one_direct[peer.name])} | {_fmt(one_socat[peer.name])} | {many} | "
            f"{_fmt(many_direct[peer.name])} | {_fmt(many_socat[peer.name])} | {cpu} |"
        )
    print()
    print("| peer | RTT p50 µs | RTT p99 µs | added p50 µs | added p99 µs | p50 ÷ direct |")
    print("|---|---:|---:|---:|---:|---:|")
    direct_p50, direct_p99 = _percentile(direct.rtt_us, 50), _percentile(direct.rtt_us, 99)
    for peer in found:
        p50, p99 = _percentile(peer.rtt_us, 50), _percentile(peer.rtt_us, 99)
        print(
            f"| {peer.name} | {p50:.1f} | {p99:.1f} | {p50 - direct_p50:.1f} | {p99 - direct_p99:.1f} | "
            f"{p50 / direct_p50:.2f} |"
        )
    print(f"\n{held} concurrent connections held through chaoslab (splice): {ok} ok, {errors} errors")


if __name__ == "__main__":
    sys.exit(main())
