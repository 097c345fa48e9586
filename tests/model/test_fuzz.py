"""Property: whatever a file contains, the loader accepts it or raises SpecError with one line; never another error."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from chaoslab.errors import SpecError
from chaoslab.model.loading import load_experiment, parse_overrides
from tests.model.conftest import SHOP, TINY

RICH = """\
name: rich
description: every section filled in, for mutation
topology: shop.yaml
parameters:
  latency: 300ms
  rate: 20/s
load:
  rate: ${rate}
  connections: 8
  profile: {kind: spike, at: 2s, duration: 1s, multiplier: 3}
  mix:
    - {name: search, signal: api:search, weight: 1, method: POST, url: "${service:api}/search", json: {q: x}}
    - {name: docs, signal: api:documents, weight: 2, url: "${service:api}/documents/1", timeout: 2s}
phases: {warmup: 1s, baseline: 5s, fault: 5s}
faults:
  - {kind: latency, target: api->vector, latency: "${latency}", jitter: 10ms, start: 1s, duration: 2s}
  - {kind: process_kill, target: api, signal: SIGTERM}
  - {kind: disk_fill, target: vector, path: data, until_free: 1MiB, cap: 8MiB}
steady_state:
  window: 500ms
  min_samples: 3
  band: {p95_factor: 2, p95_margin: 50ms, error_rate_margin: 1%}
  slos:
    - {signal: api:documents, p95: 500ms, success: 99%}
expected_impact: [api:search]
recovery: {budget: 10s, stable_for: 2s}
abort:
  - {when: error_rate, signal: api:documents, above: 90%, for: 5s}
  - {when: host_disk, path: /, above: 98%}
quick:
  phases: {warmup: 1s, baseline: 2s, fault: 3s}
tags: [fuzz]
"""

SHOP_WITH_PATH = SHOP.replace(
    "    url: http://127.0.0.1:18081\n", "    url: http://127.0.0.1:18081\n    paths: {data: /tmp}\n"
)

JUNK_SCALARS = st.sampled_from(
    ["-5s", "0s", "0", "${nope}", "${service:zz}", "${rate}", "1e999", "nan", "10/s", "64MiB", "1%", "150%",
     "api->vector", "latency", "api", "", " ", "~", "[", "{a: 1}", "kind", "when"]
)  # fmt: skip
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    JUNK_SCALARS,
    st.lists(JUNK_SCALARS, max_size=3),
    st.dictionaries(st.one_of(JUNK_SCALARS, st.text(max_size=6)), JUNK_SCALARS, max_size=3),
)
JUNK_KEYS = st.one_of(JUNK_SCALARS, st.sampled_from(["junk", "rat", "kindd", "urll", "jiter"]), st.integers(0, 3))

BASE = yaml.safe_load(RICH)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory holding the topology the experiments refer to."""
    path = tmp_path_factory.mktemp("fuzz")
    (path / "shop.yaml").write_text(SHOP_WITH_PATH, encoding="utf-8")
    yield path


def check_loads_or_rejects_cleanly(path: Path, quick: bool) -> None:
    """The property: an Experiment, or a SpecError with one line naming the file; nothing else escapes."""
    try:
        load_experiment(path, quick=quick)
    except SpecError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, message
        assert message.startswith(str(path)), message
        assert exc.exit_code == 2


def paths_of(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from paths_of(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from paths_of(value, (*prefix, index))


def mutate(data: dict[str, Any], draw: st.DrawFn) -> dict[str, Any]:
    """One random structural change: drop a key or item, replace a value, or insert a junk key."""
    result = copy.deepcopy(data)
    paths = list(paths_of(result))
    path = draw(st.sampled_from(paths))
    parent: Any = result
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["drop", "replace", "insert"]))
    if action == "drop":
        del parent[path[-1]]
    elif action == "replace":
        parent[path[-1]] = draw(JUNK)
    elif isinstance(parent, dict):
        parent[draw(JUNK_KEYS)] = draw(JUNK)
    else:
        parent.append(draw(JUNK))
    return result


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    """The rich experiment with one to three structural mutations, dumped back to YAML."""
    data = BASE
    for _ in range(draw(st.integers(1, 3))):
        data = mutate(data, draw)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


FUZZ = settings(
    max_examples=int(os.environ.get("CHAOSLAB_FUZZ_EXAMPLES", "100")),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    # the explain phase traces every line (slow before Python 3.12); shrinking alone finds the example
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)


class TestLoaderNeverCrashes:
    """Mutated experiments are accepted or rejected with a clean one-line SpecError."""

    def test_the_unmutated_base_is_valid(self, workdir: Path) -> None:
        """The base document loads, so mutations start from something valid."""
        path = workdir / "base.yaml"
        path.write_text(RICH, encoding="utf-8")
        assert load_experiment(path).spec.name == "rich"
        assert load_experiment(path, quick=True).spec.phases.baseline == 2.0

    @FUZZ
    @given(text=mutated_documents(), quick=st.booleans())
    def test_structural_mutations(self, workdir: Path, text: str, quick: bool) -> None:
        """Dropped keys, changed types, junk keys and values."""
        path = workdir / "structural.yaml"
        path.write_text(text, encoding="utf-8")
        check_loads_or_rejects_cleanly(path, quick)

    @FUZZ
    @given(cut=st.integers(0, len(RICH)), extra=st.text(max_size=8))
    def test_truncated_text(self, workdir: Path, cut: int, extra: str) -> None:
        """The file cut short anywhere, with a few random characters appended."""
        path = workdir / "truncated.yaml"
        path.write_text(RICH[:cut] + extra, encoding="utf-8")
        check_loads_or_rejects_cleanly(path, quick=False)

    @FUZZ
    @given(at=st.integers(0, len(RICH)), junk=st.binary(min_size=1, max_size=16), drop=st.integers(0, 4))
    def test_random_bytes(self, workdir: Path, at: int, junk: bytes, drop: int) -> None:
        """Random bytes spliced into the file, replacing a few of its characters."""
        raw = RICH.encode()
        path = workdir / "bytes.yaml"
        path.write_bytes(raw[:at] + junk + raw[at + drop :])
        check_loads_or_rejects_cleanly(path, quick=False)

    @FUZZ
    @given(junk=st.binary(max_size=200))
    def test_pure_garbage(self, workdir: Path, junk: bytes) -> None:
        """A file of nothing but random bytes."""
        path = workdir / "garbage.yaml"
        path.write_bytes(junk)
        check_loads_or_rejects_cleanly(path, quick=False)


SET_KEYS = [".".join(map(str, path)) for path in paths_of(BASE)] + ["latency", "mode", "nope", "a..b", "faults.9"]


class TestSetNeverCrashes:
    """Random ``--set`` options on a valid experiment are applied or rejected with a clean SpecError."""

    @settings(FUZZ, max_examples=max(1, FUZZ.max_examples // 2))
    @given(
        keys=st.lists(st.sampled_from(SET_KEYS), min_size=1, max_size=3),
        values=st.lists(st.one_of(JUNK_SCALARS, st.text(max_size=8)), min_size=3, max_size=3),
    )
    def test_random_overrides(self, workdir: Path, keys: list[str], values: list[str]) -> None:
        """Any dotted path or parameter, any scalar text."""
        path = workdir / "base.yaml"
        path.write_text(RICH, encoding="utf-8")
        pairs = [f"{key}={value}" for key, value in zip(keys, values, strict=False)]
        try:
            load_experiment(path, overrides=parse_overrides(pairs))
        except SpecError as exc:
            assert "\n" not in str(exc) and exc.exit_code == 2, str(exc)


TOPOLOGY = yaml.safe_load(SHOP_WITH_PATH)


@st.composite
def mutated_topologies(draw: st.DrawFn) -> str:
    """The shop topology with one to three structural mutations."""
    data = TOPOLOGY
    for _ in range(draw(st.integers(1, 3))):
        data = mutate(data, draw)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@pytest.fixture(scope="module")
def topology_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with a fixed experiment whose topology the test rewrites."""
    path = tmp_path_factory.mktemp("fuzz-topology")
    (path / "exp.yaml").write_text(TINY, encoding="utf-8")
    return path


class TestTopologyNeverCrashes:
    """Mutated topologies are accepted or rejected with a one-line SpecError naming the topology file."""

    @settings(FUZZ, max_examples=max(1, FUZZ.max_examples // 2))
    @given(text=mutated_topologies())
    def test_structural_mutations(self, topology_dir: Path, text: str) -> None:
        """Dropped keys, changed types, junk keys and values in the topology."""
        topology = topology_dir / "shop.yaml"
        topology.write_text(text, encoding="utf-8")
        try:
            load_experiment(topology_dir / "exp.yaml")
        except SpecError as exc:
            message = str(exc)
            assert "\n" not in message, message
            assert message.startswith((str(topology), str(topology_dir / "exp.yaml"))), message
