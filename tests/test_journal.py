"""The typed journal: its JSON shape, reading it back, migrating older schemas, and rejecting bad ones."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import chaoslab.migrations
from chaoslab.analysis import Verdict, analyse, unjudged
from chaoslab.cli import main
from chaoslab.clock import RunClock
from chaoslab.errors import SpecError
from chaoslab.journal import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Journal,
    read_journal,
    upgrade,
    write_journal,
)
from chaoslab.load.generator import LoadGenerator
from chaoslab.load.recorder import Recorder
from chaoslab.model.experiment import ExperimentSpec, LoadSpec
from chaoslab.model.topology import TopologySpec
from chaoslab.redact import remember
from chaoslab.system.probes import ProbeRunner
from chaoslab.system.resources import ResourceSampler
from chaoslab.testing import experiment_spec, sample_journal
from chaoslab.timeline import Event, FaultRecord, PhaseSpan, SignalKind, Timeline
from tests.conftest import free_port

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "journals"
SHIPPED = sorted(FIXTURES.glob("*.json"))

TOP_LEVEL = [
    "schema_version",
    "chaoslab_version",
    "run_id",
    "experiment",
    "topology",
    "parameters",
    "quick",
    "started_at",
    "ended_at",
    "t0_wall",
    "host",
    "window_s",
    "duration_s",
    "phases",
    "faults",
    "timeline",
    "probes",
    "resources",
    "events",
    "generator",
    "load_profile",
    "analysis",
    "verdict",
    "exit_code",
    "abort_reason",
    "revert_errors",
    "error",
]


def _cli(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def _write(tmp_path: Path, data: Any, name: str = "journal.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


class TestShape:
    def test_top_level_keys_in_order(self) -> None:
        """``to_dict`` writes design.md §3's keys (and the rest users' scripts read) in the order they always had."""
        assert list(sample_journal().to_dict()) == TOP_LEVEL

    def test_analysis_keys_and_verdict(self) -> None:
        """The ``analysis`` object holds baseline, bands, impact, recovery and cascade; verdict and exit code agree."""
        data = sample_journal(cascade=True).to_dict()
        analysis = data["analysis"]
        for key in ("baseline", "bands", "impact", "recovery_time_s", "recovered", "cascade", "verdict", "exit_code"):
            assert key in analysis
        assert (data["verdict"], data["exit_code"]) == (analysis["verdict"], analysis["exit_code"]) == ("fail", 1)
        assert analysis["cascade"][0] == {
            "signal": "api:documents",
            "service": "api",
            "onset_s": 13.0,
            "peak_s": 17.0,
            "peak": {"p95_ms": 2448.0, "error_rate": 0.2},
            "end_s": 21.0,
        }

    def test_a_recorded_journal_is_written_back_as_its_migration(self) -> None:
        """A schema-1 journal recorded by a real run reads and writes back as exactly its schema-2 migration."""
        for name in ("v1-tiny-latency-cascade.json", "v1-tiny-no-latency-pass.json"):
            data = _fixture(name)
            assert Journal.from_dict(data).to_dict() == chaoslab.migrations.migrate_v1_to_v2(copy.deepcopy(data))

    @pytest.mark.parametrize(
        "flags", [{}, {"cascade": False}, {"recovered": False}, {"aborted": True}, {"revert_failed": True}]
    )
    def test_round_trip_through_json(self, flags: dict[str, bool], tmp_path: Path) -> None:
        """Writing a journal and reading it back gives an equal value, typed parts and all."""
        journal = sample_journal(**flags)
        path = write_journal(journal, tmp_path / "out" / "journal.json")
        assert read_journal(path) == journal
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["journal.json"]  # no temp file left


class TestVerdictIsTheAnalysis:
    def test_verdict_and_exit_code_come_from_the_analysis(self) -> None:
        """A journal's verdict and exit code are its analysis's: a failed revert keeps the verdict, exits 4."""
        journal = sample_journal(revert_failed=True)
        assert journal.verdict is journal.analysis.verdict is Verdict.FAIL
        assert journal.exit_code == journal.analysis.exit_code == 4

    def test_an_altered_verdict_is_rejected(self, tmp_path: Path) -> None:
        """A top-level verdict that disagrees with the analysis's is a bad journal, not a silent pass."""
        data = sample_journal(cascade=True).to_dict()
        data["verdict"] = "pass"
        with pytest.raises(SpecError) as err:
            Journal.from_dict(data, file="j.json")
        assert str(err.value) == "j.json: verdict: 'pass' disagrees with the analysis ('fail'): the journal was altered"

    def test_a_journal_whose_analysis_failed_reads_as_unjudged(self) -> None:
        """An analysis block holding only verdict, reasons and exit code reads back: error, not recovered."""
        data = sample_journal().to_dict()
        data["analysis"] = {"verdict": "error", "reasons": ["analysis failed: ValueError()"], "exit_code": 3}
        data["verdict"], data["exit_code"] = "error", 3
        journal = Journal.from_dict(data)
        assert journal.verdict is Verdict.ERROR and journal.exit_code == 3
        assert journal.analysis.recovered is False and journal.analysis.health == {}
        assert journal.analysis.recovery_budget_s == 15.0
        assert journal.analysis.reasons == ("analysis failed: ValueError()",)

    def test_unjudged_analysis(self) -> None:
        """The engine's fallback when analysis raises: verdict error, the reason, exit 3 (4 after a failed revert)."""
        analysis = unjudged(experiment_spec(), error="analysis failed: boom", revert_failed=True)
        assert analysis.verdict is Verdict.ERROR
        assert analysis.exit_code == 4
        assert analysis.recovered is False and analysis.recovery_time_s is None
        assert analysis.reasons[0] == "error: analysis failed: boom"


# Schema 1 hid a killed service's restart (the removal was stamped after it): these runs passed
# then and fail today (tests/test_migrations.py compares them with the service's own log).
VERDICT_CHANGED_IN_SCHEMA_2 = {"v1-supervised-kill": "fail", "v1-restart-after-kill": "fail"}


class TestShippedFixtures:
    @pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
    def test_analyse_gives_todays_verdict(self, path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``chaoslab analyse`` on every shipped journal recomputes its analysis: the recorded verdict, bands and
        cascade, except where schema 2 measures differently (the kills)."""
        journal = read_journal(path)
        code = _cli(["analyse", str(path), "--json"])
        recomputed = json.loads(capsys.readouterr().out)
        verdict = VERDICT_CHANGED_IN_SCHEMA_2.get(path.stem, journal.verdict.value)
        assert recomputed["verdict"] == verdict
        assert code == (journal.exit_code if verdict == journal.verdict.value else 1)
        recorded = journal.analysis.to_dict()
        for key in ("bands", "baseline", "health"):
            assert recomputed[key] == recorded[key]
        assert [c["signal"] for c in recomputed["cascade"]] == [c["signal"] for c in recorded["cascade"]]

    @pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
    def test_analyse_of_todays_journal_reproduces_itself(self, path: Path) -> None:
        """Written back with today's analysis, a shipped journal re-analyses to exactly that analysis."""
        journal = read_journal(path)
        today = dataclasses.replace(
            journal,
            analysis=analyse(
                journal.timeline,
                journal.experiment,
                aborted=journal.abort_reason,
                revert_failed=bool(journal.revert_errors),
                error=journal.error,
            ),
        )
        again = Journal.from_dict(json.loads(json.dumps(today.to_dict())))
        assert (
            analyse(
                again.timeline,
                again.experiment,
                aborted=again.abort_reason,
                revert_failed=bool(again.revert_errors),
                error=again.error,
            )
            == today.analysis
        )

    def test_the_fixtures_cover_every_outcome(self) -> None:
        """The shipped journals include a pass, a fail, an abort and a failed revert."""
        outcomes = {(read_journal(p).verdict.value, read_journal(p).exit_code) for p in SHIPPED}
        assert {("pass", 0), ("fail", 1), ("aborted", 3), ("fail", 4)} <= outcomes


def _to_v0(v1: dict[str, Any]) -> dict[str, Any]:
    """A synthetic schema 0 for the tests: ``run`` for ``run_id``, and the verdict only inside ``analysis``."""
    v0 = copy.deepcopy(v1)
    v0["schema_version"] = 0
    v0["run"] = v0.pop("run_id")
    del v0["verdict"], v0["exit_code"]
    return v0


def migrate_v0_to_v1(journal: dict[str, Any]) -> dict[str, Any]:
    """The synthetic step from schema 0: the inverse of :func:`_to_v0`."""
    journal["run_id"] = journal.pop("run")
    journal["verdict"] = journal["analysis"]["verdict"]
    journal["exit_code"] = journal["analysis"]["exit_code"]
    return journal


def migrate_v1_to_v2(journal: dict[str, Any]) -> dict[str, Any]:
    """A synthetic step to a schema 2 that records when each revert began."""
    for fault in journal["faults"]:
        fault["revert_started_s"] = fault["reverted_at_s"]
    return journal


class TestMigrations:
    def test_schema_2_is_current_with_a_step_from_1(self) -> None:
        """Schema 2 (true recovery times) is current; schema 1 is read through chaoslab.migrations."""
        assert SCHEMA_VERSION == 2
        assert {1: chaoslab.migrations.migrate_v1_to_v2} == MIGRATIONS

    def test_steps_run_in_order_up_to_the_target(self) -> None:
        """A schema-0 journal goes through every step to the target, and the input is left untouched."""
        v1 = _fixture("v1-tiny-latency-cascade.json")
        v0 = _to_v0(v1)
        before = copy.deepcopy(v0)
        steps = {0: migrate_v0_to_v1, 1: migrate_v1_to_v2}
        assert upgrade(v0, migrations=steps, target=1) == v1
        v2 = upgrade(v0, migrations=steps, target=2)
        assert v2["schema_version"] == 2
        assert v2["faults"][0]["revert_started_s"] == v1["faults"][0]["reverted_at_s"]
        assert v0 == before

    def test_reading_an_old_journal_goes_through_the_registry(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With a step registered, ``chaoslab analyse`` reads a schema-0 journal and reproduces its verdict."""
        v1 = _fixture("v1-tiny-latency-cascade.json")
        path = _write(tmp_path, _to_v0(v1))
        monkeypatch.setitem(MIGRATIONS, 0, migrate_v0_to_v1)
        journal = read_journal(path)
        assert journal == Journal.from_dict(v1)
        assert journal.to_dict()["schema_version"] == SCHEMA_VERSION
        assert _cli(["analyse", str(path), "--json"]) == 1
        assert json.loads(capsys.readouterr().out)["verdict"] == "fail"

    def test_a_schema_without_a_step_is_too_old(self, tmp_path: Path) -> None:
        """Without a registered step, an old journal is a one-line error giving the readable range."""
        path = _write(tmp_path, _to_v0(_fixture("v1-tiny-latency-cascade.json")))
        with pytest.raises(SpecError) as err:
            read_journal(path)
        assert str(err.value) == f"{path}: schema_version: schema 0 is too old: chaoslab 0.1.0 reads schema 1 to 2"

    def test_a_newer_schema_asks_for_a_newer_chaoslab(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A journal from a later chaoslab is exit 2 with one line, never read as if it were this schema."""
        data = _fixture("v1-tiny-latency-cascade.json")
        data["schema_version"] = 3
        path = _write(tmp_path, data)
        assert _cli(["analyse", str(path)]) == 2
        err = capsys.readouterr().err
        assert err == (
            f"chaoslab: error: {path}: schema_version: schema 3 was written by a newer chaoslab; chaoslab 0.1.0 "
            "reads schema 2 and older: upgrade chaoslab to read this journal\n"
        )

    def test_a_registry_refuses_two_steps_from_one_schema(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Registering a second step from the same schema is a programming error."""
        from chaoslab.journal import migration

        monkeypatch.setitem(MIGRATIONS, 0, migrate_v0_to_v1)
        with pytest.raises(ValueError, match="already registered"):
            migration(0)(migrate_v0_to_v1)


def _broken(change: str) -> dict[str, Any]:
    data = sample_journal().to_dict()
    if change == "version":
        data["schema_version"] = "one"
    elif change == "experiment":
        data["experiment"]["load"]["rate"] = "fast"
    elif change == "window":
        data["window_s"] = 0
    elif change == "phase":
        del data["phases"][1]["end_s"]
    elif change == "window_index":
        del data["probes"][1]["windows"][3]["index"]
    elif change == "band":
        data["analysis"]["bands"]["api:search"]["source"] = "guess"
    elif change == "verdict":
        data["analysis"]["verdict"] = "maybe"
    elif change == "host":
        data["host"] = ["not", "an", "object"]
    elif change == "bins":
        data["timeline"][0]["bins"] = {"bin_s": 0.01, "encoding": "chaoslab-bins/1", "data": "not base64!"}
    return data


class TestBadJournals:
    @pytest.mark.parametrize(
        ("change", "field", "message"),
        [
            ("version", "schema_version", "expected a whole number, got 'one'"),
            ("experiment", "experiment.load.rate", "cannot read it back:"),
            ("window", "window_s", "expected a positive window, got 0.0"),
            ("phase", "phases[1]", "cannot read it: missing 'end_s'"),
            ("window_index", "probes[1]", "cannot read it: missing 'index'"),
            ("band", "analysis.bands.api:search", "cannot read it: 'guess' is not a valid BandSource"),
            ("verdict", "analysis.verdict", "expected one of pass, fail, inconclusive, aborted, error, got 'maybe'"),
            ("host", "host", "expected an object, got list"),
            ("bins", "timeline[0]", "cannot read it: bins: data is not base64 zlib"),
        ],
    )
    def test_one_line_naming_file_and_field(self, change: str, field: str, message: str, tmp_path: Path) -> None:
        """A damaged journal is a SpecError naming the file and the field that is wrong, on one line."""
        path = _write(tmp_path, _broken(change))
        with pytest.raises(SpecError) as err:
            read_journal(path)
        assert err.value.file == str(path)
        assert err.value.field == field
        assert str(err.value).startswith(f"{path}: {field}: {message}")
        assert "\n" not in str(err.value)

    def test_cli_exit_2_and_nothing_written(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """``chaoslab analyse`` and ``chaoslab report`` on a bad journal exit 2 with one line and write nothing."""
        path = _write(tmp_path, _broken("phase"))
        assert _cli(["analyse", str(path)]) == 2
        assert capsys.readouterr().err == f"chaoslab: error: {path}: phases[1]: cannot read it: missing 'end_s'\n"
        assert _cli(["report", str(path), "--html", str(tmp_path / "r.html")]) == 2
        assert capsys.readouterr().err.count("\n") == 1
        assert not (tmp_path / "r.html").exists()

    def test_not_a_journal(self, tmp_path: Path) -> None:
        """JSON that is not a journal at all says so."""
        with pytest.raises(SpecError, match="not a chaoslab journal"):
            read_journal(_write(tmp_path, {"hello": "world"}))


class TestSample:
    @pytest.mark.parametrize(
        "flags", [{}, {"cascade": False}, {"recovered": False}, {"aborted": True}, {"revert_failed": True}]
    )
    def test_analyse_reproduces_the_sample(
        self, flags: dict[str, bool], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The sample journal's verdict, bands and health are what ``chaoslab analyse`` computes from its timeline."""
        journal = sample_journal(**flags)
        path = write_journal(journal, tmp_path / "journal.json")
        assert _cli(["analyse", str(path), "--json"]) == journal.exit_code
        recomputed = json.loads(capsys.readouterr().out)
        assert recomputed["verdict"] == journal.verdict.value
        assert recomputed["bands"] == {k: v.to_dict() for k, v in journal.analysis.bands.items()}
        assert recomputed == journal.analysis.to_dict()

    def test_sample_outcomes(self) -> None:
        """The flags pick the outcome: cascade fails, contained passes, no recovery fails, abort, failed revert."""
        outcomes = {
            "cascade": sample_journal(cascade=True),
            "contained": sample_journal(cascade=False),
            "not recovered": sample_journal(cascade=False, recovered=False),
            "aborted": sample_journal(aborted=True),
            "revert failed": sample_journal(revert_failed=True),
        }
        assert {k: (j.verdict.value, j.exit_code) for k, j in outcomes.items()} == {
            "cascade": ("fail", 1),
            "contained": ("pass", 0),
            "not recovered": ("fail", 1),
            "aborted": ("aborted", 3),
            "revert failed": ("fail", 4),
        }
        contained = outcomes["contained"].analysis
        assert contained.recovery_time_s == 2.0 and contained.cascade == ()
        assert outcomes["not recovered"].analysis.recovered is False

    def test_analysis_is_the_pipelines(self) -> None:
        """Re-running the analysis on the sample's own timeline gives the same Analysis value."""
        journal = sample_journal()
        again = analyse(journal.timeline, journal.experiment, aborted=journal.abort_reason)
        assert dataclasses.replace(journal, analysis=again) == journal


@pytest.fixture
async def service_url() -> AsyncIterator[str]:
    """A real aiohttp service with /ok, /fail (500) and /health."""
    port = free_port()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/fail", fail)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.integration
class TestJournalRoundTrip:
    async def test_recorded_run_round_trips(self, service_url: str) -> None:
        """Load, probes, resources and generator windows from 1.2 s of a real run load back equal."""
        clock = RunClock()
        recorder = Recorder(0.2, clock)
        topology = TopologySpec.model_validate(
            {
                "name": "t",
                "services": {
                    "api": {
                        "url": service_url,
                        "probe": {"type": "http", "url": "${service:api}/health", "interval": "100ms"},
                    }
                },
            }
        )
        spec = LoadSpec.model_validate(
            {
                "rate": "150/s",
                "mix": [
                    {"name": "ok", "signal": "api:ok", "url": "${service:api}/ok", "weight": 2},
                    {"name": "fail", "signal": "api:fail", "url": "${service:api}/fail"},
                ],
                "seed": 4,
            }
        )
        refs = {"service:api": service_url}
        generator = LoadGenerator(spec, refs, recorder, clock)
        probes = ProbeRunner(topology, recorder, clock)
        sampler = ResourceSampler(clock, pids_of=lambda s: [os.getpid()], services=["api"], interval_s=0.4)
        await asyncio.gather(generator.run(0.0, 1.2), probes.run(1.2), sampler.run(1.2))
        original = Timeline(
            window_s=0.2,
            signals=recorder.signals(),
            phases=(PhaseSpan("baseline", 0.0, 0.6), PhaseSpan("fault", 0.6, 1.2)),
            faults=(FaultRecord("latency", "api->vector", "800ms latency", 0.6, 1.2, True, {"toxic": "l1"}),),
            resources=sampler.samples(),
            events=(Event(0.6, "fault", "latency on", {"label": "f1"}),),
            generator=generator.generator_windows(),
            duration_s=round(clock.elapsed(), 6),
        )
        text = json.dumps(original.to_journal_parts())
        loaded = Timeline.from_journal_parts(json.loads(text))
        assert loaded == original
        # The run really recorded something in each part.
        assert [s.kind for s in original.signals.values()] == [SignalKind.LOAD, SignalKind.LOAD, SignalKind.PROBE]
        assert (
            sum(w.count for w in original.signals["api:ok"].windows)
            + sum(w.count for w in original.signals["api:fail"].windows)
            == 180
        )
        assert sum(w.errors.get("http_5xx", 0) for w in original.signals["api:fail"].windows) > 0
        assert len(original.signals["probe:api"].windows) >= 4  # 6 unless the host stalls this process
        assert len(original.resources["api"]) >= 2 and len(original.resources["host"]) >= 2
        assert len(original.generator) == 6


class TestJournalSecrets:
    """A Journal cannot hold a secret, whatever it is built from: every renderer reads a redacted one."""

    def test_built_with_secrets_holds_none(self, tmp_path: Path) -> None:
        """Literal header, URL password, remembered value in an error and an event: *** in the value and the file."""
        remember("remembered-0123")
        journal = sample_journal()
        data = journal.experiment.model_dump(mode="json", by_alias=True)
        data["load"]["mix"][0]["headers"] = {"Authorization": "Bearer literal-0123", "X-Key": "${env:K}"}
        data["load"]["mix"][0]["url"] = "http://u:pw-0123@127.0.0.1:1/x"
        secret_timeline = dataclasses.replace(
            journal.timeline, events=(Event(1.0, "note", "saw remembered-0123", {"password": "pw-0123"}),)
        )
        built = dataclasses.replace(
            journal,
            experiment=ExperimentSpec.model_validate(data),
            timeline=secret_timeline,
            topology={"services": {"db": {"dsn": "postgresql://a:pw-0123@h/d"}}},
            parameters={"db_password": "pw-0123"},
            error="login failed: remembered-0123",
        )
        request = built.experiment.load.mix[0]
        assert request.headers == {"Authorization": "***", "X-Key": "${env:K}"}
        assert request.url == "http://u:***@127.0.0.1:1/x"
        assert built.error == "login failed: ***"
        assert built.timeline.events[0].message == "saw ***" and built.timeline.events[0].data == {"password": "***"}
        path = write_journal(built, tmp_path / "journal.json")
        text = path.read_text()
        for secret in ("literal-0123", "pw-0123", "remembered-0123"):
            assert secret not in text
        assert read_journal(path).experiment == built.experiment

    def test_a_name_that_contains_a_remembered_value_stays_valid(self) -> None:
        """Masking that would break the experiment's structure (its name's pattern) keeps that value."""
        journal = sample_journal(name="cascade-abcd1234")
        remember("abcd1234")
        rebuilt = dataclasses.replace(journal)
        assert rebuilt.experiment.name == "cascade-abcd1234"

    def test_no_secret_keeps_the_same_experiment(self) -> None:
        """Nothing to mask: the experiment object itself is kept (no re-validation)."""
        journal = sample_journal()
        assert dataclasses.replace(journal).experiment is journal.experiment
