"""``/openapi.json`` and ``/docs`` beside the ``/api/`` forms (CONTRACT §1).

FastAPI serves one OpenAPI URL; API Gateway's ``/api/{proxy+}`` needs ``/api/...`` and
direct clients expect the root paths, so both serve the same document and docs page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi_document(request: Request) -> dict[str, Any]:
    return request.app.openapi()  # type: ignore[no-any-return]


@router.get("/docs")
async def docs_page(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - docs")
