"""Mapping pydantic error locations onto the document, and the words of the messages."""

from __future__ import annotations

from typing import Any

import pytest

from chaoslab.errors import SpecError
from chaoslab.model.experiment import ExperimentSpec, RampProfile
from chaoslab.model.faults import LatencyFault
from chaoslab.model.loading import load_experiment
from chaoslab.model.messages import describe_value, did_you_mean, dotted, expected_of, locate, shown, union_tags
from chaoslab.model.topology import ParamValue
from tests.model.conftest import SHOP, TINY

DATA: dict[str, Any] = {
    "name": "x",
    "parameters": {"a": {"nested": 1}},
    "load": {"rate": "1/s", "profile": {"kind": "ramp"}, "mix": [{"name": "a", "url": "u"}]},
    "faults": [{"kind": "latency", "target": "t", "latency": "1s", "jiter": 1}],
}


class TestLocate:
    """Union tags that pydantic inserts are skipped; document keys are kept."""

    def test_fault_tag_is_skipped(self) -> None:
        """('faults', 0, 'latency', 'jiter'): 'latency' is the fault kind, not the latency field."""
        where = locate(ExperimentSpec, ("faults", 0, "latency", "jiter"), DATA)
        assert where.path == ("faults", 0, "jiter")
        assert where.parent_type is LatencyFault

    def test_field_named_like_the_tag(self) -> None:
        """('faults', 0, 'latency', 'latency') is the latency field of a latency fault."""
        assert locate(ExperimentSpec, ("faults", 0, "latency", "latency"), DATA).path == ("faults", 0, "latency")

    def test_profile_tag(self) -> None:
        """A discriminated field (load.profile) skips its tag too."""
        where = locate(ExperimentSpec, ("load", "profile", "ramp", "over"), DATA)
        assert where.path == ("load", "profile", "over")
        assert where.parent_type is RampProfile

    def test_smart_union_member(self) -> None:
        """A member name of a plain union ('str') is not a key."""
        where = locate(ExperimentSpec, ("parameters", "a", "str"), DATA)
        assert where.path == ("parameters", "a")
        assert expected_of(where.declared_type) == "a string, an integer, a number or true or false"

    def test_key_error(self) -> None:
        """'[key]' marks an error in a mapping key."""
        where = locate(ExperimentSpec, ("parameters", 1, "[key]"), {"parameters": {1: "x"}})
        assert (where.path, where.key_error) == (("parameters", 1), True)


class TestWords:
    """Helpers that word values and choices."""

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (None, "nothing (null)"),
            (True, "a boolean (true)"),
            ({}, "an empty mapping"),
            ({"a": 1}, "a mapping"),
            ([], "an empty list"),
            ("", "an empty string"),
            ("x", "a string ('x')"),
            (3, "a number (3)"),
        ],
    )
    def test_describe_value(self, value: object, text: str) -> None:
        """What was found, in words."""
        assert describe_value(value) == text

    def test_shown_cuts_long_strings(self) -> None:
        """Long strings are cut so the line stays readable."""
        assert shown("x" * 100) == "'" + "x" * 57 + "…'"
        assert shown(float("nan")) == "nan"

    def test_did_you_mean(self) -> None:
        """The closest choice, or nothing."""
        assert did_you_mean("latncy", ["latency", "bandwidth"]) == "; did you mean 'latency'?"
        assert did_you_mean("zzz", ["latency"]) == ""

    def test_dotted_quotes_odd_keys(self) -> None:
        """Keys with spaces, dots or control characters are quoted."""
        assert dotted(("faults", 0, "latency")) == "faults.0.latency"
        assert dotted(("load", "a b", "c.d", "\r")) == "load.'a b'.'c.d'.'\\r'"

    def test_union_tags_sorted(self) -> None:
        """Tags of a discriminated union, sorted."""
        assert union_tags(ExperimentSpec.model_fields["abort"].annotation.__args__[0], "when") == (  # type: ignore[union-attr]
            "error_rate",
            "host_disk",
            "unhealthy",
        )

    def test_expected_of(self) -> None:
        """Types in words."""
        assert expected_of(int) == "an integer"
        assert expected_of(ParamValue) == "a string, an integer, a number or true or false"


class TestSecretFields:
    """A field named like a secret never has its value quoted in a message."""

    def test_wrong_type_in_a_secret_field_is_shown_hidden(self, tmp_path: Any) -> None:
        """``X-Api-Key: 12345`` (a number, not a string): the message says so without the number."""
        (tmp_path / "shop.yaml").write_text(SHOP)
        path = tmp_path / "exp.yaml"
        path.write_text(
            TINY.replace(
                "      url: ${service:api}/search\n",
                "      url: ${service:api}/search\n      headers: {X-Api-Key: 9876543}\n",
            )
        )
        with pytest.raises(SpecError) as caught:
            load_experiment(path)
        assert (
            str(caught.value) == f"{path}:8: load.mix.0.headers.X-Api-Key: expected a string, got a hidden value (***)"
        )
        assert "9876543" not in str(caught.value)
