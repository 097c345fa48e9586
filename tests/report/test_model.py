"""The report-only views of a journal the renderers share."""

from __future__ import annotations

import dataclasses

from chaoslab.analysis import analyse
from chaoslab.journal import Journal
from chaoslab.report.model import ReportView, describe_cascade, fmt_ms, fmt_pct, fmt_s
from chaoslab.testing import TimelineBuilder, experiment_spec, sample_journal
from chaoslab.timeline import Timeline


def _journal(timeline: Timeline, **spec: object) -> Journal:
    experiment = experiment_spec(**spec)
    return Journal(run_id="r", experiment=experiment, timeline=timeline, analysis=analyse(timeline, experiment))


class TestReportView:
    def test_onset_order_puts_signals_in_order_of_first_degradation(self) -> None:
        """The matrix order is the spread of the failure: expected impact at 12 s, cascade at 13 s, then the rest."""
        view = ReportView(sample_journal(cascade=True))
        assert view.onset_order() == ["api:search", "api:documents", "probe:vector", "probe:api"]

    def test_cascade_onset_comes_before_later_impact(self) -> None:
        """A cascading signal whose onset is earlier than the expected impact's is listed first."""
        timeline = (
            TimelineBuilder()
            .phases(warmup=2, baseline=10, fault=5, recovery=13)
            .fault()
            .signal("api:search", "hh hhhhhhhhhh hhddd hhhhhhhhhhhhh")
            .signal("api:documents", "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh")
            .build()
        )
        journal = _journal(timeline)
        assert [c.signal for c in journal.analysis.cascade] == ["api:documents"]
        assert ReportView(journal).onset_order() == ["api:documents", "api:search"]

    def test_never_degraded_signals_keep_journal_order_at_the_end(self) -> None:
        """Signals that stayed healthy come last, in their journal order."""
        timeline = (
            TimelineBuilder()
            .phases(warmup=2, baseline=10, fault=5, recovery=13)
            .fault()
            .signal("a", "hh hhhhhhhhhh hhhhh hhhhhhhhhhhhh")
            .signal("b", "hh hhhhhhhhhh ddddd hhhhhhhhhhhhh")
            .signal("c", "hh hhhhhhhhhh hhhhh hhhhhhhhhhhhh")
            .build()
        )
        assert ReportView(_journal(timeline, expected_impact=["b"])).onset_order() == ["b", "a", "c"]

    def test_recovery_marker_is_revert_plus_recovery_time(self) -> None:
        """Recovery is placed at the last revert (20 s) plus the recovery time (2 s)."""
        assert ReportView(sample_journal()).recovery_at_s() == 22.0

    def test_faults_carry_the_engine_label(self) -> None:
        """A fault row is labelled as the engine labelled it, else ``f<index>-<kind>``."""
        assert [f.label for f in ReportView(sample_journal()).faults()] == ["f0-latency"]
        timeline = TimelineBuilder().phases(warmup=2, baseline=10, fault=5).fault(kind="packet_loss").build()
        assert [f.label for f in ReportView(_journal(timeline)).faults()] == ["f0-packet_loss"]

    def test_notes_show_the_author_once(self) -> None:
        """The engine's ``author: text`` message is split into author and text."""
        timeline = (
            TimelineBuilder().phases(warmup=2, baseline=10).event(3.0, "note", "carol: db looks fine", author="carol")
        ).build()
        notes = ReportView(_journal(timeline)).notes()
        assert [(n.t_s, n.author, n.text) for n in notes] == [(3.0, "carol", "db looks fine")]

    def test_cascade_description(self) -> None:
        """One line gives a cascading signal's onset, peak and end."""
        (entry,) = sample_journal(cascade=True).analysis.cascade
        assert describe_cascade(entry) == (
            "api:documents degraded from 13.0s (peak p95 2448ms, error rate 20% at 17.0s), until 21.0s"
        )


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
        """Windows measured while the system is torn down (after the last phase) are cut from the health rows."""
        sample = sample_journal()
        timeline = dataclasses.replace(sample.timeline, duration_s=40.0)  # the engine counted 12 s of teardown
        journal = dataclasses.replace(sample, timeline=timeline, analysis=analyse(timeline, sample.experiment))
        assert len(journal.analysis.health["probe:api"]) == 40
        view = ReportView(journal)
        assert view.end_s == 28.0
        assert len(view.health()["probe:api"]) == 28
        assert len(view.health()["api:search"]) == 28
