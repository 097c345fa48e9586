"""Pure parts of the Locust engine: outcome classes, window tallies, replay, shape arithmetic, commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaoslab.clock import RunClock
from chaoslab.load.locust.aggregate import CpuSample, SwarmCollector, WindowTally, classify_outcome
from chaoslab.load.locust.config import LINE_PREFIX, MixEntry, SwarmConfig
from chaoslab.load.locust.locustfile_gen import mix_locustfile, plugin_locustfile
from chaoslab.load.locust.runner import LocustLoadGenerator, mix_entries, parse_line
from chaoslab.load.recorder import Recorder
from chaoslab.model.experiment import LoadSpec
from chaoslab.timeline import ErrorClass


class FakeClock:
    """A base clock that moves only when told."""

    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        """The fake time."""
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        """Jump to the deadline."""
        self.t = max(self.t, deadline)


def config(**overrides: object) -> SwarmConfig:
    """A swarm configuration with a constant profile from 2 s to 10 s, 20 users at 100 req/s."""
    base: dict[str, object] = {
        "t0_wall": 1_000.0,
        "window_s": 0.5,
        "start_s": 2.0,
        "end_s": 10.0,
        "users": 20,
        "spawn_rate": 10.0,
        "profile_points": ((0.0, 1.0),),
        "profile_linear": False,
        "base_rate": 100.0,
        "mix": (MixEntry("a", "svc:a", 1.0, "GET", "http://127.0.0.1:1/a", expect_status=(201,)),),
        "drain_s": 3.0,
    }
    base.update(overrides)
    return SwarmConfig(**base)  # type: ignore[arg-type]


def load_spec(**locust: object) -> LoadSpec:
    """A load spec for the Locust engine with two request classes."""
    return LoadSpec.model_validate(
        {
            "engine": "locust",
            "rate": "40/s",
            "mix": [
                {"name": "a", "url": "${service:api}/a", "timeout": "2s"},
                {"name": "b", "url": "http://127.0.0.1:9/b", "signal": "api:b", "json": {"q": "${service:api}"}},
            ],
            "locust": locust,
        }
    )


class TestClassifyOutcome:
    """How one Locust request's status and exception map to chaoslab's error classes."""

    def test_success_status_without_exception_is_ok(self) -> None:
        """HTTP 200 and no exception is a success."""
        assert classify_outcome(200, None) is None

    def test_http_error_statuses(self) -> None:
        """503, 429 and 404 are http_5xx, http_429 and http_4xx."""
        assert classify_outcome(503, RuntimeError("x")) is ErrorClass.HTTP_5XX
        assert classify_outcome(429, None) is ErrorClass.HTTP_429
        assert classify_outcome(404, None) is ErrorClass.HTTP_4XX

    def test_expected_status_is_success_and_other_is_an_error(self) -> None:
        """With expect (404,): 404 is a success and 200 a check failure."""
        assert classify_outcome(404, None, (404,)) is None
        assert classify_outcome(200, None, (404,)) is ErrorClass.CHECK

    def test_good_status_marked_failed_by_the_locustfile_is_a_check(self) -> None:
        """A 200 that a catch_response check failed counts as check."""
        assert classify_outcome(200, RuntimeError("body lacks 'ok'")) is ErrorClass.CHECK

    def test_transport_failures_by_exception(self) -> None:
        """No status: refused, timeout, reset (also when wrapped) and other transport failures."""
        assert classify_outcome(0, ConnectionRefusedError(111, "Connection refused")) is ErrorClass.REFUSED
        assert classify_outcome(None, TimeoutError()) is ErrorClass.TIMEOUT
        wrapped = OSError("connection aborted")
        wrapped.__cause__ = ConnectionResetError(104, "Connection reset by peer")
        assert classify_outcome(0, wrapped) is ErrorClass.RESET
        assert classify_outcome(0, ValueError("bad")) is ErrorClass.TRANSPORT

    def test_no_status_and_no_exception_is_ok(self) -> None:
        """A non-HTTP user's successful request (no status) is a success."""
        assert classify_outcome(0, None) is None


class TestWindowTally:
    """Worker-side tallies on the run clock."""

    def test_requests_fall_into_the_window_of_their_start(self) -> None:
        """With t0 at wall 1000 and 0.5 s windows: 1000.2 → 0, 1000.7 → 1, 999.9 → -1."""
        tally = WindowTally(1_000.0, 0.5)
        assert [tally.window_of(t) for t in (1_000.2, 1_000.7, 999.9)] == [0, 1, -1]

    def test_drain_returns_records_once(self) -> None:
        """A drain returns each (signal, window) with buckets, ok and errors, then the tally is empty."""
        tally = WindowTally(1_000.0, 0.5)
        tally.add("a", 1_000.1, 1.0, None)
        tally.add("a", 1_000.2, 1.0, ErrorClass.HTTP_5XX)
        tally.add("b", 1_000.6, 2.5, None)
        # 2,500 µs lies above the exact range (< 2,048): its bucket [2500, 2501] reports its top, as HDR does
        assert tally.drain() == [["a", 0, [[1000, 2]], 1, {"http_5xx": 1}], ["b", 1, [[2501, 1]], 1, {}]]
        assert tally.drain() == []
        assert tally.count == 3


class TestSwarmCollector:
    """Replaying worker batches into the Recorder gives the statistics of recording directly."""

    def test_replay_matches_direct_recording(self) -> None:
        """Same latencies and errors: same count, ok, errors and percentiles per window."""
        clock = RunClock(FakeClock())
        direct, replayed = Recorder(0.5, clock), Recorder(0.5, clock)
        # start times exact in binary: the direct recording's float subtraction loses no microsecond
        samples = [(0.0, 1.2, None), (0.125, 1.5, None), (0.25, 1.9, ErrorClass.TIMEOUT), (0.375, 1.0, None)]
        samples.append((0.625, 0.8, None))
        tally = WindowTally(1_000.0, 0.5)
        for start_s, latency_ms, error in samples:
            direct.record("a", start_s, start_s + latency_ms / 1000.0, error)
            tally.add("a", 1_000.0 + start_s, latency_ms, error)
        collector = SwarmCollector(replayed, 0.5)
        assert collector.add_records(json.loads(json.dumps(tally.drain())), "w1") == 5
        want, got = direct.signals()["a"].windows, replayed.signals()["a"].windows
        assert [(w.index, w.count, w.ok, w.errors, w.p50_ms, w.p99_ms) for w in got] == [
            (w.index, w.count, w.ok, w.errors, w.p50_ms, w.p99_ms) for w in want
        ]
        assert [(w.count, w.ok, w.errors, w.p50_ms, w.p99_ms, w.offered) for w in got] == [
            (4, 3, {"timeout": 1}, 1.2, 1.9, 4),
            (1, 1, {}, 0.8, 0.8, 1),
        ]

    def test_generator_windows_keep_the_busiest_worker(self) -> None:
        """Per window: requests of all workers, the highest CPU, saturated above 90 %."""
        collector = SwarmCollector(Recorder(1.0, RunClock(FakeClock())), 1.0)
        collector.add_records([["a", 0, [[1000, 3]], 3, {}]], "w1")
        collector.add_records([["a", 0, [[1000, 2]], 2, {}]], "w2")
        collector.add_cpu(CpuSample("w1", 0.0, 0.5, 0.1))
        collector.add_cpu(CpuSample("w2", 0.25, 0.75, 0.3))
        collector.add_cpu(CpuSample("w1", 1.0, 1.5, 0.475))
        windows = collector.generator_windows()
        assert round(collector.cpu_s, 6) == 0.875
        assert [(g.index, g.offered, g.sent, g.cpu_percent, g.saturated) for g in windows] == [
            (0, 5, 5, 60.0, False),
            (1, 0, 0, 95.0, True),
        ]


class TestSwarmConfig:
    """The configuration's shape arithmetic and its JSON round trip."""

    def test_constant_users_between_start_and_end_then_drain_then_stop(self) -> None:
        """0 before 2 s, 20 until 10 s, 0 while draining until 13 s, then None."""
        cfg = config()
        assert [cfg.users_at(t) for t in (1.9, 2.0, 9.9, 10.0, 12.9, 13.0)] == [0, 20, 20, 0, 0, None]

    def test_ramp_and_spike_scale_the_users(self) -> None:
        """A ramp 0.1→1.0 over 2..12 s gives 11 users at 7 s; a 5× spike gives 100 users."""
        ramp = config(profile_points=((2.0, 0.1), (12.0, 1.0)), profile_linear=True, end_s=20.0)
        assert ramp.users_at(7.0) == 11
        spike = config(profile_points=((0.0, 1.0), (4.0, 5.0), (6.0, 1.0)))
        assert [spike.users_at(t) for t in (3.0, 5.0, 7.0)] == [20, 100, 20]

    def test_a_small_positive_multiple_keeps_one_user(self) -> None:
        """0.01 × 20 users rounds to 1, not 0."""
        assert config(profile_points=((0.0, 0.01),)).users_at(5.0) == 1

    def test_json_round_trip_and_lookups(self) -> None:
        """from_json(to_json()) is equal; names map to their signals and expected statuses."""
        cfg = config()
        assert SwarmConfig.from_json(cfg.to_json()) == cfg
        assert (cfg.signal_of("a"), cfg.signal_of("other"), cfg.expect_of("a"), cfg.per_user_rate()) == (
            "svc:a",
            "other",
            (201,),
            5.0,
        )


class TestLocustfiles:
    """Generated locustfiles."""

    def test_mix_locustfile_is_python_naming_the_mix(self) -> None:
        """The generated file compiles, lists each request class and exports the shape and the user."""
        text = mix_locustfile("demo", load_spec().mix)
        compile(text, "locustfile.py", "exec")
        assert "#   a: GET ${service:api}/a (weight 1, 50 %) -> signal a" in text
        assert '__all__ = ["ChaoslabShape", "MixUser"]' in text

    def test_plugin_locustfile_has_no_user(self) -> None:
        """The plugin file beside a user's locustfile installs the plugin and exports only the shape."""
        text = plugin_locustfile("demo")
        compile(text, "plugin.py", "exec")
        assert "install()" in text
        assert "MixUser" not in text


class TestRunnerPieces:
    """Pure pieces of the harness-side driver."""

    def test_parse_line_finds_chaoslab_lines_among_locust_output(self) -> None:
        """A prefixed line parses; Locust's own lines and broken JSON do not."""
        assert parse_line(f'{LINE_PREFIX}{{"type": "end"}}\n') == {"type": "end"}
        assert parse_line("Type     Name   # reqs\n") is None
        assert parse_line(f"{LINE_PREFIX}{{broken\n") is None

    def test_mix_entries_resolve_references(self) -> None:
        """URLs and JSON strings get their run references resolved; the signal is kept."""
        entries = mix_entries(load_spec().mix, {"service:api": "http://127.0.0.1:8080"})
        assert [(e.url, e.signal, e.timeout_s) for e in entries] == [
            ("http://127.0.0.1:8080/a", "a", 2.0),
            ("http://127.0.0.1:9/b", "api:b", 5.0),
        ]
        assert entries[1].json_body == {"q": "http://127.0.0.1:8080"}

    def test_commands_for_local_workers(self) -> None:
        """Two local workers: a loopback master expecting 2 and two workers pointing at its port."""
        gen = LocustLoadGenerator(load_spec(workers=2), {}, Recorder(1.0, RunClock()), RunClock(), python="py")
        master, workers = gen.commands(["/x/lf.py"], 6000)
        joined = " ".join(master)
        assert "--master --master-bind-host 127.0.0.1 --master-bind-port 6000 --expect-workers 2" in joined
        assert "--stop-timeout 6" in joined
        assert (
            workers
            == [
                [
                    *("py", "-m", "locust", "-f", "/x/lf.py", "--exit-code-on-error", "0", "--stop-timeout", "6"),
                    *("--worker", "--master-host", "127.0.0.1", "--master-port", "6000"),
                ]
            ]
            * 2
        )

    def test_commands_for_remote_workers_and_single_process(self) -> None:
        """expect_workers binds all interfaces on the given port; 0 workers and no remote ones is one process."""
        remote = LocustLoadGenerator(
            load_spec(workers=1, expect_workers=3), {}, Recorder(1.0, RunClock()), RunClock(), python="py"
        )
        master, workers = remote.commands(["lf.py"], 5557)
        assert "--master-bind-host * --master-bind-port 5557 --expect-workers 3" in " ".join(master)
        assert len(workers) == 1
        single = LocustLoadGenerator(load_spec(workers=0), {}, Recorder(1.0, RunClock()), RunClock(), python="py")
        master, workers = single.commands(["lf.py"], 5557)
        assert ("--master" in master, "--headless" in master, workers) == (False, True, [])

    def test_missing_user_locustfile_is_a_harness_error(self, tmp_path: Path) -> None:
        """A locustfile path that does not exist is reported with its resolved path."""
        from chaoslab.errors import HarnessError

        gen = LocustLoadGenerator(
            load_spec(locustfile="nope.py"), {}, Recorder(1.0, RunClock()), RunClock(), base_dir=tmp_path
        )
        with pytest.raises(HarnessError, match=r"nope\.py"):
            gen._locustfiles(tmp_path)


class TestHarnessImports:
    """The harness side never imports Locust (which would monkey-patch the stdlib with gevent)."""

    def test_harness_modules_leave_locust_and_gevent_unimported(self) -> None:
        """Importing the runner, config, aggregate and generator modules loads neither locust nor gevent."""
        import subprocess
        import sys

        code = (
            "import sys, chaoslab.load.locust.runner, chaoslab.load.locust.aggregate, chaoslab.load.locust.config, "
            "chaoslab.load.locust.locustfile_gen; print('locust' in sys.modules, 'gevent' in sys.modules)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        assert out.stdout.strip() == "False False"


class TestDocs:
    """The experiment snippets in docs/locust.md are valid."""

    def test_every_load_block_validates(self) -> None:
        """Each ```yaml block of docs/locust.md with a load: key is a valid Locust LoadSpec."""
        import re

        import yaml

        text = (Path(__file__).resolve().parents[3] / "docs" / "locust.md").read_text(encoding="utf-8")
        blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S)]
        loads = [LoadSpec.model_validate(b["load"]) for b in blocks if isinstance(b, dict) and "load" in b]
        assert len(loads) == 3
        assert all(spec.engine == "locust" and spec.locust is not None for spec in loads)
