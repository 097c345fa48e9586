"""``chaoslab list``, ``validate``, ``plan`` and ``schema``: reading experiments, touching nothing."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chaoslab.errors import ExitCode, SpecError
from chaoslab.plan import build_plan, render_plan
from chaoslab.spec.experiment import ExperimentSpec
from chaoslab.spec.loading import experiment_search_dirs, load_experiment, parse_overrides, read_document

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a parameter (mode=resilient) or a field (load.rate=100/s). Repeatable.",
)
quick_option = click.option("--quick", is_flag=True, help="Use the experiment's short CI form.")


@click.command("list")
def list_command() -> None:
    """List the experiments found in experiments/ with their one-line description."""
    seen: set[str] = set()
    for directory in experiment_search_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.y*ml")):
            if path.stem in seen:
                continue
            seen.add(path.stem)
            try:
                doc = read_document(path)
                text = str(doc.data.get("description", "")).strip()
                summary = text.split(". ")[0].split("\n")[0]
            except SpecError as exc:
                summary = f"(invalid: {exc.one_line()})"
            click.echo(f"{path.stem:<28} {summary}")
    if not seen:
        click.echo("no experiments found (looked in: " + ", ".join(str(d) for d in experiment_search_dirs()) + ")")


@click.command("validate")
@click.argument("paths", nargs=-1, required=True)
@set_option
@quick_option
def validate_command(paths: tuple[str, ...], overrides: tuple[str, ...], quick: bool) -> None:
    """Validate experiment files (and their topologies); exit 2 on the first bad one per file."""
    values = parse_overrides(overrides)
    failed = 0
    for path in paths:
        try:
            exp = load_experiment(Path(path) if Path(path).exists() else path, overrides=values, quick=quick)
            if exp.spec.quick is not None and not quick:
                load_experiment(exp.path or path, overrides=values, quick=True)
        except SpecError as exc:
            failed += 1
            click.echo(f"chaoslab: error: {exc.one_line()}", err=True)
            continue
        click.echo(f"ok  {path}  ({exp.spec.name}, topology {exp.topology.name}, {len(exp.spec.faults)} fault(s))")
    if failed:
        raise click.exceptions.Exit(int(ExitCode.INVALID))


@click.command("plan")
@click.argument("experiment")
@set_option
@quick_option
def plan_command(experiment: str, overrides: tuple[str, ...], quick: bool) -> None:
    """Print the plan: phases with offsets, load, every fault and its undo, targets. Touches nothing."""
    exp = load_experiment(experiment, overrides=parse_overrides(overrides), quick=quick)
    click.echo(render_plan(build_plan(exp)))


@click.command("schema")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write to a file.")
def schema_command(output: str | None) -> None:
    """Print the JSON Schema of the experiment format (for editors)."""
    schema = ExperimentSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "chaoslab experiment"
    text = json.dumps(schema, indent=2, sort_keys=True)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)
