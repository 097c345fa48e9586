"""Loading experiments and topologies: read, substitute parameters, validate, cross-check targets.

Every failure is a :class:`~chaoslab.errors.SpecError` with one line naming the file, the line,
the field path, what was expected and what was found. Nothing here touches the system.

The order matters for the messages: the topology is read first (its ``parameters`` are
defaults), then ``quick:`` is merged, ``--set`` applied, ``${param}`` substituted, both models
validated, and finally targets, signals and ``${service:NAME}``-style references are checked
against the topology.

``${env:NAME}`` and ``${file:PATH}`` (:mod:`chaoslab.model.references`) stay in the models as
written: loading makes relative ``${file:...}`` paths absolute (against the file they are written
in) and checks that each can be read; the value is read only where it is used.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import os
import re
import sys
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from chaoslab.catalogue import builtin_experiments_dir, builtin_topologies_dir
from chaoslab.errors import SpecError
from chaoslab.model.experiment import ExperimentSpec, experiment_model
from chaoslab.model.faults import DiskFillFault, FaultBase
from chaoslab.model.messages import Provenance, describe_value, did_you_mean, dotted, to_spec_error
from chaoslab.model.references import absolute_file_refs, is_secret_ref, read_reference, reference_problem
from chaoslab.model.topology import ParamValue, TopologySpec
from chaoslab.model.yamlsource import Path_, SourceDoc, parse_yaml
from chaoslab.redact import literal_secrets, remember

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BUILTIN_TOPOLOGIES = builtin_topologies_dir()
BUILTIN_EXPERIMENTS = builtin_experiments_dir()
RUNTIME_REFS = frozenset({"python", "run_dir", "state_dir", "project_dir"})
"""``${...}`` names resolved when the run starts, not at load time."""

EXPERIMENT_SECRET_FIELDS: tuple[tuple[str, ...], ...] = (
    ("load", "mix", "*", "url"),
    ("load", "mix", "*", "headers"),
    ("load", "mix", "*", "json"),
    ("load", "mix", "*", "body"),
    ("load", "login", "url"),
    ("load", "login", "json"),
)
"""Where an experiment may hold ``${env:...}`` and ``${file:...}``: the fields read at the point of use."""

TOPOLOGY_SECRET_FIELDS: tuple[tuple[str, ...], ...] = (
    ("services", "*", "url"),
    ("services", "*", "dsn"),
    ("services", "*", "launch", "command"),
    ("services", "*", "launch", "env"),
    ("services", "*", "probe", "url"),
    ("services", "*", "probe", "dsn"),
    ("services", "*", "process", "cmdline"),
)
"""Where a topology may hold ``${env:...}`` and ``${file:...}``. A field that takes a secret resolves
it with :func:`resolve_runtime_refs` where it is used, and is listed here."""

_REF = re.compile(r"\$\{([^}]*)\}")
_MAX_FILE_BYTES = 4 * 1024 * 1024

# kept for callers of the first version of this module
_did_you_mean = did_you_mean
_kind_of = describe_value
_dotted = dotted


@dataclass(frozen=True, slots=True)
class Experiment:
    """A validated experiment with its resolved topology, ready to plan."""

    spec: ExperimentSpec
    topology: TopologySpec
    path: Path | None
    parameters: Mapping[str, ParamValue]
    quick: bool = False


def local_experiment_dirs() -> list[Path]:
    """Where the user's own experiments are looked up, in order: ``$CHAOSLAB_EXPERIMENTS``, then ``./experiments``."""
    dirs: list[Path] = []
    extra = os.environ.get("CHAOSLAB_EXPERIMENTS")
    if extra:
        dirs.extend(Path(p) for p in extra.split(os.pathsep) if p)
    dirs.append(Path.cwd() / "experiments")
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def experiment_search_dirs() -> list[Path]:
    """Where experiment names are looked up, in order: the local directories, then the built-in catalogue."""
    local = [d for d in local_experiment_dirs() if d.resolve() != BUILTIN_EXPERIMENTS.resolve()]
    return [*local, BUILTIN_EXPERIMENTS]


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """One experiment that a name finds: its file, where it comes from, and whether it hides a built-in one."""

    name: str
    path: Path
    builtin: bool
    shadows_builtin: bool = False


def experiment_catalogue() -> list[CatalogueEntry]:
    """Every experiment a name can find, sorted by name; a local file hides the built-in one of the same name.

    A local directory that *is* the built-in catalogue (``experiments/`` in a clone is a symlink
    to it) counts as built-in, so a clone does not list every experiment as shadowing itself.
    """
    builtin = {p.stem: p for p in _yaml_files(BUILTIN_EXPERIMENTS)}
    builtin_files = {p.resolve() for p in builtin.values()}
    found: dict[str, CatalogueEntry] = {}
    for directory in local_experiment_dirs():
        for path in _yaml_files(directory):
            if path.stem in found:
                continue
            if path.resolve() in builtin_files:
                continue
            found[path.stem] = CatalogueEntry(path.stem, path, builtin=False, shadows_builtin=path.stem in builtin)
    for name, path in builtin.items():
        found.setdefault(name, CatalogueEntry(name, path, builtin=True))
    return [found[name] for name in sorted(found)]


def _yaml_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else []


def find_experiment(name_or_path: str) -> Path:
    """The file for an experiment name (a local one first, then the built-in catalogue) or path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_path or candidate.exists():
        if candidate.is_dir():
            raise SpecError("expected a YAML file, got a directory", file=name_or_path)
        if candidate.is_file():
            return candidate
        raise SpecError("file not found", file=name_or_path)
    entries = {entry.name: entry for entry in experiment_catalogue()}
    if name_or_path in entries:
        return entries[name_or_path].path
    known = sorted(entries)
    listing = f" (known: {', '.join(known)})" if known and len(known) <= 20 else ""
    raise SpecError(
        f"no experiment file or name {name_or_path!r}{did_you_mean(name_or_path, known)}{listing}",
        file=name_or_path,
    )


def read_document(path: Path) -> SourceDoc:
    """Read and parse a YAML file into a mapping document, or raise a one-line SpecError."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("file not found", file=where) from None
    except IsADirectoryError:
        raise SpecError("expected a YAML file, got a directory", file=where) from None
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror or exc}", file=where) from None
    if len(raw) > _MAX_FILE_BYTES:
        raise SpecError(f"expected a file of at most {_MAX_FILE_BYTES} bytes, got {len(raw)}", file=where)
    if b"\x00" in raw:
        raise SpecError("expected a YAML text file, got binary data (a NUL byte)", file=where)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"expected UTF-8 text, got the byte 0x{raw[exc.start]:02x} at offset {exc.start}", file=where, line=line
        ) from None
    try:
        doc = parse_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        yaml_line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        context_mark = exc.context_mark
        if exc.problem and exc.context and context_mark is not None and context_mark is not mark:
            # "expected ',' or ']'" is found lines after the bracket that was never closed
            problem += f" ({exc.context} started on line {context_mark.line + 1})"
        raise SpecError(f"YAML syntax error: {problem}", file=where, line=yaml_line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML syntax error: {' '.join(str(exc).split())}", file=where) from None
    if doc.data is None:
        raise SpecError("expected a mapping of fields, got an empty file", file=where)
    if not isinstance(doc.data, dict):
        raise SpecError(
            f"expected a mapping of fields at the top level, got {describe_value(doc.data)}",
            file=where,
            line=doc.line_of(()),
        )
    return doc


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``key=value`` strings from ``--set`` into a mapping; values are read as YAML scalars.

    >>> parse_overrides(["mode=resilient", "load.rate=100/s", "vectors=500", "flag=true"])
    {'mode': 'resilient', 'load.rate': '100/s', 'vectors': 500, 'flag': True}
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"expected KEY=VALUE, got {pair!r}", field="--set")
        if not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", key):
            raise SpecError(
                f"expected a parameter name or a dotted field path like load.rate, got {key!r}", field="--set"
            )
        try:
            parsed = yaml.load(value, Loader=_ScalarLoader) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, dict | list) or not isinstance(parsed, str | int | float | bool | None):
            parsed = value  # only scalars are parsed; anything else stays the text given
        result[key] = parsed
    return result


class _ScalarLoader(yaml.SafeLoader):
    """Like the file loader: ``on``/``yes``/``no`` stay strings, only true/false are booleans."""


_ScalarLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in value if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ScalarLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_experiment(
    name_or_path: str | Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    quick: bool = False,
    fault_models: Sequence[type[FaultBase]] | None = None,
) -> Experiment:
    """Load, substitute, validate and cross-check an experiment and its topology.

    ``fault_models`` are the fault kinds accepted (the fault registry's; default: the built-in ones).
    """
    path = name_or_path if isinstance(name_or_path, Path) else find_experiment(name_or_path)
    doc = read_document(path)
    return experiment_from_document(doc, path=path, overrides=overrides or {}, quick=quick, fault_models=fault_models)


def experiment_from_document(
    doc: SourceDoc,
    *,
    path: Path | None,
    overrides: Mapping[str, Any],
    quick: bool = False,
    fault_models: Sequence[type[FaultBase]] | None = None,
) -> Experiment:
    """Build an Experiment from an already parsed document (see :func:`load_experiment`)."""
    where = str(path) if path is not None else "<experiment>"
    data = copy.deepcopy(doc.data)
    quick_paths: set[Path_] = set()
    if quick and "quick" in data:
        patch = data["quick"]
        if not isinstance(patch, dict):
            raise SpecError(
                f"expected a mapping of fields to change in --quick runs, got {describe_value(patch)}",
                file=where,
                line=doc.line_of(("quick",)),
                field="quick",
            )
        data = _deep_merge(data, patch, (), quick_paths)
    data = absolute_file_refs(data, path.parent if path is not None else Path.cwd())
    # topology first: its parameters are defaults the experiment and --set may override;
    # --set topology=compose/topology.yaml runs the same experiment against another deployment
    topo_set = "topology" in overrides
    if topo_set:
        data["topology"] = overrides["topology"]
    topo_ref = data.get("topology", "demo")
    try:
        if not isinstance(topo_ref, str) or not topo_ref.strip():
            raise SpecError(
                f"expected a topology name or path, got {describe_value(topo_ref)}",
                file=where,
                line=doc.line_of(("topology",)),
                field="topology",
            )
        relative_to = path.parent if path is not None and not topo_set else Path.cwd()
        topo_path = find_topology(topo_ref, relative_to=relative_to, shown=where, doc=doc)
    except SpecError as exc:
        if not topo_set:
            raise
        # the bad value came from the command line, not from the file
        raise SpecError(exc.message, field=f"--set topology={_scalar_text(topo_ref)}") from None
    topo_doc = read_document(topo_path)
    topo_raw = absolute_file_refs(topo_doc.data, topo_path.parent)
    topo_params = _parameters_of(topo_raw, str(topo_path), topo_doc)
    exp_params = _parameters_of(data, where, doc)
    params: dict[str, Any] = {**topo_params, **exp_params}
    set_paths: dict[Path_, str] = {}
    set_params: dict[str, str] = {}
    for key, value in overrides.items():
        if key == "topology":
            continue
        text = f"{key}={_scalar_text(value)}"
        value = absolute_file_refs(value, Path.cwd())
        keys = key.split(".")
        if keys[0] == "parameters" and len(keys) == 2:
            keys = keys[1:]
        if len(keys) > 1:
            _set_path(data, keys, value, text)
            set_paths[tuple(int(k) if k.isdigit() else k for k in keys)] = text
        elif keys[0] in params:
            params[keys[0]] = value
            set_params[keys[0]] = text
            set_paths[("parameters", keys[0])] = text
        else:
            known = ", ".join(sorted(params)) or "none"
            raise SpecError(
                f"unknown parameter {keys[0]!r}{did_you_mean(keys[0], params)} "
                f"(parameters of the experiment and topology {topo_ref!r}: {known}; "
                "use a dotted path like load.rate to set a field)",
                field=f"--set {text}",
            )
    data["parameters"] = {k: v for k, v in params.items() if k in exp_params or k in set_params}
    origins: dict[Path_, str] = {}
    data = _substitute(data, params, where, doc, (), origins)
    topo_data = _substitute(topo_raw, params, str(topo_path), topo_doc, (), {})
    topo_data["parameters"] = {k: params[k] for k in topo_params}
    topology = validate_model(TopologySpec, topo_data, file=str(topo_path), doc=topo_doc)
    provenance = Provenance(
        set_paths=set_paths, params=origins, set_params=set_params, quick_paths=frozenset(quick_paths)
    )
    spec = validate_model(experiment_model(fault_models), data, file=where, doc=doc, provenance=provenance)
    _cross_check(spec, topology, where, doc)
    _check_refs(data, topology, where, doc, ("parameters", "description"), EXPERIMENT_SECRET_FIELDS, provenance)
    _check_refs(topo_data, topology, str(topo_path), topo_doc, ("parameters", "description"), TOPOLOGY_SECRET_FIELDS)
    _remember_literal_secrets(data, topo_data)
    return Experiment(spec=spec, topology=topology, path=path, parameters=params, quick=quick)


def _parameters_of(data: Mapping[str, Any], file: str, doc: SourceDoc) -> dict[str, Any]:
    params = data.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise SpecError(
            f"expected a mapping of parameter names to values, got {describe_value(params)}",
            file=file,
            line=doc.line_of(("parameters",)),
            field="parameters",
        )
    return params


def find_topology(ref: str, *, relative_to: Path, shown: str, doc: SourceDoc | None = None) -> Path:
    """The file of a topology reference: a path (relative to the experiment) or a built-in name."""
    line = doc.line_of(("topology",)) if doc else None
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        candidate = Path(ref) if Path(ref).is_absolute() else relative_to / ref
        if candidate.is_file():
            return candidate
        raise SpecError(
            f"expected a topology file, got {ref!r} (no such file: {candidate})",
            file=shown,
            line=line,
            field="topology",
        )
    for directory in (BUILTIN_TOPOLOGIES, Path.cwd() / "topologies"):
        candidate = directory / f"{ref}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in BUILTIN_TOPOLOGIES.glob("*.yaml"))
    raise SpecError(
        f"unknown topology {ref!r}{did_you_mean(ref, known)} (built-in: {', '.join(known)}; or give a path)",
        file=shown,
        line=line,
        field="topology",
    )


def load_topology(ref: str, *, overrides: Mapping[str, Any] | None = None) -> TopologySpec:
    """Load a topology on its own (for ``chaoslab demo``), with parameter overrides."""
    path = find_topology(ref, relative_to=Path.cwd(), shown=ref)
    doc = read_document(path)
    raw = absolute_file_refs(doc.data, path.parent)
    params: dict[str, Any] = dict(_parameters_of(raw, str(path), doc))
    for key, value in (overrides or {}).items():
        if key not in params:
            known = ", ".join(sorted(params)) or "none"
            raise SpecError(
                f"unknown parameter {key!r}{did_you_mean(key, params)} (parameters of topology {ref!r}: {known})",
                field=f"--set {key}={_scalar_text(value)}",
            )
        params[key] = absolute_file_refs(value, Path.cwd())
    data = _substitute(raw, params, str(path), doc, (), {})
    data["parameters"] = params
    topology = validate_model(TopologySpec, data, file=str(path), doc=doc)
    _check_refs(data, topology, str(path), doc, ("parameters", "description"), TOPOLOGY_SECRET_FIELDS)
    _remember_literal_secrets(data)
    return topology


M = typing.TypeVar("M", bound=BaseModel)


def validate_model(model: type[M], data: Any, *, file: str, doc: SourceDoc, provenance: Provenance | None = None) -> M:
    """Validate ``data`` as ``model``; the most useful error becomes a one-line SpecError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise to_spec_error(exc, model, data, file=file, doc=doc, provenance=provenance) from None


# ---------------------------------------------------------------------------------------------
# substitution and overrides


def _scalar_text(value: Any) -> str:
    """A parameter value as it is written into a string: YAML spelling for booleans and null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _substitute(
    value: Any, params: Mapping[str, Any], file: str, doc: SourceDoc, path: Path_, origins: dict[Path_, str]
) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, params, file, doc, (*path, k), origins) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params, file, doc, (*path, i), origins) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _REF.fullmatch(value.strip())
    if whole and _is_param_ref(whole.group(1)):
        # a whole-value reference keeps the parameter's type (a number stays a number)
        origins[path] = whole.group(1).strip()
        return _param(whole.group(1), params, file, doc, path)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _is_param_ref(name):
            return match.group(0)
        origins[path] = name.strip()
        return _scalar_text(_param(name, params, file, doc, path))

    return _REF.sub(replace, value)


def _is_param_ref(name: str) -> bool:
    return ":" not in name and name.strip() not in RUNTIME_REFS


def _param(name: str, params: Mapping[str, Any], file: str, doc: SourceDoc, path: Path_) -> Any:
    key = name.strip()
    if key in params:
        return params[key]
    known = ", ".join(sorted(params)) or "none"
    close = difflib.get_close_matches(key, [*params, *RUNTIME_REFS], n=1, cutoff=0.6)
    hint = f"; did you mean ${{{close[0]}}}?" if close else ""
    raise SpecError(
        f"unknown parameter ${{{name}}}{hint} (declare it under 'parameters'; parameters: {known})",
        file=file,
        line=doc.line_of(path),
        field=dotted(path),
    )


def resolve_runtime_refs(text: str, refs: Mapping[str, str]) -> str:
    """Replace ``${service:NAME}``, ``${link:NAME}``, ``${python}`` ... with their run-time values.

    ``${env:NAME}`` and ``${file:PATH}`` are read here, at the point of use, also inside the value
    of another reference (a service URL with ``${env:...}`` in its user information).
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in refs:
            value = refs[name]
            return _REF.sub(_secret_or_kept, value) if "${" in value else value
        if is_secret_ref(name):
            return read_reference(name)
        raise SpecError(f"unknown reference ${{{name}}} in {text!r}")

    return _REF.sub(replace, text)


def _secret_or_kept(match: re.Match[str]) -> str:
    name = match.group(1)
    return read_reference(name) if is_secret_ref(name) else match.group(0)


def resolve_known_refs(text: str, refs: Mapping[str, str]) -> str:
    """Like :func:`resolve_runtime_refs`, but leaves references it cannot resolve (``${run_dir}``) as written."""
    return _REF.sub(lambda m: refs.get(m.group(1), m.group(0)), text)


def runtime_refs(topology: TopologySpec, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``${...}`` values a topology offers: service URLs/addresses, link listen addresses."""
    refs: dict[str, str] = {"python": sys.executable, "project_dir": str(PACKAGE_DIR.parent)}
    for name, service in topology.services.items():
        if service.url is not None:
            refs[f"service:{name}"] = service.url.rstrip("/")
        elif service.address is not None:
            refs[f"service:{name}"] = service.address
        if service.address is not None:
            refs[f"address:{name}"] = service.address
    for name, link in topology.links.items():
        refs[f"link:{name}"] = link.listen
    refs.update(extra or {})
    return refs


def _check_refs(
    data: Any,
    topology: TopologySpec,
    file: str,
    doc: SourceDoc,
    skip: tuple[str, ...],
    secret_fields: tuple[tuple[str, ...], ...],
    provenance: Provenance | None = None,
) -> None:
    """Every ``${service:NAME}``, ``${link:NAME}`` ... must name something the topology has;
    every ``${env:NAME}`` and ``${file:PATH}`` must be readable."""
    known = set(runtime_refs(topology)) | RUNTIME_REFS
    for path, text in _strings(data, ()):
        if path[:1] and path[0] in skip:
            continue
        for match in _REF.finditer(text):
            name = match.group(1)
            if name in known or _is_param_ref(name):
                continue
            if is_secret_ref(name):
                if path[0] == "quick":
                    continue  # a quick: patch is checked when it is used (then it is merged into the fields)
                if not any(_under(path, pattern) for pattern in secret_fields):
                    fields = ", ".join(".".join(p) for p in secret_fields)
                    problem: str | None = f"${{{name}}} is not read in this field; secrets go in {fields}"
                else:
                    problem = reference_problem(name)
                if problem is not None:
                    raise _reference_error(problem, path, file, doc, provenance)
                continue
            prefix = name.partition(":")[0]
            choices = sorted(k for k in known if k.startswith(prefix + ":")) or sorted(known)
            close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
            hint = f"; did you mean ${{{close[0]}}}?" if close else ""
            raise SpecError(
                f"unknown reference ${{{name}}}{hint} (known: {', '.join('${' + c + '}' for c in choices)})",
                file=file,
                line=doc.line_of(path),
                field=dotted(path),
            )


def _under(path: Path_, pattern: tuple[str, ...]) -> bool:
    """Whether ``path`` is ``pattern`` or inside it (``*`` matches any one key or index)."""
    return len(path) >= len(pattern) and all(p == "*" or p == str(k) for p, k in zip(pattern, path, strict=False))


def _reference_error(problem: str, path: Path_, file: str, doc: SourceDoc, provenance: Provenance | None) -> SpecError:
    """A bad ``${env:...}``/``${file:...}`` at ``path``, blamed on the ``--set`` or parameter it came from."""
    if provenance is not None:
        set_text = provenance.set_override(path)
        if set_text is not None:
            return SpecError(problem, field=f"--set {set_text}")
        if path in provenance.params:
            name = provenance.params[path]
            how = f", set by --set {provenance.set_params[name]}" if name in provenance.set_params else ""
            problem += f" (from ${{{name}}}{how})"
        if any(path[: len(q)] == q for q in provenance.quick_paths):
            path = ("quick", *path)  # changed by --quick: the text is in the quick: section
    return SpecError(problem, file=file, line=doc.line_of(path), field=dotted(path))


def _remember_literal_secrets(*documents: Any) -> None:
    """Secrets written into the files themselves (a DSN's password, a token header) are masked by value too."""
    for document in documents:
        for value in literal_secrets(document):
            remember(value)


def _strings(value: Any, path: Path_) -> Iterable[tuple[Path_, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))
    elif isinstance(value, str) and "${" in value:
        yield path, value


def _deep_merge(base: dict[str, Any], patch: Mapping[str, Any], path: Path_, patched: set[Path_]) -> dict[str, Any]:
    result = dict(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value, (*path, key), patched)
        else:
            result[key] = copy.deepcopy(value)
            patched.add((*path, key))
    return result


def _set_path(data: dict[str, Any], keys: Sequence[str], value: Any, text: str) -> None:
    """Set a dotted field path (``faults.0.latency``) in the raw document for ``--set``."""
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        here = ".".join(keys[: i + 1])
        if isinstance(node, list):
            if not key.isdigit():
                raise SpecError(f"expected a list index at {here!r}, got {key!r}", field=f"--set {text}")
            if int(key) >= len(node):
                raise SpecError(
                    f"expected an index below {len(node)} at {here!r} ({len(node)} item(s)), got {key}",
                    field=f"--set {text}",
                )
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            parent = ".".join(keys[:i])
            raise SpecError(
                f"expected {parent!r} to be a mapping or list, got {describe_value(node)}", field=f"--set {text}"
            )


# ---------------------------------------------------------------------------------------------
# cross-checks


def _cross_check(spec: ExperimentSpec, topology: TopologySpec, file: str, doc: SourceDoc) -> None:
    for index, fault in enumerate(spec.faults):
        path: Path_ = ("faults", index, "target")
        where = {"file": file, "line": doc.line_of(path), "field": dotted(path)}
        target_kind = type(fault).target_kind
        if target_kind == "link":
            if fault.target not in topology.links:
                hint = did_you_mean(fault.target, list(topology.links))
                known = ", ".join(sorted(topology.links)) or "none"
                raise SpecError(
                    f"{fault.kind} needs a link; {fault.target!r} is not a link of topology "
                    f"{topology.name!r}{hint} (links: {known})",
                    **where,  # type: ignore[arg-type]
                )
        else:
            allowed = set(topology.services) | ({"host"} if target_kind == "host_or_service" else set())
            if fault.target not in allowed:
                hint = did_you_mean(fault.target, sorted(allowed))
                raise SpecError(
                    f"{fault.kind} needs a service; {fault.target!r} is not a service of topology "
                    f"{topology.name!r}{hint} (services: {', '.join(sorted(allowed))})",
                    **where,  # type: ignore[arg-type]
                )
        if isinstance(fault, DiskFillFault):
            paths = topology.services[fault.target].paths
            if fault.path not in paths:
                raise SpecError(
                    f"service {fault.target!r} declares no path named {fault.path!r} "
                    f"(paths: {', '.join(sorted(paths)) or 'none'})",
                    file=file,
                    line=doc.line_of(("faults", index, "path")),
                    field=f"faults.{index}.path",
                )
        end = fault.start + (fault.duration or 0.0)
        if end > spec.phases.fault + 1e-9:
            raise SpecError(
                f"expected the fault to end within the fault phase ({spec.phases.fault:g}s), "
                f"got start+duration = {end:g}s",
                file=file,
                line=doc.line_of(("faults", index)),
                field=f"faults.{index}",
            )
    signals = set(spec.signal_names()) | {f"probe:{s}" for s in topology.services}
    for field_name, names in (
        ("expected_impact", spec.expected_impact),
        ("steady_state.bands", tuple(spec.steady_state.bands)),
        ("steady_state.slos", tuple(s.signal for s in spec.steady_state.slos)),
    ):
        for index, name in enumerate(names):
            if not any(_signal_matches(name, s) for s in signals):
                path = (*field_name.split("."), index if field_name != "steady_state.bands" else name)
                if field_name == "steady_state.slos":
                    path = (*path, "signal")
                raise SpecError(
                    f"unknown signal {name!r}{did_you_mean(name, sorted(signals))} "
                    f"(signals: {', '.join(sorted(signals))})",
                    file=file,
                    line=doc.line_of(path),
                    field=dotted(path),
                )
    for index, rule in enumerate(spec.abort):
        rule_service = getattr(rule, "service", None)
        if rule_service is not None and rule_service not in topology.services:
            raise SpecError(
                f"unknown service {rule_service!r}{did_you_mean(rule_service, list(topology.services))} "
                f"(services: {', '.join(sorted(topology.services))})",
                file=file,
                line=doc.line_of(("abort", index, "service")),
                field=f"abort.{index}.service",
            )
        signal = getattr(rule, "signal", None)
        if signal is not None and not any(_signal_matches(signal, s) for s in signals):
            raise SpecError(
                f"unknown signal {signal!r}{did_you_mean(signal, sorted(signals))} "
                f"(signals: {', '.join(sorted(signals))})",
                file=file,
                line=doc.line_of(("abort", index, "signal")),
                field=f"abort.{index}.signal",
            )


def _signal_matches(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)
