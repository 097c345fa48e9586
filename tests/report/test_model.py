"""The journal view the renderers share."""

from __future__ import annotations

from chaoslab.report.model import JournalView, Verdict, fmt_ms, fmt_pct, fmt_s
from chaoslab.report.sample import sample_journal


class TestJournalView:
    def test_onset_order_puts_signals_in_order_of_first_degradation(self) -> None:
        """The matrix order is the spread of the failure: expected impact at 12 s, cascade at 13 s."""
        view = JournalView(sample_journal(cascade=True))
        assert view.onset_order() == ["api:search", "api:documents"]

    def test_cascade_onset_comes_before_later_impact(self) -> None:
        """A cascading signal whose onset is earlier than the expected impact's is listed first."""
        journal = sample_journal(cascade=True)
        journal["analysis"]["cascade"][0]["onset_s"] = 11.0
        journal["analysis"]["impact"]["api:documents"]["first_degraded_s"] = 11.0
        assert JournalView(journal).onset_order() == ["api:documents", "api:search"]

    def test_never_degraded_signals_keep_journal_order_at_the_end(self) -> None:
        """Signals that stayed healthy come last, in their journal order."""
        journal = sample_journal(cascade=False)
        journal["analysis"]["health"] = {"a": "hhhh", "b": "hhdd", "c": "hhhh"}
        journal["analysis"]["impact"] = {}
        journal["faults"][0]["injected_at_s"] = 1.0
        assert JournalView(journal).onset_order() == ["b", "a", "c"]

    def test_recovery_marker_is_revert_plus_recovery_time(self) -> None:
        """Recovery is placed at the last revert (20 s) plus the recovery time (2 s)."""
        assert JournalView(sample_journal()).recovery_at_s() == 22.0

    def test_empty_journal_has_safe_defaults(self) -> None:
        """A journal of a run that died at launch still renders: no signals, error verdict."""
        view = JournalView({"schema_version": 1})
        assert view.verdict is Verdict.ERROR
        assert view.exit_code == 3
        assert view.cascade() == []
        assert view.health() == {}
        assert view.duration_s == 0.0

    def test_notes_show_the_author_once(self) -> None:
        """The engine's ``author: text`` message is split into author and text."""
        journal = sample_journal()
        journal["events"] = [
            {"t_s": 3.0, "kind": "note", "message": "carol: db looks fine", "data": {"author": "carol"}}
        ]
        notes = JournalView(journal).notes()
        assert [(n.t_s, n.author, n.text) for n in notes] == [(3.0, "carol", "db looks fine")]


class TestFormatting:
    def test_formats(self) -> None:
        """Seconds, milliseconds and percentages format for people; unknowns are a dash."""
        assert fmt_s(2.0) == "2.0s"
        assert fmt_s(None) == "—"
        assert fmt_ms(2448.0) == "2448ms"
        assert fmt_ms(57.93) == "57.9ms"
        assert fmt_ms(3.14159) == "3.14ms"
        assert fmt_pct(0.2) == "20%"
        assert fmt_pct(0.005) == "0.5%"
        assert fmt_pct(float("nan")) == "—"


class TestEndOfRun:
    def test_teardown_after_the_last_phase_is_not_charted(self) -> None:
        """Samples taken while the system is torn down (after the last phase) are cut from the health rows."""
        journal = sample_journal()
        journal["duration_s"] = 40.0  # the engine counted 12 s of teardown
        journal["analysis"]["health"]["probe:api"] = "h" * 40
        view = JournalView(journal)
        assert view.end_s == 28.0
        assert len(view.health()["probe:api"]) == 28
        assert len(view.health()["api:search"]) == 28
