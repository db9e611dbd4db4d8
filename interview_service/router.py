"""REST surface of the interview service (CONTRACT §3), mounted under /api/interview."""

from __future__ import annotations

from fastapi import APIRouter

from backend.app.deps import ServicesDep

router = APIRouter(prefix="/api/interview", tags=["interview"])


@router.get("/health")
async def interview_health(services: ServicesDep) -> dict[str, str]:
    """The interview service's own liveness, in the same shape as /health."""
    return {
        "status": "healthy",
        "environment": services.settings.environment.value,
        "version": services.settings.version,
    }
