"""docker-compose.yml (the full local stack) is a valid Compose file and wires the stack.

No container engine or compose plugin is installed here, so `docker compose config` is
replaced by the Compose Specification's own JSON schema (compose-spec.json, vendored
from the compose-spec/compose-spec repository, Apache-2.0), plus checks of what the
stack must hold together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())  # merges `<<:` keys
    return loaded


def _errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.turn.yml"])
def test_compose_files_follow_the_compose_specification(name: str) -> None:
    assert _errors(_load(name)) == []


def test_the_schema_catches_a_misspelt_key() -> None:
    compose = _load("docker-compose.yml")
    compose["services"]["service"]["helthcheck"] = compose["services"]["service"].pop("healthcheck")
    assert any("helthcheck" in error for error in _errors(compose))


def test_stack_has_the_service_two_workers_redis_coturn_and_s3() -> None:
    services = _load("docker-compose.yml")["services"]
    assert set(services) == {"service", "worker", "redis", "coturn", "s3", "s3-bucket"}
    worker = services["worker"]
    assert worker["command"] == ["pipeline-backend", "worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["image"] == services["service"]["image"]
    assert "8000" not in json.dumps(worker.get("ports", []))


def test_app_containers_share_redis_and_the_turn_secret_with_coturn() -> None:
    services = _load("docker-compose.yml")["services"]
    for name in ("service", "worker"):
        env = services[name]["environment"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["S3_BUCKET"] == "pipeline-local"
        secret = env["TURN_SECRET"]
        assert f"--static-auth-secret={secret}" in services["coturn"]["command"]
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_coturn_runs_the_shipped_configuration() -> None:
    coturn = _load("docker-compose.yml")["services"]["coturn"]
    assert "./docker/coturn/turnserver.conf:/etc/coturn/turnserver.conf:ro" in coturn["volumes"]
    assert coturn["command"][:2] == ["-c", "/etc/coturn/turnserver.conf"]
    turn = _load("docker-compose.turn.yml")["services"]["coturn"]
    assert coturn["image"] == turn["image"]


def test_service_port_and_redis_stay_on_loopback() -> None:
    services = _load("docker-compose.yml")["services"]
    assert services["service"]["ports"] == ["127.0.0.1:8000:8000"]
    assert services["redis"]["ports"] == ["127.0.0.1:6379:6379"]
    assert "noeviction" in services["redis"]["command"]
