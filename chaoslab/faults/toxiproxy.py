"""Toxiproxy faults on a link: every toxic type, in one or both directions, and ``link_down``.

Each toxic chaoslab adds is named ``chaoslab-<run>-<label>-<stream>`` (``stream: both`` adds two),
so revert deletes exactly those and never a toxic someone set up by hand. ``link_down``
disables the link's proxy and records whether it was enabled before; revert re-enables it.
The proxy of a link is its ``proxy_name`` or the link name; the server is
``FaultContext.toxiproxy_url`` (the embedded server or a real Toxiproxy). A toxic or a server
that is already gone counts as reverted: with it went the fault.

Ledger records (:class:`ToxiproxyRecord`)::

    {"kind": "latency", "link": "api->db", "proxy": "api->db", "url": "http://127.0.0.1:8474",
     "toxics": [{"name": "chaoslab-r1-slow-downstream", "type": "latency", "stream": "downstream",
                 "toxicity": 1.0, "attributes": {"latency": 800, "jitter": 50}}], "added": [...],
     "was_enabled": null}
    {"kind": "link_down", "link": "api->db", "proxy": "api->db", "url": "...", "toxics": [], "added": [],
     "was_enabled": true}
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chaoslab.errors import FaultError, RevertError
from chaoslab.faults.base import FaultContext, FaultDriver, FaultFamily, LedgerRecord
from chaoslab.faults.resolve import proxy_name, run_label
from chaoslab.faults.toxiproxy_client import (
    ToxicInfo,
    ToxiproxyClient,
    ToxiproxyError,
    ToxiproxyNotFound,
    ToxiproxyUnavailable,
)
from chaoslab.model.faults import (
    BandwidthFault,
    LatencyFault,
    LimitDataFault,
    LinkDownFault,
    ResetPeerFault,
    SlicerFault,
    SlowCloseFault,
    TimeoutFault,
    ToxicBase,
)

LinkFault = ToxicBase | LinkDownFault
"""The faults this family applies: a toxic on a link, or the link down."""


class PlannedToxic(BaseModel):
    """One toxic a fault adds, named before it is added."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, int] = Field(default_factory=dict)

    def info(self) -> ToxicInfo:
        """As the Toxiproxy API client takes it."""
        return ToxicInfo(self.name, self.type, self.stream, self.toxicity, dict(self.attributes))


class ToxiproxyRecord(LedgerRecord):
    """The proxy of a link and the toxics added to it (or whether a downed proxy was enabled)."""

    link: str
    proxy: str
    url: str
    toxics: tuple[PlannedToxic, ...] = ()
    """The toxics to add, named before any is added (empty for ``link_down``)."""
    added: tuple[str, ...] = ()
    """The toxics actually added."""
    was_enabled: bool | None = None
    """``link_down``: whether the proxy was enabled before; None until apply has looked."""


def toxics_for(fault: ToxicBase, prefix: str) -> list[ToxicInfo]:
    """The toxic(s) a fault adds: one per direction, each named ``<prefix>-<stream>``."""
    streams = ["upstream", "downstream"] if fault.stream == "both" else [fault.stream]
    return [
        ToxicInfo(
            name=f"{prefix}-{stream}",
            type=fault.toxic_type,
            stream=stream,
            toxicity=fault.toxicity,
            attributes=fault.toxic_attributes(),
        )
        for stream in streams
    ]


def _url(ctx: FaultContext, record: ToxiproxyRecord | None = None) -> str:
    url = ctx.toxiproxy_url or (record.url if record is not None else None)
    if not url:
        raise FaultError("no Toxiproxy URL: the run has no embedded server and the topology names none")
    return str(url)


class ToxiproxyDriver(FaultDriver[LinkFault, ToxiproxyRecord]):
    """Adds and removes toxics, and disables and re-enables proxies, through the HTTP API."""

    def prepare(self, fault: LinkFault, ctx: FaultContext, label: str) -> ToxiproxyRecord:
        """Name the proxy and every toxic before any is added."""
        if not isinstance(fault, ToxicBase | LinkDownFault):
            raise FaultError(f"the toxiproxy driver cannot apply {type(fault).__name__}")
        toxics: tuple[PlannedToxic, ...] = ()
        if isinstance(fault, ToxicBase):
            toxics = tuple(PlannedToxic(**t.to_json()) for t in toxics_for(fault, run_label(ctx, label)))
        return ToxiproxyRecord(
            kind=fault.kind, link=fault.target, proxy=proxy_name(ctx, fault.target), url=_url(ctx), toxics=toxics
        )

    async def apply(self, fault: LinkFault, ctx: FaultContext, record: ToxiproxyRecord) -> ToxiproxyRecord:
        """Add the toxics (or disable the proxy); the record lists what was done."""
        proxy = record.proxy
        async with ToxiproxyClient(_url(ctx, record)) as client:
            try:
                info = await client.get_proxy(proxy)
            except ToxiproxyNotFound:
                raise FaultError(
                    f"link {record.link!r}: Toxiproxy at {client.url} has no proxy named {proxy!r}"
                ) from None
            if record.kind == "link_down":
                record = record.but(was_enabled=info.enabled)
                if info.enabled:
                    await client.set_enabled(proxy, False)
                return record
            added: list[str] = []
            try:
                for toxic in record.toxics:
                    added.append((await client.add_toxic(proxy, toxic.info())).name)
            except ToxiproxyError as exc:
                raise FaultError(f"link {record.link!r}: could not add toxic: {exc.message}") from exc
            return record.but(added=tuple(added))

    async def revert(self, record: ToxiproxyRecord, ctx: FaultContext) -> None:
        """Delete our toxics by name (or re-enable the proxy); gone already is fine."""
        proxy = record.proxy
        try:
            async with ToxiproxyClient(_url(ctx, record)) as client:
                if record.kind == "link_down":
                    # was_enabled is None when the run died before apply recorded it: the proxy
                    # was enabled then, or the fault would have had nothing to do.
                    if record.was_enabled is not False:
                        try:
                            await client.set_enabled(proxy, True)
                        except ToxiproxyNotFound:
                            return
                    return
                for toxic in record.toxics:
                    await client.delete_toxic(proxy, toxic.name)
        except ToxiproxyUnavailable:
            # The server is gone (an embedded one dies with its run): so is every toxic on it.
            return
        except ToxiproxyError as exc:
            raise RevertError(f"link {record.link!r}: {exc}") from exc

    async def check_reverted(self, record: ToxiproxyRecord, ctx: FaultContext) -> str | None:
        """Our toxics are absent; a downed proxy is enabled again."""
        proxy = record.proxy
        try:
            async with ToxiproxyClient(_url(ctx, record)) as client:
                if record.kind == "link_down":
                    info = await client.get_proxy(proxy)
                    if not info.enabled and record.was_enabled is not False:
                        return f"proxy {proxy!r} is still disabled"
                    return None
                names = {toxic.name for toxic in record.toxics}
                left = sorted(t.name for t in await client.toxics(proxy) if t.name in names)
        except (ToxiproxyUnavailable, ToxiproxyNotFound):
            return None
        return f"toxic(s) {', '.join(left)} still on proxy {proxy!r}" if left else None

    def detail(self, record: ToxiproxyRecord) -> dict[str, Any]:
        """The toxics added, or the proxy disabled."""
        if record.kind == "link_down":
            return {"proxy": record.proxy, "was_enabled": record.was_enabled}
        return {"proxy": record.proxy, "toxics": list(record.added)}


FAMILY: FaultFamily[LinkFault, ToxiproxyRecord] = FaultFamily(
    name="toxiproxy",
    models=(
        LatencyFault,
        BandwidthFault,
        SlowCloseFault,
        TimeoutFault,
        ResetPeerFault,
        SlicerFault,
        LimitDataFault,
        LinkDownFault,
    ),
    driver=ToxiproxyDriver,
    record=ToxiproxyRecord,
)
"""Toxics on a link and ``link_down``, through the Toxiproxy HTTP API."""
