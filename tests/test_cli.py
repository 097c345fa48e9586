"""The ``chaoslab`` command line: list, validate, plan, schema, --version, --verbose/--quiet and log format."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from chaoslab import __version__
from chaoslab.cli import COMMANDS, main, redacting_excepthook
from chaoslab.redact import remember
from tests.model.conftest import SHOP, TINY

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted((REPO / "experiments").glob("*.yaml"))


class Result:
    """Exit code and output of one in-process invocation."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``chaoslab ARGS...`` through chaoslab.cli.main in this process."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        captured = capsys.readouterr()
        code = exited.value.code
        return Result(code if isinstance(code, int) else 1, captured.out, captured.err)

    return run


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """The small valid experiment with its topology, on disk."""
    (tmp_path / "shop.yaml").write_text(SHOP, encoding="utf-8")
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


class TestTopLevel:
    """Options of the group itself."""

    def test_version(self, cli: Callable[..., Result]) -> None:
        """--version prints the package version and exits 0."""
        result = cli("--version")
        assert (result.code, result.out) == (0, f"chaoslab, version {__version__}\n")

    def test_help_lists_spec_commands(self, cli: Callable[..., Result]) -> None:
        """--help lists the commands that are installed."""
        result = cli("--help")
        assert result.code == 0
        for name in ("list", "validate", "plan", "schema"):
            assert f"  {name} " in result.out

    def test_commands_map_names_modules(self) -> None:
        """Every command maps to module:attribute."""
        assert all(":" in target and target.startswith("chaoslab.commands.") for target in COMMANDS.values())

    def test_unknown_command(self, cli: Callable[..., Result]) -> None:
        """An unknown command is a one-line usage error, exit 2."""
        result = cli("valdate", "x")
        assert (result.code, result.err) == (2, "chaoslab: error: no such command 'valdate' (see 'chaoslab --help')\n")

    def test_unknown_option_suggests(self, cli: Callable[..., Result]) -> None:
        """A misspelt option suggests the real ones."""
        result = cli("--verbos")
        assert (result.code, result.err) == (
            2,
            "chaoslab: error: no such option '--verbos'; did you mean one of: '--verbose', '--version'? "
            "(see 'chaoslab --help')\n",
        )


class TestLogging:
    """structlog output: JSON when not on a terminal, levels from -v/-q."""

    def test_verbose_logs_json_when_not_a_tty(self, cli: Callable[..., Result], tiny: Path) -> None:
        """-v shows info events, as JSON lines because stderr is captured (not a TTY)."""
        result = cli("-v", "validate", str(tiny))
        assert result.code == 0
        event = json.loads(result.err.splitlines()[0])
        assert {k: event[k] for k in ("event", "level", "experiment", "topology", "component")} == {
            "event": "experiment.valid",
            "level": "info",
            "experiment": "tiny",
            "topology": "shop",
            "component": "cli",
        }
        assert event["timestamp"].endswith("Z")

    def test_default_hides_info(self, cli: Callable[..., Result], tiny: Path) -> None:
        """Without -v only warnings and errors are logged."""
        assert cli("validate", str(tiny)).err == ""

    def test_quiet(self, cli: Callable[..., Result], tiny: Path) -> None:
        """-q hides info even with -v given before it."""
        assert cli("-v", "-q", "validate", str(tiny)).err == ""

    def test_console_format_on_request(self, cli: Callable[..., Result], tiny: Path) -> None:
        """--no-log-json gives the human key=value form."""
        err = cli("-v", "--no-log-json", "validate", str(tiny)).err
        assert "experiment.valid" in err and "experiment=tiny" in err
        assert not err.startswith("{")


class TestList:
    """``chaoslab list``."""

    def test_lists_shipped_experiments(
        self, cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """From any directory, every built-in experiment appears as built-in with its first sentence."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("CHAOSLAB_EXPERIMENTS", raising=False)
        result = cli("list")
        assert result.code == 0
        header, *lines = result.out.splitlines()
        assert header.split() == ["NAME", "SOURCE", "DESCRIPTION"]
        assert [line.split()[0] for line in lines] == sorted(p.stem for p in SHIPPED)
        assert all(line.split()[1] == "built-in" for line in lines)
        assert any(line.split()[0] == "cascade-vector-latency" and "Hypothesis:" in line for line in lines)

    def test_clone_symlink_is_not_local(self, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
        """In a clone, experiments/ is the built-in catalogue itself: nothing is listed as local."""
        monkeypatch.chdir(REPO)
        monkeypatch.delenv("CHAOSLAB_EXPERIMENTS", raising=False)
        lines = cli("list").out.splitlines()[1:]
        assert len(lines) == len(SHIPPED)
        assert {line.split()[1] for line in lines} == {"built-in"}

    def test_local_experiment_shadows_builtin(
        self, cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A local file of a built-in name is listed once, as local, saying that it shadows; run/plan use it."""
        local = tmp_path / "experiments"
        local.mkdir()
        text = (REPO / "experiments" / "vector-down.yaml").read_text(encoding="utf-8")
        text = text.replace("description: >\n", "description: >\n  My own copy. ", 1)
        (local / "vector-down.yaml").write_text(text, encoding="utf-8")
        (local / "mine.yaml").write_text(text.replace("name: vector-down", "name: mine"), encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("CHAOSLAB_EXPERIMENTS", raising=False)
        rows = {line.split()[0]: " ".join(line.split()) for line in cli("list").out.splitlines()[1:]}
        assert len(rows) == len(SHIPPED) + 1
        assert "experiments/vector-down.yaml (shadows built-in) My own copy" in rows["vector-down"]
        assert "experiments/mine.yaml My own copy" in rows["mine"]
        assert rows["cascade-vector-latency"].split()[1] == "built-in"
        assert cli("validate", "vector-down").out.startswith("ok  vector-down  ")
        from chaoslab.model.loading import find_experiment

        assert find_experiment("vector-down") == local / "vector-down.yaml"
        assert find_experiment("cascade-vector-latency").parent.parent.name == "catalogue"

    def test_invalid_file_is_marked(
        self, cli: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A broken file in the directory is listed as invalid, not a crash."""
        (tmp_path / "experiments").mkdir()
        (tmp_path / "experiments" / "broken.yaml").write_text("- a list\n", encoding="utf-8")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CHAOSLAB_EXPERIMENTS", str(tmp_path / "experiments"))
        out = cli("list").out
        row = next(line for line in out.splitlines() if line.startswith("broken "))
        assert row.split()[1] == "experiments/broken.yaml"
        assert row.endswith(
            f"(invalid: {tmp_path / 'experiments' / 'broken.yaml'}:1: "
            "expected a mapping of fields at the top level, got a list)"
        )


class TestValidate:
    """``chaoslab validate PATH...``."""

    def test_shipped_experiments_are_valid(self, cli: Callable[..., Result]) -> None:
        """Every shipped experiment validates (with its quick form)."""
        result = cli("validate", *map(str, SHIPPED))
        assert result.code == 0, result.err
        assert len(result.out.splitlines()) == len(SHIPPED)
        assert all(line.startswith("ok  ") for line in result.out.splitlines())

    def test_directory(self, cli: Callable[..., Result]) -> None:
        """A directory stands for the YAML files in it."""
        result = cli("validate", str(REPO / "experiments"))
        assert result.code == 0, result.err
        assert [line.split()[1] for line in result.out.splitlines()] == [str(p) for p in SHIPPED]

    def test_topology_file(self, cli: Callable[..., Result]) -> None:
        """A topology file given on its own is validated as a topology."""
        path = REPO / "chaoslab" / "catalogue" / "topologies" / "demo.yaml"
        result = cli("validate", str(path))
        assert result.code == 0, result.err
        assert result.out.startswith(f"ok  {path}  (topology demo, 3 service(s), ")

    def test_bad_topology_file(self, cli: Callable[..., Result], tmp_path: Path) -> None:
        """Its errors point into it."""
        path = tmp_path / "shop.yaml"
        path.write_text(SHOP.replace("  api:\n", "  api:\n    ulr: x\n"), encoding="utf-8")
        result = cli("validate", str(path))
        assert (result.code, result.err) == (
            2,
            f"chaoslab: error: {path}:7: services.api.ulr: unknown key 'ulr'; did you mean 'url'?\n",
        )

    def test_by_name(self, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
        """A name is looked up in experiments/."""
        monkeypatch.chdir(REPO)
        result = cli("validate", "cascade-vector-latency")
        assert result.out == "ok  cascade-vector-latency  (cascade-vector-latency, topology demo, 1 fault(s))\n"

    def test_set_applies(self, cli: Callable[..., Result], tiny: Path) -> None:
        """--set is applied before validation (here making the file invalid)."""
        result = cli("validate", str(tiny), "--set", "load.rate=0/s")
        assert (result.code, result.err) == (
            2,
            "chaoslab: error: --set load.rate=0/s: expected a positive rate like 200/s, got '0/s'\n",
        )


class TestPlan:
    """``chaoslab plan EXPERIMENT``."""

    def test_plan_of_shipped_experiment(self, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
        """The flagship experiment's plan shows phases, resolved load URLs, the fault with its undo, and targets."""
        monkeypatch.chdir(REPO)
        result = cli("plan", "cascade-vector-latency", "--quick", "--set", "mode=resilient")
        assert result.code == 0, result.err
        out = result.out
        assert out.startswith("experiment cascade-vector-latency (quick)  topology demo\n")
        assert "mode=resilient" in out
        assert "phases:\n  warmup        0ms →      2s  (2s)\n" in out
        assert "${service:api}" not in out
        assert "undo at " in out and "delete toxic(s) added to proxy api->vector" in out
        assert "targets:\n  api->vector          link: proxy " in out

    def test_plan_touches_nothing(self, cli: Callable[..., Result], tiny: Path) -> None:
        """A plan is printed for a topology with nothing running, with the service address filled in."""
        result = cli("plan", str(tiny))
        assert result.code == 0
        assert "GET http://127.0.0.1:18080/search" in result.out


class TestSchema:
    """``chaoslab schema``."""

    def test_prints_valid_schema(self, cli: Callable[..., Result]) -> None:
        """stdout is a JSON Schema document."""
        result = cli("schema")
        schema = json.loads(result.out)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["title"] == "chaoslab experiment"

    def test_output_file(self, cli: Callable[..., Result], tmp_path: Path) -> None:
        """-o writes the same schema to a file."""
        target = tmp_path / "experiment.schema.json"
        assert cli("schema", "-o", str(target)).code == 0
        assert json.loads(target.read_text(encoding="utf-8")) == json.loads(cli("schema").out)

    def test_unwritable_output(self, cli: Callable[..., Result], tmp_path: Path) -> None:
        """A path that cannot be written is a one-line error, exit 2."""
        target = tmp_path / "missing-dir" / "s.json"
        result = cli("schema", "-o", str(target))
        assert (result.code, result.err) == (
            2,
            f"chaoslab: error: --output: cannot write '{target}': No such file or directory\n",
        )


@pytest.mark.integration
class TestConsoleScript:
    """The installed entry points."""

    def test_python_dash_m(self, tiny: Path) -> None:
        """``python -m chaoslab validate`` works in a child process; logs are JSON on a pipe."""
        proc = subprocess.run(
            [sys.executable, "-m", "chaoslab", "-v", "validate", str(tiny)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"ok  {tiny}  (tiny, topology shop, 1 fault(s))\n"
        assert json.loads(proc.stderr.splitlines()[0])["event"] == "experiment.valid"


def test_an_unexpected_traceback_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """A bug's traceback printed by the CLI's excepthook masks a remembered secret."""
    remember("remembered-0123")
    try:
        raise KeyError("remembered-0123")
    except KeyError as exc:
        redacting_excepthook(KeyError, exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "KeyError: '***'" in err
    assert "remembered-0123" not in err
