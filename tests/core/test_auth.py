"""JWT auth (CONTRACT §5) through a running app: HS256, and RS256 via a JWKS served locally."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from backend.app.settings import Settings
from backend.core.auth import Role, mint_token
from tests.conftest import JWT_SECRET

AUDIENCE = "pipeline-frontend"
ISSUER = "https://issuer.test/"


@pytest.fixture
async def hs_app(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> Any:
    return await start_app(
        make_settings(auth_jwt_secret=JWT_SECRET, auth_audience=AUDIENCE, auth_issuer=ISSUER)
    )


def _token(**overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "role": "user",
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    secret = claims.pop("_secret", JWT_SECRET)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


async def test_valid_token_identifies_the_caller(hs_app: Any) -> None:
    response = await hs_app.client.get("/api/me", headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code == 200
    assert response.json() == {"sub": "alice", "role": "user", "anonymous": False}


async def test_agent_role_is_carried(hs_app: Any) -> None:
    token = mint_token(JWT_SECRET, "renderer", Role.AGENT, audience=AUDIENCE, issuer=ISSUER)
    response = await hs_app.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.json()["role"] == "agent"


# Tokens are minted when the test runs, not at collection: a long suite would expire them.
@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        pytest.param(lambda: None, "missing_token", id="absent"),
        pytest.param(lambda: _token(exp=int(time.time()) - 3600), "token_expired", id="expired"),
        pytest.param(lambda: _token(aud="someone-else"), "invalid_audience", id="wrong-audience"),
        pytest.param(lambda: _token(iss="https://evil.test/"), "invalid_issuer", id="wrong-issuer"),
        pytest.param(
            lambda: _token(_secret="not-the-secret-not-the-secret-!!"),
            "invalid_signature",
            id="wrong-signature",
        ),
        pytest.param(lambda: "not.a.jwt", "invalid_token", id="garbage"),
        pytest.param(lambda: _token(sub=None), "invalid_token", id="no-subject"),
    ],
)
async def test_bad_tokens_get_401_with_a_reason(
    hs_app: Any, make_token: Callable[[], str | None], code: str
) -> None:
    token = make_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await hs_app.client.get("/api/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"


async def test_unsigned_alg_none_is_refused(hs_app: Any) -> None:
    forged = jwt.encode(
        {"sub": "mallory", "exp": int(time.time()) + 60, "aud": AUDIENCE, "iss": ISSUER},
        key=None,
        algorithm="none",
    )
    response = await hs_app.client.get("/api/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_no_auth_configured_means_the_anonymous_dev_user(
    client: Any,
) -> None:
    response = await client.get("/api/me")
    assert response.status_code == 200
    assert response.json()["anonymous"] is True


class _Jwks:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": "key-1", "use": "sig", "alg": "RS256"})
        self.document = {"keys": [public]}
        self.hits = 0

    def sign(self, kid: str = "key-1", **claims: Any) -> str:
        now = int(time.time())
        body = {"sub": "bob", "aud": AUDIENCE, "iss": ISSUER, "iat": now, "exp": now + 60}
        body.update(claims)
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, _Jwks]]:
    jwks = _Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            jwks.hits += 1
            body = json.dumps(jwks.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", jwks
    finally:
        server.shutdown()
        server.server_close()


async def test_rs256_verified_through_a_cached_jwks(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    jwks_server: tuple[str, _Jwks],
) -> None:
    url, jwks = jwks_server
    running = await start_app(
        make_settings(auth_jwks_url=url, auth_audience=AUDIENCE, auth_issuer=ISSUER)
    )
    for _ in range(3):
        response = await running.client.get(
            "/api/me", headers={"Authorization": f"Bearer {jwks.sign()}"}
        )
        assert response.status_code == 200
        assert response.json()["sub"] == "bob"
    assert jwks.hits == 1, "the JWKS is fetched once and cached"

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"sub": "bob", "aud": AUDIENCE, "iss": ISSUER, "exp": int(time.time()) + 60},
        other,
        algorithm="RS256",
        headers={"kid": "key-1"},
    )
    refused = await running.client.get("/api/me", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_signature"

    unknown = await running.client.get(
        "/api/me", headers={"Authorization": f"Bearer {jwks.sign(kid='rotated-away')}"}
    )
    assert unknown.status_code == 401
    # HS256 tokens are not accepted when only a JWKS is configured.
    hs = await running.client.get("/api/me", headers={"Authorization": f"Bearer {_token()}"})
    assert hs.status_code == 401
