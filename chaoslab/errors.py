"""Errors raised by chaoslab, each carrying the exit code the CLI turns it into.

The tree::

    ChaoslabError                 root; exit code 3 unless a subclass says otherwise
    ├── SpecError                 bad experiment, topology or CLI input (exit 2); touches nothing
    │   └── SafetyError           a target or address the topology does not allow (exit 2)
    ├── FaultError                a fault could not be applied (exit 3)
    ├── AbortError                an abort condition tripped or the leader aborted (exit 3)
    ├── HarnessError              chaoslab itself failed: launch, probe set-up, I/O (exit 3)
    └── RevertError               a fault could not be reverted: run `chaoslab rollback` (exit 4)
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum

from chaoslab.redact import redact_text


class ExitCode(IntEnum):
    """Process exit codes of the `chaoslab` command (README, "Exit codes")."""

    PASS = 0
    FAIL = 1
    INVALID = 2
    ABORTED = 3
    INCONCLUSIVE = 3
    """The harness could not deliver the experiment (load unsent, probes late): no pass or fail."""
    REVERT_FAILED = 4


class ChaoslabError(Exception):
    """Root of every error chaoslab raises on purpose."""

    exit_code: ExitCode = ExitCode.ABORTED

    def __str__(self) -> str:
        """The message with every secret in it masked (it may quote a value or a service's answer)."""
        return redact_text(super().__str__())

    def __repr__(self) -> str:
        """``HarnessError('...')`` with the message masked, for messages that quote an exception's repr."""
        return f"{type(self).__name__}({str(self)!r})"

    def one_line(self) -> str:
        """The message as a single line, for the terminal."""
        return " ".join(str(self).split())


class SpecError(ChaoslabError, ValueError):
    """Invalid experiment, topology, plan or command-line input.

    Rendered as one line ``FILE:LINE: field.path: message``; each part is left out when unknown:

    >>> str(SpecError("expected a rate like 200/s, got 'fast'", file="exp.yaml", line=4, field="load.rate"))
    "exp.yaml:4: load.rate: expected a rate like 200/s, got 'fast'"
    """

    exit_code = ExitCode.INVALID

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self._render())

    def __str__(self) -> str:
        """The one line, each part redacted on its own (``X-Api-Key: expected...`` is a field, not a header)."""
        return self._render(redact_text)

    def _render(self, redact: Callable[[str], str] = str) -> str:
        where = ""
        if self.file is not None:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
            where += ": "
        field = f"{redact(self.field)}: " if self.field else ""
        # one line whatever the file contained: values with newlines must not split the message
        return " ".join(f"{redact(where)}{field}{redact(self.message)}".split())


class SafetyError(SpecError):
    """A target or network address that the topology does not name or allow."""


class FaultError(ChaoslabError):
    """A fault could not be applied."""


class AbortError(ChaoslabError):
    """The run was stopped early by an abort condition, a signal or the leader."""


class HarnessError(ChaoslabError):
    """chaoslab itself failed (launching, probing, writing files)."""


class RevertError(ChaoslabError):
    """A fault could not be reverted; the system may still be degraded."""

    exit_code = ExitCode.REVERT_FAILED
