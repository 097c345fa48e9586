"""``${env:NAME}`` and ``${file:PATH}``: kept as written in the models, checked at load, read where used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from chaoslab.errors import SpecError
from chaoslab.model.loading import load_experiment, resolve_known_refs, resolve_runtime_refs, runtime_refs
from chaoslab.model.references import read_reference
from chaoslab.redact import redact_text
from tests.model.conftest import SHOP, TINY, CliResult

Cli = Callable[..., CliResult]
Write = Callable[..., Path]

HEADER = """\
      headers: {X-Api-Key: "${env:CHAOSLAB_T_KEY}"}
"""


def with_mix_lines(extra: str, experiment: str = TINY) -> str:
    """TINY with lines added to its one request class (after its url)."""
    anchor = "      url: ${service:api}/search\n"
    assert anchor in experiment
    return experiment.replace(anchor, anchor + extra)


def one_error(result: CliResult) -> str:
    """The single error line of a run that exited 2."""
    assert result.code == 2, result
    (line,) = result.err.splitlines()
    return line


class TestEnv:
    """Environment variables."""

    def test_kept_as_written_and_read_where_used(self, write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
        """The model holds the reference; resolving gives the value and masks it from then on."""
        monkeypatch.setenv("CHAOSLAB_T_KEY", "k-0123456789")
        exp = load_experiment(write(with_mix_lines(HEADER)))
        header = exp.spec.load.mix[0].headers["X-Api-Key"]
        assert header == "${env:CHAOSLAB_T_KEY}"
        assert resolve_runtime_refs(header, runtime_refs(exp.topology)) == "k-0123456789"
        assert redact_text("sent k-0123456789") == "sent ***"
        # the plan shows references as written
        assert resolve_known_refs(header, runtime_refs(exp.topology)) == header

    def test_unset(self, cli: Cli, write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unset variable: one line naming file, line and field; exit 2."""
        monkeypatch.delenv("CHAOSLAB_T_KEY", raising=False)
        path = write(with_mix_lines(HEADER))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:8: load.mix.0.headers.X-Api-Key: "
            "environment variable CHAOSLAB_T_KEY is not set (${env:CHAOSLAB_T_KEY})"
        )

    def test_empty(self, cli: Cli, write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
        """CI hands an unavailable secret over as an empty variable: an error, not an empty header."""
        monkeypatch.setenv("CHAOSLAB_T_KEY", "")
        line = one_error(cli("validate", str(write(with_mix_lines(HEADER)))))
        assert line.endswith("environment variable CHAOSLAB_T_KEY is empty (${env:CHAOSLAB_T_KEY})")

    def test_bad_name(self, cli: Cli, write: Write) -> None:
        """A name that cannot be a variable is said to be one."""
        line = one_error(cli("validate", str(write(with_mix_lines('      headers: {X-Api-Key: "${env:1 x}"}\n')))))
        assert "expected ${env:NAME} with a variable name such as PGPASSWORD, got ${env:1 x}" in line

    def test_not_in_a_field_that_reads_it(self, cli: Cli, write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
        """A reference where chaoslab would never read it (a signal name) is an error, not a literal text."""
        monkeypatch.setenv("CHAOSLAB_T_KEY", "k-0123456789")
        line = one_error(cli("validate", str(write(with_mix_lines('      signal: "${env:CHAOSLAB_T_KEY}"\n')))))
        assert (
            "load.mix.0.signal: ${env:CHAOSLAB_T_KEY} is not read in this field; secrets go in load.mix.*.url" in line
        )

    def test_set_blames_the_command_line(self, cli: Cli, write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
        """A reference given with --set is reported against the --set."""
        monkeypatch.delenv("CHAOSLAB_T_KEY", raising=False)
        path = write(TINY)
        line = one_error(cli("validate", str(path), "--set", "load.mix.0.body=${env:CHAOSLAB_T_KEY}"))
        assert line == (
            "chaoslab: error: --set load.mix.0.body=${env:CHAOSLAB_T_KEY}: "
            "environment variable CHAOSLAB_T_KEY is not set (${env:CHAOSLAB_T_KEY})"
        )

    def test_quick_patch_checked_only_when_used(self, cli: Cli, write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
        """A reference in quick: matters in --quick runs only (validate checks both forms)."""
        monkeypatch.delenv("CHAOSLAB_T_KEY", raising=False)
        text = TINY + 'quick:\n  load: {mix: [{name: search, url: "${service:api}/s?k=${env:CHAOSLAB_T_KEY}"}]}\n'
        path = write(text)
        load_experiment(path)  # not --quick: the patch is not used
        with pytest.raises(SpecError, match=r"quick\.load\.mix\.0\.url: environment variable CHAOSLAB_T_KEY"):
            load_experiment(path, quick=True)


class TestFile:
    """Files: trailing newlines stripped, paths relative to the file that names them."""

    @pytest.mark.parametrize(
        ("content", "value"),
        [(b"abc\n", "abc"), (b"abc\r\n", "abc"), (b"abc\n\n", "abc"), (b"abc", "abc"), (b" a b \n", " a b ")],
    )
    def test_trailing_newlines_are_not_part_of_the_secret(self, tmp_path: Path, content: bytes, value: str) -> None:
        """As `echo secret > file` writes it and Docker/Kubernetes mount it; other whitespace is kept."""
        path = tmp_path / "secret"
        path.write_bytes(content)
        assert read_reference(f"file:{path}") == value

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            (b"\n", "is empty"),
            (b"\xff\xfe", "is not UTF-8 text"),
            (b"x" * (64 * 1024 + 1), "is larger than 64 KiB: expected a secret, not a data file"),
        ],
    )
    def test_unusable_files(self, tmp_path: Path, content: bytes, problem: str) -> None:
        """Empty, binary or huge files are errors that never quote the content."""
        path = tmp_path / "secret"
        path.write_bytes(content)
        with pytest.raises(SpecError) as caught:
            read_reference(f"file:{path}")
        assert caught.value.message == f"${{file:{path}}} {problem}"

    def test_relative_to_the_experiment_not_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``${file:secrets/key}`` in an experiment is found next to the experiment, and kept absolute."""
        project = tmp_path / "project"
        (project / "secrets").mkdir(parents=True)
        (project / "secrets" / "key").write_text("file-key-0123\n")
        (project / "shop.yaml").write_text(SHOP)
        path = project / "exp.yaml"
        path.write_text(with_mix_lines('      headers: {X-Api-Key: "${file:secrets/key}"}\n'))
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        exp = load_experiment(path)
        header = exp.spec.load.mix[0].headers["X-Api-Key"]
        assert header == f"${{file:{project / 'secrets' / 'key'}}}"
        assert resolve_runtime_refs(header, {}) == "file-key-0123"

    def test_relative_to_the_topology_and_through_parameters(self, tmp_path: Path) -> None:
        """A topology's ${file:...} is relative to the topology; a parameter's, to the file that set it."""
        (tmp_path / "topo").mkdir()
        (tmp_path / "topo" / "pg").write_text("topo-pw-0123\n")
        (tmp_path / "mine").write_text("exp-pw-0123\n")
        topology = SHOP.replace(
            "    address: 127.0.0.1:15432\n",
            "    address: 127.0.0.1:15432\n"
            '    dsn: "postgresql://app:${file:pg}@127.0.0.1:15432/app"\n'
            '    probe: {type: postgres, dsn: "postgresql://app:${probe_pw}@127.0.0.1:15432/app"}\n',
        ).replace("  vectors: 100\n", '  vectors: 100\n  probe_pw: "${file:pg}"\n')
        (tmp_path / "topo" / "shop.yaml").write_text(topology)
        experiment = TINY.replace(
            "topology: shop.yaml", 'topology: topo/shop.yaml\nparameters: {probe_pw: "${file:mine}"}'
        )
        path = tmp_path / "exp.yaml"
        path.write_text(experiment)
        exp = load_experiment(path)
        postgres = exp.topology.services["postgres"]
        assert postgres.dsn is not None and postgres.probe is not None and postgres.probe.dsn is not None
        assert resolve_runtime_refs(postgres.dsn, {}) == "postgresql://app:topo-pw-0123@127.0.0.1:15432/app"
        # the experiment's value of the parameter wins, and its path is the experiment's
        assert resolve_runtime_refs(postgres.probe.dsn, {}) == "postgresql://app:exp-pw-0123@127.0.0.1:15432/app"

    def test_missing_file(self, cli: Cli, write: Write, tmp_path: Path) -> None:
        """A file that is not there: file, line, field, and the path looked at."""
        path = write(with_mix_lines('      body: "key=${file:nope/key}"\n'))
        looked_at = tmp_path / "nope" / "key"
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:8: load.mix.0.body: cannot read ${{file:{looked_at}}}: no such file"
        )

    def test_set_is_relative_to_the_working_directory(
        self, write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A --set value has no file: its ${file:...} is relative to where chaoslab runs."""
        (tmp_path / "cwd").mkdir()
        (tmp_path / "cwd" / "key").write_text("cwd-key-0123")
        path = write(TINY)
        monkeypatch.chdir(tmp_path / "cwd")
        exp = load_experiment(path, overrides={"load.mix.0.headers": {"X-Api-Key": "${file:key}"}})
        assert resolve_runtime_refs(exp.spec.load.mix[0].headers["X-Api-Key"], {}) == "cwd-key-0123"


class TestAtTheUse:
    """References inside other references' values, and the loopback check that needs no value."""

    def test_service_url_with_a_secret_in_its_user_information(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``${service:api}`` expands to a URL whose password is read from the environment then."""
        monkeypatch.setenv("CHAOSLAB_T_PW", "url-pw-0123")
        (tmp_path / "shop.yaml").write_text(
            SHOP.replace(
                "    url: http://127.0.0.1:18080\n", '    url: "http://u:${env:CHAOSLAB_T_PW}@127.0.0.1:18080"\n'
            )
        )
        path = tmp_path / "exp.yaml"
        path.write_text(TINY)
        exp = load_experiment(path)
        url = exp.spec.load.mix[0].url
        assert resolve_runtime_refs(url, runtime_refs(exp.topology)) == "http://u:url-pw-0123@127.0.0.1:18080/search"

    def test_a_secret_read_at_the_use_after_it_is_gone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """`chaoslab rollback` in another shell: the variable missing is a SpecError without any value."""
        monkeypatch.delenv("CHAOSLAB_T_PW", raising=False)
        with pytest.raises(SpecError, match=r"environment variable CHAOSLAB_T_PW is not set"):
            resolve_runtime_refs("postgres://u:${env:CHAOSLAB_T_PW}@h/d", {})
