"""``chaoslab run``: spec → plan → run → verdict, journal, reports and the exit code."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click

from chaoslab.commands.spec import quick_option, set_option
from chaoslab.faults.registry import builtin_registry
from chaoslab.model.loading import load_experiment, parse_overrides
from chaoslab.plan import build_plan, render_plan
from chaoslab.run.safety import check_network_safety


@click.command("run")
@click.argument("experiment")
@set_option
@quick_option
@click.option("--journal", "journal_path", type=click.Path(dir_okay=False, path_type=Path), help="Journal file.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the journal and reports go (default chaoslab-reports/<experiment>-<run id>).",
)
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML here.")
@click.option("--summary-md", type=click.Path(dir_okay=False, path_type=Path), help="Write a Markdown summary here.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine summary on stdout instead of the terminal one.")
@click.option("--dry-run", is_flag=True, help="Print the plan, targets and undo plan; touch nothing.")
@click.option("--no-live", is_flag=True, help="No live view (it is off anyway when stdout is not a terminal).")
@click.option("--no-html", is_flag=True, help="Skip the HTML report.")
@click.option("--seed", type=int, help="Seed for the load's random choices.")
def run_command(
    experiment: str,
    overrides: tuple[str, ...],
    quick: bool,
    journal_path: Path | None,
    report_dir: Path | None,
    junit_path: Path | None,
    summary_md: Path | None,
    as_json: bool,
    dry_run: bool,
    no_live: bool,
    no_html: bool,
    seed: int | None,
) -> None:
    """Run an EXPERIMENT (a name from experiments/ or a path) and exit with its verdict's code."""
    models = builtin_registry().models()
    exp = load_experiment(experiment, overrides=parse_overrides(overrides), quick=quick, fault_models=models)
    plan = build_plan(exp)
    check_network_safety(exp)
    if dry_run:
        click.echo(render_plan(plan))
        click.echo("\ndry run: nothing was launched, no fault was applied.")
        return
    from chaoslab.report import print_summary, summary_json
    from chaoslab.run.engine import RunOptions, run_experiment_sync

    options = RunOptions(
        journal_path=journal_path,
        report_dir=report_dir,
        junit_path=junit_path,
        summary_md_path=summary_md,
        html=not no_html,
        live=not no_live and not as_json and sys.stdout.isatty(),
        seed=seed,
    )
    if not as_json:
        click.echo(
            f"chaoslab: running {exp.spec.name}{' (quick)' if quick else ''}: "
            f"up to {plan.max_duration_s:.0f}s after the system is up",
            err=True,
        )
    result = run_experiment_sync(exp, options)
    # The run is over: its faults are off and its journal is written. A Ctrl-C from here on (pressed
    # again, or still on its way) must not cut the summary short or turn the run's exit code into 130.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if as_json:
        summary = summary_json(result.journal)
        summary["journal"] = str(result.journal_path)
        click.echo(json.dumps(summary, indent=2))
    else:
        print_summary(result.journal)
        click.echo(f"journal: {result.journal_path}", err=True)
        for path in result.report_paths:
            click.echo(f"report:  {path}", err=True)
    raise click.exceptions.Exit(result.exit_code)
