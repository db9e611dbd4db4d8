"""POST /ws as API Gateway calls it: secret, CONNECT, MESSAGE, DISCONNECT (moto @connections)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.app.state import AppState
from backend.core.auth import Role, mint_token
from backend.core.settings import SettingsError
from tests.conftest import JWT_SECRET
from tests.support.moto_apigw import REGION, MotoConnections

SECRET = "s" * 40


def _headers(cid: str, event: str, secret: str | None = SECRET) -> dict[str, str]:
    headers = {"connectionId": cid, "eventType": event}
    if secret is not None:
        headers["X-Gateway-Secret"] = secret
    return headers


class Gateway:
    """Plays API Gateway's part: the integration requests it would make."""

    def __init__(self, client: httpx.AsyncClient, services: AppState) -> None:
        self.client = client
        self.services = services

    async def connect(self, cid: str, secret: str | None = SECRET, **query: str) -> httpx.Response:
        return await self.client.post("/ws", params=query, headers=_headers(cid, "CONNECT", secret))

    async def send(self, cid: str, frame: Any, secret: str | None = SECRET) -> httpx.Response:
        body = frame if isinstance(frame, str | bytes) else json.dumps(frame)
        return await self.client.post("/ws", content=body, headers=_headers(cid, "MESSAGE", secret))

    async def disconnect(self, cid: str, secret: str | None = SECRET) -> httpx.Response:
        return await self.client.post("/ws", headers=_headers(cid, "DISCONNECT", secret))


@pytest.fixture(params=["memory", "redis"])
async def gateway(
    request: pytest.FixtureRequest,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    moto_connections: MotoConnections,
    redis_url: str,
    redis_prefix: str,
) -> Gateway:
    store: dict[str, Any] = (
        {"redis_url": redis_url, "redis_prefix": redis_prefix} if request.param == "redis" else {}
    )
    settings = make_settings(
        apigw_shared_secret=SECRET,
        apigw_management_endpoint=moto_connections.endpoint,
        aws_region=REGION,
        auth_jwt_secret=JWT_SECRET,
        **store,
    )
    running = await start_app(settings)
    return Gateway(running.client, running.services)


def _token(sub: str = "alice", role: Role = Role.USER) -> str:
    return mint_token(JWT_SECRET, sub, role)


async def test_bridge_is_off_without_a_secret(client: httpx.AsyncClient) -> None:
    response = await client.post("/ws", headers=_headers("abc=", "CONNECT"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "apigw_bridge_disabled"
    assert "APIGW_SHARED_SECRET" in response.json()["error"]["message"]


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1], SECRET + "x"])
async def test_forged_requests_are_refused_and_change_nothing(
    gateway: Gateway, moto_connections: MotoConnections, secret: str | None
) -> None:
    assert (await gateway.connect("real=", token=_token())).status_code == 200
    assert (await gateway.send("real=", {"action": "joinRoom", "room": "s1"})).status_code == 200
    before = moto_connections.raw("real=")

    forged = [
        await gateway.connect("forged=", secret=secret, token=_token()),
        await gateway.send("real=", {"action": "leaveRoom", "room": "s1"}, secret=secret),
        await gateway.disconnect("real=", secret=secret),
    ]
    assert [r.status_code for r in forged] == [403, 403, 403]
    assert all(r.json()["error"]["code"] == "bad_gateway_secret" for r in forged)
    assert moto_connections.raw("real=") == before  # nothing was posted

    # The forged CONNECT registered nothing, the forged DISCONNECT removed nothing.
    assert (await gateway.send("forged=", {"action": "ping"})).status_code == 404
    assert (await gateway.send("real=", {"action": "ping", "request_id": 7})).status_code == 200
    assert moto_connections.messages("real=")[-1] == {"type": "pong", "request_id": 7}
    assert moto_connections.raw("forged=") == b""


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({}, "missing_token"),
        ({"token": "not-a-jwt"}, "invalid_token"),
        (
            {"token": mint_token("another-secret-that-is-long-enough-for-hs", "eve")},
            "invalid_signature",
        ),
        ({"token": mint_token(JWT_SECRET, "alice", Role.USER, ttl_s=-120)}, "token_expired"),
        ({"api_key": "pbk_" + "D" * 43}, "invalid_api_key"),
    ],
)
async def test_connect_with_a_bad_token_is_refused(
    gateway: Gateway, moto_connections: MotoConnections, query: dict[str, str], code: str
) -> None:
    response = await gateway.connect("c1=", session_id="s1", **query)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert (await gateway.send("c1=", {"action": "ping"})).status_code == 404  # not registered
    assert moto_connections.raw("c1=") == b""


@pytest.mark.parametrize(
    ("query", "code"),
    [({"session_id": "bad id!"}, "invalid_session"), ({"last_seq": "-1"}, "invalid_last_seq")],
)
async def test_connect_with_bad_parameters_is_refused(
    gateway: Gateway, query: dict[str, str], code: str
) -> None:
    response = await gateway.connect("c2=", token=_token(), **query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


async def test_connect_posts_nothing_then_first_frame_greets(
    gateway: Gateway, moto_connections: MotoConnections
) -> None:
    # Sessions nobody created: agents only; an agent connects with its API key.
    agent, _ = await gateway.services.api_keys.create("renderer", Role.AGENT)
    response = await gateway.connect("c3=", session_id="sess-1", last_seq="4", api_key=agent)
    assert response.status_code == 200
    assert moto_connections.raw("c3=") == b""  # API Gateway has not finished its handshake

    assert (await gateway.send("c3=", {"action": "joinRoom", "room": "sess-2"})).status_code == 200
    messages = moto_connections.messages("c3=")
    assert messages[0] == {"type": "connected", "connection_id": "c3=", "session_id": "sess-1"}
    assert (messages[1]["type"], messages[1]["session_id"]) == ("snapshot", "sess-1")
    assert messages[2] == {"type": "joined", "room": "sess-2"}
    assert (messages[3]["type"], messages[3]["session_id"]) == ("snapshot", "sess-2")


async def test_bad_frames_get_errors_and_the_connection_stays(
    gateway: Gateway, moto_connections: MotoConnections
) -> None:
    await gateway.connect("c4=", token=_token())
    for frame in [
        "{not json",
        "[1, 2]",
        {"request_id": "r1"},
        {"action": "joinRoom", "room": "../x"},
    ]:
        assert (await gateway.send("c4=", frame)).status_code == 200
    await gateway.send("c4=", {"action": "ping"})
    codes = [m.get("code") for m in moto_connections.messages("c4=")[1:]]
    assert codes == ["invalid_json", "invalid_frame", "missing_action", "invalid_room", None]
    assert moto_connections.messages("c4=")[-1] == {"type": "pong"}


async def test_disconnect_removes_the_mapping_and_nothing_is_posted_after(
    gateway: Gateway, moto_connections: MotoConnections
) -> None:
    await gateway.connect("c5=", token=_token())
    await gateway.send("c5=", {"action": "joinRoom", "room": "sess-5"})
    posted = moto_connections.raw("c5=")
    assert (await gateway.disconnect("c5=")).status_code == 200
    assert (await gateway.disconnect("c5=")).status_code == 200  # API Gateway may repeat it

    assert moto_connections.raw("c5=") == posted
    late = await gateway.send("c5=", {"action": "ping"})
    assert late.status_code == 404
    assert late.json()["error"]["code"] == "unknown_connection"
    # Nothing posted; the socket the registry does not know is closed (moto forgets it),
    # so a client whose registry entry Redis lost reconnects instead of waiting forever.
    assert moto_connections.raw("c5=") == b""


async def test_oversized_frame_is_answered_and_the_connection_closed(
    gateway: Gateway, moto_connections: MotoConnections
) -> None:
    await gateway.connect("c6=", token=_token())
    await gateway.send("c6=", {"action": "ping"})
    response = await gateway.send("c6=", json.dumps({"action": "ping", "pad": "x" * 70_000}))
    assert response.status_code == 200
    # moto forgets a connection that was deleted: the error went out, then the close.
    assert moto_connections.raw("c6=") == b""


@pytest.mark.parametrize("event", ["OPEN", ""])
async def test_unknown_event_type_is_a_clear_400(gateway: Gateway, event: str) -> None:
    response = await gateway.client.post("/ws", headers=_headers("c7=", event))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_event_type"


async def test_posts_are_counted_by_outcome(gateway: Gateway) -> None:
    await gateway.connect("m1=", token=_token())
    await gateway.send("m1=", {"action": "ping"})
    metrics = (await gateway.client.get("/metrics")).text
    assert 'apigw_posts_total{outcome="delivered"} 2.0' in metrics  # connected + pong


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"apigw_shared_secret": "short"}, "APIGW_SHARED_SECRET"),
        ({"apigw_shared_secret": "x" * 40}, "APIGW_MANAGEMENT_ENDPOINT"),
    ],
)
def test_bridge_settings_are_checked_at_start(
    make_settings: Callable[..., Settings], overrides: dict[str, str], variable: str
) -> None:
    with pytest.raises(SettingsError, match=variable):
        make_settings(**overrides)


async def test_deep_nesting_through_the_bridge_is_an_error_reply(
    gateway: Gateway, moto_connections: MotoConnections
) -> None:
    await gateway.connect("deep=", token=_token())
    frame = '{"action": "ping", "request_id": "d", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    assert (await gateway.send("deep=", frame)).status_code == 200
    assert (await gateway.send("deep=", {"action": "ping"})).status_code == 200
    messages = moto_connections.messages("deep=")
    assert messages[1]["code"] == "too_deep"
    assert messages[-1] == {"type": "pong"}


@pytest.mark.parametrize("value", [2**63, 2**64, 18446744073709551615])
async def test_huge_last_seq_through_the_bridge_is_an_error_reply(
    gateway: Gateway, moto_connections: MotoConnections, value: int
) -> None:
    await gateway.connect("big=", token=_token("agent-1", Role.AGENT))
    frame = {"action": "joinRoom", "room": "s1", "last_seq": value, "request_id": 3}
    assert (await gateway.send("big=", frame)).status_code == 200
    reply = moto_connections.messages("big=")[-1]
    assert (reply["code"], reply["request_id"]) == ("invalid_last_seq", 3)
    response = await gateway.connect("big2=", token=_token(), last_seq=str(value))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_last_seq"


async def test_connect_for_an_unknown_session_is_refused_with_403(
    gateway: Gateway, moto_connections: MotoConnections
) -> None:
    response = await gateway.connect("nosess=", session_id="nobody-made-this", token=_token())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden_session"
    assert (await gateway.send("nosess=", {"action": "ping"})).status_code == 404
    assert moto_connections.raw("nosess=") == b""


async def test_leaving_a_room_never_joined_is_an_error(
    gateway: Gateway, moto_connections: MotoConnections
) -> None:
    await gateway.connect("lv=", token=_token())
    await gateway.send("lv=", {"action": "unsubscribe", "room": "s9", "request_id": "u"})
    await gateway.send("lv=", {"action": "sendMessage", "targetId": "x.1", "message": 1,
                               "request_id": "m"})  # fmt: skip
    replies = moto_connections.messages("lv=")[1:]
    assert [(r["code"], r["request_id"]) for r in replies] == [
        ("not_in_room", "u"), ("unknown_target", "m")
    ]  # fmt: skip


async def test_frame_limit_is_ws_max_frame_bytes(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    moto_connections: MotoConnections,
) -> None:
    settings = make_settings(
        apigw_shared_secret=SECRET,
        apigw_management_endpoint=moto_connections.endpoint,
        aws_region=REGION,
        auth_jwt_secret=JWT_SECRET,
        ws_max_frame_bytes=2048,
    )
    running = await start_app(settings)
    gateway = Gateway(running.client, running.services)
    await gateway.connect("f1=", token=_token())
    # Over WS_MAX_FRAME_BYTES (but far under the 64 KiB default): refused, connection closed.
    await gateway.send("f1=", json.dumps({"action": "ping", "pad": "x" * 4096}))
    assert moto_connections.raw("f1=") == b""
