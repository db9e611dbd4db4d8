"""The OpenAPI document and its interactive docs, at the root and under ``/api/``.

The root forms are what a newcomer tries first; the ``/api/`` forms are the ones that
work behind API Gateway's ``ANY /api/{proxy+}``. Each docs page loads the document from
its own prefix, so it works wherever it is reached.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
@router.get("/api/openapi.json")
async def openapi_document(request: Request) -> dict[str, Any]:
    return request.app.openapi()  # type: ignore[no-any-return]


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Pipeline backend")


@router.get("/api/docs")
async def api_docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/api/openapi.json", title="Pipeline backend")
