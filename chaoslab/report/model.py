"""What the renderers derive from a :class:`~chaoslab.journal.Journal` for display, and how they format numbers.

The verdict, the analysis and its cascade, SLO and impact values are the journal's own typed
values (:mod:`chaoslab.analysis.model`); this module only adds views that exist for reports:
fault rows with their labels, where the charts end, the order in which signals degraded, notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chaoslab.analysis.model import CascadeEntry
from chaoslab.journal import Journal
from chaoslab.timeline import Event, FaultRecord, Signal


@dataclass(frozen=True, slots=True)
class FaultRow:
    """One fault as it happened, with the label the ledger and the events know it by."""

    label: str
    record: FaultRecord


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


def describe_cascade(entry: CascadeEntry) -> str:
    """One line: onset, peak and end of a cascading signal."""
    peak = []
    if entry.peak_p95_ms is not None:
        peak.append(f"p95 {fmt_ms(entry.peak_p95_ms)}")
    if entry.peak_error_rate is not None:
        peak.append(f"error rate {fmt_pct(entry.peak_error_rate)}")
    return (
        f"{entry.signal} degraded from {fmt_s(entry.onset_s)} (peak {', '.join(peak) or '?'} at "
        f"{fmt_s(entry.peak_s)}), until {fmt_s(entry.end_s)}"
    )


class ReportView:
    """Views of one journal that only reports need; everything else is read from the journal itself."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.analysis = journal.analysis
        self.timeline = journal.timeline

    # --- where the run ends -----------------------------------------------------------------
    @property
    def duration_s(self) -> float:
        """How long the run lasted (at least as long as its phases and windows)."""
        tl = self.timeline
        ends = [tl.duration_s, *(p.end_s for p in tl.phases)]
        ends += [s.windows[-1].start_s + tl.window_s for s in self.signals() if s.windows]
        return max(ends)

    @property
    def measured_s(self) -> float:
        """The end of measurement (the timeline's ``duration_s``), else :attr:`duration_s`."""
        return self.timeline.duration_s or self.duration_s

    @property
    def end_s(self) -> float:
        """Where charts end: the last phase's end when there are phases (later samples are teardown)."""
        phases = self.timeline.phases
        return max(p.end_s for p in phases) if phases else self.duration_s

    def recovery_at_s(self) -> float | None:
        """Run time at which recovery started (located to the request), for markers; None when not in budget."""
        if self.analysis.recovered_at_s is not None:
            return self.analysis.recovered_at_s if self.analysis.recovered else None
        rt = self.analysis.recovery_time_s
        revert = self.last_revert_s()
        if rt is None or revert is None:
            return None
        return revert + rt

    def recovery_text(self) -> str:
        """``2.0s after the fault was removed``, or why there is no recovery time (with the time it took)."""
        analysis = self.analysis
        if analysis.recovered:
            return f"{fmt_s(analysis.recovery_time_s)} after the fault was removed"
        observed = analysis.recovery_observed_s
        late = f" (recovered after {fmt_s(observed)})" if observed is not None else ""
        return f"not recovered within the {fmt_s(analysis.recovery_budget_s)} budget{late}"

    def shortfalls(self) -> list[str]:
        """What the harness could not deliver, one line of figures each (the run is then inconclusive)."""
        delivery = self.analysis.delivery
        return delivery.shortfalls() if delivery is not None else []

    # --- faults, events, notes ----------------------------------------------------------------
    def faults(self) -> list[FaultRow]:
        """The faults as they happened, labelled as the engine labelled them."""
        return [FaultRow(str(f.detail.get("label") or f"f{i}-{f.kind}"), f) for i, f in enumerate(self.timeline.faults)]

    def fault_spans(self) -> list[tuple[float, float]]:
        """(injected, reverted) per applied fault; an unreverted one runs to the end."""
        return [
            (f.injected_at_s, f.reverted_at_s if f.reverted_at_s is not None else self.duration_s)
            for f in self.timeline.faults
            if f.injected_at_s is not None
        ]

    def first_injection_s(self) -> float | None:
        """When the first fault went on."""
        starts = [s for s, _ in self.fault_spans()]
        return min(starts) if starts else None

    def last_revert_s(self) -> float | None:
        """When the last fault came off: the removal recovery is counted from."""
        if self.analysis.removed_at_s is not None:
            return self.analysis.removed_at_s
        ends = [f.reverted_at_s for f in self.timeline.faults if f.reverted_at_s is not None]
        return max(ends) if ends else None

    def events(self) -> list[Event]:
        """Events in time order."""
        return sorted(self.timeline.events, key=lambda e: e.t_s)

    def notes(self) -> list[Note]:
        """Observer notes, in time order."""
        out = []
        for e in self.events():
            if e.kind == "note":
                author = str(e.data.get("author") or "")
                text = str(e.data.get("text") or e.message)
                # the engine writes "author: text" as the message; show the author once
                if "text" not in e.data and author and text.startswith(f"{author}: "):
                    text = text[len(author) + 2 :]
                out.append(Note(e.t_s, author, text))
        return out

    # --- signals ------------------------------------------------------------------------------
    def signals(self) -> list[Signal]:
        """Load signals then probe signals (the journal's order)."""
        return [*self.timeline.load_signals(), *self.timeline.probe_signals()]

    def health(self) -> dict[str, str]:
        """Per signal, one character per window (``h``, ``d`` or ``n``), up to :attr:`end_s`."""
        windows = math.ceil(self.end_s / self.timeline.window_s - 1e-9)
        return {name: row[:windows] for name, row in self.analysis.health.items()}

    def onset_order(self) -> list[str]:
        """Signals of the health matrix, in order of onset (the spread of the failure).

        Cascade onsets come from the analysis; other signals use their first degraded window
        after the first injection; never-degraded signals keep their journal order at the end.
        """
        health = self.health()
        names = list(health) or [s.name for s in self.signals()]
        onsets: dict[str, float] = {c.signal: c.onset_s for c in self.analysis.cascade}
        window_s = self.timeline.window_s
        first_index = math.floor((self.first_injection_s() or 0.0) / window_s + 1e-9)
        for name in names:
            if name in onsets:
                continue
            impact = self.analysis.impact.get(name)
            first = None
            if impact is not None:
                first = impact.onset_s if impact.onset_s is not None else impact.first_degraded_s
            if first is None:
                idx = health.get(name, "").find("d", first_index)
                first = idx * window_s if idx >= 0 else None
            if first is not None:
                onsets[name] = first
        position = {n: i for i, n in enumerate(names)}
        return sorted(names, key=lambda n: (onsets.get(n, math.inf), position[n]))

    def onset_of(self, signal: str) -> float | None:
        """When ``signal`` started degrading, if it did."""
        for c in self.analysis.cascade:
            if c.signal == signal:
                return c.onset_s
        impact = self.analysis.impact.get(signal)
        if impact is None:
            return None
        return impact.onset_s if impact.onset_s is not None else impact.first_degraded_s
