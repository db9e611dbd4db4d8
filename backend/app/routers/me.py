"""Who the service thinks the caller is: lets a frontend check its token."""

from __future__ import annotations

from fastapi import APIRouter

from backend.app.deps import PrincipalDep

router = APIRouter(prefix="/api", tags=["auth"])


@router.get("/me")
async def me(principal: PrincipalDep) -> dict[str, object]:
    return {"sub": principal.sub, "role": principal.role.value, "anonymous": principal.anonymous}
