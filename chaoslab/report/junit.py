"""JUnit XML: one test case per assertion of the hypothesis, so CI shows findings natively.

Cases: the load delivered (an error with the figures when the run is inconclusive); recovery
within budget; each declared SLO; no cascade (one passing case, or one failing case per
cascading signal with its onset and peak); the run completed (an error when aborted); each
fault reverted (an error when a revert failed).
"""

from __future__ import annotations

from collections.abc import Sequence

from junit_xml import TestCase, TestSuite, to_xml_report_string

from chaoslab.analysis.model import Verdict
from chaoslab.journal import Journal
from chaoslab.report.model import ReportView, describe_cascade, fmt_s


def junit_cases(journal: Journal) -> list[TestCase]:
    """The test cases of one run (classname ``chaoslab.<experiment>``)."""
    view = ReportView(journal)
    analysis = journal.analysis
    verdict = journal.verdict
    cls = f"chaoslab.{journal.name}"
    cases: list[TestCase] = []

    completed = TestCase("run completed", classname=cls, elapsed_sec=view.duration_s)
    if verdict is Verdict.ABORTED or journal.abort_reason:
        completed.add_error_info(message=f"aborted: {journal.abort_reason or 'run aborted'}", error_type="aborted")
    elif verdict is Verdict.ERROR and not journal.revert_errors:
        completed.add_error_info(message="; ".join(analysis.reasons) or "harness error", error_type="error")
    cases.append(completed)

    delivered = TestCase("load and probes delivered", classname=cls)
    if verdict is Verdict.INCONCLUSIVE:
        delivered.add_error_info(
            message="inconclusive: the harness could not deliver the experiment; " + "; ".join(view.shortfalls()),
            error_type="inconclusive",
        )
    cases.append(delivered)

    budget = analysis.recovery_budget_s
    recovery = TestCase(f"recovery within {fmt_s(budget)}", classname=cls)
    if verdict is Verdict.ABORTED and not analysis.recovered:
        recovery.add_skipped_info(message="run aborted before recovery could be judged")
    elif not analysis.recovered or analysis.recovery_time_s is None:
        recovery.add_failure_info(message=view.recovery_text(), failure_type="recovery")
    elif analysis.recovery_time_s > budget:
        recovery.add_failure_info(
            message=f"recovered after {fmt_s(analysis.recovery_time_s)}, budget {fmt_s(budget)}",
            failure_type="recovery",
        )
    else:
        recovery.stdout = f"recovered {fmt_s(analysis.recovery_time_s)} after revert"
    cases.append(recovery)

    for slo in analysis.slos:
        case = TestCase(f"SLO {slo.signal}: {slo.objective}", classname=cls)
        if not slo.ok:
            case.add_failure_info(
                message=f"{slo.signal}: {slo.objective} broken (observed {slo.observed})", failure_type="slo"
            )
        else:
            case.stdout = f"observed {slo.observed}"
        cases.append(case)

    if not analysis.cascade:
        cases.append(TestCase("no cascade", classname=cls))
    for entry in analysis.cascade:
        case = TestCase(f"no cascade: {entry.signal}", classname=cls)
        case.add_failure_info(message=f"cascade: {describe_cascade(entry)}", failure_type="cascade")
        cases.append(case)

    faults = view.faults()
    for fault in faults:
        record = fault.record
        case = TestCase(f"fault reverted: {fault.label} ({record.target})", classname=cls)
        if record.revert_ok is False:
            case.add_error_info(
                message=f"revert of {fault.label} failed: {record.error or 'check failed'}; run `chaoslab rollback`",
                error_type="revert",
            )
        elif record.revert_ok is None and record.injected_at_s is not None:
            case.add_skipped_info(message="revert not verified")
        cases.append(case)
    labels = {f.label for f in faults}
    for error in journal.revert_errors:
        if not any(error.startswith(label) for label in labels):
            case = TestCase("fault reverted", classname=cls)
            case.add_error_info(message=f"revert failed: {error}; run `chaoslab rollback`", error_type="revert")
            cases.append(case)
    return cases


def junit_suite(journal: Journal) -> TestSuite:
    """One suite per run."""
    recovery_time_s = journal.analysis.recovery_time_s
    properties = {
        "run_id": journal.run_id,
        "verdict": journal.verdict.value,
        "exit_code": str(journal.exit_code),
        "recovery_time_s": "" if recovery_time_s is None else f"{recovery_time_s:g}",
    }
    return TestSuite(
        f"chaoslab.{journal.name}",
        junit_cases(journal),
        hostname=journal.host.hostname or None,
        timestamp=journal.started_at or None,
        properties=properties,
    )


def render_junit(journal: Journal) -> str:
    """JUnit XML for one run."""
    return str(to_xml_report_string([junit_suite(journal)], encoding="utf-8"))


def render_junit_many(journals: Sequence[Journal]) -> str:
    """JUnit XML with one suite per run (a game day)."""
    return str(to_xml_report_string([junit_suite(j) for j in journals], encoding="utf-8"))
