"""``chaoslab check``: real servers on loopback, a closed port, a real (embedded) Toxiproxy, the real Docker engine."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from chaoslab.cli import main
from chaoslab.model.topology import TopologySpec
from chaoslab.proxy import ToxiproxyServer
from chaoslab.system.preflight import Finding, Status, preflight
from tests.conftest import free_port

pytestmark = pytest.mark.integration

Serve = Callable[..., Awaitable[int]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serve a tiny aiohttp app on a free 127.0.0.1 port (``/health`` answers ``status``); returns the port."""
    runners: list[web.AppRunner] = []

    async def start(status: int = 200) -> int:
        async def health(_: web.Request) -> web.Response:
            return web.json_response({"ok": status == 200}, status=status)

        app = web.Application()
        app.router.add_get("/health", health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def toxiproxy() -> AsyncIterator[ToxiproxyServer]:
    """chaoslab's embedded Toxiproxy-compatible server, as a running Toxiproxy at a URL."""
    server = ToxiproxyServer(host="127.0.0.1", port=0)
    await server.start()
    yield server
    await server.stop()


def topology(**fields: Any) -> TopologySpec:
    """A topology from plain fields."""
    return TopologySpec.model_validate({"name": "t", **fields})


def by_check(findings: list[Finding]) -> dict[tuple[str, str], Finding]:
    """Findings keyed by (item, check)."""
    return {(f.item, f.check): f for f in findings}


async def proxies(url: str) -> Any:
    """GET /proxies."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/proxies") as resp:
        return await resp.json()


class TestServices:
    """External services are probed once."""

    async def test_up_down_and_wrong_status(self, serve: Serve) -> None:
        """200 → ok; a closed port → FAIL refused with the fix; 503 → FAIL naming the status."""
        up, sick, closed = await serve(), await serve(503), free_port()
        topo = topology(
            services={
                "up": {
                    "url": f"http://127.0.0.1:{up}",
                    "probe": {"type": "http", "url": f"http://127.0.0.1:{up}/health"},
                },
                "sick": {"probe": {"type": "http", "url": f"http://127.0.0.1:{sick}/health"}},
                "gone": {"address": f"127.0.0.1:{closed}", "probe": {"type": "tcp", "address": f"127.0.0.1:{closed}"}},
                "bare": {"address": f"127.0.0.1:{up}"},
            }
        )
        found = by_check(await preflight(topo))
        assert found[("service up", f"http http://127.0.0.1:{up}/health")].status is Status.OK
        sick_finding = found[("service sick", f"http http://127.0.0.1:{sick}/health")]
        assert (sick_finding.status, sick_finding.detail) == (Status.FAIL, "answered HTTP 503, expected HTTP 200")
        gone = found[("service gone", f"tcp 127.0.0.1:{closed}")]
        assert (gone.status, gone.detail) == (Status.FAIL, "connection refused")
        assert gone.fix == "start gone, or correct services.gone.probe in the topology"
        assert found[("service bare", f"tcp 127.0.0.1:{up}")].status is Status.OK

    async def test_launched_service_needs_a_free_port_and_its_program(self, serve: Serve) -> None:
        """A launched service is not probed: its port must be free and its program exist."""
        busy, free = await serve(), free_port()
        topo = topology(
            services={
                "a": {"url": f"http://127.0.0.1:{busy}", "launch": {"kind": "process", "command": ["${python}", "-V"]}},
                "b": {
                    "url": f"http://127.0.0.1:{free}",
                    "launch": {"kind": "process", "command": ["no-such-program-x"]},
                },
            }
        )
        found = by_check(await preflight(topo))
        in_use = found[("service a", f"port 127.0.0.1:{busy} free")]
        assert in_use.status is Status.FAIL and in_use.detail.startswith("in use")
        assert found[("service b", f"port 127.0.0.1:{free} free")].status is Status.OK
        assert found[("service b", "program no-such-program-x")].status is Status.FAIL
        assert [f.status for f in found.values() if f.item == "service a" and f.check.startswith("program")] == [
            Status.OK
        ]


class TestLinks:
    """Links through a running Toxiproxy are opened through the proxy and read through the API, never changed."""

    async def test_through_a_real_proxy(self, serve: Serve, toxiproxy: ToxiproxyServer) -> None:
        """Reachable upstream → ok; dead upstream → FAIL (closed at once); missing proxy → skip; toxic → FAIL."""
        upstream, dead = await serve(), free_port()
        good_listen, bad_listen, toxic_listen = free_port(), free_port(), free_port()
        created = [
            {"name": "a->up", "listen": f"127.0.0.1:{good_listen}", "upstream": f"127.0.0.1:{upstream}"},
            {"name": "a->dead", "listen": f"127.0.0.1:{bad_listen}", "upstream": f"127.0.0.1:{dead}"},
            {"name": "a->slow", "listen": f"127.0.0.1:{toxic_listen}", "upstream": f"127.0.0.1:{upstream}"},
        ]
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{toxiproxy.url}/populate", json=created) as resp:
                assert resp.status == 201
            toxic = {"name": "slow", "type": "latency", "attributes": {"latency": 100}}
            async with session.post(f"{toxiproxy.url}/proxies/a-%3Eslow/toxics", json=toxic) as resp:
                assert resp.status == 200
        before = await proxies(toxiproxy.url)
        topo = topology(
            toxiproxy=toxiproxy.url,
            services={"up": {"address": f"127.0.0.1:{upstream}"}},
            links={
                "a->up": {"listen": f"127.0.0.1:{good_listen}", "upstream": f"127.0.0.1:{upstream}"},
                "a->dead": {"listen": f"127.0.0.1:{bad_listen}", "upstream": f"127.0.0.1:{dead}"},
                "a->slow": {"listen": f"127.0.0.1:{toxic_listen}", "upstream": f"127.0.0.1:{upstream}"},
                "a->new": {"listen": f"127.0.0.1:{free_port()}", "upstream": f"127.0.0.1:{upstream}"},
            },
        )
        found = by_check(await preflight(topo))
        assert found[("toxiproxy", f"API {toxiproxy.url}")].status is Status.OK
        assert found[("link a->up", f"through proxy 127.0.0.1:{good_listen}")].status is Status.OK
        dead_finding = found[("link a->dead", f"through proxy 127.0.0.1:{bad_listen}")]
        assert dead_finding.status is Status.FAIL
        assert dead_finding.detail == f"Toxiproxy accepted and closed at once: it cannot reach 127.0.0.1:{dead}"
        assert found[("link a->dead", f"upstream 127.0.0.1:{dead}")].status is Status.FAIL
        assert found[("link a->slow", "proxy")].detail == "has toxics left: slow"
        assert found[("link a->new", "proxy")].status is Status.SKIP
        assert await proxies(toxiproxy.url) == before  # nothing created, changed or removed

    async def test_toxiproxy_down(self) -> None:
        """No Toxiproxy at the URL: one FAIL with the fix; upstreams are still checked."""
        url = f"http://127.0.0.1:{free_port()}"
        topo = topology(
            toxiproxy=url,
            services={"x": {"address": "127.0.0.1:1"}},
            links={"a->x": {"listen": f"127.0.0.1:{free_port()}", "upstream": "127.0.0.1:1"}},
        )
        found = by_check(await preflight(topo, timeout_s=1.0))
        api = found[("toxiproxy", f"API {url}")]
        assert (api.status, api.detail) == (Status.FAIL, "connection refused")
        assert "start Toxiproxy" in api.fix
        link = found[("link a->x", "proxy")]
        assert (link.status, link.detail) == (Status.FAIL, "not checked: Toxiproxy does not answer")
        assert found[("link a->x", "upstream 127.0.0.1:1")].status is Status.FAIL

    async def test_embedded_needs_free_listen_ports(self, serve: Serve) -> None:
        """With the embedded Toxiproxy, a link's listen port must be free; a non-loopback upstream is not opened."""
        busy = await serve()
        topo = topology(
            allow_non_loopback=True,
            services={"db": {"address": "127.0.0.1:5"}},
            links={
                "a->db": {"listen": f"127.0.0.1:{busy}", "upstream": "db:5432"},
            },
        )
        found = by_check(await preflight(topo))
        assert found[("link a->db", f"port 127.0.0.1:{busy} free")].status is Status.FAIL
        assert found[("link a->db", "upstream db:5432")].status is Status.SKIP


@pytest.mark.docker
class TestDocker:
    """The real engine: reachable, and containers found by their Compose labels."""

    async def test_compose_labels(self, http_container: Callable[..., Any]) -> None:
        """A running container with the labels → ok; a wrong project → FAIL naming the fix."""
        port = free_port()
        http_container(port, service="web", compose_project="chaoscheck", compose_service="web")
        services = {
            "web": {
                "url": f"http://127.0.0.1:{port}",
                "container": {"compose_project": "chaoscheck", "compose_service": "web"},
            },
            "other": {"container": {"compose_project": "no-such-project", "compose_service": "web"}},
        }
        found = by_check(await preflight(topology(services=services)))
        assert found[("docker", "engine at unix:///var/run/docker.sock")].status is Status.OK
        assert found[("service web", "container compose chaoscheck/web")].detail == "1 running"
        missing = found[("service other", "container compose no-such-project/web")]
        assert (missing.status, missing.detail) == (Status.FAIL, "no such container")
        assert "--set compose_project=" in missing.fix


class TestCommand:
    """Exit codes and the table."""

    def write(self, tmp_path: Path, data: dict[str, Any]) -> Path:
        path = tmp_path / "topology.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    def run(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(["check", *args])
        out = capsys.readouterr()
        code = exited.value.code
        return (code if isinstance(code, int) else 1), out.out, out.err

    def test_exit_codes(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """0 when all answers, 1 with a fix line when something does not, 2 for invalid input."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            path = self.write(tmp_path, {"name": "t", "services": {"a": {"address": f"127.0.0.1:{port}"}}})
            code, out, _ = self.run(capsys, str(path))
            assert code == 0, out
            assert out.splitlines()[-1] == "all 1 check(s) passed"
        code, out, _ = self.run(capsys, str(path))
        assert code == 1
        assert "FAIL  service a  tcp 127.0.0.1" in out and "fix: start a, or correct services.a.url/address" in out
        bad = self.write(tmp_path, {"name": "t", "services": {"a": {"ulr": "x"}}})
        code, _, err = self.run(capsys, str(bad))
        assert code == 2 and "unknown key 'ulr'" in err
