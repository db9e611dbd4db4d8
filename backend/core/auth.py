"""Who is calling: JWT verification (HS256 secret or a cached JWKS) into a Principal.

Pure of HTTP: :class:`TokenVerifier` takes a token string and returns a
:class:`Principal` or raises :class:`~backend.core.errors.Unauthorized`. The FastAPI
dependencies that read the ``Authorization`` header or ``?token=`` live in
:mod:`backend.app.deps`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import jwt
import structlog

from backend.core.errors import Unauthorized
from backend.core.settings import CoreSettings

log = structlog.get_logger(__name__)

ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class Role(StrEnum):
    USER = "user"
    AGENT = "agent"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    role: Role
    anonymous: bool = False

    @property
    def is_privileged(self) -> bool:
        """Agents and services may publish events and read any session."""
        return self.role in (Role.AGENT, Role.SERVICE)

    def may_access(self, owner: str | None) -> bool:
        return self.is_privileged or self.anonymous or owner is None or owner == self.sub


ANONYMOUS = Principal(sub="anonymous", role=Role.SERVICE, anonymous=True)


class JwksCache:
    """Fetches a JWKS document over HTTP and keeps it for ``ttl_s``.

    An unknown ``kid`` forces one refresh (keys rotate), rate-limited so a stream of
    forged tokens cannot turn into a stream of requests to the identity provider.
    """

    def __init__(self, url: str, http: httpx.AsyncClient, ttl_s: float) -> None:
        self._url = url
        self._http = http
        self._ttl_s = ttl_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        now = time.monotonic()
        stale = now - self._fetched_at > self._ttl_s
        unknown = kid not in self._keys and now - self._fetched_at > 10.0
        if not self._keys or stale or unknown:
            await self._refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        try:
            return self._keys[kid or ""]
        except KeyError:
            raise Unauthorized("token signed by an unknown key", code="invalid_token") from None

    async def _refresh(self) -> None:
        async with self._lock:
            try:
                response = await self._http.get(self._url, timeout=5.0)
                response.raise_for_status()
                keyset = jwt.PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                log.warning("jwks_fetch_failed", url=self._url, error=str(exc))
                if not self._keys:
                    raise Unauthorized(
                        "cannot verify tokens right now", code="jwks_unavailable"
                    ) from None
                return
            self._keys = {k.key_id or "": k for k in keyset.keys}
            self._fetched_at = time.monotonic()


class TokenVerifier:
    def __init__(self, settings: CoreSettings, http: httpx.AsyncClient) -> None:
        self._secret = (
            settings.auth_jwt_secret.get_secret_value() if settings.auth_jwt_secret else None
        )
        self._jwks = (
            JwksCache(settings.auth_jwks_url, http, settings.auth_jwks_cache_s)
            if settings.auth_jwks_url
            else None
        )
        self._audience = settings.auth_audience
        self._issuer = settings.auth_issuer
        self._leeway = settings.auth_leeway_s
        self.enabled = settings.auth_configured

    async def verify(self, token: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS
        if not token:
            raise Unauthorized("a bearer token is required", code="missing_token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the token is malformed", code="invalid_token") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._secret:
            key, algorithms = self._secret, ["HS256"]
        elif algorithm in ASYMMETRIC_ALGORITHMS and self._jwks:
            key, algorithms = await self._jwks.key_for(header.get("kid")), [algorithm]
        else:
            raise Unauthorized(
                f"tokens signed with {algorithm} are not accepted", code="invalid_token"
            )
        claims = self._decode(token, key, algorithms)
        return _principal(claims)

    def _decode(self, token: str, key: Any, algorithms: list[str]) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["sub", "exp"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", code="token_expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(
                "the token is for another audience", code="invalid_audience"
            ) from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the token has the wrong issuer", code="invalid_issuer") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("the token signature is invalid", code="invalid_signature") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is invalid: {exc}", code="invalid_token") from None
        return claims


def _principal(claims: dict[str, Any]) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized("the token has no subject", code="invalid_token")
    raw_role = claims.get("role", Role.USER.value)
    try:
        role = Role(raw_role)
    except ValueError:
        role = Role.USER
    return Principal(sub=sub, role=role)


def mint_token(
    secret: str,
    sub: str,
    role: Role = Role.USER,
    ttl_s: int = 3600,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """A development HS256 token (``pipeline-backend token``); also used by tests."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "role": role.value, "iat": now, "exp": now + ttl_s}
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")
