"""``chaoslab init``: Compose files of real-world shapes become topologies, overrides and experiments that validate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from chaoslab.cli import main

ROOT = Path(__file__).resolve().parents[2]

# Modelled on the Docker docs' Django + PostgreSQL sample: env_file, list depends_on, expose only.
DJANGO = """\
services:
  db:
    image: postgres:16
    volumes: [./data/db:/var/lib/postgresql/data]
    env_file: [.env.db]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
  web:
    build: .
    command: python manage.py runserver 0.0.0.0:8000
    volumes: [.:/code]
    ports: ["8000:8000"]
    env_file: .env.web
    environment:
      - POSTGRES_NAME=postgres
      - DB_HOST=db
    depends_on: [db]
"""

# Modelled on awesome-compose's nginx-flask-mysql: long-syntax ports, bridge networks, aliases, a ${VAR:-default}.
NGINX_FLASK_MYSQL = """\
name: flaskapp
services:
  proxy:
    image: nginx:1.27
    ports:
      - target: 80
        published: "${PROXY_PORT:-8080}"
        protocol: tcp
    depends_on: [backend]
    networks: [frontnet]
  backend:
    build: {context: backend}
    environment:
      MYSQL_URL: mysql://root:${DB_ROOT_PASSWORD:-secret}@database:3306/example
    expose: ["5000"]
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:5000/health"]
    depends_on:
      database: {condition: service_healthy}
    networks:
      backnet: {}
      frontnet: {aliases: [api]}
  database:
    image: mariadb:11
    healthcheck:
      test: ["CMD", "healthcheck.sh", "--connect"]
    networks: [backnet]
networks:
  backnet: {}
  frontnet: {}
"""

# A Node + Redis app: REDIS_HOST without REDIS_PORT, a debug service behind a profile, anchors and a merge key.
NODE_REDIS = """\
x-common: &common
  restart: unless-stopped
  environment: &env
    NODE_ENV: production
services:
  app:
    <<: *common
    image: node:20-alpine
    ports: ["127.0.0.1:3000:3000"]
    environment:
      <<: *env
      REDIS_HOST: redis
    healthcheck:
      test: wget -qO- http://localhost:3000/healthz || exit 1
    depends_on: [redis]
  redis:
    <<: *common
    image: redis:7-alpine
  redis-commander:
    image: rediscommander/redis-commander
    profiles: [debug]
    environment: [REDIS_HOSTS=local:redis:6379]
    ports: ["8081:8081"]
    depends_on: [redis]
"""

# extends (same file and another file), a worker without published ports, an ADDR variable.
EXTENDS_BASE = """\
services:
  python:
    image: python:3.12-slim
    environment:
      LOG_LEVEL: info
"""
EXTENDS = """\
services:
  base:
    extends: {file: base.yml, service: python}
    environment:
      QUEUE_ADDR: rabbit:5672
  api:
    extends: base
    ports: ["9000:9000"]
    depends_on: [rabbit]
  worker:
    extends: {service: base}
    depends_on: [rabbit]
  rabbit:
    image: rabbitmq:3-management
    ports: ["127.0.0.1:15672:15672"]
"""


@pytest.fixture
def init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``chaoslab init ARGS`` in-process; (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(["init", *args])
        out = capsys.readouterr()
        code = exited.value.code
        return (code if isinstance(code, int) else 1), out.out, out.err

    return run


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory / "docker-compose.yml"


def _validate(paths: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate", *map(str, paths)])
    assert exited.value.code in (0, None), capsys.readouterr().err


def _load(path: Path) -> dict[str, object]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


class TestFromCompose:
    """Each shape: what the topology, the override and the experiment say."""

    def test_django_postgres(
        self, init: Callable[..., tuple[int, str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Postgres gets its image's port; DB_HOST is re-pointed and DB_PORT added; env file values stay out."""
        compose = _write(
            tmp_path / "django",
            {
                "docker-compose.yml": DJANGO,
                ".env.db": "POSTGRES_PASSWORD=hunter2\n",
                ".env.web": "DATABASE_URL=postgres://postgres:hunter2@db:5432/postgres\nDEBUG=1\n",
            },
        )
        code, out, err = init("--from-compose", str(compose), "--out", str(tmp_path / "django" / "chaos"))
        assert code == 0, err
        chaos = tmp_path / "django" / "chaos"
        _validate([chaos], capsys)
        topology = _load(chaos / "topology.yaml")
        assert topology["name"] == "django"
        assert topology["links"] == {"web->db": {"listen": "0.0.0.0:15432", "upstream": "db:5432"}}
        services = topology["services"]
        assert isinstance(services, dict)
        assert services["web"]["url"] == "http://127.0.0.1:8000"
        assert services["web"]["probe"]["type"] == "tcp"
        assert services["db"]["probe"] == {"type": "container", "interval": "500ms", "timeout": "1s"}
        assert services["db"]["container"] == {"compose_project": "${compose_project}", "compose_service": "db"}
        override = _load(chaos / "docker-compose.chaoslab.yml")
        assert override["services"]["web"]["environment"] == {"DB_HOST": "toxiproxy", "DB_PORT": "15432"}  # type: ignore[index]
        assert "hunter2" not in (chaos / "docker-compose.chaoslab.yml").read_text()
        assert "hunter2" not in out + err
        assert "DATABASE_URL (from .env.web) holds a password" in out
        assert "added DB_PORT=15432 beside DB_HOST" in out

    def test_nginx_flask_mysql(
        self, init: Callable[..., tuple[int, str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Long-syntax ports with a default variable, bridge networks: Toxiproxy joins both; URLs keep their ${VAR}."""
        compose = _write(tmp_path / "flask", {"docker-compose.yml": NGINX_FLASK_MYSQL})
        code, out, err = init("--from-compose", str(compose), "--out", str(tmp_path / "flask" / "chaos"))
        assert code == 0, err
        chaos = tmp_path / "flask" / "chaos"
        _validate([chaos], capsys)
        topology = _load(chaos / "topology.yaml")
        assert topology["name"] == "flaskapp"
        assert topology["allow_non_loopback"] is True
        assert set(topology["links"]) == {"proxy->backend", "backend->database"}  # type: ignore[arg-type]
        assert topology["links"]["backend->database"] == {"listen": "0.0.0.0:13306", "upstream": "database:3306"}  # type: ignore[index]
        assert topology["services"]["proxy"]["url"] == "http://127.0.0.1:8080"  # type: ignore[index]
        override = _load(chaos / "docker-compose.chaoslab.yml")
        toxiproxy = override["services"]["toxiproxy"]  # type: ignore[index]
        assert toxiproxy["networks"] == ["frontnet", "backnet"]
        assert "127.0.0.1:8474:8474" in toxiproxy["ports"]
        assert override["services"]["backend"]["environment"] == {  # type: ignore[index]
            "MYSQL_URL": "mysql://root:${DB_ROOT_PASSWORD:-secret}@toxiproxy:13306/example"
        }
        assert "proxy->backend: no environment variable of proxy names backend" in out
        config = json.loads((chaos / "toxiproxy.json").read_text())
        assert [p["name"] for p in config] == ["proxy->backend", "backend->database"]
        experiment = _load(chaos / "proxy-backend-latency.yaml")
        assert experiment["faults"] == [{"kind": "latency", "target": "proxy->backend", "latency": "${latency}"}]

    def test_node_redis_profiles_and_anchors(
        self, init: Callable[..., tuple[int, str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Merge keys are read; a profiled service is left out unless --profile names it."""
        compose = _write(tmp_path / "node", {"docker-compose.yml": NODE_REDIS})
        code, out, _ = init("--from-compose", str(compose), "--out", str(tmp_path / "node" / "chaos"))
        assert code == 0
        chaos = tmp_path / "node" / "chaos"
        _validate([chaos], capsys)
        topology = _load(chaos / "topology.yaml")
        assert list(topology["services"]) == ["app", "redis"]  # type: ignore[call-overload]
        assert topology["services"]["app"]["probe"]["url"] == "http://127.0.0.1:3000/healthz"  # type: ignore[index]
        assert "redis-commander: left out (its profiles are not active" in out
        override = _load(chaos / "docker-compose.chaoslab.yml")
        assert override["services"]["app"]["environment"] == {"REDIS_HOST": "toxiproxy", "REDIS_PORT": "16379"}  # type: ignore[index]
        code, out, _ = init(
            "--from-compose", str(compose), "--out", str(tmp_path / "node" / "debug"), "--profile", "debug"
        )
        assert code == 0
        override = _load(tmp_path / "node" / "debug" / "docker-compose.chaoslab.yml")
        assert override["services"]["redis-commander"]["environment"] == {  # type: ignore[index]
            "REDIS_HOSTS": "local:toxiproxy:16380"
        }

    def test_extends_and_link_choice(
        self, init: Callable[..., tuple[int, str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """extends (same file and another) carries environment; --link keeps only the chosen edge."""
        compose = _write(tmp_path / "ext", {"docker-compose.yml": EXTENDS, "base.yml": EXTENDS_BASE})
        code, _out, err = init(
            "--from-compose", str(compose), "--out", str(tmp_path / "ext" / "chaos"), "--link", "worker->rabbit"
        )
        assert code == 0, err
        chaos = tmp_path / "ext" / "chaos"
        _validate([chaos], capsys)
        topology = _load(chaos / "topology.yaml")
        assert topology["links"] == {"worker->rabbit": {"listen": "0.0.0.0:15673", "upstream": "rabbit:5672"}}
        override = _load(chaos / "docker-compose.chaoslab.yml")
        assert override["services"]["worker"]["environment"] == {"QUEUE_ADDR": "toxiproxy:15673"}  # type: ignore[index]
        code, _, err = init("--from-compose", str(compose), "--out", str(tmp_path / "x"), "--link", "api->nope")
        assert code == 2 and "--link: no dependency edge 'api->nope'" in err

    def test_demo_compose_host_network(
        self, init: Callable[..., tuple[int, str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The demo's own Compose file (host network, a one-shot job, its own Toxiproxy) still gives valid files."""
        code, out, err = init(
            "--from-compose", str(ROOT / "compose" / "docker-compose.yml"), "--out", str(tmp_path / "c")
        )
        assert code == 0, err
        _validate([tmp_path / "c"], capsys)
        topology = _load(tmp_path / "c" / "topology.yaml")
        assert "allow_non_loopback" not in topology
        assert topology["links"] == {"api->vector": {"listen": "127.0.0.1:38081", "upstream": "127.0.0.1:28081"}}
        assert "seed: left out (a one-shot job" in out


class TestRefusals:
    """Bad input: one line with file, line, field and value; exit 2; nothing written."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (
                "services:\n  web:\n    image: x\n    ports: ['80:abc']\n",
                ":4: services.web.ports.0: expected a port number 1-65535, got a string ('abc')",
            ),
            (
                "services:\n  web:\n    image: x\n    depends_on: [db]\n",
                ":4: services.web.depends_on: depends_on names no service 'db' (services: web)",
            ),
            ("web:\n  image: nginx\n", ":1: services: expected a 'services' mapping (Compose file format 1"),
            ("include: [other.yml]\nservices: {web: {image: x}}\n", ":1: include: 'include' is not supported"),
            ("services:\n  web:\n    imgae: nginx\n", ":3: services.web.imgae: unknown service field 'imgae'"),
            (
                "services:\n  web:\n    image: x\n    ports: ['${PORT:?set PORT}:80']\n",
                ":4: services.web.ports.0: variable PORT is required: set PORT",
            ),
            (
                "services:\n  web:\n    image: x\n    networks: [back]\n",
                ":4: services.web.networks: network 'back' is not declared",
            ),
            (
                "services:\n  web:\n    image: x\n    ports:\n      - {published: 80}\n",
                ":5: services.web.ports.0: expected 'target'",
            ),
        ],
    )
    def test_bad_compose(
        self, init: Callable[..., tuple[int, str, str]], tmp_path: Path, text: str, expected: str
    ) -> None:
        """Each problem is named where it is, and nothing is written."""
        compose = _write(tmp_path, {"docker-compose.yml": text})
        code, _out, err = init("--from-compose", str(compose), "--out", str(tmp_path / "chaos"))
        assert code == 2
        assert err.count("\n") == 1 and err.startswith(f"chaoslab: error: {compose}{expected}"), err
        assert not (tmp_path / "chaos").exists()

    def test_missing_env_file(self, init: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
        """A required env file that is missing is named."""
        compose = _write(tmp_path, {"docker-compose.yml": DJANGO})
        code, _, err = init("--from-compose", str(compose), "--out", str(tmp_path / "chaos"))
        assert (code, err) == (2, f"chaoslab: error: {tmp_path / '.env.db'}: env file not found\n")

    def test_refuses_to_overwrite_unless_forced(
        self, init: Callable[..., tuple[int, str, str]], tmp_path: Path
    ) -> None:
        """An existing file stops everything (no file is touched); --force overwrites."""
        out_dir = tmp_path / "chaos"
        out_dir.mkdir()
        (out_dir / "topology.yaml").write_text("mine\n", encoding="utf-8")
        code, _, err = init("--out", str(out_dir))
        assert code == 2 and "exists already (use --force" in err
        assert sorted(p.name for p in out_dir.iterdir()) == ["topology.yaml"]
        assert (out_dir / "topology.yaml").read_text() == "mine\n"
        code, _out, _ = init("--out", str(out_dir), "--force")
        assert code == 0 and (out_dir / "topology.yaml").read_text() != "mine\n"


def test_starter_validates(
    init: Callable[..., tuple[int, str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --from-compose: a commented topology and experiment that validate (quick form too)."""
    code, _out, _ = init("--out", str(tmp_path / "chaos"))
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "chaos").iterdir()) == ["app-db-latency.yaml", "topology.yaml"]
    assert "# launch:" in (tmp_path / "chaos" / "topology.yaml").read_text()
    _validate([tmp_path / "chaos"], capsys)


class TestComposeUnits:
    """The Compose reader's pieces, one rule at a time."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("${A}", "a"),
            ("$A-$B", "a-"),
            ("${B:-dflt}", "dflt"),
            ("${E:-dflt}", "dflt"),
            ("${E-dflt}", ""),
            ("${A:+set}", "set"),
            ("${B:+set}", ""),
            ("$$A", "$A"),
            ("${B:-${A}x}", "ax"),
            ("cost: 5$", "cost: 5$"),
        ],
    )
    def test_interpolate(self, text: str, expected: str) -> None:
        """Compose's substitution forms (E is set but empty, B is unset)."""
        from chaoslab.errors import SpecError
        from chaoslab.scaffold.compose import interpolate

        assert interpolate(text, {"A": "a", "E": ""}, lambda m: SpecError(m)) == expected

    def test_ports_short_syntax(self, tmp_path: Path) -> None:
        """Ranges, IPv6 hosts, UDP, bare container ports and a long form with a range."""
        from chaoslab.scaffold.compose import Port, read_compose

        text = """\
services:
  web:
    image: x
    ports:
      - "3000-3001:4000-4001"
      - "[::1]:8443:443"
      - "53:53/udp"
      - 9000
      - {target: 80, published: "8080-8090"}
"""
        compose = _write(tmp_path, {"docker-compose.yml": text})
        app = read_compose(compose, environ={})
        assert app.services["web"].ports == (
            Port(4000, 3000),
            Port(4001, 3001),
            Port(443, 8443, "::1"),
            Port(53, 53, "", "udp"),
            Port(9000, None),
            Port(80, None),
        )
        assert app.project == "test_ports_short_syntax0"  # the directory's name, as Compose does

    def test_project_name(self) -> None:
        """Compose's default project name: lower case, only a-z 0-9 _ -, no leading separator."""
        from chaoslab.scaffold.compose import project_name

        assert [project_name(Path(p)) for p in ("/x/My.App_1", "/x/-_Shop", "/x/...")] == ["myapp_1", "shop", "app"]

    def test_dotenv_and_shell_environment(self, tmp_path: Path) -> None:
        """The shell's variables win over .env; env files keep quotes out and comments away."""
        from chaoslab.scaffold.compose import read_compose

        text = "services:\n  web:\n    image: x\n    ports: ['${PORT}:80']\n    env_file: app.env\n"
        compose = _write(
            tmp_path,
            {
                "docker-compose.yml": text,
                ".env": "PORT=7000\n",
                "app.env": "# comment\nexport A='quoted # not a comment'\nB=plain # comment\nC\n",
            },
        )
        assert read_compose(compose, environ={}).services["web"].ports[0].published == 7000
        web = read_compose(compose, environ={"PORT": "7001"}).services["web"]
        assert web.ports[0].published == 7001
        assert {v.name: v.value for v in web.environment} == {"A": "quoted # not a comment", "B": "plain"}


def test_legacy_links(
    init: Callable[..., tuple[int, str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Old files use ``links: [db:database]``: a dependency edge, and the alias is a name of db."""
    text = """\
version: "2"
services:
  app:
    image: wordpress:6
    ports: ["8080:80"]
    links: ["db:mysql"]
    environment:
      WORDPRESS_DB_HOST: mysql:3306
  db:
    image: mysql:8
"""
    compose = _write(tmp_path / "wp", {"docker-compose.yml": text})
    code, out, err = init("--from-compose", str(compose), "--out", str(tmp_path / "wp" / "chaos"))
    assert code == 0, err
    _validate([tmp_path / "wp" / "chaos"], capsys)
    assert "link  app->db: proxy :13306 → db:3306; app re-pointed through WORDPRESS_DB_HOST" in out
    override = _load(tmp_path / "wp" / "chaos" / "docker-compose.chaoslab.yml")
    assert override["services"]["app"]["environment"] == {"WORDPRESS_DB_HOST": "toxiproxy:13306"}  # type: ignore[index]
