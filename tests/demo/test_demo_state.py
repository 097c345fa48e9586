"""The demo command's state file and PID identity checks."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from chaoslab.commands.demo import DemoState, pid_alive


def a_state(**changes: object) -> DemoState:
    """A recorded demo state with sensible values."""
    values: dict[str, object] = {
        "status": "up",
        "supervisor_pid": 4242,
        "supervisor_create_time": 1700000000.25,
        "run_dir": "/tmp/chaoslab-demo-x",
        "topology": "demo",
        "parameters": {"mode": "resilient", "api_port": 28080},
        "toxiproxy_url": "http://127.0.0.1:8474",
        "services": {"api": {"processes": [[4300, 1700000001.5]], "url": "http://127.0.0.1:28080"}},
    }
    values.update(changes)
    return DemoState(**values)  # type: ignore[arg-type]


class TestDemoState:
    """state.json round trip."""

    def test_write_then_read_gives_the_same_state(self, tmp_path: Path) -> None:
        """What up writes, down and status read back unchanged."""
        path = tmp_path / "demo" / "state.json"
        a_state().write(path)
        assert DemoState.read(path) == a_state()
        assert not (tmp_path / "demo" / "state.tmp").exists()

    def test_missing_or_corrupt_file_reads_as_none(self, tmp_path: Path) -> None:
        """No file, half a file or a file without the supervisor PID means 'not running'."""
        assert DemoState.read(tmp_path / "absent.json") is None
        (tmp_path / "torn.json").write_text('{"status": "up", "supervisor_')
        assert DemoState.read(tmp_path / "torn.json") is None
        (tmp_path / "partial.json").write_text('{"status": "up", "run_dir": "/tmp/x"}')
        assert DemoState.read(tmp_path / "partial.json") is None


class TestPidAlive:
    """A recorded PID counts only while it is the same process."""

    def test_this_process_with_its_start_time_is_alive(self) -> None:
        """Our own PID with our own start time is alive; without a start time too."""
        me = psutil.Process()
        assert pid_alive(os.getpid(), me.create_time())
        assert pid_alive(os.getpid(), None)

    def test_a_reused_pid_is_not_the_recorded_process(self) -> None:
        """The same PID with another start time is a different process."""
        assert not pid_alive(os.getpid(), psutil.Process().create_time() - 100.0)

    def test_a_pid_that_does_not_exist_is_not_alive(self) -> None:
        """A PID above the kernel's maximum is never alive."""
        assert not pid_alive(2**22 + 1, None)
