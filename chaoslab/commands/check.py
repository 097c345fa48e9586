"""``chaoslab check TOPOLOGY|EXPERIMENT``: is everything a run needs reachable? Starts and changes nothing."""

from __future__ import annotations

from pathlib import Path

import click

from chaoslab.errors import ExitCode
from chaoslab.model.loading import load_experiment, load_topology, parse_overrides, read_document
from chaoslab.redact import redact_text
from chaoslab.system.preflight import Finding, Status, run_preflight


@click.command("check")
@click.argument("target")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a parameter. Repeatable.")
def check_command(target: str, overrides: tuple[str, ...]) -> None:
    """Probe every service once, open every link, check Toxiproxy and Docker; a table with the fix for each failure.

    Exit 0 when everything answers, 1 when something does not, 2 for invalid input. A service that
    chaoslab launches is not probed (it is not running before the run): its program must exist
    and its port be free.
    """
    values = parse_overrides(overrides)
    path = Path(target)
    kinds: tuple[str, ...] = ()
    if path.is_file() and _is_topology(path):
        topology = load_topology(str(path), overrides=values)
        what = f"topology {topology.name}"
    else:
        exp = load_experiment(path if path.is_file() else target, overrides=values)
        topology = exp.topology
        kinds = tuple(fault.kind for fault in exp.spec.faults)
        what = f"experiment {exp.spec.name}, topology {topology.name}"
    findings = run_preflight(topology, fault_kinds=kinds)
    click.echo(f"chaoslab check: {what}")
    click.echo(render_findings(findings))
    failed = sum(f.status is Status.FAIL for f in findings)
    if failed:
        click.echo(f"{failed} of {len(findings)} check(s) failed")
        raise click.exceptions.Exit(int(ExitCode.FAIL))
    click.echo(f"all {len(findings)} check(s) passed" if findings else "nothing to check")


def _is_topology(path: Path) -> bool:
    data = read_document(path).data
    return "services" in data and "load" not in data and "faults" not in data


def render_findings(findings: list[Finding]) -> str:
    """The findings as an aligned table; the fix under each failure."""
    if not findings:
        return ""
    width_item = max(len(f.item) for f in findings)
    width_check = max(len(f.check) for f in findings)
    lines = []
    for f in findings:
        lines.append(f"{f.status.value:<4}  {f.item:<{width_item}}  {f.check:<{width_check}}  {f.detail}")
        if f.status is Status.FAIL and f.fix:
            lines.append(f"{'':<4}  {'':<{width_item}}  fix: {f.fix}")
    # a failure quotes what the service or driver said, which may repeat a secret it was sent
    return redact_text("\n".join(lines))
