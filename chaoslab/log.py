"""Logging through structlog: key-value events, human-readable on a terminal, JSON otherwise.

Every event passes through the redaction (:mod:`chaoslab.redact`) twice: its fields before
rendering (a field named like a secret is masked), and the rendered line after (a remembered
secret inside an exception's traceback or a quoted command line is masked too).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from chaoslab.redact import redact_data, redact_text


def redact_event(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: the event's fields with their secrets masked."""
    return {key: value if key == "exc_info" else redact_data(value) for key, value in event_dict.items()}


class RedactingRenderer:
    """Wraps a structlog renderer: the rendered line (traceback included) with its secrets masked."""

    def __init__(self, renderer: structlog.typing.Processor) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
        """Render, then redact."""
        rendered = self.renderer(logger, method, event_dict)
        return redact_text(rendered) if isinstance(rendered, str) else redact_text(str(rendered))


class RedactingFormatter(logging.Formatter):
    """For the standard library's loggers (asyncio's "Task exception was never retrieved"...): masked lines."""

    def format(self, record: logging.LogRecord) -> str:
        """Format, then redact."""
        return redact_text(super().format(record))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (a test's captured stream is closed after it)."""

    @property
    def stream(self) -> Any:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """Ignored: the stream is always the current standard error."""


def _redact_stdlib_logging() -> None:
    """Give the root logger one handler that masks secrets (instead of logging's bare last resort)."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, RedactingFormatter) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


def configure_logging(verbosity: int = 0, *, json: bool | None = None) -> None:
    """Set up structlog; ``verbosity`` -1 quiet (errors), 0 warnings, 1 info, 2 debug."""
    _redact_stdlib_logging()
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    use_json = (not sys.stderr.isatty()) if json is None else json
    # Plain tracebacks: a rich one prints every local variable (a resolved DSN among them) wrapped
    # across lines, where a secret split in two could no longer be found and masked.
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    formatting: list[structlog.typing.Processor] = [structlog.processors.format_exc_info] if use_json else []
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *formatting,
            redact_event,
            RedactingRenderer(renderer),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger bound to a component name."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
