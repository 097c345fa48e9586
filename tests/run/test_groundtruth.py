"""The engine end to end against the ground-truth target: measured figures vs the truth."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chaoslab.model.loading import load_experiment
from chaoslab.report.live_state import LiveState
from chaoslab.run.engine import RunOptions, RunResult, run_experiment
from tests.run.harness import GroundTruth, groundtruth, now, write_experiment, write_topology

pytestmark = pytest.mark.integration

WINDOW_S = 0.5
PROBE_S = 0.25
FAULT_S = 4.0


async def run_with_schedule(
    tmp_path: Path, gt: GroundTruth, schedule: dict[str, list[tuple[float, float]]], mode: str = "error", **exp: object
) -> tuple[RunResult, dict[str, list[tuple[float, float]]]]:
    """Run the experiment; when the fault phase starts, degrade endpoints at offsets from that moment.

    ``schedule`` maps endpoint → (start offset, end offset) in seconds from the fault phase's start;
    returns the result and the degradations in wall-clock time.
    """
    write_topology(gt)
    experiment = load_experiment(write_experiment(gt, **exp))
    written: dict[str, list[tuple[float, float]]] = {}

    def on_state(state: LiveState) -> None:
        if state.phase == "fault" and not written:
            # the fault phase began at most one live tick (0.5 s) ago; anchor on its planned start
            anchor = now() - (state.t_s - 5.0)
            for endpoint, items in schedule.items():
                written[endpoint] = [(anchor + a, anchor + b) for a, b in items]
            gt.schedule({k: [(a, b, mode) for a, b in v] for k, v in written.items()})

    result = await run_experiment(
        experiment, RunOptions(report_dir=tmp_path / "report", html=False, on_state=on_state, state_dir=tmp_path / "st")
    )
    return result, written


class TestRecoveryAgainstTruth:
    """Recovery time and cascades measured against degradations whose times the test set."""

    async def test_recovery_time_within_one_window_and_probe_interval(self, tmp_path: Path) -> None:
        """A contained fault that heals 2 s after the fault is removed: measured recovery ≈ truth, pass, no cascade."""
        gt = groundtruth(tmp_path)
        result, written = await run_with_schedule(tmp_path, gt, {"a": [(0.2, FAULT_S + 2.0)]})
        journal = result.journal
        analysis = journal.analysis
        (fault,) = journal.timeline.faults
        assert journal.t0_wall is not None and fault.reverted_at_s is not None
        truth = (written["a"][0][1] - journal.t0_wall) - fault.reverted_at_s
        assert analysis.recovered is True
        assert analysis.cascade == ()
        assert analysis.recovery_time_s is not None
        assert abs(analysis.recovery_time_s - truth) <= WINDOW_S + PROBE_S, (analysis.recovery_time_s, truth)
        assert result.verdict == "pass" and result.exit_code == 0
        assert fault.revert_ok is True
        # the configured load (a constant 90/s) is saved with the run, one point per window
        profile = journal.load_profile
        assert profile[0] == (0.0, 90.0) and {rate for _, rate in profile} == {90.0}
        assert [t for t, _ in profile] == pytest.approx([i * WINDOW_S for i in range(len(profile))])
        assert profile[-1][0] <= journal.timeline.duration_s < profile[-1][0] + WINDOW_S

    async def test_spread_is_reported_in_order_of_onset(self, tmp_path: Path) -> None:
        """b then c degrade after a: the cascade lists b before c, each onset within a window of the truth."""
        gt = groundtruth(tmp_path)
        result, written = await run_with_schedule(
            tmp_path,
            gt,
            {"a": [(0.2, FAULT_S + 0.5)], "b": [(1.0, FAULT_S + 1.0)], "c": [(2.5, FAULT_S + 1.5)]},
        )
        journal = result.journal
        cascade = journal.analysis.cascade
        assert [c.signal for c in cascade] == ["target:b", "target:c"]
        assert journal.t0_wall is not None
        for entry, endpoint in zip(cascade, ("b", "c"), strict=True):
            truth_onset = written[endpoint][0][0] - journal.t0_wall
            assert abs(entry.onset_s - truth_onset) <= WINDOW_S + PROBE_S, (endpoint, entry, truth_onset)
        assert result.verdict == "fail" and result.exit_code == 1

    async def test_abort_condition_trips_and_reverts(self, tmp_path: Path) -> None:
        """a failing 100 % for 1 s trips an error-rate abort: exit 3, reason recorded, the fault reverted."""
        gt = groundtruth(tmp_path)
        result, _ = await run_with_schedule(
            tmp_path,
            gt,
            {"a": [(0.0, 60.0)]},
            abort=[{"when": "error_rate", "signal": "target:a", "above": "50%", "for": "1s"}],
        )
        journal = result.journal
        assert result.exit_code == 3 and result.verdict == "aborted"
        assert "target:a" in (journal.abort_reason or "")
        assert journal.timeline.faults[0].revert_ok is True
        fault_end = next(p.end_s for p in journal.timeline.phases if p.name == "fault")
        assert fault_end < 5.0 + FAULT_S  # stopped early, before the planned end of the fault phase


async def test_cancelling_the_run_still_reverts(tmp_path: Path) -> None:
    """Cancelling the run's task mid-fault reverts the fault and stops the launched target before re-raising."""
    gt = groundtruth(tmp_path)
    write_topology(gt)
    experiment = load_experiment(write_experiment(gt, phases={"warmup": "1s", "baseline": "2s", "fault": "30s"}))
    seen: list[LiveState] = []
    task = asyncio.create_task(
        run_experiment(
            experiment,
            RunOptions(report_dir=tmp_path / "r", html=False, on_state=seen.append, state_dir=tmp_path / "st"),
        )
    )
    for _ in range(300):
        await asyncio.sleep(0.1)
        if seen and seen[-1].phase == "fault" and seen[-1].faults[0].state == "applied":
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen[-1].faults[0].state == "applied"
    ledgers = list((tmp_path / "st" / "runs").glob("*/ledger.jsonl"))
    assert ledgers == []  # a clean revert removes the run's ledger
