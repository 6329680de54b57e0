"""docker-compose.yml cannot run here (no Docker engine), so its agreement with the code is
checked instead: services, the environment the worker reads, ports, and what the image copies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from tether import constants
from tether.config import ENVIRONMENT_VARIABLES, Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def resolve(value: str) -> str:
    """Apply compose's ${VAR:-default} substitution with the defaults."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def env_of(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: resolve(str(v)) for k, v in env.items()}


def published(service: str) -> dict[int, int]:
    ports = {}
    for spec in SERVICES[service].get("ports", []):
        host, container = str(spec).split(":")[-2:]
        ports[int(container)] = int(host)
    return ports


def bound(service: str) -> dict[int, str]:
    """The host address each published port listens on ("" for every interface)."""
    found = {}
    for spec in SERVICES[service].get("ports", []):
        parts = str(spec).split(":")
        found[int(parts[-1])] = parts[0] if len(parts) == 3 else ""
    return found


def test_the_stack_has_its_services() -> None:
    assert {"postgresql", "temporal", "temporal-ui", "worker", "gateway", "keys"} <= set(SERVICES)
    assert {"temporal-schema", "temporal-namespace", "prometheus"} <= set(SERVICES)


def test_temporal_runs_the_server_image_on_a_schema_a_one_shot_job_set_up() -> None:
    """Not the deprecated auto-setup image: the server, after admin-tools made its schema on
    the stack's PostgreSQL; then the namespace the workers use is made."""
    images = {name: str(svc.get("image", "")) for name, svc in SERVICES.items()}
    assert not any("auto-setup" in image for image in images.values()), images
    assert resolve(images["temporal"]).startswith("temporalio/server:")
    for job in ("temporal-schema", "temporal-namespace"):
        assert resolve(images[job]).startswith("temporalio/admin-tools:")
        script = Path(SERVICES[job]["command"][-1]).name
        assert (ROOT / "deploy" / "temporal" / script).exists(), script
        assert "./deploy/temporal:/scripts:ro" in SERVICES[job]["volumes"]
    # Both the server and its admin-tools at the same Temporal version.
    version = resolve(images["temporal"]).split(":")[1]
    assert resolve(images["temporal-schema"]).split(":")[1].startswith(version)
    assert SERVICES["temporal"]["depends_on"]["temporal-schema"] == {
        "condition": "service_completed_successfully"
    }
    schema = env_of("temporal-schema")
    pg = env_of("postgresql")
    assert (
        schema["POSTGRES_SEEDS"] == "postgresql" and schema["POSTGRES_USER"] == pg["POSTGRES_USER"]
    )
    assert schema["SQL_PASSWORD"] == pg["POSTGRES_PASSWORD"]
    # The namespace made is the one the workers and the gateway connect to, on the same server.
    namespace = env_of("temporal-namespace")
    assert namespace["TEMPORAL_NAMESPACE"] == env_of("worker")["TEMPORAL_NAMESPACE"]
    assert namespace["TEMPORAL_ADDRESS"] == env_of("worker")["TEMPORAL_ADDRESS"]
    for service in ("worker", "gateway"):
        needs = SERVICES[service]["depends_on"]["temporal-namespace"]
        assert needs == {"condition": "service_completed_successfully"}, service


def test_the_namespace_keeps_closed_workflows_as_long_as_tether_toml_says() -> None:
    """The namespace job's retention is [retention] temporal_days' default (the workers set it
    from tether.toml when they start; the two agree unless the founder changes it)."""
    from tether.config import Retention

    script = (ROOT / "deploy" / "temporal" / "create-namespace.sh").read_text()
    assert f"--retention {Retention().temporal_days}d" in script


def test_prometheus_scrapes_every_worker_replica_where_it_serves_metrics() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    (found,) = job["dns_sd_configs"]
    bind = Settings.from_env(env_of("worker")).metrics_bind
    assert bind is not None
    port = int(bind.rpartition(":")[2])
    assert found == {"names": ["worker"], "type": "A", "port": port}
    assert str(port) in SERVICES["worker"]["expose"]
    assert (
        "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in SERVICES["prometheus"]["volumes"]
    )
    assert set(bound("prometheus").values()) == {"127.0.0.1"}


def test_worker_environment_is_what_settings_reads() -> None:
    env = env_of("worker")
    assert set(env) <= set(ENVIRONMENT_VARIABLES), set(env) - set(ENVIRONMENT_VARIABLES)
    settings = Settings.from_env(env)
    assert settings.task_queue == constants.DEFAULT_TASK_QUEUE
    assert settings.namespace == constants.DEFAULT_NAMESPACE
    assert settings.temporal_address is not None and settings.database_url is not None


def test_worker_reaches_temporal_and_the_ui_points_at_the_same_server() -> None:
    address = env_of("worker")["TEMPORAL_ADDRESS"]
    host, port = address.split(":")
    assert host in SERVICES and int(port) == constants.TEMPORAL_PORT
    assert published(host)[constants.TEMPORAL_PORT] == constants.TEMPORAL_PORT
    assert env_of("temporal-ui")["TEMPORAL_ADDRESS"] == address
    ui_port = published("temporal-ui")[8080]
    assert ui_port == constants.TEMPORAL_UI_PORT
    assert str(ui_port) in env_of("temporal-ui")["TEMPORAL_CORS_ORIGINS"]


def test_database_url_matches_the_postgresql_service() -> None:
    url = urlparse(env_of("worker")["DATABASE_URL"])
    pg = env_of("postgresql")
    assert url.hostname in SERVICES and url.hostname == "postgresql"
    assert url.username == pg["POSTGRES_USER"] and url.password == pg["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == pg["POSTGRES_DB"] and url.port == 5432
    temporal = env_of("temporal")
    assert temporal["POSTGRES_SEEDS"] == "postgresql"
    assert temporal["POSTGRES_PWD"] == pg["POSTGRES_PASSWORD"]


def test_worker_scales_out() -> None:
    worker = SERVICES["worker"]
    assert worker["command"] == ["python", "worker.py"] and (ROOT / "worker.py").exists()
    # Every replica holds the same workers' key: what one seals, another verifies.
    assert env_of("worker")["TETHER_WORKER_KEY"].startswith("/var/lib/tether-keys/")
    assert "tether-keys:/var/lib/tether-keys:ro" in worker["volumes"]
    assert worker["deploy"]["replicas"] >= 2
    # Fixed names or host ports would make a second replica fail to start.
    assert "container_name" not in worker and "ports" not in worker


def test_image_copies_every_package_the_project_declares() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    # `tether*`: the package and its subpackages, copied as one folder.
    packages = {p.rstrip("*").rstrip(".") for p in setuptools["packages"]["find"]["include"]}
    assert packages == {"tether", "workflows", "activities"}
    for package in packages:
        assert re.search(rf"^COPY {package} ", dockerfile, re.MULTILINE), package
    for module in setuptools["py-modules"]:
        assert re.search(rf"^COPY {module}\.py ", dockerfile, re.MULTILINE), module
    assert SERVICES["worker"]["build"] == "."


def test_agents_reach_only_the_gateway() -> None:
    """The gateway is published for the agents; Temporal, its UI and PostgreSQL only on the
    host's loopback (the founder's CLI), and Temporal's HTTP API not at all."""
    from tether.hook import claude_code as hooks

    env = env_of("gateway")
    assert set(env) <= set(ENVIRONMENT_VARIABLES), set(env) - set(ENVIRONMENT_VARIABLES)
    settings = Settings.from_env(env)
    port = int(settings.gateway_bind.rpartition(":")[2])
    assert port == constants.GATEWAY_PORT and published("gateway")[port] == port
    assert bound("gateway")[port] == ""
    assert f"http://127.0.0.1:{constants.GATEWAY_PORT}" == hooks.DEFAULT_GATEWAY_URL
    assert SERVICES["gateway"]["command"] == ["tether", "gateway"]
    assert settings.gateway_key is not None and str(settings.gateway_key).startswith(
        "/var/lib/tether-keys/"
    )
    assert env["TEMPORAL_ADDRESS"] == env_of("worker")["TEMPORAL_ADDRESS"]
    assert env["DATABASE_URL"] == env_of("worker")["DATABASE_URL"]
    for service in ("temporal", "postgresql", "temporal-ui"):
        assert set(bound(service).values()) == {"127.0.0.1"}, service
    assert constants.TEMPORAL_HTTP_PORT not in published("temporal")
    assert "FRONTEND_HTTP_PORT" not in env_of("temporal")


def test_the_keys_job_makes_what_the_gateway_and_workers_read() -> None:
    job = " ".join(SERVICES["keys"]["command"])
    assert "tether keygen --role" in job and "worker gateway" in job
    assert env_of("keys")["TETHER_HOME"] == "/var/lib/tether-keys"
    for service in ("gateway", "worker"):
        needs = SERVICES[service]["depends_on"]["keys"]
        assert needs == {"condition": "service_completed_successfully"}
