"""The ``chaoslab`` command: parse → call the pipeline → write files → exit code.

Sub-commands live in :mod:`chaoslab.commands` and are imported only when used, so
``chaoslab validate`` does not pay for aiohttp, docker or matplotlib.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from types import TracebackType
from typing import Any

import click

from chaoslab import __version__
from chaoslab.errors import ChaoslabError, ExitCode
from chaoslab.log import configure_logging
from chaoslab.redact import redact_text

COMMANDS: dict[str, str] = {
    "init": "chaoslab.commands.init:init_command",
    "list": "chaoslab.commands.spec:list_command",
    "validate": "chaoslab.commands.spec:validate_command",
    "plan": "chaoslab.commands.spec:plan_command",
    "schema": "chaoslab.commands.spec:schema_command",
    "check": "chaoslab.commands.check:check_command",
    "run": "chaoslab.commands.run:run_command",
    "analyse": "chaoslab.commands.analyse:analyse_command",
    "report": "chaoslab.commands.report:report_command",
    "rollback": "chaoslab.commands.rollback:rollback_command",
    "toxiproxy": "chaoslab.commands.toxiproxy:toxiproxy_command",
    "demo": "chaoslab.commands.demo:demo_group",
    "gameday": "chaoslab.commands.gameday:gameday_command",
    "note": "chaoslab.commands.gameday:note_command",
}
"""Command name → ``module:attribute`` of its click command."""


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, in declaration order."""
        return [name for name in COMMANDS if self._load(name) is not None]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the command's module on demand."""
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attr, None)
        return command if isinstance(command, click.Command) else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="chaoslab")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("--log-json/--no-log-json", default=None, help="JSON logs on or off (default: JSON when not a TTY).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool, log_json: bool | None) -> None:
    """chaoslab: chaos experiments with a measured recovery time and cascade detection."""
    verbosity = -1 if quiet else verbose
    configure_logging(verbosity, json=log_json)
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbosity


def redacting_excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """Print an unexpected exception's traceback as Python would, with the secrets in it masked."""
    sys.stderr.write(redact_text("".join(traceback.format_exception(kind, value, tb))))


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning chaoslab errors into one line and their exit code."""
    # a bug's traceback quotes messages and values; it must not print a secret either
    sys.excepthook = redacting_excepthook
    try:
        result = cli.main(args=argv, prog_name="chaoslab", standalone_mode=False)
    except ChaoslabError as exc:
        click.echo(f"chaoslab: error: {exc.one_line()}", err=True)
        sys.exit(int(exc.exit_code))
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("chaoslab: aborted", err=True)
        sys.exit(int(ExitCode.ABORTED))
    except click.UsageError as exc:
        # one line, like every other invalid input; click's own form spans three
        click.echo(f"chaoslab: error: {usage_line(exc)}", err=True)
        sys.exit(int(ExitCode.INVALID))
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)

    # without standalone mode click returns a command's Exit code instead of exiting
    sys.exit(result if isinstance(result, int) else 0)


def usage_line(exc: click.UsageError) -> str:
    """A click usage error as one line naming the command and where to find help."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    message = message.replace(". (Did you mean", "; did you mean").replace("?)", "?")
    command = exc.ctx.command_path if exc.ctx is not None else "chaoslab"
    prefix = command.removeprefix("chaoslab").strip()
    return (f"{prefix}: " if prefix else "") + f"{message} (see '{command} --help')"


if __name__ == "__main__":
    main()
