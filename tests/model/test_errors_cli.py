"""Every class of bad experiment input gives one line ``chaoslab: error: ...`` and exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from chaoslab.model.faults import FAULT_KINDS
from tests.model.conftest import SHOP, TINY, CliResult

Cli = Callable[..., CliResult]
Write = Callable[..., Path]


def one_error(result: CliResult) -> str:
    """The single error line of a failed run (asserting there is exactly one and exit code 2)."""
    assert result.code == 2, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]


def edit(old: str, new: str) -> str:
    """TINY with one piece of text replaced (which must be there)."""
    assert old in TINY
    return TINY.replace(old, new)


class TestFileErrors:
    """Files that cannot be read as a YAML mapping."""

    def test_missing_file(self, cli: Cli, tmp_path: Path) -> None:
        """A path that does not exist is named in the message."""
        path = tmp_path / "nope.yaml"
        assert one_error(cli("validate", str(path))) == f"chaoslab: error: {path}: file not found"

    def test_unknown_experiment_name(self, cli: Cli) -> None:
        """A bare name that is no file and no known experiment suggests the closest name."""
        line = one_error(cli("validate", "cascade-vector-latncy"))
        assert line.startswith(
            "chaoslab: error: cascade-vector-latncy: no experiment file or name 'cascade-vector-latncy'; "
            "did you mean 'cascade-vector-latency'? (known: "
        )

    def test_directory(self, cli: Cli, tmp_path: Path) -> None:
        """A directory is not an experiment file."""
        assert (
            one_error(cli("validate", str(tmp_path)))
            == f"chaoslab: error: {tmp_path}: expected a YAML file, got a directory"
        )

    def test_empty_file(self, cli: Cli, write: Write) -> None:
        """An empty file says so."""
        path = write("")
        assert (
            one_error(cli("validate", str(path)))
            == f"chaoslab: error: {path}: expected a mapping of fields, got an empty file"
        )

    def test_comments_only(self, cli: Cli, write: Write) -> None:
        """A file with only comments is as empty as an empty one."""
        path = write("# nothing here yet\n\n")
        assert (
            one_error(cli("validate", str(path)))
            == f"chaoslab: error: {path}: expected a mapping of fields, got an empty file"
        )

    def test_binary_with_nul(self, cli: Cli, write: Write) -> None:
        """Binary data (a NUL byte) is refused before parsing."""
        path = write(b"\x7fELF\x02\x01\x01\x00\x00\x00garbage")
        assert (
            one_error(cli("validate", str(path)))
            == f"chaoslab: error: {path}: expected a YAML text file, got binary data (a NUL byte)"
        )

    def test_non_utf8(self, cli: Cli, write: Write) -> None:
        """Bytes that are not UTF-8 are located by line and offset."""
        path = write(b"name: tiny\ndescription: caf\xe9\n")
        assert (
            one_error(cli("validate", str(path)))
            == f"chaoslab: error: {path}:2: expected UTF-8 text, got the byte 0xe9 at offset 27"
        )

    def test_list_document(self, cli: Cli, write: Write) -> None:
        """A document that is a list, not a mapping."""
        path = write("- name: tiny\n- name: other\n")
        assert (
            one_error(cli("validate", str(path)))
            == f"chaoslab: error: {path}:1: expected a mapping of fields at the top level, got a list"
        )

    def test_scalar_document(self, cli: Cli, write: Write) -> None:
        """A document that is a single string."""
        path = write("just some words\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:1: expected a mapping of fields at the top level, "
            "got a string ('just some words')"
        )


class TestYamlErrors:
    """YAML that does not parse, or that parses into something chaoslab refuses."""

    def test_unclosed_bracket(self, cli: Cli, write: Write) -> None:
        """The line where parsing failed, and the line where the unclosed list started."""
        path = write("name: tiny\nload: [1, 2\nfaults: 3\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:3: YAML syntax error: expected ',' or ']', but got ':' "
            "(while parsing a flow sequence started on line 2)"
        )

    def test_bad_indentation(self, cli: Cli, write: Write) -> None:
        """A mapping value where none is allowed points at its line."""
        path = write("name: tiny\nload:\n  rate: 10/s\n    mix: []\n")
        assert (
            one_error(cli("validate", str(path)))
            == f"chaoslab: error: {path}:4: YAML syntax error: mapping values are not allowed here"
        )

    def test_tab_indentation(self, cli: Cli, write: Write) -> None:
        """A tab used for indentation is a syntax error on its line."""
        path = write("name: tiny\nload:\n\trate: 10/s\n")
        line = one_error(cli("validate", str(path)))
        assert line.startswith(f"chaoslab: error: {path}:3: YAML syntax error: found character '\\t'")

    def test_duplicate_key(self, cli: Cli, write: Write) -> None:
        """A key given twice is refused (YAML would silently keep the last)."""
        path = write(TINY + "name: again\n")
        assert (
            one_error(cli("validate", str(path)))
            == f"chaoslab: error: {path}:12: YAML syntax error: duplicate key 'name' (first on line 1)"
        )

    def test_recursive_alias(self, cli: Cli, write: Write) -> None:
        """An alias inside the node it names is refused instead of recursing forever."""
        path = write("name: &loop [*loop]\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:1: YAML syntax error: an alias refers to a node that contains it"
        )

    def test_alias_bomb(self, cli: Cli, write: Write) -> None:
        """Nested aliases that expand to millions of values are refused quickly."""
        lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
        for i in range(1, 9):
            lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
        path = write("\n".join(lines) + "\n")
        line = one_error(cli("validate", str(path)))
        assert line.endswith("YAML syntax error: document expands to more than 50000 values (through aliases?)")

    def test_deep_nesting(self, cli: Cli, write: Write) -> None:
        """Very deep nesting is refused with a message, not a RecursionError."""
        path = write("name: " + "[" * 400 + "]" * 400 + "\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:1: YAML syntax error: nesting deeper than 64 levels"
        )

    def test_python_tag(self, cli: Cli, write: Write) -> None:
        """Python object tags are not constructed (safe loading)."""
        path = write("name: !!python/object/apply:os.system ['true']\n")
        line = one_error(cli("validate", str(path)))
        assert line.startswith(f"chaoslab: error: {path}:1: YAML syntax error: could not determine a constructor")


class TestUnknownKeys:
    """Misspelt keys are named with their path and the closest known key."""

    def test_top_level(self, cli: Cli, write: Write) -> None:
        """A top-level typo suggests the real key."""
        path = write(TINY + "expected_impcat: [api:search]\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:12: expected_impcat: unknown key 'expected_impcat'; "
            "did you mean 'expected_impact'?"
        )

    def test_nested(self, cli: Cli, write: Write) -> None:
        """A typo inside ``load`` has the dotted path and the line of the key."""
        path = write(edit("  rate: 10/s\n", "  rate: 10/s\n  conections: 8\n"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:5: load.conections: unknown key 'conections'; did you mean 'connections'?"
        )

    def test_inside_fault(self, cli: Cli, write: Write) -> None:
        """A typo inside a fault is checked against that fault kind's own fields."""
        path = write(TINY + "    jiter: 10ms\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:12: faults.0.jiter: unknown key 'jiter'; did you mean 'jitter'?"
        )

    def test_inside_mix_entry(self, cli: Cli, write: Write) -> None:
        """A misspelt ``url`` is reported as the unknown key, not as a missing url."""
        path = write(edit("      url: ", "      urll: "))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:7: load.mix.0.urll: unknown key 'urll'; did you mean 'url'?"
        )

    def test_no_close_match_lists_keys(self, cli: Cli, write: Write) -> None:
        """With no close match the known keys are listed."""
        path = write(TINY + "recovery: {budget: 30s, zzz: 1}\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:12: recovery.zzz: unknown key 'zzz' (expected one of: budget, stable_for)"
        )


class TestWrongValues:
    """Values of the wrong type or out of range."""

    def test_wrong_type_integer(self, cli: Cli, write: Write) -> None:
        """A word where an integer belongs."""
        path = write(edit("  rate: 10/s\n", "  rate: 10/s\n  connections: many\n"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:5: load.connections: expected an integer, got a string ('many')"
        )

    def test_wrong_type_list(self, cli: Cli, write: Write) -> None:
        """A mapping where a list belongs."""
        path = write(TINY.split("faults:")[0] + "faults: {kind: latency}\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:8: faults: expected a list, got a mapping"
        )

    def test_wrong_type_rate(self, cli: Cli, write: Write) -> None:
        """A rate that is not a rate."""
        path = write(edit("rate: 10/s", "rate: fast"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:4: load.rate: expected a rate like 200/s, got 'fast'"
        )

    def test_negative_duration(self, cli: Cli, write: Write) -> None:
        """A negative latency shows the value as written."""
        path = write(edit("latency: 100ms", "latency: -100ms"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:11: faults.0.latency: expected a duration ≥ 0, got '-100ms'"
        )

    def test_zero_duration(self, cli: Cli, write: Write) -> None:
        """A phase must last some time."""
        path = write(TINY + "phases: {warmup: 0s, baseline: 0s, fault: 10s}\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:12: phases.baseline: expected a positive duration, got '0s'"
        )

    def test_zero_rate(self, cli: Cli, write: Write) -> None:
        """A rate of zero sends nothing."""
        path = write(edit("rate: 10/s", "rate: 0/s"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:4: load.rate: expected a positive rate like 200/s, got '0/s'"
        )

    def test_percent_out_of_range(self, cli: Cli, write: Write) -> None:
        """A percentage above 100%."""
        path = write(TINY + "abort:\n  - {when: error_rate, above: 150%}\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:13: abort.0.above: expected a percentage between 0% and 100%, got '150%'"
        )

    def test_bad_method(self, cli: Cli, write: Write) -> None:
        """A literal field lists what it accepts."""
        path = write(edit("      url: ", "      method: FETCH\n      url: "))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:7: load.mix.0.method: expected one of 'GET', 'POST', 'PUT', 'PATCH', "
            "'DELETE', 'HEAD', got 'FETCH'"
        )

    def test_missing_required(self, cli: Cli, write: Write) -> None:
        """A missing required field names the mapping it belongs in."""
        path = write(edit("  rate: 10/s\n", ""))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:3: load.rate: missing required field 'rate'"
        )

    def test_empty_mix(self, cli: Cli, write: Write) -> None:
        """A load with no request classes."""
        path = write(edit("  mix:\n    - name: search\n      url: ${service:api}/search\n", "  mix: []\n"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:5: load.mix: expected at least one request class in the load mix, "
            "got an empty list"
        )

    def test_no_faults(self, cli: Cli, write: Write) -> None:
        """An experiment needs at least one fault."""
        path = write(TINY.split("faults:")[0] + "faults: []\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:8: faults: expected at least 1 item, got none"
        )


class TestFaultKindsAndTargets:
    """Fault kinds must exist and targets must be what the topology defines."""

    def test_unknown_kind(self, cli: Cli, write: Write) -> None:
        """A misspelt fault kind suggests the real one and lists them all."""
        path = write(edit("kind: latency", "kind: latncy"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:9: faults.0.kind: unknown fault kind 'latncy'; did you mean 'latency'? "
            f"(expected one of: {', '.join(FAULT_KINDS)})"
        )

    def test_missing_kind(self, cli: Cli, write: Write) -> None:
        """A fault without a kind."""
        path = write(edit("  - kind: latency\n    target:", "  - target:"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:9: faults.0: missing 'kind': expected a fault kind "
            f"(one of: {', '.join(FAULT_KINDS)})"
        )

    def test_link_fault_on_service(self, cli: Cli, write: Write) -> None:
        """A network fault aimed at a service is told it needs a link, with the links listed."""
        path = write(edit("target: api->vector", "target: vector"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:10: faults.0.target: latency needs a link; 'vector' is not a link of "
            "topology 'shop'; did you mean 'api->vector'? (links: api->postgres, api->vector)"
        )

    def test_service_fault_on_link(self, cli: Cli, write: Write) -> None:
        """A process fault aimed at a link is told it needs a service."""
        path = write(edit("kind: latency", "kind: process_kill").replace("    latency: 100ms\n", ""))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:10: faults.0.target: process_kill needs a service; 'api->vector' is not a "
            "service of topology 'shop'; did you mean 'vector'? (services: api, postgres, vector)"
        )

    def test_unknown_signal(self, cli: Cli, write: Write) -> None:
        """Expected impact must name a recorded signal."""
        path = write(TINY + "expected_impact: [api:serch]\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:12: expected_impact.0: unknown signal 'api:serch'; did you mean 'search'? "
            "(signals: probe:api, probe:postgres, probe:vector, search)"
        )


class TestTopologyAndReferences:
    """The topology reference and ``${...}`` references."""

    def test_unknown_topology(self, cli: Cli, write: Write) -> None:
        """A misspelt topology name suggests the built-in one."""
        path = write(edit("topology: shop.yaml", "topology: dmeo"))
        line = one_error(cli("validate", str(path)))
        assert line.startswith(f"chaoslab: error: {path}:2: topology: unknown topology 'dmeo'; did you mean 'demo'?")
        assert line.endswith("; or give a path)")

    def test_missing_topology_file(self, cli: Cli, write: Write, tmp_path: Path) -> None:
        """A topology path that does not exist is resolved relative to the experiment."""
        path = write(edit("topology: shop.yaml", "topology: topo/shop.yaml"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:2: topology: expected a topology file, got 'topo/shop.yaml' "
            f"(no such file: {tmp_path / 'topo' / 'shop.yaml'})"
        )

    def test_unknown_parameter_reference(self, cli: Cli, write: Write) -> None:
        """``${name}`` must be a declared parameter; the close one is suggested."""
        path = write("parameters:\n  latency: 100ms\n" + edit("latency: 100ms", "latency: ${latncy}"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:13: faults.0.latency: unknown parameter ${{latncy}}; did you mean ${{latency}}? "
            "(declare it under 'parameters'; parameters: latency, mode, vectors)"
        )

    def test_unknown_service_reference(self, cli: Cli, write: Write) -> None:
        """``${service:NAME}`` must name a service of the topology."""
        path = write(edit("${service:api}", "${service:apii}"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:7: load.mix.0.url: unknown reference ${{service:apii}}; did you mean "
            "${service:api}? (known: ${service:api}, ${service:postgres}, ${service:vector})"
        )

    def test_bad_parameter_value(self, cli: Cli, write: Write) -> None:
        """A parameter with a bad value is reported where it is used, naming the parameter."""
        path = write("parameters:\n  latency: slow\n" + edit("latency: 100ms", "latency: ${latency}"))
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:13: faults.0.latency: expected a duration like 500ms, 30s or 2m, got 'slow' "
            "(from ${latency})"
        )


class TestSetErrors:
    """Bad ``--set`` options."""

    def test_no_equals(self, cli: Cli, write: Write) -> None:
        """``--set`` needs KEY=VALUE."""
        path = write(TINY)
        assert one_error(cli("validate", str(path), "--set", "mode")) == (
            "chaoslab: error: --set: expected KEY=VALUE, got 'mode'"
        )

    def test_bad_key(self, cli: Cli, write: Write) -> None:
        """Keys are names or dotted paths."""
        path = write(TINY)
        assert one_error(cli("validate", str(path), "--set", "load..rate=1")) == (
            "chaoslab: error: --set: expected a parameter name or a dotted field path like load.rate, got 'load..rate'"
        )

    def test_unknown_parameter(self, cli: Cli, write: Write) -> None:
        """An unknown parameter suggests a close one and lists them."""
        path = write(TINY)
        assert one_error(cli("validate", str(path), "--set", "mdoe=resilient")) == (
            "chaoslab: error: --set mdoe=resilient: unknown parameter 'mdoe'; did you mean 'mode'? (parameters of "
            "the experiment and topology 'shop.yaml': mode, vectors; use a dotted path like "
            "load.rate to set a field)"
        )

    def test_bad_field_value(self, cli: Cli, write: Write) -> None:
        """A dotted override with a bad value is blamed on the option, not on the file."""
        path = write(TINY)
        assert one_error(cli("validate", str(path), "--set", "load.rate=lots")) == (
            "chaoslab: error: --set load.rate=lots: expected a rate like 200/s, got 'lots'"
        )

    def test_unknown_field(self, cli: Cli, write: Write) -> None:
        """A dotted override of a field that does not exist."""
        path = write(TINY)
        assert one_error(cli("validate", str(path), "--set", "lod.rate=5/s")) == (
            "chaoslab: error: --set lod.rate=5/s: unknown key 'lod'; did you mean 'load'?"
        )

    def test_unknown_topology(self, cli: Cli, write: Write) -> None:
        """``--set topology=...`` naming no topology is blamed on the option."""
        path = write(TINY)
        line = one_error(cli("validate", str(path), "--set", "topology=dmeo"))
        assert line.startswith("chaoslab: error: --set topology=dmeo: unknown topology 'dmeo'; did you mean 'demo'?")

    def test_index_out_of_range(self, cli: Cli, write: Write) -> None:
        """A list index past the end."""
        path = write(TINY)
        assert one_error(cli("validate", str(path), "--set", "faults.3.latency=1s")) == (
            "chaoslab: error: --set faults.3.latency=1s: expected an index below 1 at 'faults.3' (1 item(s)), got 3"
        )

    def test_bad_parameter_value(self, cli: Cli, write: Write) -> None:
        """A parameter set to a bad value names the option that set it."""
        path = write("parameters:\n  latency: 100ms\n" + edit("latency: 100ms", "latency: ${latency}"))
        assert one_error(cli("validate", str(path), "--set", "latency=soon")) == (
            f"chaoslab: error: {path}:13: faults.0.latency: expected a duration like 500ms, 30s or 2m, got 'soon' "
            "(from ${latency}, set by --set latency=soon)"
        )


class TestValidateManyFiles:
    """``validate`` checks every file it is given."""

    def test_good_and_bad(self, cli: Cli, write: Write) -> None:
        """Good files print ok, each bad one prints its error, and the exit code is 2."""
        good = write(TINY, "good.yaml")
        bad = write(edit("rate: 10/s", "rate: fast"), "bad.yaml")
        empty = write("", "empty.yaml")
        result = cli("validate", str(good), str(bad), str(empty))
        assert result.code == 2
        assert result.out == f"ok  {good}  (tiny, topology shop, 1 fault(s))\n"
        assert result.err.splitlines() == [
            f"chaoslab: error: {bad}:4: load.rate: expected a rate like 200/s, got 'fast'",
            f"chaoslab: error: {empty}: expected a mapping of fields, got an empty file",
            "chaoslab: 2 of 3 file(s) invalid",
        ]

    def test_bad_quick_patch(self, cli: Cli, write: Write) -> None:
        """The quick form is validated too, and its errors point into the quick: section."""
        path = write(TINY + "quick:\n  phases: {baseline: 0s}\n")
        assert one_error(cli("validate", str(path))) == (
            f"chaoslab: error: {path}:13: quick.phases.baseline: expected a positive duration, got '0s'"
        )


@pytest.mark.integration
class TestThroughSubprocess:
    """The real ``python -m chaoslab`` process: one line on stderr, exit code 2."""

    @staticmethod
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        """Run chaoslab in a child process."""
        return subprocess.run(
            [sys.executable, "-m", "chaoslab", *args], capture_output=True, text=True, timeout=60, check=False
        )

    def test_garbage_file(self, write: Write) -> None:
        """Random binary bytes."""
        path = write(bytes(range(256)) * 4)
        proc = self.run("validate", str(path))
        assert proc.returncode == 2
        assert proc.stderr == f"chaoslab: error: {path}: expected a YAML text file, got binary data (a NUL byte)\n"
        assert proc.stdout == ""

    def test_unknown_fault_key(self, write: Write) -> None:
        """An unknown key inside a fault."""
        path = write(TINY + "    toxicty: 50%\n")
        proc = self.run("validate", str(path))
        assert proc.returncode == 2
        assert proc.stderr == (
            f"chaoslab: error: {path}:12: faults.0.toxicty: unknown key 'toxicty'; did you mean 'toxicity'?\n"
        )

    def test_bad_set_on_plan(self, write: Write) -> None:
        """``plan`` with a bad ``--set``."""
        path = write(TINY)
        proc = self.run("plan", str(path), "--set", "nope=1")
        assert proc.returncode == 2
        assert proc.stderr.startswith("chaoslab: error: --set nope=1: unknown parameter 'nope' (parameters of ")
        assert proc.stderr.count("\n") == 1

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that does not exist."""
        proc = self.run("validate", str(tmp_path / "missing.yaml"))
        assert (proc.returncode, proc.stderr) == (2, f"chaoslab: error: {tmp_path / 'missing.yaml'}: file not found\n")

    def test_usage_error(self) -> None:
        """A missing argument is a one-line usage error with exit code 2."""
        proc = self.run("plan")
        assert (proc.returncode, proc.stderr) == (
            2,
            "chaoslab: error: plan: missing argument 'EXPERIMENT' (see 'chaoslab plan --help')\n",
        )


class TestTopologyFileErrors:
    """Errors in the topology an experiment names point into the topology file."""

    @staticmethod
    def with_topology(write: Write, topology: str) -> tuple[Path, Path]:
        """Write the experiment, then replace its topology with ``topology``."""
        exp = write(TINY)
        topo = exp.parent / "shop.yaml"
        topo.write_text(topology, encoding="utf-8")
        return exp, topo

    def test_unknown_key(self, cli: Cli, write: Write) -> None:
        """A typo in a service."""
        exp, topo = self.with_topology(write, SHOP.replace("  api:\n", "  api:\n    ulr: x\n"))
        assert one_error(cli("validate", str(exp))) == (
            f"chaoslab: error: {topo}:7: services.api.ulr: unknown key 'ulr'; did you mean 'url'?"
        )

    def test_non_loopback_link(self, cli: Cli, write: Write) -> None:
        """A link leaving the machine is refused at the link's line."""
        exp, topo = self.with_topology(write, SHOP.replace('upstream: "127.0.0.1:18081"', 'upstream: "10.0.0.1:18081"'))
        assert one_error(cli("validate", str(exp))) == (
            f"chaoslab: error: {topo}:14: links.api->vector: address '10.0.0.1:18081' is not on loopback; "
            "set allow_non_loopback: true in the topology to allow it"
        )

    def test_bad_link_address(self, cli: Cli, write: Write) -> None:
        """A listen address without a host."""
        exp, topo = self.with_topology(write, SHOP.replace('listen: "127.0.0.1:18181"', 'listen: "18181"'))
        assert one_error(cli("validate", str(exp))) == (
            f"chaoslab: error: {topo}:14: links.api->vector.listen: expected host:port, got '18181'"
        )

    def test_unknown_runtime_reference(self, cli: Cli, write: Write) -> None:
        """A misspelt ``${python}`` is suggested as a reference."""
        exp, topo = self.with_topology(write, SHOP.replace('"${python}"', '"${pyhton}"'))
        assert one_error(cli("validate", str(exp))) == (
            f"chaoslab: error: {topo}:8: services.api.launch.command.0: unknown parameter ${{pyhton}}; "
            "did you mean ${python}? (declare it under 'parameters'; parameters: mode, vectors)"
        )

    def test_unknown_link_reference(self, cli: Cli, write: Write) -> None:
        """``${link:NAME}`` must name a link."""
        exp, topo = self.with_topology(write, SHOP.replace('"${python}"', '"${link:api->vectr}"'))
        assert one_error(cli("validate", str(exp))) == (
            f"chaoslab: error: {topo}:8: services.api.launch.command.0: unknown reference ${{link:api->vectr}}; "
            "did you mean ${link:api->vector}? (known: ${link:api->postgres}, ${link:api->vector})"
        )

    def test_no_services(self, cli: Cli, write: Write) -> None:
        """A topology needs at least one service."""
        exp, topo = self.with_topology(write, "name: shop\nservices: {}\n")
        assert one_error(cli("validate", str(exp))) == (
            f"chaoslab: error: {topo}:2: services: expected at least one service, got none"
        )
