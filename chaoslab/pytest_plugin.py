"""pytest plugin: run chaoslab experiments as tests and assert on their analysis.

Registered through the ``pytest11`` entry point, so it loads in every pytest run: only pytest
and the standard library are imported here; chaoslab's engine is imported when a test runs one.

Usage::

    @pytest.mark.chaos
    def test_vector_latency_is_contained(chaoslab_run):
        result = chaoslab_run("cascade-vector-latency", overrides={"mode": "resilient"})
        assert result.verdict == "pass", result.summary()
        assert result.recovered_within("30s")
        assert not result.cascade

Options (flag, or ini key): ``--chaoslab-report-dir`` / ``chaoslab_report_dir`` (journals and
reports, one directory per test; default ``chaoslab-reports/pytest``), ``--chaoslab-quick`` /
``chaoslab_quick`` (scale phases down with each experiment's ``quick:`` block). The ``chaos``
marker takes defaults for the fixture: ``@pytest.mark.chaos(quick=True, overrides={...})``.
Faults are reverted by the engine on every way out of a run, including a failing test's
Ctrl-C: the run finishes (and reverts) before the test's assertions are even reached.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from chaoslab.analysis.model import Analysis, CascadeEntry, Verdict
    from chaoslab.journal import Journal
    from chaoslab.model.loading import Experiment

DEFAULT_REPORT_DIR = "chaoslab-reports/pytest"
_RESULTS_KEY = pytest.StashKey[list[tuple[str, "ChaosResult"]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the flags and their ini keys."""
    group = parser.getgroup("chaoslab", "chaoslab chaos experiments")
    group.addoption(
        "--chaoslab-report-dir",
        dest="chaoslab_report_dir",
        default=None,
        metavar="DIR",
        help=f"where chaos tests keep journals and reports, one directory per test (default {DEFAULT_REPORT_DIR})",
    )
    group.addoption(
        "--chaoslab-quick",
        dest="chaoslab_quick",
        action="store_true",
        default=None,
        help="run experiments in quick mode (their `quick:` block): for CI smoke runs",
    )
    parser.addini("chaoslab_report_dir", help="chaoslab: journals and reports directory", default=DEFAULT_REPORT_DIR)
    # a plain variable: newer mypy reads a string literal passed as `type=` as a type form
    ini_type: Any = "bool"
    parser.addini("chaoslab_quick", type=ini_type, help="chaoslab: run experiments in quick mode", default=False)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``chaos`` marker."""
    config.addinivalue_line(
        "markers", "chaos(quick=None, overrides=None): a chaoslab experiment run as a test (defaults for chaoslab_run)"
    )
    config.stash[_RESULTS_KEY] = []


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """The resolved plugin options."""

    report_dir: Path
    quick: bool


def chaos_config(config: pytest.Config) -> ChaosConfig:
    """Flags win over ini keys; a relative directory is relative to the rootdir."""
    raw_dir = config.getoption("chaoslab_report_dir") or config.getini("chaoslab_report_dir") or DEFAULT_REPORT_DIR
    report_dir = Path(str(raw_dir))
    if not report_dir.is_absolute():
        report_dir = Path(config.rootpath) / report_dir
    flag = config.getoption("chaoslab_quick")
    quick = bool(flag) if flag is not None else bool(config.getini("chaoslab_quick"))
    return ChaosConfig(report_dir=report_dir, quick=quick)


def _parse_duration(value: str | float) -> float:
    if isinstance(value, int | float):
        return float(value)
    from chaoslab.units import parse_duration

    return parse_duration(value)


@dataclass(frozen=True)
class ChaosResult:
    """One experiment run's outcome: a thin view over its :class:`~chaoslab.journal.Journal`, for assertions."""

    journal: Journal
    journal_path: Path | None = None
    report_dir: Path | None = None
    report_paths: tuple[Path, ...] = field(default_factory=tuple)

    @property
    def analysis(self) -> Analysis:
        """The journal's typed analysis (baseline, bands, impact, cascade, SLOs, verdict)."""
        return self.journal.analysis

    @property
    def verdict(self) -> Verdict:
        """``pass``, ``fail``, ``aborted`` or ``error`` (a string enum: ``result.verdict == "pass"`` works)."""
        return self.journal.verdict

    @property
    def exit_code(self) -> int:
        """What ``chaoslab run`` would exit with (0 pass, 1 fail, 3 aborted, 4 revert failed)."""
        return self.journal.exit_code

    @property
    def passed(self) -> bool:
        """Whether the verdict is pass."""
        return self.analysis.passed

    @property
    def recovered(self) -> bool:
        """Whether recovery was established."""
        return self.analysis.recovered

    @property
    def recovery_time_s(self) -> float | None:
        """From fault removal to recovery; None when not recovered."""
        return self.analysis.recovery_time_s

    def recovered_within(self, limit: str | float) -> bool:
        """Whether recovery came within ``limit`` (``"30s"``, ``"1m"`` or seconds) of the revert."""
        limit_s = _parse_duration(limit)
        return self.recovery_time_s is not None and self.recovery_time_s <= limit_s

    @property
    def cascade(self) -> tuple[CascadeEntry, ...]:
        """Cascading signals in order of onset (empty when contained)."""
        return self.analysis.cascade

    @property
    def cascading_signals(self) -> tuple[str, ...]:
        """Names of the cascading signals, in order of onset."""
        return tuple(c.signal for c in self.cascade)

    def impact(self, signal: str) -> Mapping[str, Any]:
        """The impact record of ``signal`` as in the journal (``time_to_impact_s``, ``degraded_windows``, peaks).

        Typed: ``result.analysis.impact[signal]``.
        """
        records = self.analysis.impact
        if signal not in records:
            known = ", ".join(sorted(records)) or "none"
            raise KeyError(f"no impact record for signal {signal!r} (signals: {known})")
        return MappingProxyType(records[signal].to_dict())

    @property
    def slos(self) -> tuple[Mapping[str, Any], ...]:
        """Declared SLOs with ``ok`` and ``observed``, as in the journal (typed: ``result.analysis.slos``)."""
        return tuple(MappingProxyType(s.to_dict()) for s in self.analysis.slos)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the verdict is what it is."""
        return self.analysis.reasons

    def summary(self) -> str:
        """One paragraph for assertion messages."""
        rt = self.recovery_time_s
        lines = [
            f"chaoslab {self.journal.name}: {self.verdict.value} (exit {self.exit_code}), "
            + (f"recovered in {rt:.1f}s" if rt is not None else "not recovered")
            + (f", cascade: {', '.join(self.cascading_signals)}" if self.cascade else ", no cascade")
        ]
        lines += [f"  - {r}" for r in self.reasons]
        if self.journal_path is not None:
            lines.append(f"  journal: {self.journal_path}")
        return "\n".join(lines)


RunEngine = Callable[["Experiment", Path], ChaosResult]


def _engine_run(experiment: Experiment, run_dir: Path) -> ChaosResult:
    """Run with chaoslab's engine; off the event loop's thread when a test's loop is running."""
    from chaoslab.run.engine import RunOptions, run_experiment, run_experiment_sync

    options = RunOptions(
        journal_path=run_dir / "journal.json",
        report_dir=run_dir,
        junit_path=run_dir / "junit.xml",
        summary_md_path=run_dir / "summary.md",
        live=False,
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # the engine may install uvloop's policy for its run; the test session keeps its own
        policy = asyncio.get_event_loop_policy()
        try:
            result = run_experiment_sync(experiment, options)
        finally:
            asyncio.set_event_loop_policy(policy)
    else:
        # an async test: its loop is busy awaiting us, so run in a thread with a loop of its own
        box: dict[str, Any] = {}
        ready = threading.Event()

        async def run_in_thread() -> Any:
            abort = asyncio.Event()
            box["stop"] = (asyncio.get_running_loop(), abort)
            ready.set()
            return await run_experiment(experiment, RunOptions(**{**options.__dict__, "abort": abort}))

        def target() -> None:
            try:
                box["result"] = asyncio.run(run_in_thread())
            except BaseException as exc:
                box["error"] = exc
            finally:
                ready.set()

        thread = threading.Thread(target=target, name="chaoslab-run")
        thread.start()
        try:
            thread.join()
        except KeyboardInterrupt:
            # signals only reach the main thread: abort the run there, let it revert, then stop
            ready.wait()
            if "stop" in box:
                loop, abort = box["stop"]
                loop.call_soon_threadsafe(abort.set)
            thread.join()
            raise
        if "error" in box:
            raise box["error"]
        result = box["result"]
    return ChaosResult(
        journal=result.journal,
        journal_path=result.journal_path,
        report_dir=run_dir,
        report_paths=tuple(result.report_paths),
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:120] or "test"


class ChaosRunner:
    """The ``chaoslab_run`` fixture's value: call it with an experiment to run it."""

    def __init__(
        self,
        node: pytest.Item,
        config: ChaosConfig,
        results: list[tuple[str, ChaosResult]],
        engine: RunEngine | None = None,
    ) -> None:
        self.node = node
        self.config = config
        self.engine = engine or _engine_run
        self.test_dir = config.report_dir / _safe(node.nodeid)
        self.results: list[ChaosResult] = []
        self._all = results
        marker = node.get_closest_marker("chaos")
        self.marker_kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}

    def load(self, experiment: str | Path | Experiment, overrides: Mapping[str, Any] | None, quick: bool) -> Experiment:
        """Load (or reload with overrides) the experiment."""
        from chaoslab.faults.registry import builtin_registry
        from chaoslab.model.loading import Experiment, load_experiment

        if isinstance(experiment, Experiment):
            if not overrides and experiment.quick == quick:
                return experiment
            if experiment.path is None:
                raise ValueError("chaoslab_run: overrides or quick need an experiment loaded from a file")
            experiment = experiment.path
        return load_experiment(
            experiment, overrides=dict(overrides or {}), quick=quick, fault_models=builtin_registry().models()
        )

    def __call__(
        self,
        experiment: str | Path | Experiment,
        *,
        overrides: Mapping[str, Any] | None = None,
        quick: bool | None = None,
    ) -> ChaosResult:
        """Run ``experiment`` (a name, a path or an Experiment) and return its result."""
        from chaoslab.model.loading import Experiment

        merged = {**dict(self.marker_kwargs.get("overrides") or {}), **dict(overrides or {})}
        if quick is None:
            quick = self.marker_kwargs.get("quick")
        if quick is None:
            # a loaded Experiment keeps the form it was loaded in unless --chaoslab-quick asks for quick
            own = experiment.quick if isinstance(experiment, Experiment) else False
            quick = own or self.config.quick
        exp = self.load(experiment, merged, bool(quick))
        run_dir = self.test_dir / f"{len(self.results) + 1:02d}-{_safe(exp.spec.name)}"
        run_dir.mkdir(parents=True, exist_ok=True)
        result = self.engine(exp, run_dir)
        self.results.append(result)
        self._all.append((self.node.nodeid, result))
        if result.journal_path is not None:
            self.node.user_properties.append(("chaoslab_journal", str(result.journal_path)))
        self.node.user_properties.append(("chaoslab_verdict", result.verdict.value))
        return result


@pytest.fixture
def chaoslab_config(request: pytest.FixtureRequest) -> ChaosConfig:
    """The plugin's resolved options (report directory, quick mode)."""
    return chaos_config(request.config)


@pytest.fixture
def chaoslab_engine() -> RunEngine:
    """What runs an experiment into a run directory: chaoslab's engine (override to wrap or replace it)."""
    return _engine_run


@pytest.fixture
def chaoslab_run(
    request: pytest.FixtureRequest, chaoslab_config: ChaosConfig, chaoslab_engine: RunEngine
) -> ChaosRunner:
    """A callable that runs an experiment and returns a :class:`ChaosResult`; one directory per test."""
    node = request.node
    assert isinstance(node, pytest.Item)
    return ChaosRunner(node, chaoslab_config, request.config.stash[_RESULTS_KEY], chaoslab_engine)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """List the chaos runs of the session with their verdicts and journals."""
    results = config.stash.get(_RESULTS_KEY, [])
    if not results:
        return
    terminalreporter.section("chaoslab runs")
    for nodeid, result in results:
        rt = result.recovery_time_s
        recovery = f"recovered {rt:.1f}s" if rt is not None else "not recovered"
        terminalreporter.write_line(f"{result.verdict.value:<8} {nodeid}  {recovery}  journal: {result.journal_path}")
