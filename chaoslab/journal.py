"""The journal: one run as a typed, frozen value, saved as plain JSON and read back (docs/reports.md).

The journal is the hand-off between the parts: the engine returns one, every renderer, ``chaoslab
analyse``, game days and the pytest plugin read one. It holds the resolved experiment, the
:class:`~chaoslab.timeline.Timeline` and the typed :class:`~chaoslab.analysis.model.Analysis`;
the verdict and exit code are the analysis's own, so they cannot disagree with it::

    journal = read_journal(Path("journal.json"))   # migrated to the current schema, validated
    journal.verdict, journal.analysis.recovery_time_s, journal.timeline.window_s
    write_journal(journal, Path("copy.json"))      # the same JSON shape users' scripts read

Older journals are read through :data:`MIGRATIONS`, one step per schema version
(``migrate_vN_to_vN+1``); a journal that cannot be read is a one-line
:class:`~chaoslab.errors.SpecError` naming the file and the field (exit 2).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from chaoslab import __version__
from chaoslab.analysis.model import (
    Analysis,
    Band,
    BaselineStats,
    CascadeEntry,
    SignalImpact,
    SloResult,
    Verdict,
)
from chaoslab.errors import SpecError
from chaoslab.files import write_atomic
from chaoslab.migrations import migrate_v1_to_v2
from chaoslab.model.experiment import ExperimentSpec
from chaoslab.redact import redact_data, redact_text
from chaoslab.timeline import Event, FaultRecord, GeneratorWindow, PhaseSpan, ResourceSample, Signal, Timeline

SCHEMA_VERSION = 2
"""Bumped on any incompatible change of the journal's shape, with a migration from the one before."""

Migration = Callable[[dict[str, Any]], dict[str, Any]]
"""One step: a journal of schema N (plain JSON data) in, the same journal in schema N + 1 out."""

MIGRATIONS: dict[int, Migration] = {}
"""Schema N → the step to N + 1 (the steps live in :mod:`chaoslab.migrations`); see :func:`migration`."""


def migration(from_version: int) -> Callable[[Migration], Migration]:
    """Register ``migrate_vN_to_vN+1`` for journals of schema ``from_version``.

    When the shape changes, bump :data:`SCHEMA_VERSION` and add the step that rewrites the old
    shape (in :mod:`chaoslab.migrations`), with a journal of the old schema under
    ``tests/fixtures/journals/``::

        @migration(2)
        def migrate_v2_to_v3(journal: dict[str, Any]) -> dict[str, Any]:
            for fault in journal["faults"]:
                fault.setdefault("new_field", None)
            return journal
    """

    def register(step: Migration) -> Migration:
        if from_version in MIGRATIONS:
            raise ValueError(f"a migration from schema {from_version} is already registered")
        MIGRATIONS[from_version] = step
        return step

    return register


migration(1)(migrate_v1_to_v2)


def upgrade(
    data: Mapping[str, Any],
    *,
    file: str = "<journal>",
    migrations: Mapping[int, Migration] | None = None,
    target: int = SCHEMA_VERSION,
) -> dict[str, Any]:
    """``data`` rewritten to schema ``target`` by the registered steps (a copy; ``data`` is untouched)."""
    steps = MIGRATIONS if migrations is None else migrations
    version = data.get("schema_version")
    if type(version) is not int:
        raise SpecError(f"expected a whole number, got {version!r}", file=file, field="schema_version")
    if version > target:
        raise SpecError(
            f"schema {version} was written by a newer chaoslab; chaoslab {__version__} reads schema {target}"
            " and older: upgrade chaoslab to read this journal",
            file=file,
            field="schema_version",
        )
    oldest = target
    while oldest - 1 in steps:
        oldest -= 1
    out = copy.deepcopy(dict(data))
    while version < target:
        step = steps.get(version)
        if step is None:
            raise SpecError(
                f"schema {version} is too old: chaoslab {__version__} reads schema {oldest} to {target}",
                file=file,
                field="schema_version",
            )
        out = step(out)
        version += 1
        out["schema_version"] = version
    return out


@dataclass(frozen=True, slots=True)
class Host:
    """Where the run ran, for the report's header."""

    hostname: str | None = None
    cpus: int | None = None
    python: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"hostname": self.hostname, "cpus": self.cpus, "python": self.python}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Host:
        """Inverse of :meth:`to_dict`; missing keys are unknown."""
        cpus = data.get("cpus")
        return cls(
            hostname=None if data.get("hostname") is None else str(data["hostname"]),
            cpus=None if cpus is None else int(cpus),
            python=None if data.get("python") is None else str(data["python"]),
        )


@dataclass(frozen=True, slots=True)
class Journal:
    """One run: what was asked (experiment, topology), what was measured (timeline), what it means (analysis)."""

    run_id: str
    experiment: ExperimentSpec
    """The resolved experiment (parameters substituted, quick mode applied)."""
    timeline: Timeline
    analysis: Analysis
    topology: Mapping[str, Any] = field(default_factory=dict)
    """The resolved topology as JSON data: shown in the report, never re-validated (it may name
    fields a later chaoslab no longer knows)."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    quick: bool = False
    started_at: str = ""
    """Wall-clock start, ISO 8601 UTC (``2026-11-23T07:15:00.123Z``)."""
    ended_at: str = ""
    t0_wall: float | None = None
    """Unix time of the run clock's zero (the start of the warm-up): places run times on a wall clock."""
    host: Host = field(default_factory=Host)
    load_profile: tuple[tuple[float, float], ...] = ()
    """The planned request rate, ``(t_s, rate per second)`` once per window."""
    abort_reason: str | None = None
    revert_errors: tuple[str, ...] = ()
    error: str | None = None
    """Why the harness failed, when it did."""
    chaoslab_version: str = __version__
    migrations: tuple[str, ...] = ()
    """How a journal of an older schema was upgraded when read (e.g. what had to be estimated)."""

    def __post_init__(self) -> None:
        """A journal never holds a secret: whatever it is built from, its texts are redacted here."""
        # Every renderer, `analyse`, game days and the pytest plugin read a Journal, and the engine
        # builds one from the experiment it ran: masking here covers all of them at once.
        redacted: dict[str, Any] = {
            "experiment": redacted_experiment(self.experiment),
            "timeline": _redacted_timeline(self.timeline),
            "analysis": replace(
                self.analysis,
                warnings=tuple(redact_text(w) for w in self.analysis.warnings),
                reasons=tuple(redact_text(r) for r in self.analysis.reasons),
            ),
            "topology": redact_data(dict(self.topology)),
            "parameters": redact_data(dict(self.parameters)),
            "abort_reason": redact_text(self.abort_reason) if self.abort_reason else self.abort_reason,
            "revert_errors": tuple(redact_text(e) for e in self.revert_errors),
            "error": redact_text(self.error) if self.error else self.error,
        }
        for name, value in redacted.items():
            object.__setattr__(self, name, value)

    @property
    def schema_version(self) -> int:
        """The schema this value is in: always the current one (older journals are migrated on reading)."""
        return SCHEMA_VERSION

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self.experiment.name

    @property
    def verdict(self) -> Verdict:
        """The verdict: the analysis's."""
        return self.analysis.verdict

    @property
    def exit_code(self) -> int:
        """The run's exit code (0 pass, 1 fail, 3 aborted or error, 4 revert failed): the analysis's."""
        return self.analysis.exit_code

    def to_dict(self) -> dict[str, Any]:
        """The journal as plain JSON data, in the shape docs/reports.md ("The journal") describes."""
        return {
            "schema_version": SCHEMA_VERSION,
            "chaoslab_version": self.chaoslab_version,
            "run_id": self.run_id,
            "experiment": self.experiment.model_dump(mode="json", by_alias=True),
            "topology": dict(self.topology),
            "parameters": dict(self.parameters),
            "quick": self.quick,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "t0_wall": self.t0_wall,
            "host": self.host.to_dict(),
            **self.timeline.to_journal_parts(),
            "load_profile": [[t, rate] for t, rate in self.load_profile],
            "analysis": self.analysis.to_dict(),
            "verdict": self.verdict.value,
            "exit_code": self.exit_code,
            "abort_reason": self.abort_reason,
            "revert_errors": list(self.revert_errors),
            "error": self.error,
            **({"migrations": list(self.migrations)} if self.migrations else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, file: str = "<journal>") -> Journal:
        """Read a journal of this or an older schema; a bad one is a SpecError naming ``file`` and the field."""
        if not isinstance(data, Mapping):
            raise SpecError(f"expected a JSON object at the top level, got {type(data).__name__}", file=file)
        current = upgrade(data, file=file)
        experiment = _experiment(current, file)
        timeline = _timeline(current, file)
        analysis = _analysis(current, experiment, file)
        for key, recorded in (("verdict", analysis.verdict.value), ("exit_code", analysis.exit_code)):
            if key in current and current[key] != recorded:
                raise SpecError(
                    f"{current[key]!r} disagrees with the analysis ({recorded!r}): the journal was altered",
                    file=file,
                    field=key,
                )
        return cls(
            run_id=str(current.get("run_id") or ""),
            experiment=experiment,
            timeline=timeline,
            analysis=analysis,
            topology=_mapping(current, "topology", file),
            parameters=_mapping(current, "parameters", file),
            quick=bool(current.get("quick", False)),
            started_at=str(current.get("started_at") or ""),
            ended_at=str(current.get("ended_at") or ""),
            t0_wall=_part(file, "t0_wall", lambda: _opt_float(current.get("t0_wall"))),
            host=_part(file, "host", lambda: Host.from_dict(_mapping(current, "host", file))),
            load_profile=_part(
                file, "load_profile", lambda: tuple((float(t), float(r)) for t, r in current.get("load_profile") or ())
            ),
            abort_reason=_opt_str(current.get("abort_reason")),
            revert_errors=tuple(str(e) for e in current.get("revert_errors") or ()),
            error=_opt_str(current.get("error")),
            chaoslab_version=str(current.get("chaoslab_version") or "?"),
            migrations=tuple(str(m) for m in current.get("migrations") or ()),
        )


# --- redaction -------------------------------------------------------------------------------


def redacted_experiment(spec: ExperimentSpec) -> ExperimentSpec:
    """``spec`` with its secrets masked (the same object when it holds none).

    A value that no longer validates once masked (an experiment's name that contains a remembered
    secret) is part of the experiment's structure, already in file names and report titles: it is
    kept as it was rather than losing the journal.
    """
    original = spec.model_dump(mode="json", by_alias=True)
    masked = redact_data(original)
    if masked == original:
        return spec
    for _ in range(8):
        try:
            return ExperimentSpec.model_validate(masked)
        except ValidationError as exc:
            for error in exc.errors():
                _put_back(masked, original, error["loc"])
    return ExperimentSpec.model_validate(masked)  # each round puts back what failed: never reached in practice


def _put_back(masked: Any, original: Any, loc: tuple[int | str, ...]) -> None:
    """Restore the original value at a pydantic location (union tags in it are skipped)."""
    node, source = masked, original
    for part in loc[:-1]:
        if _has(node, source, part):
            node, source = node[part], source[part]
    last = loc[-1] if loc else None
    if _has(node, source, last):
        node[last] = source[last]


def _has(node: Any, source: Any, part: object) -> bool:
    """Whether both copies have ``part`` (a key, or an index of a list); a union tag is in neither."""
    if isinstance(node, dict) and isinstance(source, dict):
        return part in node and part in source
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _redacted_timeline(timeline: Timeline) -> Timeline:
    """The timeline's texts (events, fault records) with their secrets masked; the numbers as they are."""
    return replace(
        timeline,
        events=tuple(
            replace(e, message=redact_text(e.message), data=redact_data(dict(e.data))) for e in timeline.events
        ),
        faults=tuple(
            replace(
                f,
                description=redact_text(f.description),
                detail=redact_data(dict(f.detail)),
                error=redact_text(f.error) if f.error else f.error,
            )
            for f in timeline.faults
        ),
    )


# --- reading the parts, naming the field that is wrong ---------------------------------------

_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)
_T = TypeVar("_T")


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}" if exc.args else "a key is missing"
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _part(file: str, name: str, read: Callable[[], _T]) -> _T:
    try:
        return read()
    except SpecError:
        raise
    except _ERRORS as exc:
        raise SpecError(f"cannot read it: {_why(exc)}", file=file, field=name) from None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _mapping(data: Mapping[str, Any], key: str, file: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"expected an object, got {type(value).__name__}", file=file, field=key)
    return dict(value)


def _experiment(data: Mapping[str, Any], file: str) -> ExperimentSpec:
    if not isinstance(data.get("experiment"), Mapping):
        raise SpecError("expected the resolved experiment (an object)", file=file, field="experiment")
    try:
        return ExperimentSpec.model_validate(data["experiment"])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("experiment", *first["loc"]))
        raise SpecError(f"cannot read it back: {first['msg']}", file=file, field=where) from None


def _first_bad_item(
    data: Mapping[str, Any], prefix: str, readers: Mapping[str, Callable[[Mapping[str, Any]], object]]
) -> tuple[str, BaseException] | None:
    """The first item of a list or object part that its reader rejects, with its dotted name."""
    for key, read in readers.items():
        value = data.get(key)
        items: Iterable[tuple[str, Any]]
        if isinstance(value, Mapping):
            items = ((f"{prefix}{key}.{k}", v) for k, v in value.items())
        elif isinstance(value, list | tuple):
            items = ((f"{prefix}{key}[{i}]", v) for i, v in enumerate(value))
        elif value is None:
            continue
        else:
            return f"{prefix}{key}", TypeError(f"expected a list or an object, got {type(value).__name__}")
        for name, item in items:
            try:
                read(item)
            except _ERRORS as exc:
                return name, exc
    return None


def _resources(samples: Any) -> object:
    return [ResourceSample.from_dict(s) for s in samples]


_TIMELINE_PARTS: Mapping[str, Callable[[Mapping[str, Any]], object]] = {
    "phases": PhaseSpan.from_dict,
    "faults": FaultRecord.from_dict,
    "timeline": Signal.from_dict,
    "probes": Signal.from_dict,
    "resources": _resources,
    "events": Event.from_dict,
    "generator": GeneratorWindow.from_dict,
}

_ANALYSIS_PARTS: Mapping[str, Callable[[Mapping[str, Any]], object]] = {
    "baseline": BaselineStats.from_dict,
    "bands": Band.from_dict,
    "impact": SignalImpact.from_dict,
    "cascade": CascadeEntry.from_dict,
    "slos": SloResult.from_dict,
}


def _timeline(data: Mapping[str, Any], file: str) -> Timeline:
    window_s = _part(file, "window_s", lambda: float(data["window_s"]))
    if not window_s > 0:
        raise SpecError(f"expected a positive window, got {window_s!r}", file=file, field="window_s")
    try:
        return Timeline.from_journal_parts(data)
    except _ERRORS as exc:
        bad = _first_bad_item(data, "", _TIMELINE_PARTS)
        name, cause = bad if bad is not None else ("timeline", exc)
        raise SpecError(f"cannot read it: {_why(cause)}", file=file, field=name) from None


def _analysis(data: Mapping[str, Any], experiment: ExperimentSpec, file: str) -> Analysis:
    raw = data.get("analysis")
    if not isinstance(raw, Mapping):
        raise SpecError("expected the analysis (an object)", file=file, field="analysis")
    # a run whose analysis failed kept only its verdict, reasons and exit code: the figures it
    # lacks are "not recovered" and the experiment's own budget, never a made-up health
    filled = {
        "recovered": False,
        "recovery_budget_s": experiment.recovery.budget,
        "stable_for_s": experiment.recovery.stable_for,
        "verdict": data.get("verdict"),
        "exit_code": data.get("exit_code"),
        **raw,
    }
    if filled["verdict"] not in {v.value for v in Verdict}:
        raise SpecError(
            f"expected one of {', '.join(v.value for v in Verdict)}, got {filled['verdict']!r}",
            file=file,
            field="analysis.verdict",
        )
    try:
        return Analysis.from_dict(filled)
    except _ERRORS as exc:
        bad = _first_bad_item(filled, "analysis.", _ANALYSIS_PARTS)
        name, cause = bad if bad is not None else ("analysis", exc)
        raise SpecError(f"cannot read it: {_why(cause)}", file=file, field=name) from None


# --- files --------------------------------------------------------------------------------


def write_journal(journal: Journal, path: Path) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a journal; readable by the owner only."""
    return write_atomic(path, json.dumps(journal.to_dict(), indent=1, sort_keys=False) + "\n", mode=0o600)


def read_journal(path: Path) -> Journal:
    """Read a journal file of this or an older schema; bad input is a one-line SpecError naming the file."""
    file = str(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("journal not found", file=file) from None
    except IsADirectoryError:
        raise SpecError("expected a journal JSON file, got a directory", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read journal: {exc}", file=file) from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SpecError(f"expected a JSON journal, got invalid JSON ({exc})", file=file) from None
    if not isinstance(data, dict):
        raise SpecError(f"expected a JSON object at the top level, got {type(data).__name__}", file=file)
    if "schema_version" not in data:
        raise SpecError("not a chaoslab journal (no schema_version)", file=file)
    return Journal.from_dict(data, file=file)
