"""FastAPI dependencies: typed access to the app state (the shared clients) and the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from backend.app.client_ip import client_ip, trusted_proxies
from backend.app.state import AppState
from backend.core.auth import Principal
from backend.core.errors import Forbidden
from backend.core.rate_limits import LimitName

_bearer = HTTPBearer(auto_error=False, description="A JWT: HS256 or from the JWKS")
_api_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="An API key (pipeline-backend apikey create); also `Authorization: ApiKey <key>`",
)


def app_state(connection: HTTPConnection) -> AppState:
    state: AppState = connection.state.services  # the lifespan yields it as "services"
    return state


async def get_app_state(connection: HTTPConnection) -> AppState:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a
    # thread hop on every request and WebSocket handshake.
    return app_state(connection)


StateDep = Annotated[AppState, Depends(get_app_state)]


def _header_api_key(connection: HTTPConnection) -> str | None:
    """``X-API-Key: <key>`` or ``Authorization: ApiKey <key>``."""
    key = connection.headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "apikey" and value.strip() else None


# The dependencies below read the state from the request rather than through StateDep:
# FastAPI solves a sub-dependency again wherever it appears in a route's tree (the cache
# spares only the call), at ~10 µs each on every request.
async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    token = credentials.credentials if credentials else None
    auth = app_state(request).auth
    principal = await auth.authenticate(token=token, api_key=_header_api_key(request))
    request.state.principal = principal
    return principal


async def require_privileged(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    _check_privileged(principal)
    return principal


def _check_privileged(principal: Principal) -> None:
    if not principal.is_privileged:
        raise Forbidden("only agent or service tokens may do this", code="forbidden_role")


async def websocket_principal(connection: HTTPConnection, state: StateDep) -> Principal:
    """For WebSockets: ``?token=``/``?api_key=`` (browsers cannot set headers), else headers."""
    api_key = connection.query_params.get("api_key") or _header_api_key(connection)
    token = connection.query_params.get("token")
    if not token:
        header = connection.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else None
    return await state.auth.authenticate(token=token, api_key=api_key)


def caller_ip(connection: HTTPConnection, state: AppState) -> str | None:
    """The client's address (X-Forwarded-For counts only from TRUSTED_PROXIES)."""
    peer = connection.client.host if connection.client else None
    trusted = trusted_proxies(state.settings.trusted_proxies)
    return client_ip(peer, connection.headers.get("x-forwarded-for"), trusted)


def rate_limit(name: LimitName, *, privileged: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A route dependency: counts the request against ``name``'s limits, or 429; gives the
    caller. ``privileged``: only agents and services (403 for others, before counting)."""

    async def check(
        request: Request, principal: Annotated[Principal, Depends(get_principal)]
    ) -> Principal:
        if privileged:
            _check_privileged(principal)
        state = app_state(request)
        if state.limiter.enabled:
            await state.limiter.check(name, principal=principal, ip=caller_ip(request, state))
        return principal

    return check


PrincipalDep = Annotated[Principal, Depends(get_principal)]
PrivilegedDep = Annotated[Principal, Depends(require_privileged)]
