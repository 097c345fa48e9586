"""compose/: the Compose file, its Toxiproxy config and compose/topology.yaml agree with each other and the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaoslab.model.loading import load_experiment, load_topology

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"


def compose_file() -> dict[str, Any]:
    """The parsed Compose file."""
    data: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    return data


def option(command: list[str], flag: str) -> str:
    """The value after ``flag`` in a command line."""
    return command[command.index(flag) + 1]


def port_of(address: str) -> int:
    """The port of ``host:port``."""
    return int(address.rpartition(":")[2])


class TestComposeFile:
    """The Compose file's structure."""

    def test_has_the_demo_services(self) -> None:
        """postgres, toxiproxy, seed, vector and api, all on the host network."""
        services = compose_file()["services"]
        assert sorted(services) == ["api", "postgres", "seed", "toxiproxy", "vector"]
        assert {s["network_mode"] for s in services.values()} == {"host"}

    def test_uses_the_real_toxiproxy_image_with_its_config(self) -> None:
        """toxiproxy runs ghcr.io/shopify/toxiproxy, loads /config/toxiproxy.json, API on 127.0.0.1:8474."""
        toxiproxy = compose_file()["services"]["toxiproxy"]
        assert toxiproxy["image"].startswith("ghcr.io/shopify/toxiproxy")
        assert "./toxiproxy.json:/config/toxiproxy.json:ro" in toxiproxy["volumes"]
        assert toxiproxy["command"] == ["-host=127.0.0.1", "-port=8474", "-config=/config/toxiproxy.json"]

    def test_demo_services_are_built_from_the_dockerfile(self) -> None:
        """seed, vector and api build ../Dockerfile, which exists and installs the package."""
        services = compose_file()["services"]
        for name in ("seed", "vector", "api"):
            assert services[name]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        dockerfile = (COMPOSE / ".." / "Dockerfile").read_text()
        assert "pip install" in dockerfile
        assert dockerfile.startswith("# ") and "FROM python:3.11" in dockerfile

    def test_api_waits_for_seeding(self) -> None:
        """The api starts after the seed job succeeded, which waits for a healthy PostgreSQL."""
        services = compose_file()["services"]
        assert services["api"]["depends_on"]["seed"] == {"condition": "service_completed_successfully"}
        assert services["seed"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


class TestAgreement:
    """Ports, link names and proxies agree between compose, its topology and the embedded demo."""

    def test_toxiproxy_config_has_one_proxy_per_link(self) -> None:
        """toxiproxy.json declares exactly the topology's links with the same listen/upstream."""
        proxies = json.loads((COMPOSE / "toxiproxy.json").read_text())
        topology = load_topology(str(COMPOSE / "topology.yaml"))
        assert {p["name"]: (p["listen"], p["upstream"]) for p in proxies} == {
            name: (link.listen, link.upstream) for name, link in topology.links.items()
        }
        assert sorted(topology.links) == ["api->postgres", "api->vector"]

    def test_compose_topology_matches_the_embedded_demo(self) -> None:
        """Same services, URLs, addresses and links as the demo topology; all external; real Toxiproxy URL."""
        compose_topology = load_topology(str(COMPOSE / "topology.yaml"))
        demo = load_topology("demo")
        assert compose_topology.toxiproxy == "http://127.0.0.1:8474"
        assert sorted(compose_topology.services) == sorted(demo.services) == ["api", "postgres", "vector"]
        for name, service in compose_topology.services.items():
            assert service.launch.kind == "external"
            assert service.url == demo.services[name].url
            assert service.address == demo.services[name].address
            assert service.container is not None and service.container.compose_service == name
        assert {n: (lk.listen, lk.upstream) for n, lk in compose_topology.links.items()} == {
            n: (lk.listen, lk.upstream) for n, lk in demo.links.items()
        }

    def test_compose_commands_use_the_topology_ports(self) -> None:
        """vector, api and PostgreSQL listen where the topology says; the api talks through the links only."""
        services = compose_file()["services"]
        topology = load_topology(str(COMPOSE / "topology.yaml"))
        api_cmd = [str(part) for part in services["api"]["command"]]
        vector_cmd = services["vector"]["command"]
        assert f"127.0.0.1:{option(api_cmd, '--port')}" in (topology.services["api"].url or "")
        assert f"127.0.0.1:{option(vector_cmd, '--port')}" in (topology.services["vector"].url or "")
        assert option(services["postgres"]["command"], "-p") == str(
            port_of(topology.services["postgres"].address or "")
        )
        max_connections = f"max_connections={topology.parameters['pg_max_connections']}"
        assert max_connections in services["postgres"]["command"]
        assert option(api_cmd, "--vector-url") == f"http://{topology.links['api->vector'].listen}"
        assert f"@{topology.links['api->postgres'].listen}/" in option(api_cmd, "--postgres-dsn")

    def test_process_match_is_the_compose_command(self) -> None:
        """The topology's cmdline for vector is exactly the container's command (so process faults find it)."""
        services = compose_file()["services"]
        topology = load_topology(str(COMPOSE / "topology.yaml"))
        vector_process = topology.services["vector"].process
        assert vector_process is not None
        assert list(vector_process.cmdline) == services["vector"]["command"]
        api_process = topology.services["api"].process
        assert api_process is not None
        assert list(api_process.cmdline) == [
            p.replace("${MODE:-fragile}", "fragile") for p in services["api"]["command"]
        ]


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_experiment_runs_against_compose_unchanged(path: Path) -> None:
    """Each experiment validates with --set topology=compose/topology.yaml (full and quick)."""
    for quick in (False, True):
        experiment = load_experiment(path, overrides={"topology": str(COMPOSE / "topology.yaml")}, quick=quick)
        assert experiment.topology.name == "demo-compose"
