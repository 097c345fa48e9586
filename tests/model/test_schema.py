"""The JSON Schema of the experiment format (``chaoslab schema``) is valid and accepts the shipped experiments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from chaoslab.model.schema import DIALECT, experiment_json_schema, topology_json_schema
from chaoslab.model.yamlsource import parse_yaml
from tests.model.conftest import SHOP, TINY

EXPERIMENTS = sorted((Path(__file__).resolve().parents[2] / "experiments").glob("*.yaml"))
TOPOLOGIES = sorted((Path(__file__).resolve().parents[2] / "chaoslab" / "catalogue" / "topologies").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    """A validator for the generated schema."""
    return jsonschema.Draft202012Validator(experiment_json_schema())


def errors_of(validator: jsonschema.Draft202012Validator, text: str) -> list[str]:
    """Schema errors for a YAML text, as ``path: message``."""
    data: Any = parse_yaml(text).data
    return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(data)]


class TestSchema:
    """The schema itself."""

    def test_is_valid_json_schema(self) -> None:
        """It passes the draft 2020-12 meta-schema."""
        schema = experiment_json_schema()
        assert schema["$schema"] == DIALECT
        jsonschema.Draft202012Validator.check_schema(schema)

    def test_names_required_fields(self) -> None:
        """name, load and faults are required."""
        assert sorted(experiment_json_schema()["required"]) == ["faults", "load", "name"]

    def test_shipped_experiments_exist(self) -> None:
        """There are experiments to check."""
        assert len(EXPERIMENTS) >= 1

    @pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
    def test_shipped_experiment_validates(self, validator: jsonschema.Draft202012Validator, path: Path) -> None:
        """Every file in experiments/ is valid against the schema, as written (with ${param} references)."""
        assert errors_of(validator, path.read_text(encoding="utf-8")) == []

    def test_tiny_validates(self, validator: jsonschema.Draft202012Validator) -> None:
        """The small test experiment is valid."""
        assert errors_of(validator, TINY) == []

    def test_units_and_param_refs(self, validator: jsonschema.Draft202012Validator) -> None:
        """Durations, rates, sizes and percentages accept their written forms and ${param} references."""
        assert errors_of(validator, TINY.replace("latency: 100ms", "latency: ${lat}")) == []
        assert errors_of(validator, TINY.replace("rate: 10/s", "rate: ${rate}")) == []
        assert errors_of(validator, TINY + "recovery: {budget: 1m30s, stable_for: 500ms}\n") == []
        assert errors_of(validator, TINY + "abort: [{when: host_disk, above: 99.5%}]\n") == []

    def test_rejects_bad_rate(self, validator: jsonschema.Draft202012Validator) -> None:
        """A duration where a rate belongs is flagged at its path."""
        errors = errors_of(validator, TINY.replace("rate: 10/s", "rate: 1m30s"))
        assert [e.split(":")[0] for e in errors] == ["load.rate"]

    def test_rejects_unknown_key(self, validator: jsonschema.Draft202012Validator) -> None:
        """Unknown keys are flagged, as the loader does."""
        assert len(errors_of(validator, TINY + "fautls: []\n")) == 1

    def test_rejects_unknown_fault_kind(self, validator: jsonschema.Draft202012Validator) -> None:
        """A fault kind that does not exist matches no fault schema."""
        assert errors_of(validator, TINY.replace("kind: latency", "kind: latncy")) != []

    def test_rejects_bad_duration_text(self, validator: jsonschema.Draft202012Validator) -> None:
        """A duration that is not a duration."""
        assert errors_of(validator, TINY + "phases: {baseline: soon}\n") != []


class TestTopologySchema:
    """The topology format's schema (``chaoslab schema --topology``)."""

    def test_is_valid_json_schema(self) -> None:
        """It passes the meta-schema and requires name and services."""
        schema = topology_json_schema()
        jsonschema.Draft202012Validator.check_schema(schema)
        assert (schema["title"], sorted(schema["required"])) == ("chaoslab topology", ["name", "services"])

    @pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
    def test_built_in_topology_validates(self, path: Path) -> None:
        """The built-in topologies are valid, with their ${param} references."""
        validator = jsonschema.Draft202012Validator(topology_json_schema())
        assert errors_of(validator, path.read_text(encoding="utf-8")) == []

    def test_rejects_unknown_service_key(self) -> None:
        """A misspelt service key is flagged."""
        validator = jsonschema.Draft202012Validator(topology_json_schema())
        assert errors_of(validator, SHOP.replace("  api:\n", "  api:\n    ulr: x\n")) != []
        assert errors_of(validator, SHOP) == []
