"""Peers the benchmarks measure against: nginx serving ``return 200`` on 127.0.0.1, ended by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NGINX_CONF = """
worker_processes 1;
daemon off;
master_process off;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ return 200 "ok"; }}
  }}
}}
"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def nginx(core: int | None = None) -> Iterator[tuple[str, int]]:
    """One nginx worker (pinned to ``core`` if given) in a temporary prefix; yields (url, pid), ends it by PID."""
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="chaoslab-bench-nginx-"))
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=tmp, port=port))
    pin = ["taskset", "-c", str(core)] if core is not None else []
    proc = subprocess.Popen([*pin, "nginx", "-p", str(tmp), "-c", str(conf)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("nginx did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/", proc.pid
    finally:
        os.kill(proc.pid, signal.SIGCONT)  # a benchmark may have frozen it (the stall test)
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
