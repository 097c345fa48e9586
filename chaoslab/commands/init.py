"""``chaoslab init``: write a starter topology and experiment, from a Docker Compose file or commented templates."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from chaoslab.errors import HarnessError, SpecError
from chaoslab.model.loading import load_experiment, load_topology
from chaoslab.scaffold.compose import read_compose
from chaoslab.scaffold.generate import OVERRIDE_FILE, TOPOLOGY_FILE, Scaffold, scaffold_compose
from chaoslab.scaffold.starter import scaffold_starter


@click.command("init")
@click.option(
    "--from-compose",
    "compose_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read this Docker Compose file: services, ports, health checks, depends_on, networks, environment.",
)
@click.option(
    "--out",
    "out_dir",
    default="chaos",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write into (created if missing).",
)
@click.option("--profile", "profiles", multiple=True, help="A Compose profile to activate (repeatable).")
@click.option("--project", help="The Compose project name (default: the file's 'name:', else its directory's).")
@click.option(
    "--link", "links", multiple=True, metavar="A->B", help="Only these dependency edges become links (repeatable)."
)
@click.option("--force", is_flag=True, help="Overwrite files that exist already.")
def init_command(
    compose_file: Path | None,
    out_dir: Path,
    profiles: tuple[str, ...],
    project: str | None,
    links: tuple[str, ...],
    force: bool,
) -> None:
    """Write a starter topology and experiment (from a Compose file, with a Toxiproxy override); all validate."""
    if compose_file is None:
        for option, given in (("--profile", profiles), ("--project", project), ("--link", links)):
            if given:
                raise SpecError("only with --from-compose", field=option)
        scaffold = scaffold_starter(out_dir)
    else:
        app = read_compose(compose_file, environ=os.environ, profiles=profiles, project=project)
        scaffold = scaffold_compose(app, out_dir=out_dir, only_links=links)
    write_scaffold(scaffold, out_dir, force=force)
    _report(scaffold, out_dir, compose_file)


def write_scaffold(scaffold: Scaffold, out_dir: Path, *, force: bool) -> None:
    """Check that the files validate (in a scratch directory) and would not overwrite anything, then write them."""
    if not force:
        existing = [name for name in scaffold.files if (out_dir / name).exists()]
        if existing:
            raise SpecError(
                f"{out_dir / existing[0]} exists already (use --force to overwrite; nothing was written)",
                file=str(out_dir / existing[0]),
            )
    if out_dir.exists() and not out_dir.is_dir():
        raise SpecError("expected a directory, got a file", file=str(out_dir), field="--out")
    with tempfile.TemporaryDirectory(prefix="chaoslab-init-") as scratch:
        for name, text in scaffold.files.items():
            (Path(scratch) / name).write_text(text, encoding="utf-8")
        try:
            load_topology(str(Path(scratch) / TOPOLOGY_FILE))
            load_experiment(Path(scratch) / scaffold.experiment_file)
            load_experiment(Path(scratch) / scaffold.experiment_file, quick=True)
        except SpecError as exc:
            # a bug of chaoslab's, not of the input: say so, and write nothing
            raise HarnessError(f"init: the generated files do not validate: {exc.one_line()}") from None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in scaffold.files.items():
            (out_dir / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"init: cannot write into {out_dir}: {exc.strerror or exc}") from None


def _report(scaffold: Scaffold, out_dir: Path, compose_file: Path | None) -> None:
    """What was written, how each dependent was re-pointed (variable names only), what to edit, what next."""
    for name in scaffold.files:
        click.echo(f"wrote {out_dir / name}")
    for link in scaffold.links:
        via = ", ".join(link.repointed) if link.repointed else "nothing (see below)"
        click.echo(
            f"link  {link.name}: proxy :{link.listen_port} → {link.upstream_host}:{link.upstream_port}; "
            f"{link.dependent} re-pointed through {via}"
        )
    for note in scaffold.notes:
        click.echo(f"edit  {note}")
    experiment = out_dir / scaffold.experiment_file
    click.echo("next:")
    if compose_file is not None and OVERRIDE_FILE in scaffold.files:
        click.echo(f"  docker compose -f {compose_file} -f {out_dir / OVERRIDE_FILE} up -d")
    click.echo(f"  chaoslab check {experiment}")
    click.echo(f"  chaoslab run {experiment} --quick")
