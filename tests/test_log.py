"""Log lines: fields named like secrets, remembered values and tracebacks are masked in both renderers."""

from __future__ import annotations

import logging

import pytest

from chaoslab.errors import HarnessError
from chaoslab.log import configure_logging, get_logger
from chaoslab.redact import remember


@pytest.mark.parametrize("json_logs", [True, False])
def test_log_lines_hold_no_secret(json_logs: bool, capsys: pytest.CaptureFixture[str]) -> None:
    """A secret field, a DSN, a command line and an exception quoting a remembered value: ***."""
    remember("remembered-0123")
    configure_logging(2, json=json_logs)
    log = get_logger("test")
    log.info("started", argv=["svc", "--password", "pw-0123"], dsn="postgres://a:dsn-0123@h/d", token="tok-0123")
    try:
        raise RuntimeError("login failed for remembered-0123")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    for secret in ("pw-0123", "dsn-0123", "tok-0123", "remembered-0123"):
        assert secret not in err
    assert "login failed for ***" in err  # the traceback is there, masked
    assert "postgres://a:***@h/d" in err


def test_standard_library_loggers_are_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    """asyncio's "Task exception was never retrieved" goes through logging, not structlog: masked as well."""
    remember("remembered-0123")
    configure_logging(0)
    logging.getLogger("asyncio").error("Task exception was never retrieved: %s", RuntimeError("remembered-0123"))
    err = capsys.readouterr().err
    assert "ERROR asyncio: Task exception was never retrieved: ***" in err
    assert "remembered-0123" not in err


def test_a_chaoslab_errors_repr_is_masked() -> None:
    """Messages that quote ``{exc!r}`` (the engine's "load failed: HarnessError(...)") get the masked text."""
    remember("remembered-0123")
    assert repr(HarnessError("login failed: remembered-0123")) == "HarnessError('login failed: ***')"
