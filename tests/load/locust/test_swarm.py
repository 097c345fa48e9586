"""A real Locust swarm (master + workers as processes) against real aiohttp targets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from chaoslab.clock import RunClock
from chaoslab.faults.toxiproxy_client import ToxicInfo, ToxiproxyClient
from chaoslab.load.locust.runner import LocustLoadGenerator
from chaoslab.load.recorder import Recorder
from chaoslab.model.experiment import LoadSpec
from chaoslab.proxy import ToxiproxyServer
from chaoslab.run.ledger import Ledger, read_ledger
from chaoslab.run.rollback import rollback_all
from chaoslab.timeline import Signal
from tests.conftest import free_port
from tests.load.locust.conftest import Target, alive, locust_children, wait_gone

pytestmark = pytest.mark.integration

WINDOW_S = 0.5
STARTED_WITHIN_S = 40.0
"""Three Locust processes import Locust and connect in ~5 s on a loaded 2-core machine; the bound is generous."""


def spec(mix: list[dict[str, Any]], *, rate: str = "120/s", **locust: Any) -> LoadSpec:
    """A Locust load spec."""
    return LoadSpec.model_validate({"engine": "locust", "rate": rate, "mix": mix, "locust": locust})


def total(signals: dict[str, Signal]) -> int:
    """Requests in the timeline, all signals and windows."""
    return sum(w.count for s in signals.values() for w in s.windows)


class TestTwoLocalWorkers:
    """A master and two local workers driven through the harness."""

    async def test_counts_match_the_target_and_a_latency_toxic_shows_up(self, tmp_path: Path, target: Target) -> None:
        """Timeline count = the target's count; windows under a 300 ms toxic have p50 ≥ 300 ms; no PID left."""
        proxy = ToxiproxyServer(port=0, seed=1)
        await proxy.start()
        client = ToxiproxyClient(proxy.url)
        listen = free_port()
        await client.create_proxy("target", f"127.0.0.1:{listen}", f"127.0.0.1:{target.port}")
        base = f"http://127.0.0.1:{listen}"
        load = spec(
            [
                {"name": "a", "signal": "t:a", "url": f"{base}/ok/a", "timeout": "1s"},
                {"name": "b", "signal": "t:b", "url": f"{base}/ok/b", "timeout": "1s", "weight": 2},
            ],
            workers=2,
            users=12,
            spawn_rate=100,
        )
        clock = RunClock()
        recorder = Recorder(WINDOW_S, clock)
        ledger = Ledger.create("locust-1", base=tmp_path)
        gen = LocustLoadGenerator(load, {}, recorder, clock, ledger=ledger)
        task = asyncio.create_task(gen.run(0.0, 90.0))
        try:
            await asyncio.wait_for(gen.started.wait(), STARTED_WITHIN_S)
            await asyncio.sleep(1.5)  # users spawned and answering
            before_s = clock.elapsed()
            await client.add_toxic("target", ToxicInfo("slow", "latency", attributes={"latency": 300}))
            fault_from_s = clock.elapsed()
            await asyncio.sleep(2.0)
            await client.delete_toxic("target", "slow")
            fault_to_s = clock.elapsed()
            await asyncio.sleep(1.0)
            gen.finish()
            await asyncio.wait_for(task, 30.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()
            await proxy.stop()
        signals = recorder.signals()
        recorded = total(signals)
        assert recorded == gen.collector.requests
        assert abs(recorded - target.total) <= 12, (recorded, target.counts)  # at most one in flight per user
        assert recorded > 200
        assert 1.4 < target.counts["/ok/b"] / target.counts["/ok/a"] < 2.8
        assert len(gen.collector.workers) == 2
        windows = signals["t:b"].windows
        # wholly under the toxic, with room for the 300 ms answers of a window's last requests before its removal
        under = [w for w in windows if w.start_s >= fault_from_s + 0.3 and w.start_s + WINDOW_S <= fault_to_s - 0.35]
        healthy = [w for w in windows if before_s - 1.0 <= w.start_s and w.start_s + WINDOW_S <= before_s]
        assert under and healthy
        assert all((w.p50_ms or 0.0) >= 300.0 for w in under), [(w.start_s, w.p50_ms) for w in under]
        # the toxic sets a floor; a loaded 2-core machine can slow one healthy window, so their median is judged
        assert sorted(w.p50_ms or 0.0 for w in healthy)[len(healthy) // 2] < 100.0, [
            (w.start_s, w.p50_ms) for w in healthy
        ]
        pids = gen.pids()
        assert len(pids) == 3
        assert alive(pids) == []
        assert locust_children() == []
        state = read_ledger(ledger.path)
        assert sorted(state.processes) == sorted(pids)
        assert state.live_processes() == []


class TestRemoteWorkers:
    """A master that waits for ``expect_workers``, joined by a worker started the documented way."""

    async def test_a_worker_started_by_hand_fetches_the_locustfile_and_the_clock(
        self, tmp_path: Path, target: Target
    ) -> None:
        """`locust --worker -f - --master-host H --master-port P` with no config file measures like a local worker."""
        port = free_port()
        load = spec(
            [{"name": "a", "url": target.url("/ok/a"), "timeout": "1s"}],
            rate="60/s",
            workers=1,
            expect_workers=2,
            users=6,
            spawn_rate=100,
            master_bind_port=port,
        )
        clock = RunClock()
        recorder = Recorder(WINDOW_S, clock)
        # loopback in the test; a real run with remote workers binds all interfaces
        gen = LocustLoadGenerator(load, {}, recorder, clock, master_bind_host="127.0.0.1")
        task = asyncio.create_task(gen.run(0.0, 90.0))
        remote = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "locust", "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)),
            *("-f", "-"),
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            # Locust saves the fetched locustfile in $TMPDIR and never removes it: keep it in tmp_path
            env={**{k: v for k, v in os.environ.items() if k != "CHAOSLAB_LOCUST_CONFIG"}, "TMPDIR": str(tmp_path)},
        )
        try:
            await asyncio.wait_for(gen.started.wait(), STARTED_WITHIN_S)
            await asyncio.sleep(3.0)
            gen.finish()
            await asyncio.wait_for(task, 30.0)
            assert await asyncio.wait_for(remote.wait(), 15.0) == 0  # it quit when the master told it to
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if remote.returncode is None:
                remote.kill()
                await remote.wait()
        assert len(gen.collector.workers) == 2
        recorded = total(recorder.signals())
        assert recorded > 50
        assert abs(recorded - target.total) <= 6


class TestOwnLocustfile:
    """The user's own locustfile in one local Locust process (no workers)."""

    async def test_user_classes_and_checks_become_signals_and_errors(self, tmp_path: Path, target: Target) -> None:
        """Names in the mix map to their signals; 503s are http_5xx, a failed catch_response check is check."""
        locustfile = tmp_path / "mine.py"
        locustfile.write_text(
            textwrap.dedent(
                f"""
                from locust import HttpUser, constant, task

                class Mine(HttpUser):
                    host = "{target.url("")}"
                    wait_time = constant(0.05)

                    @task(3)
                    def x(self):
                        self.client.get("/ok/x", name="x")

                    @task
                    def f(self):
                        self.client.get("/fail", name="f")

                    @task
                    def c(self):
                        with self.client.get("/ok/c", name="c", catch_response=True) as response:
                            response.failure("the body lacks a field")
                """
            )
        )
        load = spec(
            [{"name": "x", "signal": "svc:x", "url": target.url("/ok/x")}],
            workers=0,
            users=3,
            spawn_rate=100,
            locustfile="mine.py",
        )
        clock = RunClock()
        recorder = Recorder(WINDOW_S, clock)
        gen = LocustLoadGenerator(load, {}, recorder, clock, base_dir=tmp_path)
        task = asyncio.create_task(gen.run(0.0, 90.0))
        await asyncio.wait_for(gen.started.wait(), STARTED_WITHIN_S)
        await asyncio.sleep(3.0)
        gen.finish()
        await asyncio.wait_for(task, 30.0)
        signals = recorder.signals()
        assert set(signals) == {"svc:x", "f", "c"}
        x = [w for w in signals["svc:x"].windows if w.count]
        f = [w for w in signals["f"].windows if w.count]
        c = [w for w in signals["c"].windows if w.count]
        assert x and f and c
        assert all(w.ok == w.count for w in x)
        assert {k for w in f for k in w.errors} == {"http_5xx"} and sum(w.ok for w in f) == 0
        assert {k for w in c for k in w.errors} == {"check"}
        assert total(signals) == target.total
        assert alive(gen.pids()) == []


class TestStopping:
    """Stopping chaoslab stops the swarm: nothing is left running."""

    async def test_cancelling_run_stops_every_locust_process(self, tmp_path: Path, target: Target) -> None:
        """Cancelling run() mid-load ends master and workers within seconds; what was measured stays."""
        load = spec([{"name": "a", "url": target.url("/ok/a"), "timeout": "1s"}], rate="60/s", workers=2, users=6)
        clock = RunClock()
        recorder = Recorder(WINDOW_S, clock)
        gen = LocustLoadGenerator(load, {}, recorder, clock)
        task = asyncio.create_task(gen.run(0.0, 120.0))
        await asyncio.wait_for(gen.started.wait(), STARTED_WITHIN_S)
        await asyncio.sleep(1.5)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - cancelled_at < 15.0
        assert len(gen.pids()) == 3
        assert alive(gen.pids()) == []
        assert locust_children() == []
        recorded = total(recorder.signals())
        # a graceful stop: users finish their request and the last tallies arrive (tolerance: one in flight per user)
        assert 0 < recorded <= target.total <= recorded + 6

    async def test_a_killed_harness_leaves_no_swarm_behind(self, tmp_path: Path, target: Target) -> None:
        """After kill -9 of the harness, the Locust processes notice their parent is gone and quit; rollback agrees."""
        state = tmp_path / "state"
        pids_file = tmp_path / "pids.json"
        script = tmp_path / "harness.py"
        script.write_text(
            textwrap.dedent(
                f"""
                import asyncio, json
                from pathlib import Path
                from chaoslab.load.locust.runner import LocustLoadGenerator
                from chaoslab.clock import RunClock
                from chaoslab.run.ledger import Ledger
                from chaoslab.load.recorder import Recorder
                from chaoslab.model.experiment import LoadSpec

                async def main():
                    spec = LoadSpec.model_validate({{
                        "engine": "locust", "rate": "30/s", "mix": [{{"name": "a", "url": "{target.url("/ok/a")}"}}],
                        "locust": {{"workers": 2, "users": 3}},
                    }})
                    clock = RunClock()
                    ledger = Ledger.create("killed-1", base=Path("{state}"))
                    gen = LocustLoadGenerator(spec, {{}}, Recorder(0.5, clock), clock, ledger=ledger)
                    task = asyncio.create_task(gen.run(0.0, 100.0))
                    await gen.started.wait()
                    Path("{pids_file}").write_text(json.dumps(gen.pids()))
                    await task

                asyncio.run(main())
                """
            )
        )
        tmp = tmp_path / "tmp"
        tmp.mkdir()
        harness = subprocess.Popen(  # noqa: ASYNC220 - a plain child we kill -9; nothing to await on it
            [sys.executable, str(script)],
            cwd=os.getcwd(),
            stdout=subprocess.DEVNULL,
            env={**os.environ, "TMPDIR": str(tmp)},
        )
        try:
            deadline = time.monotonic() + STARTED_WITHIN_S
            while not pids_file.exists() and time.monotonic() < deadline and harness.poll() is None:  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # another process writes the file: polling is the only way to see it
            pids: list[int] = json.loads(pids_file.read_text())
            assert len(alive(pids)) == 3
            harness.send_signal(signal.SIGKILL)
            harness.wait(5)
            assert await wait_gone(pids, 15.0) == []
            assert list(tmp.glob("chaoslab-locust-*")) == []  # the master removed the dead harness's directory
        finally:
            if harness.poll() is None:
                harness.kill()
                harness.wait(5)
        report = await rollback_all(state)
        assert report.ok
        roles = ("master", "worker-1", "worker-2")
        assert sorted(a.what for a in report.actions) == sorted(
            f"stop locust-{role} (pid {pid})" for role, pid in zip(roles, pids, strict=True)
        )
