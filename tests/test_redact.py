"""The redaction: secrets masked by value, by name and by shape; references and ordinary text kept."""

from __future__ import annotations

import json

import pytest

from chaoslab.redact import (
    MASK,
    forget_all,
    is_secret_name,
    literal_secrets,
    mask_value,
    redact_data,
    redact_text,
    remember,
)


class TestByShape:
    """Secrets recognised by how they are written in free text."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("postgres://app:s3cr3t@127.0.0.1:5432/db", "postgres://app:***@127.0.0.1:5432/db"),
            ("dsn=postgresql://u:p%40ss@h/d x", "dsn=postgresql://u:***@h/d x"),
            ("Authorization: Bearer abc.def\r\nHost: x", "Authorization: ***\r\nHost: x"),
            ("cookie: a=1; b=2", "cookie: ***"),
            ("host=localhost password=hunter22 dbname=x", "host=localhost password=*** dbname=x"),
            ("PGPASSWORD=hunter22 psql", "PGPASSWORD=*** psql"),
            ("--password hunter22 --user x", "--password *** --user x"),
            ("--api-key=k1 --port 80", "--api-key=*** --port 80"),
            ('{"password": "hunter22", "user": "u"}', '{"password": "***", "user": "u"}'),
            (
                "headers={'Authorization': 'Bearer abc', 'X-Api-Key': 'k'}",
                "headers={'Authorization': '***', 'X-Api-Key': '***'}",
            ),
            ("token=Bearer abc rest", "token=*** rest"),
        ],
    )
    def test_masked(self, text: str, expected: str) -> None:
        """Each shape of secret is masked, and only the secret."""
        assert redact_text(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            "postgresql://chaoslab@127.0.0.1:25432/chaoslab",  # no password
            "http://127.0.0.1:8080/a@b",  # a port is no password
            "postgres://app:${env:PGPASSWORD}@127.0.0.1/db",  # a reference says where, it is no secret
            "postgres://app:${file:/run/secrets/pg}@127.0.0.1/db",
            "password=${env:PW}",
            "Bearer {token}",  # the login template
            "token_field='token'",  # names a field of the login answer
            "password authentication failed for user app",
            "p95 < 500ms; 12 requests, 0 errors",
        ],
    )
    def test_kept(self, text: str) -> None:
        """Ordinary text, references and things that only look like secrets stay as they are."""
        assert redact_text(text) == text


class TestByValue:
    """Remembered values (from ${env:...}, ${file:...}, a login) are masked wherever they appear."""

    def test_remembered_value_and_its_quoted_forms(self) -> None:
        """Raw, URL-quoted, JSON-escaped and repr forms are all masked."""
        value = 'S3cret/"value"!'
        remember(value)
        text = f"a {value} b {json.dumps(value)} c S3cret%2F%22value%22%21 d {value!r}"
        assert redact_text(text) == "a *** b \"***\" c *** d '***'"

    def test_short_values_are_not_searched_for(self) -> None:
        """A 3-character value would mask every number in a report: it is masked by name and shape only."""
        remember("123")
        assert redact_text("took 123 ms") == "took 123 ms"
        assert redact_text("password=123") == "password=***"

    def test_forget_all(self) -> None:
        """Tests start from nothing remembered."""
        remember("TopSecret99")
        forget_all()
        assert redact_text("TopSecret99") == "TopSecret99"


class TestByName:
    """Values of keys named like secrets, in data."""

    @pytest.mark.parametrize(
        "key", ["password", "PGPASSWORD", "passwd", "X-Api-Key", "api_key", "Authorization", "Cookie", "db_token"]
    )
    def test_secret_names(self, key: str) -> None:
        """Any key with a secret word in it."""
        assert is_secret_name(key)

    @pytest.mark.parametrize("key", ["token_field", "user", "dsn", "url", "header", "template", 3])
    def test_other_names(self, key: object) -> None:
        """Ordinary keys (and the login's token_field, which names a field) hold no secret."""
        assert not is_secret_name(key)

    def test_data_keeps_types_and_references(self) -> None:
        """Strings under secret names become ***, unless their secret is a reference; numbers stay."""
        data = {
            "headers": {"Authorization": "Bearer ${env:T}", "X-Api-Key": "k123", "Accept": "json"},
            "json": {"password": "p", "max_tokens": 5},
            "command": ("x", "--password", "pw", "--db", "postgres://u:p@h/d"),
            "env": {"PGPASSWORD": "${file:/run/pg}", "API_TOKEN": "abc"},
            "token_field": "token",
        }
        assert redact_data(data) == {
            "headers": {"Authorization": "Bearer ${env:T}", "X-Api-Key": MASK, "Accept": "json"},
            "json": {"password": MASK, "max_tokens": 5},
            "command": ("x", "--password", MASK, "--db", "postgres://u:***@h/d"),
            "env": {"PGPASSWORD": "${file:/run/pg}", "API_TOKEN": MASK},
            "token_field": "token",
        }

    def test_mask_value(self) -> None:
        """Empty stays empty; a literal becomes ***; a reference with literal text around it is kept."""
        assert mask_value("") == ""
        assert mask_value("hunter2") == MASK
        assert mask_value("Bearer ${env:TOKEN}") == "Bearer ${env:TOKEN}"

    def test_literal_secrets_are_found_for_remembering(self) -> None:
        """Literal values under secret names, after a secret flag, and URL passwords; never references."""
        data = {
            "a": {"password": "lit", "dsn": "postgres://u:pw@h/d", "token": "${env:X}"},
            "c": ["--token", "t1", "--other", "o"],
        }
        assert literal_secrets(data) == ["lit", "pw", "t1"]
