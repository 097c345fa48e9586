"""The experiment catalogue: every experiment validates, states a hypothesis, has a runbook and a short quick form."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaoslab.model.loading import load_experiment

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = (
    "cascade-vector-latency",
    "vector-down",
    "api-process-kill",
    "postgres-pool-exhaustion",
    "vector-disk-fill",
    "load-spike-recovery",
    "cpu-pressure",
    "soak-memory",
)
RUNBOOK_SECTIONS = (
    "## Purpose and hypothesis",
    "## Blast radius",
    "## Prerequisites",
    "## How to run it",
    "## What to watch live",
    "## Abort criteria",
    "## Manual rollback",
    "## Reading the report",
    "## What good looks like",
)


def path_of(name: str) -> Path:
    """The experiment file of ``name``."""
    return ROOT / "experiments" / f"{name}.yaml"


@pytest.mark.parametrize("name", CATALOGUE)
class TestCatalogue:
    """One experiment of the demo catalogue."""

    def test_validates_full_and_quick(self, name: str) -> None:
        """The experiment loads against the demo topology in both forms, in both api modes."""
        for mode in ("fragile", "resilient"):
            full = load_experiment(path_of(name), overrides={"mode": mode})
            quick = load_experiment(path_of(name), overrides={"mode": mode}, quick=True)
            assert full.spec.name == quick.spec.name == name
            assert full.topology.name == "demo"

    def test_states_a_hypothesis(self, name: str) -> None:
        """The description is one paragraph that starts with 'Hypothesis:'."""
        description = load_experiment(path_of(name)).spec.description.strip()
        assert description.startswith("Hypothesis:")
        assert "\n\n" not in description and len(description) > 200

    def test_quick_form_fits_ci(self, name: str) -> None:
        """Quick: warm-up + baseline + fault + the whole recovery budget is at most 30 s."""
        spec = load_experiment(path_of(name), quick=True).spec
        total_s = spec.phases.warmup + spec.phases.baseline + spec.phases.fault + spec.recovery.budget
        assert total_s <= 30.0

    def test_has_a_complete_runbook(self, name: str) -> None:
        """runbooks/<name>.md exists, is named by the experiment and has every game-day section."""
        spec = load_experiment(path_of(name)).spec
        assert spec.runbook == f"runbooks/{name}.md"
        text = (ROOT / spec.runbook).read_text()
        assert text.startswith(f"# Runbook: {name}")
        for section in RUNBOOK_SECTIONS:
            assert section in text, f"{spec.runbook} lacks {section!r}"


def test_catalogue_is_complete() -> None:
    """Every experiment in experiments/ validates; the demo catalogue is all there."""
    names = {p.stem for p in (ROOT / "experiments").glob("*.yaml")}
    assert set(CATALOGUE) <= names
    for name in sorted(names):
        load_experiment(path_of(name))
        load_experiment(path_of(name), quick=True)


def test_cascade_experiment_expects_only_search() -> None:
    """The flagship experiment declares api:search as its only expected impact, with a documents SLO."""
    spec = load_experiment(path_of("cascade-vector-latency")).spec
    assert spec.expected_impact == ("api:search",)
    assert [s.signal for s in spec.steady_state.slos] == ["api:documents"]
    assert spec.faults[0].kind == "latency"
    assert spec.faults[0].target == "api->vector"
