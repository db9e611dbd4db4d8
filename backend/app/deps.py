"""FastAPI dependencies: typed access to the lifespan's services and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from backend.app.auth import Principal
from backend.app.errors import Forbidden
from backend.app.services import Services

_bearer = HTTPBearer(auto_error=False, description="A JWT: HS256 or from the JWKS")


async def get_services(connection: HTTPConnection) -> Services:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a
    # thread hop on every request and WebSocket handshake.
    services: Services = connection.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = credentials.credentials if credentials else None
    principal = await services.tokens.verify(token)
    request.state.principal = principal
    return principal


async def require_privileged(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if not principal.is_privileged:
        raise Forbidden("only agent or service tokens may do this", code="forbidden_role")
    return principal


async def websocket_principal(connection: HTTPConnection, services: ServicesDep) -> Principal:
    """For WebSockets: ``?token=`` (browsers cannot set headers), else the header."""
    token = connection.query_params.get("token")
    if not token:
        header = connection.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    return await services.tokens.verify(token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
PrivilegedDep = Annotated[Principal, Depends(require_privileged)]
