"""A small real launcher for tests: runs ``python -m http.server`` services as child processes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from tests.conftest import free_port


def http_server_command(port: int) -> list[str]:
    """The command line of a tiny HTTP server on 127.0.0.1:``port``."""
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def accepts(port: int, timeout_s: float = 0.2) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_accepting(port: int, timeout_s: float = 10.0) -> None:
    """Block until 127.0.0.1:``port`` accepts connections, or raise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if accepts(port):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing accepts on 127.0.0.1:{port} after {timeout_s}s")


@dataclass
class LocalServices:
    """A ServiceControl over real child processes: one ``http.server`` per service name."""

    supervised: bool = False
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: dict[str, int] = field(default_factory=dict)
    _watcher: asyncio.Task[None] | None = None

    def add(self, service: str) -> int:
        """Start a service and return its port."""
        port = free_port()
        self.ports[service] = port
        self._start(service)
        return port

    def _start(self, service: str) -> None:
        port = self.ports[service]
        self.procs[service] = subprocess.Popen(
            http_server_command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_accepting(port)
        self.starts[service] = self.starts.get(service, 0) + 1

    def _running(self, service: str) -> bool:
        proc = self.procs.get(service)
        return proc is not None and proc.poll() is None

    def pids(self, service: str) -> list[int]:
        """PID of the service's process when it runs."""
        return [self.procs[service].pid] if self._running(service) else []

    def is_supervised(self, service: str) -> bool:
        """Whether the watcher restarts dead services."""
        return self.supervised

    async def restart(self, service: str) -> None:
        """Terminate and start again."""
        self._stop(service)
        await asyncio.to_thread(self._start, service)

    async def ensure_running(self, service: str) -> None:
        """Start when not running."""
        if not self._running(service):
            await asyncio.to_thread(self._start, service)

    async def watch(self) -> None:
        """Start the supervisor loop (restarts a dead service within ~50 ms)."""

        async def loop() -> None:
            while True:
                for service in list(self.procs):
                    if not self._running(service):
                        await asyncio.to_thread(self._start, service)
                await asyncio.sleep(0.05)

        self._watcher = asyncio.get_running_loop().create_task(loop())

    async def unwatch(self) -> None:
        """Stop the supervisor loop."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    def _stop(self, service: str) -> None:
        proc = self.procs.get(service)
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)  # in case a test left it frozen
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        else:
            proc.wait()

    def stop_all(self) -> None:
        """Stop every service this launcher started (by PID)."""
        for service in list(self.procs):
            self._stop(service)
