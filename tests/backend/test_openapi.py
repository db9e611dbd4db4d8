"""The OpenAPI document lists each endpoint's real error statuses with the envelope
(CONTRACT §1), and the envelope at run time is what the document says."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from backend.app.http_errors import ErrorEnvelope

ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}
DELIBERATE = {("/health/ready", "503"), ("/api/health/ready", "503")}  # the checks, not an error


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


async def test_every_error_status_is_documented_with_the_envelope(
    document: dict[str, Any],
) -> None:
    for path, method, operation in _operations(document):
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        assert "500" in errors, (method, path)
        for status, response in errors.items():
            if (path, status) in DELIBERATE:
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == ENVELOPE, (method, path, status, schema)


async def test_validation_errors_are_documented_as_the_envelope(
    document: dict[str, Any],
) -> None:
    text = str(document)
    assert "HTTPValidationError" not in text
    assert "'detail'" not in text
    posts = [op for path, method, op in _operations(document) if method == "post"]
    assert all("422" in op["responses"] for op in posts)
    envelope = document["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["required"] == ["error"]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/api/sessions", {"401", "409", "422", "503"}),
        ("get", "/api/sessions/{session_id}", {"401", "403", "404", "503"}),
        ("get", "/api/sessions/{session_id}/events", {"401", "403", "404", "422"}),
        ("post", "/api/sessions/{session_id}/events", {"400", "401", "403", "413", "503"}),
        ("post", "/api/interview/start", {"400", "401", "403", "413", "422", "503"}),
        ("post", "/api/interview/{interview_id}/rtc/offer", {"400", "404", "409", "413", "502"}),
        ("post", "/api/interview/{interview_id}/rtc/answer", {"400", "404", "409"}),
        ("get", "/api/interview/{interview_id}/status", {"401", "403", "404"}),
        ("get", "/api/me", {"401"}),
    ],
)
async def test_endpoints_list_their_real_statuses(
    document: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    documented = set(document["paths"][path][method]["responses"])
    assert statuses <= documented, statuses - documented


async def test_a_runtime_422_matches_the_documented_schema(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/sessions", json={"prompt": ""})
    assert response.status_code == 422
    body = ErrorEnvelope.model_validate(response.json())
    assert body.error.code == "validation_error"
    assert body.error.details
    assert body.error.details[0].field == "prompt"


async def test_the_document_and_docs_are_served_at_both_paths(client: httpx.AsyncClient) -> None:
    api = (await client.get("/api/openapi.json")).json()
    assert (await client.get("/openapi.json")).json() == api
    for path in ("/docs", "/api/docs"):
        page = await client.get(path)
        assert page.status_code == 200
        assert "swagger" in page.text.lower()
