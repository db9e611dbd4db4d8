"""Schemathesis against the service's own OpenAPI document, with and without a token.

A real uvicorn process with auth on (HS256) and Redis; every operation gets generated
requests that fit its schema and requests that do not. The service must answer each with
no server error (a 503 only as the deliberate "retry later", in the envelope), with
every error in the envelope, and with a status the document lists for that operation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import status_code_conformance

from backend.core.auth import Role, mint_token
from tests.conftest import JWT_SECRET, TEST_REDIS_URL
from tests.support.uvicorn_process import ServiceProcess

EXAMPLES_PER_OPERATION = 25
INTERNALS = ("Traceback", "redis", "Redis", "ERR ", "Error ", "Exception", "NoneType")
DELIBERATE_503 = {"/health/ready", "/api/health/ready"}  # the readiness body, not an error


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceProcess]:
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    process = ServiceProcess(
        {
            "AUTH_JWT_SECRET": JWT_SECRET,
            "REDIS_URL": TEST_REDIS_URL,
            "REDIS_PREFIX": prefix,
            "INTERVIEW_CONVERSATION": "greeter",
            "LOG_LEVEL": "warning",
        }
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        client = redis.Redis.from_url(TEST_REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
        client.close()


def _problems(path: str, response: Any) -> list[str]:
    status = response.status_code
    if status < 400:
        return []
    if path in DELIBERATE_503 and status == 503:
        return []
    problems = []
    if status >= 500 and status != 503:
        problems.append(f"server error {status}")
    try:
        error = response.json()["error"]
        assert isinstance(error["code"], str)
        assert isinstance(error["message"], str)
        assert error["code"]
    except Exception:
        problems.append(f"{status} not in the envelope: {response.text[:200]!r}")
    if any(marker in response.text for marker in INTERNALS):
        problems.append(f"{status} leaks internals: {response.text[:200]!r}")
    return problems


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("caller", ["anonymous", "user", "agent"])
def test_no_server_errors_and_every_error_in_the_envelope(
    service: ServiceProcess, caller: str
) -> None:
    document = httpx.get(f"{service.base_url}/api/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    headers = {}
    if caller != "anonymous":
        role = Role.AGENT if caller == "agent" else Role.USER
        headers["Authorization"] = f"Bearer {mint_token(JWT_SECRET, f'fuzz-{caller}', role)}"
    found: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, "the document lost its operations"
    for operation in operations:
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def exercise(case: Any) -> None:
            response = case.call(base_url=service.base_url, headers=headers, timeout=15)
            problems = _problems(case.operation.path, response)
            try:
                case.validate_response(response, checks=[status_code_conformance])
            except (Exception, BaseExceptionGroup) as exc:
                problems.append(f"undocumented status: {str(exc).splitlines()[0][:200]}")
            found.extend(f"{case.method} {case.formatted_path}: {problem}" for problem in problems)

        exercise()
    assert not found, "\n".join(sorted(set(found))[:40])
    assert httpx.get(f"{service.base_url}/health", timeout=5).status_code == 200
