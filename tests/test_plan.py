"""The plan: phases with offsets, fault apply/revert times, targets, and its readable rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoslab.model.loading import Experiment, load_experiment, resolve_known_refs
from chaoslab.plan import Plan, build_plan, render_plan
from tests.model.conftest import SHOP, TINY

TWO_FAULTS = TINY.replace("    latency: 100ms\n", "    latency: 100ms\n    start: 1s\n    duration: 2s\n") + (
    "  - {kind: process_kill, target: api}\n"
    "  - {kind: latency, target: api->vector, latency: 50ms, start: 4s}\n"
    "phases: {warmup: 2s, baseline: 10s, fault: 8s}\n"
    "recovery: {budget: 20s, stable_for: 3s}\n"
)


def load(tmp_path: Path, text: str, *, quick: bool = False) -> Experiment:
    """An experiment on the shop topology from text."""
    (tmp_path / "shop.yaml").write_text(SHOP, encoding="utf-8")
    path = tmp_path / "exp.yaml"
    path.write_text(text, encoding="utf-8")
    return load_experiment(path, quick=quick)


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    """The plan of the two-fault experiment."""
    return build_plan(load(tmp_path, TWO_FAULTS))


class TestBuildPlan:
    """build_plan is pure arithmetic over the experiment."""

    def test_phase_offsets(self, plan: Plan) -> None:
        """Phases follow each other; recovery lasts budget + stable_for at most."""
        assert [(p.name, p.start_s, p.end_s) for p in plan.phases] == [
            ("warmup", 0.0, 2.0),
            ("baseline", 2.0, 12.0),
            ("fault", 12.0, 20.0),
            ("recovery", 20.0, 43.0),
        ]
        assert plan.max_duration_s == 43.0
        assert plan.phase("fault").duration_s == 8.0

    def test_default_phases(self, tmp_path: Path) -> None:
        """Defaults: warmup 5s, baseline 20s, fault 20s, recovery 30s + 5s."""
        plan = build_plan(load(tmp_path, TINY))
        assert [(p.start_s, p.end_s) for p in plan.phases] == [(0.0, 5.0), (5.0, 25.0), (25.0, 45.0), (45.0, 80.0)]

    def test_fault_times(self, plan: Plan) -> None:
        """A fault starts at its offset into the fault phase and is reverted after its duration or at the phase end."""
        assert [(f.label, f.apply_at_s, f.revert_at_s) for f in plan.faults] == [
            ("f0-latency", 13.0, 15.0),
            ("f1-process_kill", 12.0, 20.0),
            ("f2-latency", 16.0, 20.0),
        ]

    def test_restart_after_is_a_kills_duration(self, tmp_path: Path) -> None:
        """A kill with restart_after 2.5s is reverted (started again) 2.5 s after it; a longer one at the phase end."""
        text = TINY.replace(
            "  - kind: latency\n    target: api->vector\n    latency: 100ms\n",
            "  - {kind: process_kill, target: api, restart_after: 2.5s, start: 1s}\n"
            "  - {kind: process_kill, target: api, restart_after: 30s}\n"
            "  - {kind: process_kill, target: api, restart_after: 3s, duration: 1s}\n",
        )
        plan = build_plan(load(tmp_path, text + "phases: {warmup: 2s, baseline: 10s, fault: 8s}\n"))
        assert [(f.apply_at_s, f.revert_at_s) for f in plan.faults] == [(13.0, 15.5), (12.0, 20.0), (12.0, 13.0)]

    def test_targets_in_first_use_order(self, plan: Plan) -> None:
        """Each target once, in the order faults name them."""
        assert plan.targets() == ("api->vector", "api")

    def test_due(self, plan: Plan) -> None:
        """Faults due by a time are those applied at or before it."""
        assert [f.label for f in plan.due(12.0)] == ["f1-process_kill"]
        assert [f.label for f in plan.due(13.0)] == ["f0-latency", "f1-process_kill"]
        assert plan.due(11.9) == ()

    def test_same_experiment_same_plan(self, tmp_path: Path) -> None:
        """Planning is deterministic."""
        exp = load(tmp_path, TWO_FAULTS)
        assert build_plan(exp) == build_plan(exp)


class TestRenderPlan:
    """The text ``chaoslab plan`` prints."""

    def test_phases_with_offsets(self, plan: Plan) -> None:
        """Every phase with start, end and length."""
        lines = render_plan(plan).splitlines()
        assert "  warmup        0ms →      2s  (2s)" in lines
        assert "  fault         12s →     20s  (8s)" in lines
        assert "  recovery      20s →     43s  (23s) (ends early once recovered)" in lines

    def test_load_with_resolved_urls(self, plan: Plan) -> None:
        """${service:api} is shown as the address it stands for."""
        lines = render_plan(plan).splitlines()
        assert "load: builtin, 10/s open-loop, profile constant, 64 connections" in lines
        assert "  search                100%  GET http://127.0.0.1:18080/search  (timeout 5s)" in lines

    def test_every_fault_with_its_undo(self, plan: Plan) -> None:
        """Each fault line is followed by how and when it is undone."""
        text = render_plan(plan)
        assert (
            "  [f0-latency] at 13s: latency on api->vector (stream=downstream, toxicity=100%, latency=100ms, "
            "jitter=0ms)\n      undo at 15s (or on any exit): delete toxic(s) added to proxy api->vector"
        ) in text
        assert (
            "  [f1-process_kill] at 12s: process_kill on api (signal=SIGKILL)\n"
            "      undo at 20s (or on any exit): ensure api is running again (restart it if the supervisor did not)"
        ) in text

    def test_targets_described(self, plan: Plan) -> None:
        """Targets say what they are: a link with its proxy addresses, a service with its URL."""
        lines = render_plan(plan).splitlines()
        assert "  api->vector          link: proxy 127.0.0.1:18181 → 127.0.0.1:18081" in lines
        assert "  api                  service: http://127.0.0.1:18080 (launch: process)" in lines

    def test_parameters_and_quick(self, tmp_path: Path) -> None:
        """The header marks a quick plan and lists the parameters in effect."""
        exp = load(tmp_path, TINY + "quick:\n  phases: {baseline: 3s}\n", quick=True)
        lines = render_plan(build_plan(exp)).splitlines()
        assert lines[0] == "experiment tiny (quick)  topology shop"
        assert lines[1] == "  parameters: mode=fragile, vectors=100"


class TestDescriptionWrapping:
    """Long hypotheses stay readable."""

    def test_wrapped_at_100_columns(self, tmp_path: Path) -> None:
        """The description is wrapped and indented under the header."""
        exp = load(tmp_path, "description: " + "word " * 60 + "\n" + TINY)
        lines = render_plan(build_plan(exp)).splitlines()
        body = [line for line in lines[1:4] if line.startswith("  word")]
        assert len(body) == 3
        assert all(len(line) <= 100 for line in body)


class TestResolveKnownRefs:
    """References shown in plans."""

    def test_unknown_refs_stay(self) -> None:
        """Known references are replaced; run-time ones stay as written."""
        refs = {"service:api": "http://127.0.0.1:1"}
        assert resolve_known_refs("${service:api}/x?d=${run_dir}", refs) == "http://127.0.0.1:1/x?d=${run_dir}"


class TestPlanSecrets:
    """The plan shows where a secret comes from, never a secret."""

    def test_literal_secrets_masked_references_shown(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A secret-named parameter and a URL password are ***; ${env:...} is shown as written."""
        monkeypatch.setenv("CHAOSLAB_T_TOKEN", "tok-0123456789")
        text = TINY.replace(
            "topology: shop.yaml\n", "topology: shop.yaml\nparameters: {db_password: hunter2x}\n"
        ).replace(
            "      url: ${service:api}/search\n",
            "      url: http://u:pw-literal-1@127.0.0.1:18080/s?t=${env:CHAOSLAB_T_TOKEN}\n",
        )
        rendered = render_plan(build_plan(load(tmp_path, text)))
        assert "db_password=***" in rendered
        assert "http://u:***@127.0.0.1:18080/s?t=${env:CHAOSLAB_T_TOKEN}" in rendered
        assert "hunter2x" not in rendered and "pw-literal-1" not in rendered and "tok-0123456789" not in rendered
