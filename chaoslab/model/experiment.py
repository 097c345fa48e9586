"""The experiment: load, phases, faults, steady-state bands, expected impact, recovery and abort rules.

Experiments are YAML files in ``experiments/``. A minimal one::

    name: vector-latency
    description: Latency on api->vector slows search only.
    topology: demo
    load:
      rate: 50/s
      mix:
        - {name: search, method: POST, url: "${service:api}/search", json: {q: "x"}}
    phases: {warmup: 2s, baseline: 10s, fault: 10s}
    faults:
      - {kind: latency, target: api->vector, latency: 500ms}
    expected_impact: [api:search]
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from chaoslab.model.faults import BUILTIN_FAULT_MODELS, FaultBase, FaultSpec, kind_of
from chaoslab.model.topology import ParamValue
from chaoslab.model.types import FROZEN, Duration, JsonValue, OptionalDuration, Percent, Rate
from chaoslab.units import format_duration

ErrorClassName = Literal["timeout", "refused", "reset", "transport", "http_5xx", "http_429", "http_4xx"]


class RequestSpec(BaseModel):
    """One named request class of the load mix; its results form the signal ``signal``."""

    model_config = FROZEN

    name: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: JsonValue = Field(default=None, alias="json")
    body: str | None = None
    timeout: Duration = 5.0
    signal: str | None = None
    expect_status: tuple[int, ...] = ()

    @property
    def signal_name(self) -> str:
        """The signal this request class records into."""
        return self.signal or self.name


class LoginSpec(BaseModel):
    """A login request made once before the load; its token is reused on every request."""

    model_config = FROZEN

    method: Literal["GET", "POST"] = "POST"
    url: str
    json_body: JsonValue = Field(default=None, alias="json")
    token_field: str = "token"
    header: str = "Authorization"
    template: str = "Bearer {token}"
    timeout: Duration = 5.0


class ConstantProfile(BaseModel):
    """The base rate, all the time."""

    model_config = FROZEN
    kind: Literal["constant"] = "constant"


class RampProfile(BaseModel):
    """From ``start`` × rate to ``end`` × rate linearly over ``over`` (then ``end``)."""

    model_config = FROZEN
    kind: Literal["ramp"]
    start: float = Field(default=0.1, ge=0)
    end: float = Field(default=1.0, ge=0)
    over: Duration


class StepSpec(BaseModel):
    """From ``at`` (run time) on, ``multiplier`` × rate."""

    model_config = FROZEN
    at: OptionalDuration
    multiplier: float = Field(ge=0)


class StepProfile(BaseModel):
    """Piecewise-constant multiples of the rate."""

    model_config = FROZEN
    kind: Literal["step"]
    steps: tuple[StepSpec, ...] = Field(min_length=1)


class SpikeProfile(BaseModel):
    """``multiplier`` × rate for ``duration`` from ``at`` (run time), else the base rate."""

    model_config = FROZEN
    kind: Literal["spike"]
    multiplier: float = Field(default=5.0, gt=0)
    at: OptionalDuration
    duration: Duration


class SoakProfile(BaseModel):
    """The base rate for a long time; resource growth is watched."""

    model_config = FROZEN
    kind: Literal["soak"]


ProfileSpec = Annotated[
    ConstantProfile | RampProfile | StepProfile | SpikeProfile | SoakProfile, Field(discriminator="kind")
]


class LocustSpec(BaseModel):
    """Settings for ``engine: locust``."""

    model_config = FROZEN

    locustfile: str | None = None
    workers: int = Field(default=2, ge=0, le=64)
    expect_workers: int | None = Field(default=None, ge=1)
    users: int = Field(default=20, gt=0)
    spawn_rate: float = Field(default=10.0, gt=0)
    master_bind_port: int = Field(default=5557, ge=1, le=65535)


class LoadSpec(BaseModel):
    """The steady load: an open-loop arrival rate, shaped by a profile, over a weighted mix."""

    model_config = FROZEN

    engine: Literal["builtin", "locust"] = "builtin"
    rate: Rate
    profile: ProfileSpec = ConstantProfile()
    connections: int = Field(default=64, gt=0, le=10_000)
    max_in_flight: int = Field(default=2000, gt=0, le=100_000)
    mix: tuple[RequestSpec, ...]
    login: LoginSpec | None = None
    seed: int | None = None
    locust: LocustSpec | None = None
    allow_shortfall: Percent | None = None
    """Judge the run even though the harness fell short, up to this share per judged phase: of the
    offered requests left unsent, of the generator's windows in which it fell behind, of the due
    probes that started late. Unset: beyond 1 %, half, or 5 % the run is inconclusive."""

    @field_validator("mix")
    @classmethod
    def _non_empty(cls, value: tuple[RequestSpec, ...]) -> tuple[RequestSpec, ...]:
        if not value:
            raise ValueError("expected at least one request class in the load mix, got an empty list")
        names = [r.name for r in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"request class names must be unique, got {', '.join(dupes)} twice")
        return value


class PhasesSpec(BaseModel):
    """Lengths of the timed phases; the recovery watch lasts up to the recovery budget."""

    model_config = FROZEN

    warmup: OptionalDuration = 5.0
    baseline: Duration = 20.0
    fault: Duration = 20.0


class BandSpec(BaseModel):
    """What counts as healthy for a signal, relative to its baseline (docs/analysis.md, "Tolerance band")."""

    model_config = FROZEN

    p95_factor: float = Field(default=2.0, ge=1.0)
    p95_margin: OptionalDuration = 0.05
    p95_max: Duration | None = None
    error_rate_margin: Percent = 0.01
    error_rate_max: Percent | None = None


class SloSpec(BaseModel):
    """An absolute objective on a signal, judged over the fault and recovery phases."""

    model_config = FROZEN

    signal: str
    p95: Duration | None = None
    p99: Duration | None = None
    success: Percent | None = None

    def objectives(self) -> list[str]:
        """The objective texts, in the order p95, p99, success: ``p95 < 500ms``, ``success ≥ 99.5%``."""
        out = []
        if self.p95 is not None:
            out.append(f"p95 < {format_duration(self.p95)}")
        if self.p99 is not None:
            out.append(f"p99 < {format_duration(self.p99)}")
        if self.success is not None:
            out.append(f"success ≥ {self.success * 100:.4g}%")
        return out

    @model_validator(mode="after")
    def _something(self) -> SloSpec:
        if self.p95 is None and self.p99 is None and self.success is None:
            raise ValueError("an SLO needs at least one of p95, p99, success")
        return self


class SteadyStateSpec(BaseModel):
    """How windows are judged healthy: window size, minimum samples, bands and SLOs."""

    model_config = FROZEN

    window: Duration = 1.0
    min_samples: int = Field(default=5, ge=1)
    band: BandSpec = BandSpec()
    bands: dict[str, BandSpec] = Field(default_factory=dict)
    slos: tuple[SloSpec, ...] = ()
    max_rss_growth: Percent | None = None
    """Leak check: each service's resident memory at the end of the run may exceed its level at
    the end of the baseline by at most this much (judged like an SLO on ``resources:<service>``)."""
    sustained: Duration = 2.0

    @field_validator("window")
    @classmethod
    def _window_floor(cls, value: float) -> float:
        if value < 0.1:
            raise ValueError(f"expected a window of at least 100ms, got {value * 1000:g}ms")
        return value


class RecoverySpec(BaseModel):
    """How long recovery may take, and how long health must hold to count as recovered."""

    model_config = FROZEN

    budget: Duration = 30.0
    stable_for: Duration = 5.0


class ErrorRateAbort(BaseModel):
    """Abort when a signal's error rate stays above ``above`` for ``for``."""

    model_config = FROZEN
    when: Literal["error_rate"]
    signal: str | None = None
    above: Percent
    for_: Duration = Field(alias="for", default=10.0)


class UnhealthyAbort(BaseModel):
    """Abort when a service's probe fails for ``for``."""

    model_config = FROZEN
    when: Literal["unhealthy"]
    service: str
    for_: Duration = Field(alias="for", default=30.0)


class HostDiskAbort(BaseModel):
    """Abort when the filesystem holding ``path`` is fuller than ``above``."""

    model_config = FROZEN
    when: Literal["host_disk"]
    path: str = "/"
    above: Percent = 0.95
    for_: OptionalDuration = Field(alias="for", default=0.0)


AbortSpec = Annotated[ErrorRateAbort | UnhealthyAbort | HostDiskAbort, Field(discriminator="when")]


class ExperimentSpec(BaseModel):
    """A whole experiment, as written in its YAML file (after parameters are substituted)."""

    model_config = FROZEN

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    topology: str = "demo"
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    load: LoadSpec
    phases: PhasesSpec = PhasesSpec()
    faults: tuple[FaultSpec, ...] = Field(min_length=1)
    steady_state: SteadyStateSpec = SteadyStateSpec()
    expected_impact: tuple[str, ...] = ()
    recovery: RecoverySpec = RecoverySpec()
    abort: tuple[AbortSpec, ...] = ()
    quick: dict[str, Any] | None = None
    runbook: str | None = None
    tags: tuple[str, ...] = ()

    def signal_names(self) -> tuple[str, ...]:
        """The load signals this experiment records, in mix order."""
        seen: dict[str, None] = {}
        for request in self.load.mix:
            seen.setdefault(request.signal_name, None)
        return tuple(seen)


def experiment_model(fault_models: Sequence[type[FaultBase]] | None = None) -> type[ExperimentSpec]:
    """The experiment model whose ``faults`` accept exactly ``fault_models`` (each chosen by its ``kind``).

    The fault registry (:mod:`chaoslab.faults.registry`) hands its models here, so that a fault
    family it knows — built in or a plugin's — is validated with the same one-line messages. The
    built-in models give :class:`ExperimentSpec` itself.
    """
    models = tuple(fault_models) if fault_models is not None else BUILTIN_FAULT_MODELS
    if set(models) == set(BUILTIN_FAULT_MODELS):
        return ExperimentSpec
    return _experiment_model(tuple(sorted(set(models), key=kind_of)))


@functools.cache
def _experiment_model(models: tuple[type[FaultBase], ...]) -> type[ExperimentSpec]:
    if not models:
        raise ValueError("an experiment model needs at least one fault model")
    union: Any = models[0] if len(models) == 1 else functools.reduce(operator.or_, models)
    fault_spec = Annotated[union, Field(discriminator="kind")]
    model: type[ExperimentSpec] = create_model(
        "ExperimentSpec",
        __base__=ExperimentSpec,
        __module__=__name__,
        __doc__=ExperimentSpec.__doc__,
        faults=(tuple[fault_spec, ...], Field(min_length=1)),
    )
    return model
