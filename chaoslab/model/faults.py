"""Fault specifications: one frozen model per fault kind, validated before anything runs.

An experiment lists faults flat, the kind choosing the parameters::

    faults:
      - kind: latency
        target: api->vector
        latency: 800ms
        jitter: 50ms

Each model knows what its target must be (a link, a service, the host); the loader checks the
name against the topology. The implementations live in :mod:`chaoslab.faults`.
"""

from __future__ import annotations

import signal as _signal
import typing
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from chaoslab.model.types import FROZEN, Duration, OptionalDuration, Percent, Size

TargetKind = Literal["link", "service", "host_or_service"]
Stream = Literal["upstream", "downstream", "both"]


class FaultBase(BaseModel):
    """Fields every fault has: what it acts on and when, within the fault phase."""

    model_config = FROZEN
    target_kind: ClassVar[TargetKind] = "service"

    if TYPE_CHECKING:
        kind: str  # every concrete fault narrows this to a Literal (the discriminator)

    target: str
    name: str | None = None
    start: OptionalDuration = 0.0
    duration: Duration | None = None

    def describe(self) -> str:
        """One line saying what this fault does, for plans and reports."""
        params = self.model_dump(exclude={"kind", "target", "name", "start", "duration"}, mode="json")
        shown = ", ".join(f"{k}={v}" for k, v in params.items() if v not in (None, {}, []))
        return f"{self.kind} on {self.target}" + (f" ({shown})" if shown else "")

    def undo(self) -> str:
        """One line saying how the fault is reverted."""
        return "revert"


class ToxicBase(FaultBase):
    """A Toxiproxy toxic on a link."""

    target_kind: ClassVar[TargetKind] = "link"
    toxic_type: ClassVar[str] = "noop"

    stream: Stream = "downstream"
    toxicity: Percent = 1.0

    def toxic_attributes(self) -> dict[str, int]:
        """The Toxiproxy ``attributes`` of this toxic, in Toxiproxy's units."""
        return {}

    def undo(self) -> str:
        """Delete the toxic this run added (by its unique name)."""
        return f"delete toxic(s) added to proxy {self.target}"


class LatencyFault(ToxicBase):
    """Delay data on a link by ``latency`` ± ``jitter``."""

    kind: Literal["latency"]
    toxic_type: ClassVar[str] = "latency"
    latency: OptionalDuration
    jitter: OptionalDuration = 0.0

    def toxic_attributes(self) -> dict[str, int]:
        """Toxiproxy wants milliseconds."""
        return {"latency": round(self.latency * 1000), "jitter": round(self.jitter * 1000)}


class BandwidthFault(ToxicBase):
    """Limit a link to ``rate`` bytes per second (0 stalls it)."""

    kind: Literal["bandwidth"]
    toxic_type: ClassVar[str] = "bandwidth"
    rate: Size

    def toxic_attributes(self) -> dict[str, int]:
        """Toxiproxy's rate unit is 1000 bytes per second."""
        return {"rate": self.rate // 1000}


class SlowCloseFault(ToxicBase):
    """Delay the closing of connections by ``delay``."""

    kind: Literal["slow_close"]
    toxic_type: ClassVar[str] = "slow_close"
    delay: OptionalDuration

    def toxic_attributes(self) -> dict[str, int]:
        """Toxiproxy wants milliseconds."""
        return {"delay": round(self.delay * 1000)}


class TimeoutFault(ToxicBase):
    """Stop all data and close connections after ``timeout`` (0 holds them forever)."""

    kind: Literal["timeout"]
    toxic_type: ClassVar[str] = "timeout"
    timeout: OptionalDuration = 0.0

    def toxic_attributes(self) -> dict[str, int]:
        """Toxiproxy wants milliseconds."""
        return {"timeout": round(self.timeout * 1000)}


class ResetPeerFault(ToxicBase):
    """Reset connections (TCP RST) after ``timeout``."""

    kind: Literal["reset_peer"]
    toxic_type: ClassVar[str] = "reset_peer"
    timeout: OptionalDuration = 0.0

    def toxic_attributes(self) -> dict[str, int]:
        """Toxiproxy wants milliseconds."""
        return {"timeout": round(self.timeout * 1000)}


class SlicerFault(ToxicBase):
    """Slice data into small packets of ``average_size`` ± ``size_variation`` bytes."""

    kind: Literal["slicer"]
    toxic_type: ClassVar[str] = "slicer"
    average_size: int = Field(gt=0)
    size_variation: int = Field(default=0, ge=0)
    delay: OptionalDuration = 0.0

    @model_validator(mode="after")
    def _variation_below_average(self) -> SlicerFault:
        if self.size_variation >= self.average_size:
            raise ValueError(
                f"size_variation must be below average_size ({self.average_size}), got {self.size_variation}"
            )
        return self

    def toxic_attributes(self) -> dict[str, int]:
        """Toxiproxy wants microseconds for the delay."""
        return {
            "average_size": self.average_size,
            "size_variation": self.size_variation,
            "delay": round(self.delay * 1_000_000),
        }


class LimitDataFault(ToxicBase):
    """Close connections after ``bytes`` bytes have passed."""

    kind: Literal["limit_data"]
    toxic_type: ClassVar[str] = "limit_data"
    bytes: Size

    def toxic_attributes(self) -> dict[str, int]:
        """Toxiproxy's attribute is plain bytes."""
        return {"bytes": self.bytes}


class LinkDownFault(FaultBase):
    """Disable the link's proxy: connections refused, existing ones closed."""

    kind: Literal["link_down"]
    target_kind: ClassVar[TargetKind] = "link"

    def undo(self) -> str:
        """Re-enable the proxy."""
        return f"enable proxy {self.target}"


def _signal_number(name: str | int) -> int:
    if isinstance(name, int):
        return name
    upper = name.upper()
    if not upper.startswith("SIG"):
        upper = "SIG" + upper
    try:
        return int(getattr(_signal, upper))
    except AttributeError:
        raise ValueError(f"expected a signal name like SIGKILL or SIGTERM, got {name!r}") from None


class _SignalledFault(FaultBase):
    """Shared by the kill faults: a signal to send, and an optional restart after a delay."""

    signal: str = "SIGKILL"
    restart_after: OptionalDuration | None = None

    @field_validator("signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        _signal_number(value)
        return value.upper() if value.upper().startswith("SIG") else "SIG" + value.upper()

    @property
    def signal_number(self) -> int:
        """The signal as a number."""
        return _signal_number(self.signal)


class ProcessKillFault(_SignalledFault):
    """Send ``signal`` to a local service's processes; restart after ``restart_after`` if given."""

    kind: Literal["process_kill"]

    def undo(self) -> str:
        """Make sure the service runs again."""
        return f"ensure {self.target} is running again (restart it if the supervisor did not)"


class ProcessFreezeFault(FaultBase):
    """Freeze a local service with SIGSTOP; SIGCONT on revert."""

    kind: Literal["process_freeze"]

    def undo(self) -> str:
        """Thaw it."""
        return f"SIGCONT {self.target}"


class ProcessRestartFault(FaultBase):
    """Restart a local service (SIGTERM, then start it again)."""

    kind: Literal["process_restart"]

    def undo(self) -> str:
        """Make sure it runs."""
        return f"ensure {self.target} is running"


class ContainerKillFault(_SignalledFault):
    """Kill a service's container with ``signal`` (the restart policy decides what follows)."""

    kind: Literal["container_kill"]

    def undo(self) -> str:
        """Start the container if it is not running."""
        return f"start container of {self.target} if it is not running"


class ContainerStopFault(FaultBase):
    """Stop a service's container; start it on revert."""

    kind: Literal["container_stop"]

    def undo(self) -> str:
        """Start it."""
        return f"start container of {self.target}"


class ContainerPauseFault(FaultBase):
    """Pause (freeze) a service's container; unpause on revert."""

    kind: Literal["container_pause"]

    def undo(self) -> str:
        """Unpause it."""
        return f"unpause container of {self.target}"


class ContainerRestartFault(FaultBase):
    """Restart a service's container."""

    kind: Literal["container_restart"]

    def undo(self) -> str:
        """Make sure it runs."""
        return f"ensure container of {self.target} is running"


class PoolExhaustionFault(FaultBase):
    """Hold PostgreSQL connections up to ``max_connections`` (or ``connections``)."""

    kind: Literal["pool_exhaustion"]
    connections: int | None = Field(default=None, gt=0)
    leave_free: int = Field(default=0, ge=0)
    sleep: bool = False

    def undo(self) -> str:
        """Close every held connection."""
        return f"close the connections held to {self.target}"


class HttpConnectionHoldFault(FaultBase):
    """Hold ``connections`` idle keep-alive HTTP connections to a service."""

    kind: Literal["http_connection_hold"]
    connections: int = Field(gt=0, le=10_000)

    def undo(self) -> str:
        """Close them."""
        return f"close the connections held to {self.target}"


class DiskFillFault(FaultBase):
    """Fill the filesystem of a service's path until ``until_used`` or ``until_free``, never past ``cap``."""

    kind: Literal["disk_fill"]
    path: str = "data"
    until_used: Percent | None = None
    until_free: Size | None = None
    cap: Size
    chunk: Size = 4 * 1024 * 1024

    @model_validator(mode="after")
    def _one_goal(self) -> DiskFillFault:
        if (self.until_used is None) == (self.until_free is None):
            raise ValueError("give exactly one of until_used or until_free")
        if self.cap <= 0:
            raise ValueError(f"cap must be positive, got {self.cap}")
        if self.chunk <= 0:
            raise ValueError(f"chunk must be positive, got {self.chunk}")
        return self

    def undo(self) -> str:
        """Remove the fill files."""
        return f"remove the fill files under {self.target}:{self.path}"


class CpuPressureFault(FaultBase):
    """Burn ``cores`` CPU cores on the host or inside a service's container."""

    kind: Literal["cpu_pressure"]
    target_kind: ClassVar[TargetKind] = "host_or_service"
    cores: int = Field(default=1, gt=0, le=256)

    def undo(self) -> str:
        """Stop the burners."""
        return "stop the CPU burner processes"


class MemoryPressureFault(FaultBase):
    """Hold ``size`` bytes of touched memory on the host or inside a service's container."""

    kind: Literal["memory_pressure"]
    target_kind: ClassVar[TargetKind] = "host_or_service"
    size: Size
    cap: Size = 8 * 1024**3

    @model_validator(mode="after")
    def _bounded(self) -> MemoryPressureFault:
        if self.size <= 0 or self.size > self.cap:
            raise ValueError(f"size must be positive and at most cap ({self.cap}), got {self.size}")
        return self

    def undo(self) -> str:
        """Free the memory."""
        return "stop the memory holder process"


FaultSpec = Annotated[
    LatencyFault
    | BandwidthFault
    | SlowCloseFault
    | TimeoutFault
    | ResetPeerFault
    | SlicerFault
    | LimitDataFault
    | LinkDownFault
    | ProcessKillFault
    | ProcessFreezeFault
    | ProcessRestartFault
    | ContainerKillFault
    | ContainerStopFault
    | ContainerPauseFault
    | ContainerRestartFault
    | PoolExhaustionFault
    | HttpConnectionHoldFault
    | DiskFillFault
    | CpuPressureFault
    | MemoryPressureFault,
    Field(discriminator="kind"),
]
"""Any fault, chosen by its ``kind``."""


def kind_of(model: type[FaultBase]) -> str:
    """The kind a fault model stands for: the value of its ``kind: Literal[...]`` field."""
    field = model.model_fields.get("kind")
    args = typing.get_args(field.annotation) if field is not None else ()
    if len(args) != 1 or not isinstance(args[0], str):
        raise TypeError(f"{model.__name__} must declare its kind as `kind: Literal['name']`")
    return args[0]


BUILTIN_FAULT_MODELS: tuple[type[FaultBase], ...] = typing.get_args(typing.get_args(FaultSpec)[0])
"""The fault models chaoslab ships, known to the model layer so that journals read back offline.

Which driver applies each kind, and its ledger record type, is the fault registry's
(:mod:`chaoslab.faults.registry`), built from the family modules' declarations.
"""

FAULT_MODELS: dict[str, type[FaultBase]] = {kind_of(model): model for model in BUILTIN_FAULT_MODELS}
"""Fault kind name → its model."""

FAULT_KINDS: tuple[str, ...] = tuple(sorted(FAULT_MODELS))
"""Every known fault kind."""
