"""Liveness, readiness and Prometheus metrics (CONTRACT §1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from backend.app.deps import StateDep
from backend.core.metrics import CONTENT_TYPE_LATEST

router = APIRouter(tags=["operations"])


@router.get("/health")
@router.get("/api/health")
async def health(state: StateDep) -> dict[str, str]:
    """Liveness: answers while the process can serve; never waits on a dependency."""
    settings = state.settings
    return {
        "status": "healthy",
        "environment": settings.environment.value,
        "version": settings.version,
    }


_UNREADY: dict[int | str, dict[str, Any]] = {
    503: {"description": "A dependency does not answer; the body lists each check"}
}


@router.get("/health/ready", responses=_UNREADY)
@router.get("/api/health/ready", responses=_UNREADY)
async def ready(state: StateDep) -> JSONResponse:
    """Readiness: 200 when every configured dependency answers, else 503."""
    results = await state.health.run()
    ok = all(result.ok for result in results)
    body: dict[str, Any] = {
        "status": "ready" if ok else "unready",
        "environment": state.settings.environment.value,
        "version": state.settings.version,
        "checks": {result.name: result.as_dict() for result in results},
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
