"""CORS and the error envelope, as a browser and a client see them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import APIRouter

from backend.app.settings import Settings
from backend.core.errors import LimitExceeded

ALLOWED = "https://pipeline.example.app"


async def test_cors_preflight_allows_a_listed_origin_with_credentials(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings(frontend_url=f"{ALLOWED},http://localhost:3000"))
    response = await running.client.options(
        "/api/health",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_cors_preflight_lets_a_browser_send_an_api_key(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    """The TypeScript client sends X-API-Key when given a key (CONTRACT §5)."""
    running = await start_app(make_settings(frontend_url=ALLOWED))
    response = await running.client.options(
        "/api/sessions/render-1/events",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-api-key",
        },
    )
    assert response.status_code == 200, response.text
    assert "x-api-key" in response.headers["access-control-allow-headers"].lower()


async def test_cors_preflight_refuses_an_unlisted_origin(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings(frontend_url=ALLOWED))
    response = await running.client.options(
        "/api/health",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    simple = await running.client.get("/api/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_unknown_path_is_an_enveloped_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such resource"}}


async def test_wrong_method_is_an_enveloped_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_unhandled_errors_and_domain_errors_are_enveloped(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    running = await start_app(make_settings())
    router = APIRouter()

    @router.get("/api/explode")
    async def explode() -> None:
        raise RuntimeError("secret internal detail")

    @router.get("/api/busy")
    async def busy() -> None:
        raise LimitExceeded("too many interviews", retry_after_s=7)

    @router.get("/api/typed/{n}")
    async def typed(n: int) -> dict[str, int]:
        return {"n": n}

    running.app.include_router(router)

    boom = await running.client.get("/api/explode")
    assert boom.status_code == 500
    assert boom.json() == {
        "error": {"code": "internal_error", "message": "the server failed to handle this request"}
    }
    assert "secret internal detail" not in boom.text

    limited = await running.client.get("/api/busy")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["code"] == "limit_exceeded"

    invalid = await running.client.get("/api/typed/seven")
    assert invalid.status_code == 422
    body = invalid.json()["error"]
    assert body["code"] == "validation_error"
    assert body["details"][0]["field"] == "path.n"


async def test_openapi_and_docs_answer_at_the_root_and_under_api(
    client: httpx.AsyncClient,
) -> None:
    root = await client.get("/openapi.json")
    behind_gateway = await client.get("/api/openapi.json")
    assert root.status_code == behind_gateway.status_code == 200
    assert root.json() == behind_gateway.json()
    assert "/api/sessions" in root.json()["paths"]
    for page, document in (("/docs", "/openapi.json"), ("/api/docs", "/api/openapi.json")):
        response = await client.get(page)
        assert response.status_code == 200
        # Each page loads the document from its own prefix (the /api/ one behind a gateway).
        assert f"'{document}'" in response.text
