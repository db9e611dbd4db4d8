"""Who the service thinks the caller is: lets a frontend check its token."""

from __future__ import annotations

from fastapi import APIRouter

from backend.app.deps import PrincipalDep
from backend.app.http_errors import error_responses

router = APIRouter(prefix="/api", tags=["auth"])


@router.get("/me", responses=error_responses(401))
async def me(principal: PrincipalDep) -> dict[str, object]:
    return {"sub": principal.sub, "role": principal.role.value, "anonymous": principal.anonymous}
