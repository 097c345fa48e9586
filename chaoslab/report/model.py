"""A read-only, typed view of a journal for the renderers; tolerant of the gaps of aborted runs.

Renderers take the journal as plain JSON data (it may come from an older or partial run), so
every accessor here has a safe default instead of raising on a missing key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """The run's verdict (docs/analysis.md, "Verdict and exit code")."""

    PASS = "pass"
    FAIL = "fail"
    ABORTED = "aborted"
    ERROR = "error"

    @classmethod
    def of(cls, raw: object) -> Verdict:
        """Parse a journal's verdict; anything unknown counts as an error."""
        try:
            return cls(str(raw))
        except ValueError:
            return cls.ERROR


@dataclass(frozen=True, slots=True)
class CascadeEntry:
    """One signal that degraded outside the expected impact."""

    signal: str
    onset_s: float
    end_s: float | None
    peak_s: float | None
    peak_p95_ms: float | None
    peak_error_rate: float | None

    def describe(self) -> str:
        """One line: onset, peak and end."""
        peak = []
        if self.peak_p95_ms is not None:
            peak.append(f"p95 {fmt_ms(self.peak_p95_ms)}")
        if self.peak_error_rate is not None:
            peak.append(f"error rate {fmt_pct(self.peak_error_rate)}")
        peak_at = f" at {fmt_s(self.peak_s)}" if self.peak_s is not None else ""
        end = f", until {fmt_s(self.end_s)}" if self.end_s is not None else ", not over by the end of the run"
        return f"{self.signal} degraded from {fmt_s(self.onset_s)} (peak {', '.join(peak) or '?'}{peak_at}){end}"


@dataclass(frozen=True, slots=True)
class SloResult:
    """One declared SLO and whether it held."""

    signal: str
    objective: str
    observed: str
    ok: bool


@dataclass(frozen=True, slots=True)
class FaultRow:
    """One fault as it happened."""

    label: str
    kind: str
    target: str
    description: str
    injected_at_s: float | None
    reverted_at_s: float | None
    revert_ok: bool | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Note:
    """An observer's note at a run offset."""

    t_s: float
    author: str
    text: str


def fmt_s(value: float | None) -> str:
    """Seconds for display: ``2.0s``; ``—`` when unknown."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.1f}s"


def fmt_ms(value: float | None) -> str:
    """Milliseconds for display with sensible precision."""
    if value is None or not math.isfinite(value):
        return "—"
    if value >= 100:
        return f"{value:.0f}ms"
    if value >= 10:
        return f"{value:.1f}ms"
    return f"{value:.2f}ms"


def fmt_pct(value: float | None) -> str:
    """A 0..1 ratio as a percentage."""
    if value is None or not math.isfinite(value):
        return "—"
    pct = value * 100
    return f"{pct:.0f}%" if pct >= 10 or pct == 0 else f"{pct:.1f}%"


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


class JournalView:
    """Typed accessors over a journal mapping."""

    def __init__(self, journal: Mapping[str, Any]) -> None:
        self.raw = journal
        self.analysis = _map(journal.get("analysis"))
        self.experiment = _map(journal.get("experiment"))

    # --- identity -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The experiment's name."""
        return str(self.experiment.get("name") or "experiment")

    @property
    def run_id(self) -> str:
        """The run's id."""
        return str(self.raw.get("run_id") or "")

    @property
    def verdict(self) -> Verdict:
        """The verdict (top level wins over the analysis: an abort overrides it)."""
        return Verdict.of(self.raw.get("verdict", self.analysis.get("verdict")))

    @property
    def exit_code(self) -> int:
        """The exit code of the run."""
        raw = self.raw.get("exit_code", self.analysis.get("exit_code"))
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        return {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.ABORTED: 3}.get(self.verdict, 3)

    @property
    def window_s(self) -> float:
        """The window size."""
        return _float(self.raw.get("window_s")) or 1.0

    @property
    def duration_s(self) -> float:
        """How long the run lasted (at least as long as its phases and windows)."""
        ends = [_float(self.raw.get("duration_s")) or 0.0]
        ends += [_float(p.get("end_s")) or 0.0 for p in self.phases()]
        for sig in self.signals():
            windows = _seq(sig.get("windows"))
            if windows:
                ends.append((_float(_map(windows[-1]).get("start_s")) or 0.0) + self.window_s)
        return max(ends)

    @property
    def measured_s(self) -> float:
        """The journal's own ``duration_s`` (the end of measurement), else :attr:`duration_s`."""
        return _float(self.raw.get("duration_s")) or self.duration_s

    @property
    def end_s(self) -> float:
        """Where charts end: the last phase's end when there are phases (later samples are teardown)."""
        ends = [_float(p.get("end_s")) for p in self.phases()]
        known = [e for e in ends if e is not None]
        return max(known) if known else self.duration_s

    # --- recovery -------------------------------------------------------------------------
    @property
    def recovered(self) -> bool:
        """Whether recovery was established."""
        return bool(self.analysis.get("recovered", False))

    @property
    def recovery_time_s(self) -> float | None:
        """From fault removal to recovery; None when not recovered."""
        return _float(self.analysis.get("recovery_time_s"))

    @property
    def recovery_from_injection_s(self) -> float | None:
        """From injection to recovery."""
        return _float(self.analysis.get("recovery_from_injection_s"))

    @property
    def time_to_impact_s(self) -> float | None:
        """From injection to the first degraded window."""
        return _float(self.analysis.get("time_to_impact_s"))

    @property
    def recovery_budget_s(self) -> float | None:
        """The recovery budget."""
        budget = _float(self.analysis.get("recovery_budget_s"))
        if budget is None:
            budget = _float(_map(self.experiment.get("recovery")).get("budget"))
        return budget

    @property
    def abort_reason(self) -> str | None:
        """Why the run was aborted, if it was."""
        reason = self.raw.get("abort_reason")
        return str(reason) if reason else None

    @property
    def revert_errors(self) -> list[str]:
        """Reverts that failed."""
        return [str(e) for e in _seq(self.raw.get("revert_errors"))]

    @property
    def reasons(self) -> list[str]:
        """Why the verdict is what it is."""
        return [str(r) for r in _seq(self.analysis.get("reasons"))]

    @property
    def warnings(self) -> list[str]:
        """Analysis warnings (unstable baseline, saturated generator, ...)."""
        return [str(w) for w in _seq(self.analysis.get("warnings"))]

    def recovery_at_s(self) -> float | None:
        """Run time at which recovery started, for markers."""
        rt = self.recovery_time_s
        revert = self.last_revert_s()
        if rt is None or revert is None:
            return None
        return revert + rt

    # --- faults, phases, events -----------------------------------------------------------
    def phases(self) -> list[Mapping[str, Any]]:
        """Phases with numeric start/end."""
        return [_map(p) for p in _seq(self.raw.get("phases")) if _float(_map(p).get("start_s")) is not None]

    def phase_span(self, name: str) -> tuple[float, float] | None:
        """Start and end of a phase."""
        for phase in self.phases():
            if phase.get("name") == name:
                start = _float(phase.get("start_s")) or 0.0
                return start, _float(phase.get("end_s")) or start
        return None

    def faults(self) -> list[FaultRow]:
        """The faults as they happened."""
        rows = []
        for i, raw in enumerate(_seq(self.raw.get("faults"))):
            f = _map(raw)
            kind = str(f.get("kind") or "fault")
            label = str(_map(f.get("detail")).get("label") or f"f{i}-{kind}")
            revert_ok = f.get("revert_ok")
            rows.append(
                FaultRow(
                    label=label,
                    kind=kind,
                    target=str(f.get("target") or ""),
                    description=str(f.get("description") or ""),
                    injected_at_s=_float(f.get("injected_at_s")),
                    reverted_at_s=_float(f.get("reverted_at_s")),
                    revert_ok=revert_ok if isinstance(revert_ok, bool) else None,
                    error=str(f["error"]) if f.get("error") else None,
                )
            )
        return rows

    def fault_spans(self) -> list[tuple[float, float]]:
        """(injected, reverted) per applied fault; an unreverted one runs to the end."""
        spans = []
        for f in self.faults():
            if f.injected_at_s is not None:
                spans.append((f.injected_at_s, f.reverted_at_s if f.reverted_at_s is not None else self.duration_s))
        return spans

    def first_injection_s(self) -> float | None:
        """When the first fault went on."""
        starts = [s for s, _ in self.fault_spans()]
        return min(starts) if starts else None

    def last_revert_s(self) -> float | None:
        """When the last fault came off."""
        ends = [f.reverted_at_s for f in self.faults() if f.reverted_at_s is not None]
        return max(ends) if ends else None

    def events(self) -> list[Mapping[str, Any]]:
        """Events in time order."""
        events = [_map(e) for e in _seq(self.raw.get("events")) if _float(_map(e).get("t_s")) is not None]
        return sorted(events, key=lambda e: float(e["t_s"]))

    def notes(self) -> list[Note]:
        """Observer notes, in time order."""
        out = []
        for e in self.events():
            if e.get("kind") == "note":
                data = _map(e.get("data"))
                author = str(data.get("author") or "")
                text = str(data.get("text") or e.get("message") or "")
                # the engine writes "author: text" as the message; show the author once
                if "text" not in data and author and text.startswith(f"{author}: "):
                    text = text[len(author) + 2 :]
                out.append(Note(float(e["t_s"]), author, text))
        return out

    # --- signals --------------------------------------------------------------------------
    def signals(self) -> list[Mapping[str, Any]]:
        """Load signals then probe signals."""
        return [_map(s) for s in [*_seq(self.raw.get("timeline")), *_seq(self.raw.get("probes"))] if _map(s)]

    def load_signals(self) -> list[Mapping[str, Any]]:
        """Only the load signals."""
        return [_map(s) for s in _seq(self.raw.get("timeline")) if _map(s)]

    def band(self, signal: str) -> Mapping[str, Any]:
        """The tolerance band of a signal (may be empty)."""
        return _map(_map(self.analysis.get("bands")).get(signal))

    def baseline(self, signal: str) -> Mapping[str, Any]:
        """The baseline statistics of a signal (may be empty)."""
        return _map(_map(self.analysis.get("baseline")).get(signal))

    def impact(self, signal: str) -> Mapping[str, Any]:
        """The impact record of a signal (may be empty)."""
        return _map(_map(self.analysis.get("impact")).get(signal))

    def expected_impact(self) -> list[str]:
        """Signals the experiment declared may degrade."""
        return [str(s) for s in _seq(self.experiment.get("expected_impact"))]

    def health(self) -> dict[str, str]:
        """Per signal, one character per window (``h``, ``d`` or ``n``), up to :attr:`end_s`."""
        windows = math.ceil(self.end_s / self.window_s - 1e-9)
        return {str(k): str(v)[:windows] for k, v in _map(self.analysis.get("health")).items()}

    def cascade(self) -> list[CascadeEntry]:
        """Cascading signals in order of onset."""
        out = []
        for raw in _seq(self.analysis.get("cascade")):
            c = _map(raw)
            onset = _float(c.get("onset_s"))
            if onset is None:
                continue
            peak = _map(c.get("peak"))
            out.append(
                CascadeEntry(
                    signal=str(c.get("signal") or "?"),
                    onset_s=onset,
                    end_s=_float(c.get("end_s")),
                    peak_s=_float(c.get("peak_s")),
                    peak_p95_ms=_float(peak.get("p95_ms")),
                    peak_error_rate=_float(peak.get("error_rate")),
                )
            )
        return sorted(out, key=lambda c: c.onset_s)

    def slos(self) -> list[SloResult]:
        """Declared SLOs with their results."""
        out = []
        for raw in _seq(self.analysis.get("slos")):
            s = _map(raw)
            out.append(
                SloResult(
                    signal=str(s.get("signal") or "?"),
                    objective=str(s.get("objective") or ""),
                    observed=str(s.get("observed") if s.get("observed") is not None else "—"),
                    ok=bool(s.get("ok")),
                )
            )
        return out

    def onset_order(self) -> list[str]:
        """Signals of the health matrix, in order of onset (the spread of the failure).

        Cascade onsets come from the analysis; other signals use their first degraded window
        after the first injection; never-degraded signals keep their journal order at the end.
        """
        health = self.health()
        names = list(health) or [str(s.get("name")) for s in self.signals()]
        onsets: dict[str, float] = {c.signal: c.onset_s for c in self.cascade()}
        start = self.first_injection_s() or 0.0
        first_index = math.floor(start / self.window_s + 1e-9)
        for name in names:
            if name in onsets:
                continue
            first = _float(self.impact(name).get("first_degraded_s"))
            if first is None:
                row = health.get(name, "")
                idx = row.find("d", first_index)
                first = idx * self.window_s if idx >= 0 else None
            if first is not None:
                onsets[name] = first
        position = {n: i for i, n in enumerate(names)}
        return sorted(names, key=lambda n: (onsets.get(n, math.inf), position[n]))

    def onset_of(self, signal: str) -> float | None:
        """When ``signal`` started degrading, if it did."""
        for c in self.cascade():
            if c.signal == signal:
                return c.onset_s
        first = _float(self.impact(signal).get("first_degraded_s"))
        return first
