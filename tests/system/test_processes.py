"""Process identity by PID and start time, on real child processes: a recorded PID is acted on only
while it is still the same process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from chaoslab.model.topology import ServiceSpec
from chaoslab.system.processes import (
    ProcessRef,
    matched_pids,
    process_identity,
    process_tree,
    same_process,
    stop_pid,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A sleeping child process, killed at the end if the test left it."""
    proc = subprocess.Popen(SLEEPER)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_identity_of_a_live_and_a_missing_process(child: subprocess.Popen[bytes]) -> None:
    """A live child has a start time; a PID above the kernel's maximum has none."""
    created = process_identity(child.pid)
    assert created is not None
    assert created == pytest.approx(psutil.Process(child.pid).create_time())
    assert process_identity(2**22 + 1) is None


def test_same_process_tells_a_reused_pid_from_the_recorded_one(child: subprocess.Popen[bytes]) -> None:
    """The right start time finds the process; another start time (a reused PID) does not."""
    created = process_identity(child.pid)
    assert created is not None
    found = same_process(child.pid, created)
    assert found is not None and found.pid == child.pid
    assert same_process(child.pid, created - 100.0) is None
    assert same_process(child.pid, None) is not None  # no recorded start time: any live process with the PID


def test_a_zombie_is_not_the_process(child: subprocess.Popen[bytes]) -> None:
    """A child that died but was not reaped yet counts as gone."""
    created = process_identity(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.02)
    assert same_process(child.pid, created) is None
    assert ProcessRef(child.pid, created or 0.0).process() is None


def test_stop_pid_leaves_a_reused_pid_alone(child: subprocess.Popen[bytes]) -> None:
    """With a start time that is not the child's, stop_pid reports it gone and sends nothing."""
    created = process_identity(child.pid)
    assert created is not None
    assert stop_pid(child.pid, created - 100.0, timeout_s=1.0) is True
    time.sleep(0.2)
    assert child.poll() is None  # still running: it was never signalled


def test_stop_pid_stops_the_recorded_process(child: subprocess.Popen[bytes]) -> None:
    """With its own start time, the child is stopped (SIGTERM) and reported gone."""
    created = process_identity(child.pid)
    assert stop_pid(child.pid, created, timeout_s=5.0) is True
    assert same_process(child.pid, created) is None  # stop_pid waited for it (and reaped our child)


def test_process_tree_lists_parent_then_children() -> None:
    """A parent and its child are both found, parent first, each with its start time."""
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not psutil.Process(parent.pid).children() and time.monotonic() < deadline:
            time.sleep(0.02)
        refs = process_tree([parent.pid])
        assert refs[0].pid == parent.pid
        assert len(refs) == 2
        assert all(r.process() is not None for r in refs)
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(10)


def test_matched_pids_resolves_references_in_the_pidfile_path(tmp_path: Path, child: subprocess.Popen[bytes]) -> None:
    """``${run_dir}`` in a pidfile path is resolved from the refs; without refs nothing matches."""
    (tmp_path / "svc.pid").write_text(f"{child.pid}\n")
    service = ServiceSpec.model_validate({"process": {"pidfile": "${run_dir}/svc.pid"}})
    assert matched_pids(service, {"run_dir": str(tmp_path)}) == [child.pid]
    assert matched_pids(service) == []
