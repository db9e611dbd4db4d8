"""Rate limits (CONTRACT §6) through the app, in memory and on the real Redis."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.app.client_ip import TrustedProxies, client_ip
from backend.app.settings import Settings, load_settings
from backend.core import rate_limits
from backend.core.auth import Principal, Role, mint_token
from backend.core.logs import configure_logging
from backend.core.metrics import Metrics
from backend.core.rate_limits import (
    FrameVerdict,
    FrameWindow,
    LimitName,
    RateLimited,
    open_rate_limiter,
)
from backend.core.settings import SettingsError
from backend.core.storage import open_store
from tests.conftest import JWT_SECRET, RunningApp
from tests.support.live_server import live_server
from tests.support.redis_server import RedisServer
from tests.support.ws_client import Client


def bearer(sub: str, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub, role)}"}


@pytest.fixture(autouse=True)
def _no_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """These sessions are for counting requests: no videos (and no per-user video limit)."""
    monkeypatch.setenv("PIPELINE_ENGINE", "off")


@pytest.fixture(params=["memory", "redis"])
def limited(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> Callable[..., Settings]:
    """Settings with auth on, on either storage of the limiter."""

    def build(**overrides: Any) -> Settings:
        if request.param == "redis":
            overrides.setdefault("redis_url", redis_url)
            overrides.setdefault("redis_prefix", redis_prefix)
        return make_settings(auth_jwt_secret=JWT_SECRET, **overrides)

    return build


def refused_count(metrics: str, limit: str, scope: str) -> float:
    pattern = rf'rate_limited_total\{{limit="{limit}",scope="{scope}"\}} (\S+)'
    found = re.search(pattern, metrics)
    return float(found.group(1)) if found else 0.0


async def _create(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/api/sessions", json={"prompt": "a cat"}, headers=headers)


async def test_session_creation_over_the_limit_is_429_with_retry_after(
    start_app: Callable[[Settings], Any], limited: Callable[..., Settings]
) -> None:
    app: RunningApp = await start_app(limited(rate_limit_session_create="3/minute"))
    alice, bob = bearer("alice"), bearer("bob")
    for _ in range(3):
        assert (await _create(app.client, alice)).status_code == 201
    refused = await _create(app.client, alice)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert (await _create(app.client, bob)).status_code == 201  # per principal
    metrics = (await app.client.get("/metrics")).text
    assert refused_count(metrics, "session_create", "principal") == 1


async def test_per_ip_limits_follow_x_forwarded_for_only_from_trusted_proxies(
    start_app: Callable[[Settings], Any], limited: Callable[..., Settings]
) -> None:
    app: RunningApp = await start_app(limited(rate_limit_session_create_per_ip="2/minute"))
    # The test client's peer is 127.0.0.1, a trusted proxy by default.
    first, second = {"X-Forwarded-For": "203.0.113.1"}, {"X-Forwarded-For": "203.0.113.2"}
    for user in ("u1", "u2"):
        assert (await _create(app.client, bearer(user) | first)).status_code == 201
    refused = await _create(app.client, bearer("u3") | first)
    assert refused.status_code == 429
    assert (await _create(app.client, bearer("u3") | second)).status_code == 201

    untrusted: RunningApp = await start_app(
        limited(rate_limit_session_create_per_ip="2/minute", trusted_proxies="10.9.9.9")
    )
    for n, address in enumerate(("198.51.100.1", "198.51.100.2")):
        response = await _create(untrusted.client, bearer(f"v{n}") | {"X-Forwarded-For": address})
        assert response.status_code == 201
    # A forged header from an untrusted peer does not buy a fresh bucket.
    forged = await _create(untrusted.client, bearer("v9") | {"X-Forwarded-For": "198.51.100.3"})
    assert forged.status_code == 429


async def test_two_processes_share_the_windows_through_redis(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    settings = make_settings(
        auth_jwt_secret=JWT_SECRET,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        rate_limit_interview_start="2/minute",
    )
    one: RunningApp = await start_app(settings)
    two: RunningApp = await start_app(settings)
    alice = bearer("alice")
    body = {"user_id": "alice"}
    assert (await one.client.post("/api/interview/start", json=body, headers=alice)).is_success
    assert (await two.client.post("/api/interview/start", json=body, headers=alice)).is_success
    refused = await one.client.post("/api/interview/start", json=body, headers=alice)
    assert refused.status_code == 429


async def test_publishing_and_signaling_have_their_own_limits(
    start_app: Callable[[Settings], Any], limited: Callable[..., Settings]
) -> None:
    app: RunningApp = await start_app(
        limited(rate_limit_event_publish="2/second", rate_limit_signaling="2/minute")
    )
    agent = bearer("renderer", Role.AGENT)
    event = {"agent": "renderer", "status": "running"}
    statuses = [
        (await app.client.post("/api/sessions/run-1/events", json=event, headers=agent)).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 429]
    alice = bearer("alice")
    started = await app.client.post("/api/interview/start", json={}, headers=alice)
    interview = started.json()["session_id"]
    url = f"/api/interview/{interview}/rtc/ice-candidate"
    codes = [(await app.client.post(url, json=[], headers=alice)).status_code for _ in range(3)]
    assert codes[2] == 429
    assert codes[:2] != [429, 429]


async def test_disabled_limits_never_refuse(
    start_app: Callable[[Settings], Any], limited: Callable[..., Settings]
) -> None:
    app: RunningApp = await start_app(
        limited(rate_limits_enabled=False, rate_limit_session_create="1/minute")
    )
    for _ in range(5):
        assert (await _create(app.client, bearer("alice"))).status_code == 201


async def test_websocket_connects_over_the_limit_close_1008(
    limited: Callable[..., Settings],
) -> None:
    settings = limited(rate_limit_ws_connect="2/minute")
    token = mint_token(JWT_SECRET, "watcher", Role.SERVICE)
    async with live_server(settings) as live:
        for _ in range(2):
            client = await Client.open(f"{live.ws_url}/ws/run-1?token={token}")
            assert (await client.recv())["type"] == "connected"
            await client.close()
        refused = await Client.open(f"{live.ws_url}/ws/run-1?token={token}")
        assert await refused.closed_with() == 1008


async def test_frames_over_the_limit_get_errors_then_1008_when_sustained(
    limited: Callable[..., Settings],
) -> None:
    settings = limited(rate_limit_ws_frame="5/second", rate_limit_ws_frame_strikes=3)
    token = mint_token(JWT_SECRET, "watcher", Role.SERVICE)
    async with live_server(settings) as live:
        client = await Client.open(f"{live.ws_url}/ws?token={token}")
        await client.recv()
        for n in range(6):
            await client.send({"action": "ping", "request_id": n})
        replies = [await client.recv() for _ in range(6)]
        assert [r["type"] for r in replies] == ["pong"] * 5 + ["error"]
        assert replies[5]["code"] == "rate_limited"
        for n in range(10):  # keeps sending past the limit
            await client.send({"action": "ping", "request_id": 100 + n})
        assert await client.closed_with() == 1008
        async with httpx.AsyncClient(base_url=live.base_url) as http:
            metrics = (await http.get("/metrics")).text
        assert refused_count(metrics, "ws_frame", "connection") >= 4


@pytest.mark.parametrize(
    ("name", "value"),
    [("RATE_LIMIT_SESSION_CREATE", "lots"), ("RATE_LIMIT_WS_FRAME", "0/second")],
)
def test_a_bad_limit_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


# -- pure parts --------------------------------------------------------------------------


def test_frame_window_refuses_then_closes_when_sustained() -> None:
    from limits import parse_many

    window = FrameWindow(parse_many("3/second"), strikes=2)
    assert [window.hit(0.0) for _ in range(3)] == [FrameVerdict.ACCEPT] * 3
    assert window.hit(0.5) is FrameVerdict.REFUSE
    assert window.hit(1.01) is FrameVerdict.ACCEPT  # the window moved
    assert window.hit(1.02) is FrameVerdict.ACCEPT
    assert window.hit(1.03) is FrameVerdict.ACCEPT
    assert window.hit(1.04) is FrameVerdict.REFUSE
    assert window.hit(1.05) is FrameVerdict.CLOSE  # a third refusal within a minute


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("127.0.0.1", "203.0.113.7", "127.0.0.1", "203.0.113.7"),
        ("192.0.2.1", "203.0.113.7", "127.0.0.1", "192.0.2.1"),
        ("127.0.0.1", "198.51.100.9, 10.0.0.5", "127.0.0.1,10.0.0.0/8", "198.51.100.9"),
        ("127.0.0.1", "6.6.6.6, 198.51.100.9", "127.0.0.1", "198.51.100.9"),
        ("10.0.0.2", "10.0.0.3", "10.0.0.0/8", "10.0.0.3"),
        ("::1", "2001:db8::1", "::1", "2001:db8::1"),
        ("127.0.0.1", None, "*", "127.0.0.1"),
    ],
)
def test_client_ip_trusts_forwarded_for_only_from_proxies(
    peer: str, forwarded: str | None, trusted: str, expected: str
) -> None:
    assert client_ip(peer, forwarded, TrustedProxies(trusted)) == expected


async def test_the_limiter_fails_open_while_redis_is_down(
    private_redis: RedisServer,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(rate_limits, "SKIP_AFTER_FAILURE_S", 0.3)
    settings = make_settings(redis_url=private_redis.url, rate_limit_session_create="2/minute")
    configure_logging(settings)  # to this test's stderr
    metrics = Metrics("test", "test")
    store = open_store(settings.redis_url, prefix=settings.redis_prefix)
    alice = Principal(sub="alice", role=Role.USER)
    async with open_rate_limiter(settings, store, metrics) as limiter:

        async def check() -> None:
            await limiter.check(LimitName.SESSION_CREATE, principal=alice, ip=None)

        await check()
        await check()
        with pytest.raises(RateLimited):  # counting in Redis
            await check()
        private_redis.stop()
        for _ in range(5):  # neither an error nor a refusal: requests pass unlimited
            await check()
        failures = re.search(rb"^rate_limiter_failures_total (\S+)$", metrics.render(), re.M)
        assert failures is not None
        assert float(failures.group(1)) >= 1
        captured = capsys.readouterr()
        assert "rate_limiter_unavailable" in captured.out + captured.err
        private_redis.start()  # with its data (append-only file): the window is still full
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            await asyncio.sleep(0.4)  # past the skip window
            try:
                await check()
            except RateLimited:
                break
            assert asyncio.get_running_loop().time() < deadline, "limits never came back"
    await store.close()
