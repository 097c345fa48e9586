"""``chaoslab list``, ``validate``, ``plan`` and ``schema``: reading experiments, touching nothing."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chaoslab.errors import ExitCode, SpecError
from chaoslab.faults.registry import builtin_registry
from chaoslab.log import get_logger
from chaoslab.model.loading import (
    CatalogueEntry,
    Experiment,
    experiment_catalogue,
    experiment_search_dirs,
    load_experiment,
    load_topology,
    parse_overrides,
    read_document,
)
from chaoslab.model.schema import experiment_json_schema, topology_json_schema
from chaoslab.plan import build_plan, render_plan

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a parameter (mode=resilient) or a field (load.rate=100/s, faults.0.latency=300ms). Repeatable.",
)
quick_option = click.option("--quick", is_flag=True, help="Use the experiment's short CI form (its quick: patch).")

_log = get_logger("cli")


@click.command("list")
def list_command() -> None:
    """List the experiments a name finds: local ones (./experiments, $CHAOSLAB_EXPERIMENTS) and the built-in ones."""
    entries = experiment_catalogue()
    if not entries:
        click.echo("no experiments found (looked in: " + ", ".join(str(d) for d in experiment_search_dirs()) + ")")
        return
    rows = [(entry.name, _source(entry), _summary(entry.path)) for entry in entries]
    width = max(28, *(len(name) + 1 for name, _, _ in rows))
    source_width = max(len(source) for _, source, _ in rows) + 1
    click.echo(f"{'NAME':<{width}} {'SOURCE':<{source_width}} DESCRIPTION")
    for name, source, summary in rows:
        click.echo(f"{name:<{width}} {source:<{source_width}} {summary}")


def _source(entry: CatalogueEntry) -> str:
    """Where a listed experiment comes from: ``built-in``, or its local file (and what it hides)."""
    if entry.builtin:
        return "built-in"
    path = entry.path.absolute()
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return shown + (" (shadows built-in)" if entry.shadows_builtin else "")


def _summary(path: Path) -> str:
    """The first sentence of an experiment's description, or why the file is invalid."""
    try:
        doc = read_document(path)
    except SpecError as exc:
        return f"(invalid: {exc.one_line()})"
    text = " ".join(str(doc.data.get("description", "")).split())
    return text.split(". ")[0]


@click.command("validate")
@click.argument("paths", nargs=-1, required=True)
@set_option
@quick_option
def validate_command(paths: tuple[str, ...], overrides: tuple[str, ...], quick: bool) -> None:
    """Validate experiments (files, names, directories) and topology files; exit 2 if any is bad."""
    values = parse_overrides(overrides)
    failed = 0
    for path in _expand(paths):
        try:
            summary = _validate_one(path, values, quick)
        except SpecError as exc:
            failed += 1
            click.echo(f"chaoslab: error: {exc.one_line()}", err=True)
            continue
        click.echo(f"ok  {path}  ({summary})")
    if failed:
        total = len(_expand(paths))
        if total > 1:
            click.echo(f"chaoslab: {failed} of {total} file(s) invalid", err=True)
        raise click.exceptions.Exit(int(ExitCode.INVALID))


def _expand(paths: tuple[str, ...]) -> list[str]:
    """Arguments as files: a directory stands for the YAML files in it (an empty one stays, to be reported).

    Compose files in it (``docker-compose*.yml``, ``compose*.yaml``, as ``chaoslab init`` writes one) are
    not chaoslab's and are skipped.
    """
    result: list[str] = []
    for path in paths:
        directory = Path(path)
        found = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else []
        found = [p for p in found if not p.name.startswith(("docker-compose", "compose"))]
        if found:
            result.extend(str(p) for p in found)
        else:
            result.append(path)
    return result


def _validate_one(path: str, values: dict[str, object], quick: bool) -> str:
    """Validate an experiment, or a topology file given on its own; a one-line summary of what it holds."""
    file = Path(path)
    if file.is_file():
        data = read_document(file).data
        if "services" in data and "load" not in data and "faults" not in data:
            topology = load_topology(str(file), overrides=values)
            _log.info("topology.valid", path=path, topology=topology.name)
            return f"topology {topology.name}, {len(topology.services)} service(s), {len(topology.links)} link(s)"
    exp = _load_checked(path, values, quick)
    _log.info("experiment.valid", path=path, experiment=exp.spec.name, topology=exp.topology.name)
    return f"{exp.spec.name}, topology {exp.topology.name}, {len(exp.spec.faults)} fault(s)"


def _load_checked(path: str, values: dict[str, object], quick: bool) -> Experiment:
    """Load one experiment; its quick form is checked too, so CI does not find a broken patch first."""
    models = builtin_registry().models()
    exp = load_experiment(
        Path(path) if Path(path).is_file() else path, overrides=values, quick=quick, fault_models=models
    )
    if exp.spec.quick is not None and not quick:
        load_experiment(exp.path or path, overrides=values, quick=True, fault_models=models)
    return exp


@click.command("plan")
@click.argument("experiment")
@set_option
@quick_option
def plan_command(experiment: str, overrides: tuple[str, ...], quick: bool) -> None:
    """Print the plan: phases with offsets, load, every fault and its undo, targets. Touches nothing."""
    models = builtin_registry().models()
    exp = load_experiment(experiment, overrides=parse_overrides(overrides), quick=quick, fault_models=models)
    click.echo(render_plan(build_plan(exp)))


@click.command("schema")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to a file instead of stdout.")
@click.option("--topology", "of_topology", is_flag=True, help="The topology format instead of the experiment's.")
def schema_command(output: str | None, of_topology: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of the experiment format, for editors."""
    schema = topology_json_schema() if of_topology else experiment_json_schema(builtin_registry().models())
    text = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False)
    if not output:
        click.echo(text)
        return
    try:
        Path(output).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot write {output!r}: {exc.strerror or exc}", field="--output") from None
