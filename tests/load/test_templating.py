"""Templating of request URLs, headers and JSON bodies."""

from __future__ import annotations

import random

import pytest

from chaoslab.errors import SpecError
from chaoslab.load.templating import compile_json, compile_template

REFS = {"service:api": "http://127.0.0.1:8080"}


class TestTemplate:
    def test_runtime_refs_are_resolved_once(self) -> None:
        """``${service:api}`` becomes the service's URL and the template is static."""
        template = compile_template("${service:api}/health", REFS)
        assert template.is_static
        assert template.render(random.Random(1)) == "http://127.0.0.1:8080/health"

    def test_randint_stays_in_range(self) -> None:
        """``{randint:1:3}`` draws only 1, 2 and 3, each of them over 300 draws."""
        template = compile_template("/documents/{randint:1:3}")
        rng = random.Random(7)
        seen = {template.render(rng) for _ in range(300)}
        assert seen == {"/documents/1", "/documents/2", "/documents/3"}

    def test_choice_draws_from_the_list(self) -> None:
        """``{choice:red,green}`` draws only the listed words."""
        template = compile_template("q={choice:red, green}")
        rng = random.Random(3)
        assert {template.render(rng) for _ in range(100)} == {"q=red", "q=green"}

    def test_seeded_rendering_repeats(self) -> None:
        """Two renderings with the same seed give the same sequence."""
        template = compile_template("/x/{randint:1:1000000}/{choice:a,b,c}")
        first = [template.render(r) for r in [random.Random(42)] for _ in range(5)]
        rng = random.Random(42)
        assert [template.render(rng) for _ in range(5)] == first

    def test_other_braces_are_literal(self) -> None:
        """Braces that are not a placeholder are kept as they are."""
        assert compile_template('{"a": {b}}').render(random.Random(0)) == '{"a": {b}}'

    def test_bad_randint_names_the_template(self) -> None:
        """A reversed range is an error that quotes the placeholder and the template."""
        with pytest.raises(SpecError, match=r"\{randint:5:1\}.*'/d/\{randint:5:1\}'"):
            compile_template("/d/{randint:5:1}")

    def test_empty_choice_is_an_error(self) -> None:
        """A choice with an empty option is rejected."""
        with pytest.raises(SpecError, match="choice"):
            compile_template("{choice:a,,b}")

    def test_unknown_ref_is_an_error(self) -> None:
        """An unknown ``${...}`` reference is rejected at compile time."""
        with pytest.raises(SpecError, match="unknown reference"):
            compile_template("${service:nope}/x", REFS)


class TestJsonTemplate:
    def test_static_body_is_kept(self) -> None:
        """A body without placeholders is static and renders compactly."""
        body = compile_json({"q": "x", "k": 5}, REFS)
        assert body.is_static
        assert body.render_bytes(random.Random(0)) == b'{"q":"x","k":5}'

    def test_whole_randint_string_becomes_a_number(self) -> None:
        """``"{randint:7:7}"`` alone renders as the number 7; inside text it stays text."""
        body = compile_json({"id": "{randint:7:7}", "name": "user-{randint:7:7}", "tags": ["{choice:z}"]})
        assert not body.is_static
        assert body.render(random.Random(0)) == {"id": 7, "name": "user-7", "tags": ["z"]}

    def test_refs_resolve_inside_bodies(self) -> None:
        """References inside nested JSON strings are resolved."""
        body = compile_json({"callback": {"url": "${service:api}/cb"}}, REFS)
        assert body.render(random.Random(0)) == {"callback": {"url": "http://127.0.0.1:8080/cb"}}
