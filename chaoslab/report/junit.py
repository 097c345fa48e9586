"""JUnit XML: one test case per assertion of the hypothesis, so CI shows findings natively.

Cases: recovery within budget; each declared SLO; no cascade (one passing case, or one failing
case per cascading signal with its onset and peak); the run completed (an error when aborted);
each fault reverted (an error when a revert failed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from junit_xml import TestCase, TestSuite, to_xml_report_string

from chaoslab.report.model import JournalView, Verdict, fmt_s


def junit_cases(view: JournalView) -> list[TestCase]:
    """The test cases of one run (classname ``chaoslab.<experiment>``)."""
    cls = f"chaoslab.{view.name}"
    cases: list[TestCase] = []

    completed = TestCase("run completed", classname=cls, elapsed_sec=view.duration_s)
    if view.verdict is Verdict.ABORTED or view.abort_reason:
        completed.add_error_info(message=f"aborted: {view.abort_reason or 'run aborted'}", error_type="aborted")
    elif view.verdict is Verdict.ERROR and not view.revert_errors:
        completed.add_error_info(message="; ".join(view.reasons) or "harness error", error_type="error")
    cases.append(completed)

    budget = view.recovery_budget_s
    recovery = TestCase(f"recovery within {fmt_s(budget)}", classname=cls)
    if view.verdict is Verdict.ABORTED and not view.recovered:
        recovery.add_skipped_info(message="run aborted before recovery could be judged")
    elif not view.recovered or view.recovery_time_s is None:
        recovery.add_failure_info(message=f"not recovered within the {fmt_s(budget)} budget", failure_type="recovery")
    elif budget is not None and view.recovery_time_s > budget:
        recovery.add_failure_info(
            message=f"recovered after {fmt_s(view.recovery_time_s)}, budget {fmt_s(budget)}", failure_type="recovery"
        )
    else:
        recovery.stdout = f"recovered {fmt_s(view.recovery_time_s)} after revert"
    cases.append(recovery)

    for slo in view.slos():
        case = TestCase(f"SLO {slo.signal}: {slo.objective}", classname=cls)
        if not slo.ok:
            case.add_failure_info(
                message=f"{slo.signal}: {slo.objective} broken (observed {slo.observed})", failure_type="slo"
            )
        else:
            case.stdout = f"observed {slo.observed}"
        cases.append(case)

    cascade = view.cascade()
    if not cascade:
        cases.append(TestCase("no cascade", classname=cls))
    for entry in cascade:
        case = TestCase(f"no cascade: {entry.signal}", classname=cls)
        case.add_failure_info(message=f"cascade: {entry.describe()}", failure_type="cascade")
        cases.append(case)

    for fault in view.faults():
        case = TestCase(f"fault reverted: {fault.label} ({fault.target})", classname=cls)
        if fault.revert_ok is False:
            case.add_error_info(
                message=f"revert of {fault.label} failed: {fault.error or 'check failed'}; run `chaoslab rollback`",
                error_type="revert",
            )
        elif fault.revert_ok is None and fault.injected_at_s is not None:
            case.add_skipped_info(message="revert not verified")
        cases.append(case)
    labels = {f.label for f in view.faults()}
    for error in view.revert_errors:
        if not any(error.startswith(label) for label in labels):
            case = TestCase("fault reverted", classname=cls)
            case.add_error_info(message=f"revert failed: {error}; run `chaoslab rollback`", error_type="revert")
            cases.append(case)
    return cases


def junit_suite(journal: Mapping[str, Any]) -> TestSuite:
    """One suite per run."""
    view = JournalView(journal)
    properties = {
        "run_id": view.run_id,
        "verdict": view.verdict.value,
        "exit_code": str(view.exit_code),
        "recovery_time_s": "" if view.recovery_time_s is None else f"{view.recovery_time_s:g}",
    }
    host = journal.get("host")
    return TestSuite(
        f"chaoslab.{view.name}",
        junit_cases(view),
        hostname=str(host.get("hostname")) if isinstance(host, Mapping) and host.get("hostname") else None,
        timestamp=str(journal.get("started_at")) if journal.get("started_at") else None,
        properties=properties,
    )


def render_junit(journal: Mapping[str, Any]) -> str:
    """JUnit XML for one run."""
    return str(to_xml_report_string([junit_suite(journal)], encoding="utf-8"))


def render_junit_many(journals: Sequence[Mapping[str, Any]]) -> str:
    """JUnit XML with one suite per run (a game day)."""
    return str(to_xml_report_string([junit_suite(j) for j in journals], encoding="utf-8"))
