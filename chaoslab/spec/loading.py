"""Loading experiments and topologies: read, substitute parameters, validate, cross-check targets.

Every failure is a :class:`~chaoslab.errors.SpecError` with one line naming the file, the line,
the field path, what was expected and what was found. Nothing here touches the system.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from chaoslab.errors import SpecError
from chaoslab.spec.experiment import ExperimentSpec
from chaoslab.spec.faults import FAULT_KINDS, FAULT_MODELS, DiskFillFault
from chaoslab.spec.topology import ParamValue, TopologySpec
from chaoslab.spec.yamlsource import Path_, SourceDoc, parse_yaml

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BUILTIN_TOPOLOGIES = PACKAGE_DIR / "topologies"
RUNTIME_REFS = frozenset({"python", "run_dir", "state_dir", "project_dir"})
"""``${...}`` names resolved when the run starts, not at load time."""

_REF = re.compile(r"\$\{([^}]*)\}")
_MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Experiment:
    """A validated experiment with its resolved topology, ready to plan."""

    spec: ExperimentSpec
    topology: TopologySpec
    path: Path | None
    parameters: Mapping[str, ParamValue]
    quick: bool = False


def experiment_search_dirs() -> list[Path]:
    """Where experiment names are looked up, in order."""
    dirs = [Path.cwd() / "experiments"]
    extra = os.environ.get("CHAOSLAB_EXPERIMENTS")
    if extra:
        dirs[:0] = [Path(p) for p in extra.split(os.pathsep) if p]
    dirs.append(PACKAGE_DIR.parent / "experiments")
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def find_experiment(name_or_path: str) -> Path:
    """The file for an experiment name (looked up in ``experiments/``) or path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if candidate.is_file():
            return candidate
        raise SpecError(f"file not found: {name_or_path}", file=name_or_path)
    for directory in experiment_search_dirs():
        for suffix in (".yaml", ".yml"):
            path = directory / f"{name_or_path}{suffix}"
            if path.is_file():
                return path
    known = sorted({p.stem for d in experiment_search_dirs() if d.is_dir() for p in d.glob("*.y*ml")})
    hint = _did_you_mean(name_or_path, known)
    raise SpecError(f"no experiment named {name_or_path!r}{hint}", file=name_or_path)


def read_document(path: Path) -> SourceDoc:
    """Read and parse a YAML file into a mapping document, or raise a one-line SpecError."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("file not found", file=shown) from None
    except IsADirectoryError:
        raise SpecError("expected a YAML file, got a directory", file=shown) from None
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", file=shown) from None
    if len(raw) > _MAX_FILE_BYTES:
        raise SpecError(f"file is too large ({len(raw)} bytes; at most {_MAX_FILE_BYTES})", file=shown)
    if b"\x00" in raw:
        raise SpecError("expected a YAML text file, got binary data", file=shown)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"expected UTF-8 text, got a non-UTF-8 byte at offset {exc.start}", file=shown) from None
    try:
        doc = parse_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"YAML syntax error: {problem}", file=shown, line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"YAML syntax error: {' '.join(str(exc).split())}", file=shown) from None
    if doc.data is None:
        raise SpecError("expected a mapping of experiment fields, got an empty file", file=shown)
    if not isinstance(doc.data, dict):
        raise SpecError(
            f"expected a mapping at the top level, got {_kind_of(doc.data)}", file=shown, line=doc.line_of(())
        )
    return doc


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``key=value`` strings from ``--set`` into a mapping; values are read as YAML scalars."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--set: expected key=value, got {pair!r}")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        if isinstance(parsed, dict | list):
            parsed = value
        result[key] = parsed
    return result


def load_experiment(
    name_or_path: str | Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    quick: bool = False,
) -> Experiment:
    """Load, substitute, validate and cross-check an experiment and its topology."""
    path = name_or_path if isinstance(name_or_path, Path) else find_experiment(name_or_path)
    doc = read_document(path)
    return experiment_from_document(doc, path=path, overrides=overrides or {}, quick=quick)


def experiment_from_document(
    doc: SourceDoc,
    *,
    path: Path | None,
    overrides: Mapping[str, Any],
    quick: bool = False,
) -> Experiment:
    """Build an Experiment from an already parsed document (see :func:`load_experiment`)."""
    shown = str(path) if path is not None else "<experiment>"
    data = copy.deepcopy(doc.data)
    if quick and isinstance(data.get("quick"), dict):
        data = _deep_merge(data, data["quick"])
    # topology first: its parameters are defaults the experiment and --set may override
    topo_ref = data.get("topology", "demo")
    if not isinstance(topo_ref, str):
        raise SpecError(
            f"expected a topology name or path, got {_kind_of(topo_ref)}",
            file=shown,
            line=doc.line_of(("topology",)),
            field="topology",
        )
    topo_path = find_topology(topo_ref, relative_to=path.parent if path else Path.cwd(), shown=shown, doc=doc)
    topo_doc = read_document(topo_path)
    topo_params = topo_doc.data.get("parameters") or {}
    exp_params = data.get("parameters") or {}
    if not isinstance(topo_params, dict):
        raise SpecError("expected a mapping", file=str(topo_path), field="parameters")
    if not isinstance(exp_params, dict):
        raise SpecError("expected a mapping", file=shown, line=doc.line_of(("parameters",)), field="parameters")
    params: dict[str, Any] = {**topo_params, **exp_params}
    for key, value in overrides.items():
        if "." in key:
            _set_path(data, key.split("."), value, shown)
        elif key in params:
            params[key] = value
        else:
            hint = _did_you_mean(key, list(params))
            known = ", ".join(sorted(params)) or "none"
            raise SpecError(f"--set: unknown parameter {key!r}{hint} (parameters: {known})")
    data["parameters"] = {k: v for k, v in params.items() if k in exp_params or k in overrides}
    data = _substitute(data, params, shown, doc, ())
    topo_data = _substitute(topo_doc.data, params, str(topo_path), topo_doc, ())
    topo_data["parameters"] = {k: params[k] for k in topo_params}
    topology = validate_model(TopologySpec, topo_data, file=str(topo_path), doc=topo_doc)
    spec = validate_model(ExperimentSpec, data, file=shown, doc=doc)
    _cross_check(spec, topology, shown, doc)
    return Experiment(spec=spec, topology=topology, path=path, parameters=params, quick=quick)


def find_topology(ref: str, *, relative_to: Path, shown: str, doc: SourceDoc | None = None) -> Path:
    """The file of a topology reference: a path (relative to the experiment) or a built-in name."""
    line = doc.line_of(("topology",)) if doc else None
    if ref.endswith((".yaml", ".yml")) or "/" in ref:
        candidate = Path(ref) if Path(ref).is_absolute() else relative_to / ref
        if candidate.is_file():
            return candidate
        raise SpecError(f"topology file not found: {ref!r}", file=shown, line=line, field="topology")
    for directory in (BUILTIN_TOPOLOGIES, Path.cwd() / "topologies"):
        candidate = directory / f"{ref}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in BUILTIN_TOPOLOGIES.glob("*.yaml"))
    raise SpecError(
        f"unknown topology {ref!r}{_did_you_mean(ref, known)} (built-in: {', '.join(known)})",
        file=shown,
        line=line,
        field="topology",
    )


def load_topology(ref: str, *, overrides: Mapping[str, Any] | None = None) -> TopologySpec:
    """Load a topology on its own (for ``chaoslab demo``), with parameter overrides."""
    path = find_topology(ref, relative_to=Path.cwd(), shown=ref)
    doc = read_document(path)
    params: dict[str, Any] = dict(doc.data.get("parameters") or {})
    for key, value in (overrides or {}).items():
        if key not in params:
            raise SpecError(f"--set: unknown parameter {key!r}{_did_you_mean(key, list(params))}")
        params[key] = value
    data = _substitute(doc.data, params, str(path), doc, ())
    data["parameters"] = params
    return validate_model(TopologySpec, data, file=str(path), doc=doc)


M = typing.TypeVar("M", bound=BaseModel)


def validate_model(model: type[M], data: Any, *, file: str, doc: SourceDoc) -> M:
    """Validate ``data`` as ``model``; the first error becomes a one-line SpecError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _to_spec_error(exc, model, data, file, doc) from None


# ---------------------------------------------------------------------------------------------
# substitution and overrides


def _substitute(value: Any, params: Mapping[str, Any], file: str, doc: SourceDoc, path: Path_) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, params, file, doc, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params, file, doc, (*path, i)) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _REF.fullmatch(value.strip())
    if whole and _is_param_ref(whole.group(1)):
        return _param(whole.group(1), params, file, doc, path)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _is_param_ref(name):
            return match.group(0)
        return str(_param(name, params, file, doc, path))

    return _REF.sub(replace, value)


def _is_param_ref(name: str) -> bool:
    return ":" not in name and name not in RUNTIME_REFS


def _param(name: str, params: Mapping[str, Any], file: str, doc: SourceDoc, path: Path_) -> Any:
    if name in params:
        return params[name]
    hint = _did_you_mean(name, list(params))
    raise SpecError(
        f"unknown parameter ${{{name}}}{hint}; declare it under 'parameters'",
        file=file,
        line=doc.line_of(path),
        field=_dotted(path),
    )


def resolve_runtime_refs(text: str, refs: Mapping[str, str]) -> str:
    """Replace ``${service:NAME}``, ``${link:NAME}``, ``${python}`` ... with their run-time values."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in refs:
            return refs[name]
        raise SpecError(f"unknown reference ${{{name}}} in {text!r}")

    return _REF.sub(replace, text)


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


def _deep_merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _set_path(data: dict[str, Any], keys: Sequence[str], value: Any, file: str) -> None:
    node: Any = data
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        elif isinstance(node, dict):
            node = node.setdefault(key, {})
        else:
            raise SpecError(f"--set: cannot set {'.'.join(keys)!r}: {'.'.join(keys[: i + 1])} is not a mapping")
    last = keys[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SpecError(f"--set: cannot set {'.'.join(keys)!r}")


# ---------------------------------------------------------------------------------------------
# cross-checks


def _cross_check(spec: ExperimentSpec, topology: TopologySpec, file: str, doc: SourceDoc) -> None:
    for index, fault in enumerate(spec.faults):
        path: Path_ = ("faults", index, "target")
        where = {"file": file, "line": doc.line_of(path), "field": _dotted(path)}
        target_kind = type(fault).target_kind
        if target_kind == "link":
            if fault.target not in topology.links:
                hint = _did_you_mean(fault.target, list(topology.links))
                known = ", ".join(sorted(topology.links)) or "none"
                raise SpecError(
                    f"{fault.kind} needs a link; {fault.target!r} is not a link of topology "
                    f"{topology.name!r}{hint} (links: {known})",
                    **where,  # type: ignore[arg-type]
                )
        else:
            allowed = set(topology.services) | ({"host"} if target_kind == "host_or_service" else set())
            if fault.target not in allowed:
                hint = _did_you_mean(fault.target, sorted(allowed))
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
                raise SpecError(
                    f"unknown signal {name!r}{_did_you_mean(name, sorted(signals))} "
                    f"(signals: {', '.join(sorted(signals))})",
                    file=file,
                    line=doc.line_of(path),
                    field=_dotted(path),
                )
    for index, rule in enumerate(spec.abort):
        rule_service = getattr(rule, "service", None)
        if rule_service is not None and rule_service not in topology.services:
            raise SpecError(
                f"unknown service {rule_service!r}{_did_you_mean(rule_service, list(topology.services))}",
                file=file,
                line=doc.line_of(("abort", index, "service")),
                field=f"abort.{index}.service",
            )
        signal = getattr(rule, "signal", None)
        if signal is not None and not any(_signal_matches(signal, s) for s in signals):
            raise SpecError(
                f"unknown signal {signal!r}{_did_you_mean(signal, sorted(signals))}",
                file=file,
                line=doc.line_of(("abort", index, "signal")),
                field=f"abort.{index}.signal",
            )


def _signal_matches(pattern: str, name: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


# ---------------------------------------------------------------------------------------------
# error messages


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) < 60 else "a string"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    return type(value).__name__


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)


_EXPECT = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "string_type": "a string",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "missing": None,
}


def _to_spec_error(exc: ValidationError, model: type[BaseModel], data: Any, file: str, doc: SourceDoc) -> SpecError:
    err = exc.errors(include_url=False)[0]
    raw_path, _parent = _raw_path(err["loc"], data)
    line = doc.line_of(raw_path)
    kind = err["type"]
    found = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return SpecError(f"missing required field {raw_path[-1]!r}", file=file, line=line, field=_dotted(raw_path))
    if kind == "extra_forbidden":
        key = str(raw_path[-1])
        allowed = _allowed_keys(model, raw_path[:-1], data)
        hint = _did_you_mean(key, allowed)
        return SpecError(
            f"unknown key {key!r}{hint}"
            + (f" (expected one of: {', '.join(allowed)})" if not hint and allowed else ""),
            file=file,
            line=line,
            field=_dotted(raw_path),
        )
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = ctx.get("discriminator", "'kind'").strip("'")
        choices = FAULT_KINDS if tag == "kind" and raw_path[:1] == ("faults",) else _tags(ctx)
        field_path = (*raw_path, tag)
        if kind == "union_tag_not_found":
            return SpecError(
                f"missing {tag!r} (one of: {', '.join(choices)})",
                file=file,
                line=doc.line_of(field_path),
                field=_dotted(raw_path),
            )
        value = ctx.get("tag")
        what = "fault kind" if tag == "kind" and raw_path[:1] == ("faults",) else tag
        return SpecError(
            f"unknown {what} {value!r}{_did_you_mean(str(value), choices)} (known: {', '.join(choices)})",
            file=file,
            line=doc.line_of(field_path),
            field=_dotted(field_path),
        )
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        return SpecError(f"expected one of {expected}, got {found!r}", file=file, line=line, field=_dotted(raw_path))
    if kind in _EXPECT:
        return SpecError(
            f"expected {_EXPECT[kind]}, got {_kind_of(found)}", file=file, line=line, field=_dotted(raw_path)
        )
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}[kind]
        bound = next(iter(ctx.values()), "?")
        return SpecError(f"expected a value {op} {bound}, got {found!r}", file=file, line=line, field=_dotted(raw_path))
    if kind in ("too_short", "too_long"):
        return SpecError(
            f"{err['msg'].replace('List', 'list').replace('Tuple', 'list')}, got {_kind_of(found)}",
            file=file,
            line=line,
            field=_dotted(raw_path),
        )
    message = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if "got" not in message and kind not in ("value_error",):
        message = f"{message}, got {_kind_of(found)}"
    field = _dotted(raw_path)
    return SpecError(message, file=file, line=line, field=field or None)


def _tags(ctx: Mapping[str, Any]) -> tuple[str, ...]:
    expected = str(ctx.get("expected_tags", ""))
    return tuple(t.strip().strip("'") for t in expected.split(",") if t.strip())


def _raw_path(loc: tuple[int | str, ...], data: Any) -> tuple[Path_, Any]:
    """Map a pydantic location onto the raw document, dropping union tags pydantic inserts."""
    path: list[str | int] = []
    node: Any = data
    parent: Any = None
    for part in loc:
        if isinstance(node, dict) and part in node:
            parent, node = node, node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parent, node = node, node[part]
            path.append(part)
        elif isinstance(node, dict) and part in {node.get("kind"), node.get("when"), node.get("type")}:
            continue  # pydantic's discriminator tag, not a key of the document
        elif isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        else:
            path.append(part)
            parent, node = node, None
    return tuple(path), parent


def _allowed_keys(model: type[BaseModel], path: Path_, data: Any) -> list[str]:
    current: Any = model
    node = data
    for part in path:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
        current = _child_type(current, part, node)
        if current is None:
            return []
    current = _pick_member(current, node)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(f.alias or name for name, f in current.model_fields.items())
    return []


def _child_type(tp: Any, part: str | int, node: Any) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (tuple, list) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return tp


def _pick_member(tp: Any, node: Any) -> Any:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [_unwrap(a) for a in typing.get_args(tp) if a is not type(None)]
        if isinstance(node, dict):
            for tag in ("kind", "when"):
                if tag in node and node[tag] in FAULT_MODELS and tag == "kind":
                    return FAULT_MODELS[node[tag]]
                for member in members:
                    if isinstance(member, type) and issubclass(member, BaseModel) and tag in member.model_fields:
                        if node.get(tag) in typing.get_args(member.model_fields[tag].annotation):
                            return member
        return next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)), None)
    return tp
