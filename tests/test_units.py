"""Parsing and formatting of durations, rates, sizes and percentages."""

from __future__ import annotations

import pytest

from chaoslab.units import (
    format_duration,
    format_size,
    parse_duration,
    parse_percent,
    parse_rate,
    parse_size,
)


class TestParseDuration:
    """``parse_duration`` gives seconds."""

    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            ("500ms", 0.5),
            ("30s", 30.0),
            ("2m", 120.0),
            ("1m30s", 90.0),
            ("1m 30s", 90.0),
            ("1h", 3600.0),
            ("1h2m3s", 3723.0),
            ("250us", 0.00025),
            ("1.5s", 1.5),
            (" 2 s ", 2.0),
            ("10", 10.0),
            ("0s", 0.0),
            ("2MIN", 120.0),
        ],
    )
    def test_units(self, text: str, seconds: float) -> None:
        """Each written form gives its number of seconds."""
        assert parse_duration(text) == pytest.approx(seconds)

    def test_bare_numbers_are_seconds(self) -> None:
        """Numbers from YAML are seconds."""
        assert (parse_duration(3), parse_duration(0.25)) == (3.0, 0.25)

    def test_negative_is_parsed(self) -> None:
        """A negative duration parses; the spec types reject it with their own message."""
        assert parse_duration("-5s") == -5.0

    @pytest.mark.parametrize(
        ("raw", "got"),
        [
            ("fast", "'fast'"),
            ("5 parsecs", "'5 parsecs'"),
            ("1m30", "'1m30'"),
            ("", "''"),
            ("1e999s", "'1e999s'"),
            ("nan", "'nan'"),
            (True, "true"),
            (None, "nothing (null)"),
            ([1], "a list"),
            ({"s": 1}, "a mapping"),
            (float("inf"), "inf"),
        ],
    )
    def test_errors(self, raw: object, got: str) -> None:
        """Anything else says what a duration looks like and what was found."""
        with pytest.raises(ValueError) as err:
            parse_duration(raw)
        assert str(err.value) == f"expected a duration like 500ms, 30s or 2m, got {got}"


class TestParseRate:
    """``parse_rate`` gives events per second."""

    @pytest.mark.parametrize(
        ("text", "per_s"), [("200/s", 200.0), ("30/m", 0.5), ("7200/h", 2.0), ("12.5/sec", 12.5), ("5 / s", 5.0)]
    )
    def test_units(self, text: str, per_s: float) -> None:
        """Each written form gives its rate per second."""
        assert parse_rate(text) == pytest.approx(per_s)

    def test_bare_number(self) -> None:
        """Numbers and numeric strings are per second."""
        assert (parse_rate(40), parse_rate("40")) == (40.0, 40.0)

    @pytest.mark.parametrize(
        ("raw", "got"), [("200/d", "'200/d'"), ("/s", "'/s'"), ("fast", "'fast'"), (False, "false")]
    )
    def test_errors(self, raw: object, got: str) -> None:
        """Anything else says what a rate looks like."""
        with pytest.raises(ValueError) as err:
            parse_rate(raw)
        assert str(err.value) == f"expected a rate like 200/s, got {got}"


class TestParseSize:
    """``parse_size`` gives bytes."""

    @pytest.mark.parametrize(
        ("text", "size"),
        [
            ("64MiB", 67108864),
            ("10MB", 10_000_000),
            ("512KiB", 524288),
            ("1GiB", 1073741824),
            ("1.5KiB", 1536),
            ("100", 100),
            ("4k", 4096),
            ("0", 0),
        ],
    )
    def test_units(self, text: str, size: int) -> None:
        """Binary and decimal units."""
        assert parse_size(text) == size

    def test_numbers(self) -> None:
        """Integers and whole floats are bytes."""
        assert (parse_size(4096), parse_size(2048.0)) == (4096, 2048)

    @pytest.mark.parametrize(
        ("raw", "got"), [("64 furlongs", "'64 furlongs'"), ("1e999GiB", "'1e999GiB'"), (1.5, "1.5"), ([], "a list")]
    )
    def test_errors(self, raw: object, got: str) -> None:
        """Anything else says what a size looks like (an overflowing size is an error, not a crash)."""
        with pytest.raises(ValueError) as err:
            parse_size(raw)
        assert str(err.value) == f"expected a size like 64MiB, got {got}"


class TestParsePercent:
    """``parse_percent`` gives a fraction."""

    @pytest.mark.parametrize(
        ("raw", "fraction"), [("1%", 0.01), ("99.5%", 0.995), ("0%", 0.0), (0.25, 0.25), ("0.1", 0.1)]
    )
    def test_forms(self, raw: object, fraction: float) -> None:
        """Written with %, or as a bare fraction."""
        assert parse_percent(raw) == pytest.approx(fraction)

    @pytest.mark.parametrize(
        ("raw", "got"), [("x%", "'x%'"), ("nan%", "'nan%'"), ("lots", "'lots'"), (None, "nothing (null)")]
    )
    def test_errors(self, raw: object, got: str) -> None:
        """Anything else says what a percentage looks like."""
        with pytest.raises(ValueError) as err:
            parse_percent(raw)
        assert str(err.value) == f"expected a percentage like 1%, got {got}"


class TestFormat:
    """Short human forms for display."""

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [(0.25, "250ms"), (1.5, "1.5s"), (12.5, "12.5s"), (30.0, "30s"), (125.0, "2m05s"), (-2.0, "-2s")],
    )
    def test_format_duration(self, seconds: float, text: str) -> None:
        """Durations are shown in the largest fitting unit."""
        assert format_duration(seconds) == text

    @pytest.mark.parametrize(("size", "text"), [(512, "512B"), (67108864, "64.0MiB"), (1536, "1.5KiB")])
    def test_format_size(self, size: int, text: str) -> None:
        """Sizes are shown in binary units."""
        assert format_size(size) == text
