"""A timeline recorded from a real run survives the journal's JSON unchanged."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from chaoslab.clock import RunClock
from chaoslab.load.generator import LoadGenerator
from chaoslab.load.recorder import Recorder
from chaoslab.model.experiment import LoadSpec
from chaoslab.model.topology import TopologySpec
from chaoslab.system.probes import ProbeRunner
from chaoslab.system.resources import ResourceSampler
from chaoslab.timeline import Event, FaultRecord, PhaseSpan, SignalKind, Timeline
from tests.conftest import free_port


@pytest.fixture
async def service_url() -> AsyncIterator[str]:
    """A real aiohttp service with /ok, /fail (500) and /health."""
    port = free_port()

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/fail", fail)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.integration
class TestJournalRoundTrip:
    async def test_recorded_run_round_trips(self, service_url: str) -> None:
        """Load, probes, resources and generator windows from 1.2 s of a real run load back equal."""
        clock = RunClock()
        recorder = Recorder(0.2, clock)
        topology = TopologySpec.model_validate(
            {
                "name": "t",
                "services": {
                    "api": {
                        "url": service_url,
                        "probe": {"type": "http", "url": "${service:api}/health", "interval": "100ms"},
                    }
                },
            }
        )
        spec = LoadSpec.model_validate(
            {
                "rate": "150/s",
                "mix": [
                    {"name": "ok", "signal": "api:ok", "url": "${service:api}/ok", "weight": 2},
                    {"name": "fail", "signal": "api:fail", "url": "${service:api}/fail"},
                ],
                "seed": 4,
            }
        )
        refs = {"service:api": service_url}
        generator = LoadGenerator(spec, refs, recorder, clock)
        probes = ProbeRunner(topology, recorder, clock)
        sampler = ResourceSampler(clock, pids_of=lambda s: [os.getpid()], services=["api"], interval_s=0.4)
        await asyncio.gather(generator.run(0.0, 1.2), probes.run(1.2), sampler.run(1.2))
        original = Timeline(
            window_s=0.2,
            signals=recorder.signals(),
            phases=(PhaseSpan("baseline", 0.0, 0.6), PhaseSpan("fault", 0.6, 1.2)),
            faults=(FaultRecord("latency", "api->vector", "800ms latency", 0.6, 1.2, True, {"toxic": "l1"}),),
            resources=sampler.samples(),
            events=(Event(0.6, "fault", "latency on", {"label": "f1"}),),
            generator=generator.generator_windows(),
            duration_s=round(clock.elapsed(), 6),
        )
        text = json.dumps(original.to_journal_parts())
        loaded = Timeline.from_journal_parts(json.loads(text))
        assert loaded == original
        # The run really recorded something in each part.
        assert [s.kind for s in original.signals.values()] == [SignalKind.LOAD, SignalKind.LOAD, SignalKind.PROBE]
        assert (
            sum(w.count for w in original.signals["api:ok"].windows)
            + sum(w.count for w in original.signals["api:fail"].windows)
            == 180
        )
        assert sum(w.errors.get("http_5xx", 0) for w in original.signals["api:fail"].windows) > 0
        assert len(original.signals["probe:api"].windows) >= 4  # 6 unless the host stalls this process
        assert len(original.resources["api"]) >= 2 and len(original.resources["host"]) >= 2
        assert len(original.generator) == 6
