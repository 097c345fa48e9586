"""Toxiproxy faults on a link: every toxic type, in one or both directions, and ``link_down``.

Each toxic chaoslab adds is named ``chaoslab-<run>-<label>-<stream>`` (``stream: both`` adds two),
so revert deletes exactly those and never a toxic someone set up by hand. ``link_down``
disables the link's proxy and records whether it was enabled before; revert re-enables it.
The proxy of a link is its ``proxy_name`` or the link name; the server is
``FaultContext.toxiproxy_url`` (the embedded server or a real Toxiproxy). A toxic or a server
that is already gone counts as reverted: with it went the fault.

Ledger records::

    {"kind": "latency", "link": "api->db", "proxy": "api->db", "url": "http://127.0.0.1:8474",
     "toxics": [{"name": "chaoslab-r1-slow-downstream", "type": "latency", "stream": "downstream",
                 "toxicity": 1.0, "attributes": {"latency": 800, "jitter": 50}}], "added": [...]}
    {"kind": "link_down", "link": "api->db", "proxy": "api->db", "url": "...", "was_enabled": true}
"""

from __future__ import annotations

from typing import Any, ClassVar

from chaoslab.errors import FaultError, RevertError
from chaoslab.faults.base import FaultContext, FaultDriver, LedgerRecord
from chaoslab.faults.resolve import proxy_name, run_label
from chaoslab.faults.toxiproxy_client import (
    ToxicInfo,
    ToxiproxyClient,
    ToxiproxyError,
    ToxiproxyNotFound,
    ToxiproxyUnavailable,
)
from chaoslab.model.faults import FaultBase, LinkDownFault, ToxicBase


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


def _url(ctx: FaultContext, record: LedgerRecord | None = None) -> str:
    url = ctx.toxiproxy_url or (record or {}).get("url")
    if not url:
        raise FaultError("no Toxiproxy URL: the run has no embedded server and the topology names none")
    return str(url)


class ToxiproxyDriver(FaultDriver):
    """Adds and removes toxics, and disables and re-enables proxies, through the HTTP API."""

    kinds: ClassVar[tuple[str, ...]] = (
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "link_down",
    )

    def prepare(self, fault: FaultBase, ctx: FaultContext, label: str) -> LedgerRecord:
        """Name the proxy and every toxic before any is added."""
        if not isinstance(fault, ToxicBase | LinkDownFault):
            raise FaultError(f"the toxiproxy driver cannot apply {type(fault).__name__}")
        record: LedgerRecord = {
            "kind": fault.kind,
            "link": fault.target,
            "proxy": proxy_name(ctx, fault.target),
            "url": _url(ctx),
        }
        if isinstance(fault, LinkDownFault):
            return {**record, "was_enabled": None}
        toxics = toxics_for(fault, run_label(ctx, label))
        return {**record, "toxics": [t.to_json() for t in toxics], "added": []}

    async def apply(self, fault: FaultBase, ctx: FaultContext, record: LedgerRecord) -> LedgerRecord:
        """Add the toxics (or disable the proxy); the record lists what was done."""
        proxy = str(record["proxy"])
        async with ToxiproxyClient(_url(ctx, record)) as client:
            try:
                info = await client.get_proxy(proxy)
            except ToxiproxyNotFound:
                raise FaultError(
                    f"link {record['link']!r}: Toxiproxy at {client.url} has no proxy named {proxy!r}"
                ) from None
            if record["kind"] == "link_down":
                record = {**record, "was_enabled": info.enabled}
                if info.enabled:
                    await client.set_enabled(proxy, False)
                return record
            added: list[str] = []
            try:
                for data in record["toxics"]:
                    toxic = await client.add_toxic(proxy, ToxicInfo.from_json(data))
                    added.append(toxic.name)
            except ToxiproxyError as exc:
                raise FaultError(f"link {record['link']!r}: could not add toxic: {exc.message}") from exc
            return {**record, "added": added}

    async def revert(self, record: LedgerRecord, ctx: FaultContext) -> None:
        """Delete our toxics by name (or re-enable the proxy); gone already is fine."""
        proxy = str(record["proxy"])
        try:
            async with ToxiproxyClient(_url(ctx, record)) as client:
                if record["kind"] == "link_down":
                    # was_enabled is None when the run died before apply recorded it: the proxy
                    # was enabled then, or the fault would have had nothing to do.
                    if record.get("was_enabled") is not False:
                        try:
                            await client.set_enabled(proxy, True)
                        except ToxiproxyNotFound:
                            return
                    return
                for data in record.get("toxics", []):
                    await client.delete_toxic(proxy, str(data["name"]))
        except ToxiproxyUnavailable:
            # The server is gone (an embedded one dies with its run): so is every toxic on it.
            return
        except ToxiproxyError as exc:
            raise RevertError(f"link {record['link']!r}: {exc}") from exc

    async def check_reverted(self, record: LedgerRecord, ctx: FaultContext) -> str | None:
        """Our toxics are absent; a downed proxy is enabled again."""
        proxy = str(record["proxy"])
        try:
            async with ToxiproxyClient(_url(ctx, record)) as client:
                if record["kind"] == "link_down":
                    info = await client.get_proxy(proxy)
                    if not info.enabled and record.get("was_enabled") is not False:
                        return f"proxy {proxy!r} is still disabled"
                    return None
                names = {str(t["name"]) for t in record.get("toxics", [])}
                left = sorted(t.name for t in await client.toxics(proxy) if t.name in names)
        except (ToxiproxyUnavailable, ToxiproxyNotFound):
            return None
        return f"toxic(s) {', '.join(left)} still on proxy {proxy!r}" if left else None

    def detail(self, record: LedgerRecord) -> dict[str, Any]:
        """The toxics added, or the proxy disabled."""
        if record.get("kind") == "link_down":
            return {"proxy": record.get("proxy"), "was_enabled": record.get("was_enabled")}
        return {"proxy": record.get("proxy"), "toxics": list(record.get("added", []))}
