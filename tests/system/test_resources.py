"""Resource sampling of real processes, a real container and the host."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from chaoslab.clock import RunClock
from chaoslab.model.topology import ContainerRef
from chaoslab.system.resources import HOST, ResourceSampler, docker_cpu_percent, inet_socket_inodes
from tests.conftest import free_port

# A child that holds ~64 MiB, listens on a socket and burns CPU in a grandchild, for at most 20 s.
WORKER = """
import socket, subprocess, sys, time
block = bytearray(64 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); sock.listen()
child = subprocess.Popen([sys.executable, "-c", "import time\\nend = time.time() + 20\\nwhile time.time() < end: pass"])
print("ready", flush=True)
time.sleep(20)
child.kill()
"""


class TestDockerCpu:
    def test_cpu_percent_between_two_stats(self) -> None:
        """50 ms of container CPU over 100 ms of system CPU on 2 CPUs is 100 %."""
        before = {"cpu_stats": {"cpu_usage": {"total_usage": 1_000}, "system_cpu_usage": 10_000, "online_cpus": 2}}
        after = {"cpu_stats": {"cpu_usage": {"total_usage": 51_000}, "system_cpu_usage": 110_000, "online_cpus": 2}}
        assert docker_cpu_percent(before, after) == 100.0
        assert docker_cpu_percent(None, after) is None

    def test_missing_counters_give_none(self) -> None:
        """Stats without system CPU (a stopped container) give no CPU figure."""
        assert docker_cpu_percent({"cpu_stats": {}}, {"cpu_stats": {"cpu_usage": {}}}) is None


class TestInetInodes:
    def test_reads_inodes_from_the_tables(self, tmp_path: Any) -> None:
        """Socket inodes come from column 10 of /proc/net/tcp-style tables; missing tables are skipped."""
        header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        (tmp_path / "tcp").write_text(
            header
            + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n"
            + "   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0\n"
        )
        (tmp_path / "udp").write_text(header)
        assert inet_socket_inodes(str(tmp_path)) == {"4242", "4343"}


@pytest.fixture
def worker() -> Iterator[subprocess.Popen[str]]:
    """The WORKER process, ready (memory touched, socket listening, grandchild burning CPU)."""
    proc = subprocess.Popen([sys.executable, "-c", WORKER], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.integration
class TestResourceSampler:
    async def test_process_tree_and_host(self, worker: subprocess.Popen[str]) -> None:
        """A service's sample sums its process tree: ≥ 64 MiB RSS, its socket, and the busy child's CPU."""
        clock = RunClock()
        sampler = ResourceSampler(
            clock, pids_of=lambda s: [worker.pid] if s == "worker" else [], services=["worker", "gone"], interval_s=0.3
        )
        await asyncio.wait_for(sampler.run(0.8), 5.0)
        samples = sampler.samples()
        assert set(samples) == {"worker", "gone", HOST}
        first, *rest = samples["worker"]
        assert len(rest) == 2
        assert first.cpu_percent is None  # psutil's first reading is not a measurement
        assert all(s.rss_bytes is not None and s.rss_bytes >= 64 * 1024 * 1024 for s in samples["worker"])
        assert all(s.connections is not None and s.connections >= 1 for s in rest)
        assert all(s.open_fds is not None and s.open_fds >= 3 for s in rest)
        # The parent sleeps: CPU well above zero can only come from the busy grandchild (≥ 10 % even on a busy host).
        assert all(s.cpu_percent is not None and s.cpu_percent >= 10.0 for s in rest)
        assert [s.rss_bytes for s in samples["gone"]] == [None, None, None]
        host = samples[HOST][-1]
        assert host.cpu_percent is not None and host.rss_bytes is not None and host.rss_bytes > 0
        assert set(host.extra) == {"memory_percent", "disk_percent", "load1"}
        times = [s.t_s for s in samples["worker"]]
        assert times == sorted(times) and times[0] < 0.2 and 0.55 < times[2] < 1.5


@pytest.mark.integration
@pytest.mark.docker
class TestContainerSampling:
    async def test_docker_stats(self, docker_client: Any, http_container: Any) -> None:
        """A container is sampled through docker stats (memory; CPU from the second sample) and its processes."""
        port = free_port()
        http_container(port, name=f"chaoslab-res-{os.getpid()}")
        sampler = ResourceSampler(
            RunClock(),
            pids_of=lambda s: [],
            services=["web"],
            containers={"web": ContainerRef(name=f"chaoslab-res-{os.getpid()}")},
            interval_s=0.2,
            docker_client=docker_client,
        )
        await asyncio.wait_for(sampler.run(0.3), 20.0)
        web = sampler.samples()["web"]
        assert len(web) == 2
        assert all(s.rss_bytes is not None and s.rss_bytes > 0 for s in web)
        assert web[0].cpu_percent is None
        assert web[1].cpu_percent is not None and web[1].cpu_percent >= 0.0
        assert web[1].extra["pids"] >= 1
        assert all(s.open_fds is not None and s.open_fds >= 3 for s in web)
        assert all(s.connections is not None and s.connections >= 1 for s in web)  # the listening socket
