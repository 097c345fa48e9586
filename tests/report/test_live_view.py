"""The live view: rendering a LiveState, and note/abort keys read from a real pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import termios
import threading

from rich.console import Console

from chaoslab.report.live_state import FaultState, LiveState
from chaoslab.report.live_view import LiveView, render_state
from chaoslab.timeline import WindowStats


def _state() -> LiveState:
    return LiveState(
        experiment="cascade-vector-latency",
        phase="fault",
        t_s=15.0,
        phase_left_s=5.0,
        total_s=40.0,
        window_s=1.0,
        signals={
            "api:search": WindowStats(14, 14.0, count=9, ok=9, p50_ms=350.0, p95_ms=840.0, p99_ms=1260.0),
            "api:documents": WindowStats(14, 14.0, count=20, ok=16, errors={"timeout": 4}, p95_ms=2400.0),
        },
        health={"api": True, "vector": False, "postgres": None},
        faults=(FaultState("f0-latency", "latency 800ms on api->vector", "applied"),),
        saturated=True,
    )


def _text(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(renderable)
    return out.getvalue()


class TestRenderState:
    def test_shows_phase_signals_faults(self) -> None:
        """Phase, per-signal figures, probe health, fault state and saturation are all shown."""
        text = _text(render_state(_state(), keys_hint=True))
        assert " fault " in text
        assert "t= 15.0s / ≤40s" in text
        assert "api:search" in text and "840ms" in text
        assert "api:documents" in text and "20%" in text
        assert "✖ vector" in text
        assert "[f0-latency] applied: latency 800ms on api->vector" in text
        assert "load generator saturated" in text
        assert "n = add a note" in text


class TestLiveViewKeys:
    def test_note_and_abort_keys_on_a_pty(self) -> None:
        """``n`` + text + Enter gives a note; ``a`` + ``y`` + Enter aborts; the terminal is restored after."""
        master, slave = pty.openpty()
        try:
            before = termios.tcgetattr(slave)
            notes: list[str] = []
            got_note, got_abort = threading.Event(), threading.Event()

            def on_note(text: str) -> None:
                notes.append(text)
                got_note.set()

            view = LiveView(
                Console(file=io.StringIO(), width=100),
                on_note=on_note,
                on_abort=got_abort.set,
                keys=True,
                input_fd=slave,
            )
            with view:
                view.update(_state())
                os.write(master, b"n")
                os.write(master, b"db lookx\x7fs slow\r")
                assert got_note.wait(5.0)
                os.write(master, b"a")
                os.write(master, b"y\r")
                assert got_abort.wait(5.0)
            assert notes == ["db looks slow"]
            assert view.notes == ["db looks slow"]
            assert termios.tcgetattr(slave) == before
        finally:
            os.close(master)
            os.close(slave)

    def test_no_keys_without_a_terminal(self) -> None:
        """With a non-terminal input the view never reads keys."""
        read_fd, write_fd = os.pipe()
        try:
            view = LiveView(Console(file=io.StringIO()), keys=True, input_fd=read_fd, on_note=print)
            assert view.keys is False
            with view:
                view.update(_state())
            assert "api:search" in _text(view.renderable())
        finally:
            os.close(read_fd)
            os.close(write_fd)
