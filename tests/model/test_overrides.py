"""``--set key=value``: parameters (the experiment's, then the topology's) and dotted field paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chaoslab.errors import SpecError
from chaoslab.model.loading import load_experiment, parse_overrides
from tests.model.conftest import TINY

Write = Callable[..., Path]

WITH_PARAMS = "parameters:\n  latency: 100ms\n  conns: 16\n  debug: false\n" + TINY.replace(
    "latency: 100ms", "latency: ${latency}"
).replace("  rate: 10/s\n", "  rate: 10/s\n  connections: ${conns}\n").replace(
    "${service:api}/search", "${service:api}/search?debug=${debug}"
)


class TestParseOverrides:
    """Values are read as YAML scalars."""

    def test_scalars(self) -> None:
        """Integers, floats and true/false become numbers and booleans; units stay text."""
        assert parse_overrides(["a=500", "b=1.5", "c=true", "d=False", "e=300ms", "f=100/s"]) == {
            "a": 500,
            "b": 1.5,
            "c": True,
            "d": False,
            "e": "300ms",
            "f": "100/s",
        }

    def test_yaml_11_words_stay_words(self) -> None:
        """``on``, ``yes`` and ``no`` are not booleans (as in experiment files)."""
        assert parse_overrides(["a=on", "b=yes", "c=no"]) == {"a": "on", "b": "yes", "c": "no"}

    def test_text_that_is_not_a_scalar(self) -> None:
        """Lists, mappings and broken YAML stay the text given; everything after the first = is the value."""
        assert parse_overrides(["a=[1, 2]", "b={x: 1}", "c=a=b", "d=: x", "e="]) == {
            "a": "[1, 2]",
            "b": "{x: 1}",
            "c": "a=b",
            "d": ": x",
            "e": "",
        }

    def test_dates_stay_text(self) -> None:
        """A date-like value is not turned into a date object."""
        assert parse_overrides(["tag=2026-11-23"]) == {"tag": "2026-11-23"}

    @pytest.mark.parametrize("pair", ["mode", "=x", " =x"])
    def test_needs_key_and_equals(self, pair: str) -> None:
        """Without a key and '=' it is an error naming the option."""
        with pytest.raises(SpecError) as err:
            parse_overrides([pair])
        assert str(err.value) == f"--set: expected KEY=VALUE, got {pair!r}"


class TestParameters:
    """Plain keys set parameters: the experiment's first, then the topology's."""

    def test_experiment_parameter(self, write: Write) -> None:
        """An experiment parameter replaces every ``${name}`` use."""
        exp = load_experiment(write(WITH_PARAMS), overrides=parse_overrides(["latency=300ms"]))
        assert exp.spec.faults[0].latency == pytest.approx(0.3)  # type: ignore[union-attr]
        assert exp.parameters["latency"] == "300ms"

    def test_whole_value_keeps_type(self, write: Write) -> None:
        """A whole-value reference keeps the parameter's type: a number stays a number."""
        exp = load_experiment(write(WITH_PARAMS), overrides=parse_overrides(["conns=32"]))
        assert exp.spec.load.connections == 32

    def test_boolean_inside_text(self, write: Write) -> None:
        """A boolean substituted into text is spelt as in YAML."""
        exp = load_experiment(write(WITH_PARAMS), overrides=parse_overrides(["debug=true"]))
        assert exp.spec.load.mix[0].url == "${service:api}/search?debug=true"

    def test_topology_parameter(self, write: Write) -> None:
        """A topology parameter (``mode``) reaches the topology's fields."""
        exp = load_experiment(write(TINY), overrides=parse_overrides(["mode=resilient"]))
        assert exp.topology.services["api"].launch.env == {"MODE": "resilient"}
        assert exp.parameters["mode"] == "resilient"
        assert exp.spec.parameters == {"mode": "resilient"}

    def test_topology_default(self, write: Write) -> None:
        """Without --set the topology's default is used."""
        exp = load_experiment(write(TINY))
        assert exp.topology.services["api"].launch.env == {"MODE": "fragile"}

    def test_experiment_overrides_topology_default(self, write: Write) -> None:
        """An experiment may declare a topology parameter with its own default."""
        exp = load_experiment(write("parameters: {mode: resilient}\n" + TINY))
        assert exp.topology.services["api"].launch.env == {"MODE": "resilient"}

    def test_parameters_prefix(self, write: Write) -> None:
        """``parameters.NAME=value`` is the same as ``NAME=value``."""
        exp = load_experiment(write(WITH_PARAMS), overrides=parse_overrides(["parameters.latency=2s"]))
        assert exp.spec.faults[0].latency == 2.0  # type: ignore[union-attr]


class TestDottedPaths:
    """Dotted keys set fields of the experiment directly."""

    def test_load_rate(self, write: Write) -> None:
        """``load.rate=100/s``."""
        exp = load_experiment(write(TINY), overrides=parse_overrides(["load.rate=100/s"]))
        assert exp.spec.load.rate == 100.0

    def test_list_index(self, write: Write) -> None:
        """``faults.0.latency=300ms`` indexes into the list."""
        exp = load_experiment(write(TINY), overrides=parse_overrides(["faults.0.latency=300ms"]))
        assert exp.spec.faults[0].latency == pytest.approx(0.3)  # type: ignore[union-attr]

    def test_number_field(self, write: Write) -> None:
        """Numbers are parsed as numbers."""
        exp = load_experiment(write(TINY), overrides=parse_overrides(["steady_state.min_samples=9"]))
        assert exp.spec.steady_state.min_samples == 9

    def test_new_optional_mapping(self, write: Write) -> None:
        """A path into a section the file leaves out creates it."""
        exp = load_experiment(write(TINY), overrides=parse_overrides(["recovery.budget=45s"]))
        assert (exp.spec.recovery.budget, exp.spec.recovery.stable_for) == (45.0, 5.0)

    def test_set_beats_quick(self, write: Write) -> None:
        """--set applies after the quick: patch."""
        path = write(TINY + "quick:\n  phases: {baseline: 3s}\n")
        exp = load_experiment(path, quick=True, overrides=parse_overrides(["phases.baseline=9s"]))
        assert exp.spec.phases.baseline == 9.0
        assert load_experiment(path, quick=True).spec.phases.baseline == 3.0

    def test_into_scalar(self, write: Write) -> None:
        """Descending into a scalar is an error naming the option."""
        with pytest.raises(SpecError) as err:
            load_experiment(write(TINY), overrides=parse_overrides(["name.first=x"]))
        assert str(err.value) == "--set name.first=x: expected 'name' to be a mapping or list, got a string ('tiny')"

    def test_not_an_index(self, write: Write) -> None:
        """A list needs a number."""
        with pytest.raises(SpecError) as err:
            load_experiment(write(TINY), overrides=parse_overrides(["faults.first.latency=1s"]))
        assert str(err.value) == "--set faults.first.latency=1s: expected a list index at 'faults.first', got 'first'"
