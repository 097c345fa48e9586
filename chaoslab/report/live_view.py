"""The live view of a running experiment (rich), with optional keys for game days.

The engine calls :meth:`LiveView.update` with a :class:`~chaoslab.report.live_state.LiveState` about
twice a second. With ``keys=True`` and a terminal on ``input_fd``, a thread reads single key
presses: ``n`` asks for a note (passed to ``on_note``), ``a`` asks to confirm an abort
(``on_abort``). Usage::

    with LiveView(on_note=lambda text: append_note(text)) as view:
        view.update(state)
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from chaoslab.redact import redact_text
from chaoslab.report.live_state import LiveState
from chaoslab.report.model import fmt_ms, fmt_pct

FAULT_STYLE = {"pending": "dim", "applied": "bold yellow", "reverted": "green", "revert_failed": "bold red"}
PHASE_STYLE = {"warmup": "cyan", "baseline": "blue", "fault": "bold yellow", "recovery": "green"}
KEY_POLL_S = 0.1
"""How often the key thread checks whether it should stop."""


def render_state(state: LiveState, *, keys_hint: bool = False, notes: tuple[str, ...] = ()) -> RenderableType:
    """A LiveState as a rich renderable (pure: no terminal needed)."""
    head = Text()
    head.append(f"chaoslab {state.experiment}  ", style="bold")
    head.append(f" {state.phase} ", style=f"reverse {PHASE_STYLE.get(state.phase, 'white')}")
    head.append(f"  t={state.t_s:5.1f}s / ≤{state.total_s:.0f}s   phase left {state.phase_left_s:4.1f}s")
    total = max(state.total_s, 1e-9)
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=total, completed=min(state.t_s, total), width=60),
        Text(f"{min(state.t_s / total, 1.0):.0%}", style="dim"),
    )

    table = Table(box=None, header_style="dim", padding=(0, 1))
    for col, justify in (
        ("signal", "left"),
        ("req/s", "right"),
        ("p50", "right"),
        ("p95", "right"),
        ("p99", "right"),
        ("errors", "right"),
        ("unsent", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for name, w in state.signals.items():
        rate = w.error_rate
        err_style = "red" if rate else "green"
        table.add_row(
            name,
            f"{w.throughput(state.window_s):.0f}",
            fmt_ms(w.p50_ms),
            fmt_ms(w.p95_ms),
            fmt_ms(w.p99_ms),
            Text(fmt_pct(rate), style=err_style if rate is not None else "dim"),
            Text(str(w.unsent), style="yellow" if w.unsent else "dim"),
        )
    health = Text("services: ")
    for service, ok in state.health.items():
        style, mark = {True: ("green", "●"), False: ("bold red", "✖"), None: ("dim", "○")}[ok]
        health.append(f"{mark} {service}  ", style=style)
    faults = Text()
    for i, fault in enumerate(state.faults):
        faults.append(("\n" if i else "") + f"[{fault.label}] ", style=FAULT_STYLE.get(fault.state, "white"))
        faults.append(f"{fault.state}: {fault.description}")
    parts: list[RenderableType] = [head, bar, table, health]
    if state.faults:
        parts.append(faults)
    if state.saturated:
        parts.append(Text("load generator saturated: latencies include its own lag", style="bold yellow"))
    if state.message:
        parts.append(Text(redact_text(state.message), style="bold red"))
    for note in notes[-3:]:
        parts.append(Text(f"note: {note}", style="magenta"))
    if keys_hint:
        parts.append(Text("keys: n = add a note · a = abort (faults are reverted)", style="dim"))
    return Group(*parts)


class LiveView:
    """A rich Live display of the run; a context manager the engine feeds with ``update``."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        on_note: Callable[[str], Any] | None = None,
        on_abort: Callable[[], Any] | None = None,
        keys: bool = False,
        input_fd: int | None = None,
    ) -> None:
        self.console = console or Console(stderr=True)
        self.on_note = on_note
        self.on_abort = on_abort
        self.input_fd = sys.stdin.fileno() if input_fd is None and keys else input_fd
        self.keys = keys and self.input_fd is not None and os.isatty(self.input_fd)
        self.state: LiveState | None = None
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._live = Live(console=self.console, auto_refresh=False, transient=False)
        self._prompting = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved_attrs: Any = None

    def __enter__(self) -> LiveView:
        self._live.start()
        if self.keys:
            self._enter_cbreak()
            self._thread = threading.Thread(target=self._read_keys, name="chaoslab-keys", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._restore_terminal()
        with self._lock:
            self._live.stop()

    def update(self, state: LiveState) -> None:
        """Show a new snapshot (skipped while an observer types a note)."""
        with self._lock:
            self.state = state
            if not self._prompting:
                self._live.update(self.renderable(), refresh=True)

    def renderable(self) -> RenderableType:
        """What the view shows now."""
        if self.state is None:
            return Text("chaoslab: starting…", style="dim")
        return render_state(self.state, keys_hint=self.keys, notes=tuple(self.notes))

    # --- keys -----------------------------------------------------------------------------
    def _enter_cbreak(self) -> None:
        import termios
        import tty

        assert self.input_fd is not None
        with contextlib.suppress(termios.error):
            self._saved_attrs = termios.tcgetattr(self.input_fd)
            tty.setcbreak(self.input_fd)

    def _restore_terminal(self) -> None:
        if self._saved_attrs is None or self.input_fd is None:
            return
        import termios

        with contextlib.suppress(termios.error):
            termios.tcsetattr(self.input_fd, termios.TCSADRAIN, self._saved_attrs)
        self._saved_attrs = None

    def _read_byte(self) -> bytes | None:
        """One byte from the input, or None when asked to stop (polls so exit is prompt)."""
        assert self.input_fd is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([self.input_fd], [], [], KEY_POLL_S)
            if ready:
                data = os.read(self.input_fd, 1)
                return data if data else None
        return None

    def _read_line(self, prompt: str) -> str | None:
        """A line typed in cbreak mode, echoed by us; Esc cancels."""
        self.console.print(prompt, end="", style="bold magenta", highlight=False)
        buf = bytearray()
        while True:
            b = self._read_byte()
            if b is None or b == b"\x1b":
                self.console.print(" (cancelled)", style="dim")
                return None
            if b in (b"\n", b"\r"):
                self.console.print()
                return buf.decode("utf-8", "replace")
            if b in (b"\x7f", b"\x08"):
                if buf:
                    buf = buf[:-1]
                    self.console.file.write("\b \b")
                    self.console.file.flush()
                continue
            buf += b
            with contextlib.suppress(UnicodeDecodeError):
                self.console.file.write(b.decode("utf-8"))
                self.console.file.flush()

    def _prompt(self, prompt: str) -> str | None:
        with self._lock:
            self._prompting = True
            self._live.stop()
        try:
            return self._read_line(prompt)
        finally:
            with self._lock:
                self._prompting = False
                if not self._stop.is_set():
                    self._live.start()
                    self._live.update(self.renderable(), refresh=True)

    def _read_keys(self) -> None:
        while not self._stop.is_set():
            key = self._read_byte()
            if key is None:
                return
            if key in (b"n", b"N") and self.on_note is not None:
                text = self._prompt("note> ")
                if text and text.strip():
                    try:
                        self.on_note(text.strip())
                        self.notes.append(text.strip())
                    except Exception as exc:  # a failed note must not kill the live view
                        self.console.print(f"note not saved: {exc}", style="red")
            elif key in (b"a", b"A") and self.on_abort is not None:
                answer = self._prompt("abort this run? faults will be reverted [y/N] ")
                if answer is not None and answer.strip().lower() in ("y", "yes"):
                    self.on_abort()
