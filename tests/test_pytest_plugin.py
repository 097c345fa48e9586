"""The pytest plugin, tested by running pytest inside pytest (pytester)."""

from __future__ import annotations

import json

import pytest

from chaoslab.pytest_plugin import ChaosResult
from chaoslab.testing import sample_journal
from tests.report.tiny import write_tiny

pytest_plugins = ["pytester"]

# the inner runs need neither locust's plugin (gevent) nor hypothesis: skip their start-up cost
LEAN = ("-p", "no:randomly", "-p", "no:locust", "-p", "no:hypothesispytest")
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

FAKE_ENGINE_CONFTEST = '''
import json
import pytest
from chaoslab.pytest_plugin import ChaosResult
from chaoslab.testing import sample_journal

SEEN = []

@pytest.fixture
def chaoslab_engine():
    """Stands in for the engine: records what it was asked to run, writes a sample journal."""
    def run(experiment, run_dir):
        SEEN.append((experiment.spec.name, experiment.quick, dict(experiment.parameters), str(run_dir)))
        journal = sample_journal(name=experiment.spec.name)
        path = run_dir / "journal.json"
        path.write_text(json.dumps(journal.to_dict()))
        return ChaosResult(journal, path, run_dir)
    return run

@pytest.fixture
def seen():
    return SEEN
'''


class TestChaosResult:
    def test_helpers_on_a_cascading_run(self) -> None:
        """Verdict, exit code, recovery helpers, cascade and impact read the journal's analysis."""
        result = ChaosResult(sample_journal(cascade=True))
        assert (result.verdict, result.exit_code, result.passed) == ("fail", 1, False)
        assert result.recovered_within("30s") is True
        assert result.recovered_within("1500ms") is False
        assert result.recovered_within(2.0) is True
        assert result.cascading_signals == ("api:documents",)
        assert result.cascade[0].onset_s == 13.0
        assert result.impact("api:search")["time_to_impact_s"] == 0.0
        assert [s["ok"] for s in result.slos] == [False, False]

    def test_unknown_signal_names_the_known_ones(self) -> None:
        """Asking for a signal without an impact record says which signals there are."""
        known = "api:documents, api:search, probe:api, probe:vector"
        with pytest.raises(KeyError, match=rf"'api:nope' \(signals: {known}\)"):
            ChaosResult(sample_journal()).impact("api:nope")

    def test_a_thin_view_over_the_journal(self) -> None:
        """The typed journal and analysis are there as they are; the verdict compares equal to its string."""
        journal = sample_journal(cascade=False)
        result = ChaosResult(journal)
        assert result.analysis is journal.analysis
        assert result.verdict == "pass" and result.passed and result.exit_code == 0
        assert result.cascade == ()
        assert result.impact("api:search")["degraded_windows"] == journal.analysis.impact["api:search"].degraded_windows
        assert "chaoslab cascade-vector-latency: pass (exit 0), recovered in 2.0s, no cascade" in result.summary()

    def test_not_recovered(self) -> None:
        """Without recovery no limit is met and the summary says so."""
        result = ChaosResult(sample_journal(cascade=False, recovered=False))
        assert result.recovered_within("10m") is False
        assert "not recovered" in result.summary()


class TestPluginOptions:
    def test_ini_keys_then_flags(self, pytester: pytest.Pytester) -> None:
        """Ini keys set the report dir and quick mode; the flags override them."""
        pytester.makeini(INI + "chaoslab_report_dir = from-ini\nchaoslab_quick = true\n")
        pytester.makepyfile(
            """
            def test_config(chaoslab_config, request):
                expected_dir = request.config.getoption("chaoslab_report_dir") or "from-ini"
                assert chaoslab_config.report_dir == request.config.rootpath / expected_dir
                print("QUICK", chaoslab_config.quick)
            """
        )
        result = pytester.runpytest("-s", *LEAN)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*QUICK True*"])
        result = pytester.runpytest("-s", *LEAN, "--chaoslab-report-dir", "from-flag")
        result.assert_outcomes(passed=1)

    def test_quick_flag_and_marker_registered(self, pytester: pytest.Pytester) -> None:
        """``--chaoslab-quick`` turns quick mode on; the ``chaos`` marker passes --strict-markers."""
        pytester.makeini(INI)
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.chaos
            def test_config(chaoslab_config):
                print("QUICK", chaoslab_config.quick)
            """
        )
        result = pytester.runpytest("-s", "--strict-markers", *LEAN)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*QUICK False*"])
        result = pytester.runpytest("-s", "--strict-markers", *LEAN, "--chaoslab-quick")
        result.stdout.fnmatch_lines(["*QUICK True*"])


class TestChaoslabRunFixture:
    def test_runs_keep_a_directory_per_test_and_marker_defaults_apply(self, pytester: pytest.Pytester) -> None:
        """Each test's runs go to ``<report dir>/<test id>/NN-<name>``; marker overrides and quick reach the loader."""
        exp = write_tiny(pytester.path / "exp")
        pytester.makeini(INI)
        pytester.makeconftest(FAKE_ENGINE_CONFTEST)
        pytester.makepyfile(
            test_runs=f"""
            import pytest

            EXP = {str(exp)!r}

            @pytest.mark.chaos(quick=True, overrides={{"latency": "5ms"}})
            def test_marked(chaoslab_run, seen):
                first = chaoslab_run(EXP)
                second = chaoslab_run(EXP, overrides={{"latency": "7ms"}}, quick=False)
                assert first.verdict == "fail" and first.cascading_signals == ("api:documents",)
                assert seen[-2][1:3] == (True, {{"latency": "5ms"}})
                assert seen[-1][1:3] == (False, {{"latency": "7ms"}})
                assert first.journal_path.parent.name == "01-tiny"
                assert second.journal_path.parent.name == "02-tiny"

            def test_plain(chaoslab_run):
                result = chaoslab_run(EXP)
                assert result.passed, result.summary()

            def test_loaded_experiment(chaoslab_run, seen):
                from chaoslab.model.loading import load_experiment

                exp = load_experiment(EXP, quick=True)
                chaoslab_run(exp)
                assert seen[-1][1] is True
            """
        )
        result = pytester.runpytest(*LEAN, "--chaoslab-report-dir", "reports")
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*chaoslab tiny: fail (exit 1), recovered in 2.0s, cascade: api:documents*",
                "*chaoslab runs*",
                "fail     test_runs.py::test_marked  recovered 2.0s  journal: *01-tiny/journal.json",
                "fail     test_runs.py::test_marked  recovered 2.0s  journal: *02-tiny/journal.json",
            ]
        )
        reports = pytester.path / "reports"
        journals = sorted(p.relative_to(reports).as_posix() for p in reports.rglob("journal.json"))
        assert journals == [
            "test_runs.py_test_loaded_experiment/01-tiny/journal.json",
            "test_runs.py_test_marked/01-tiny/journal.json",
            "test_runs.py_test_marked/02-tiny/journal.json",
            "test_runs.py_test_plain/01-tiny/journal.json",
        ]


@pytest.mark.integration
class TestEndToEnd:
    def test_real_runs_sync_and_async(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        """Real runs against a launched target: a latency fault cascades (sync test), none passes (async test)."""
        monkeypatch.setenv("CHAOSLAB_STATE_DIR", str(pytester.path / "state"))
        exp = write_tiny(pytester.path / "exp")
        pytester.makeini(INI + "asyncio_mode = auto\n")
        pytester.makepyfile(
            test_e2e=f"""
            import pytest

            EXP = {str(exp)!r}

            @pytest.mark.chaos
            def test_latency_cascades(chaoslab_run):
                result = chaoslab_run(EXP, overrides={{"latency": "300ms"}})
                assert result.verdict == "fail", result.summary()
                assert result.cascading_signals == ("target:b",)
                assert result.impact("target:a")["expected"] is True
                assert result.recovered_within("5s")
                assert (result.report_dir / "report.html").is_file()
                assert (result.report_dir / "junit.xml").is_file()

            @pytest.mark.chaos
            async def test_no_latency_passes(chaoslab_run):
                result = chaoslab_run(EXP, overrides={{"latency": "0ms"}})
                assert result.passed, result.summary()
                assert result.exit_code == 0
            """
        )
        result = pytester.runpytest_subprocess(*LEAN, "--chaoslab-report-dir", "reports")
        result.assert_outcomes(passed=2)
        journals = sorted((pytester.path / "reports").rglob("journal.json"))
        assert len(journals) == 2
        for path in journals:
            journal = json.loads(path.read_text())
            assert [f["revert_ok"] for f in journal["faults"]] == [True]
        # a clean revert leaves no ledger behind for `chaoslab rollback`
        assert list((pytester.path / "state").rglob("ledger.jsonl")) == []
