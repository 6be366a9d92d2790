"""docker-compose.yml agrees with the code: services, settings, ports, health, scalability."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from longtasks.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
APP_SERVICES = ("api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_the_services_exist(compose: dict[str, Any]) -> None:
    assert {"postgres", "temporal", "temporal-ui", "api", "worker"} <= set(compose["services"])


def test_every_app_env_var_is_a_setting(compose: dict[str, Any]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for name in (*APP_SERVICES, "migrate"):
        service = compose["services"].get(name)
        if service is None:
            continue
        unknown = set(_env(service)) - fields
        assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"


def test_ports_agree_with_the_settings(compose: dict[str, Any]) -> None:
    defaults = Settings()
    services = compose["services"]
    api_env = _env(services["api"])
    api_port = int(api_env.get("API_PORT", defaults.api_port))
    assert api_port == defaults.api_port
    assert any(str(p).endswith(f":{api_port}") for p in services["api"]["ports"])
    assert any(str(p).startswith("7233:") for p in services["temporal"].get("ports", []))
    assert _env(services["worker"])["TEMPORAL_ADDRESS"].endswith(":7233")
    worker_env = _env(services["worker"])
    metrics_port = int(worker_env.get("WORKER_METRICS_PORT", defaults.worker_metrics_port))
    assert metrics_port == defaults.worker_metrics_port


def test_healthchecks(compose: dict[str, Any]) -> None:
    for name in ("postgres", "temporal", "api", "worker"):
        assert "healthcheck" in compose["services"][name], f"{name} has no healthcheck"
    for name in ("api", "worker", "migrate"):
        depends = compose["services"][name].get("depends_on", {})
        assert isinstance(depends, dict)
        assert all("condition" in d for d in depends.values()), name


def test_the_worker_scales(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker  # `--scale worker=N` would collide on a published port
    assert int(worker.get("stop_grace_period", "40s").rstrip("s")) >= 30


def test_postgres_connections_cover_the_pools_at_twice_the_workers(
    compose: dict[str, Any],
) -> None:
    """docs/capacity.md: each process's pool opens up to twice DB_POOL_SIZE (the overflow);
    the server takes the API's, twice the configured workers' (`--scale worker=2N`) and room
    for Temporal's own pools and the migration job."""
    services = compose["services"]
    command = services["postgres"]["command"]
    settings = dict(arg.split("=", 1) for arg in command if "=" in str(arg))
    max_connections = int(settings["max_connections"])
    defaults = Settings()

    def pool(name: str) -> int:
        return 2 * int(_env(services[name]).get("DB_POOL_SIZE", defaults.db_pool_size))

    workers = int(services["worker"].get("deploy", {}).get("replicas", 1))
    needed = pool("api") + 2 * workers * pool("worker") + 50
    assert max_connections >= needed, (max_connections, needed)
