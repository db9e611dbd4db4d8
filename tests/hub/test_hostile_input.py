"""Hostile frames and parameters over real WebSockets and REST, on both buses.

Bad input gets an error reply and the connection stays (CONTRACT §2.1); a failure of
the server's own closes with 1011/1013, never without a close frame; backend error
text never reaches a client.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from backend.app.settings import Settings
from tests.hub.conftest import publish
from tests.support.live_server import LiveServer, live_server
from tests.support.redis_server import RedisServer
from tests.support.ws_client import Client

HUGE = [2**63, 2**64, 18446744073709551615, 10**30]


async def _joined(server: LiveServer, room: str) -> Client:
    client = await Client.open(f"{server.ws_url}/ws/{room}")
    await client.recv_until("snapshot")
    return client


async def _still_live(client: Client, http: httpx.AsyncClient, room: str) -> None:
    await client.send({"action": "ping", "request_id": "alive"})
    assert (await client.recv_until("pong"))[-1] == {"type": "pong", "request_id": "alive"}
    seqs = await publish(http, room)
    assert (await client.events(1))[0]["seq"] == seqs[0]


async def test_deeply_nested_frames_get_an_error_and_the_connection_stays(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    client = await _joined(server, "deep-1")
    for depth in (33, 1000, 20_000):
        await client.send('{"action": "broadcast", "message": ' + "[" * depth + "]" * depth + "}")
        reply = await client.recv()
        assert (reply["type"], reply["code"]) == ("error", "too_deep")
    await _still_live(client, http, "deep-1")
    await client.close()


@pytest.mark.parametrize("action", ["joinRoom", "subscribe", "resume"])
async def test_last_seq_past_the_bound_gets_an_error_and_the_connection_stays(
    server: LiveServer, http: httpx.AsyncClient, action: str
) -> None:
    client = await _joined(server, "big-1")
    await publish(http, "big-1")
    await client.events(1)
    for n, value in enumerate(HUGE):
        await client.send({"action": action, "room": "big-1", "last_seq": value, "request_id": n})
        reply = await client.recv()
        assert reply["type"] == "error", reply
        assert (reply["code"], reply["request_id"]) == ("invalid_last_seq", n)
    await _still_live(client, http, "big-1")
    await client.close()


@pytest.mark.parametrize("raw", [str(2**64), "18446744073709551615", "9" * 300, "-3", "x"])
async def test_a_bad_last_seq_on_connect_is_an_error_then_a_fresh_snapshot(
    server: LiveServer, http: httpx.AsyncClient, raw: str
) -> None:
    await publish(http, "qs-1", 2)
    client = await Client.open(f"{server.ws_url}/ws/qs-1?last_seq={raw}")
    seen = [await client.recv() for _ in range(3)]
    assert [m["type"] for m in seen] == ["connected", "snapshot", "error"]
    assert (seen[1]["recovered"], seen[1]["last_seq"]) == (False, 2)
    assert seen[2]["code"] == "invalid_last_seq"
    await _still_live(client, http, "qs-1")
    await client.close()


async def test_every_error_echoes_the_request_id(server: LiveServer) -> None:
    client = await Client.open(f"{server.ws_url}/ws")
    await client.recv()
    frames = [
        ({"action": "sendMessage", "targetId": "nobody.1", "message": "hi"}, "unknown_target"),
        ({"action": "broadcast", "message": "hi"}, "missing_field"),
        ({"action": "broadcast", "room": "r-x", "message": "hi"}, "not_in_room"),
        ({"action": "unsubscribe", "room": "never-joined"}, "not_in_room"),
        ({"action": "leaveRoom", "room": "never-joined"}, "not_in_room"),
    ]
    for n, (frame, code) in enumerate(frames):
        await client.send({**frame, "request_id": f"q{n}"})
        reply = await client.recv()
        assert reply == {"type": "error", "code": code, "message": reply["message"],
                         "request_id": f"q{n}"}  # fmt: skip
    await client.close()


async def test_events_after_a_huge_seq_is_a_4xx_without_backend_text(
    http: httpx.AsyncClient,
) -> None:
    await publish(http, "rest-1")
    for after in ("18446744073709551615", str(2**63), "9" * 50):
        response = await http.get("/api/sessions/rest-1/events", params={"after": after})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "validation_error"
        assert "ERR" not in response.text
        assert "stream ID" not in response.text
    last = await http.get("/api/sessions/rest-1/events", params={"after": str(2**63 - 1)})
    assert last.status_code == 200
    assert last.json()["events"] == []


async def test_a_store_outage_mid_replay_closes_with_1013_and_no_backend_text(
    private_redis: RedisServer, make_settings: Callable[..., Settings], redis_prefix: str
) -> None:
    settings = make_settings(redis_url=private_redis.url, redis_prefix=redis_prefix)
    async with (
        live_server(settings) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=10) as http,
    ):
        await publish(http, "out-1", 2)
        client = await _joined(server, "out-1")
        private_redis.stop()
        await client.send({"action": "resume", "room": "out-1", "last_seq": 0})
        code = await client.closed_with(timeout=15)
        assert code == 1013
        assert client.ws.close_reason is not None
        assert "Error" not in client.ws.close_reason
        assert "111" not in client.ws.close_reason
        response = await http.post(
            "/api/sessions/out-1/events", json={"agent": "a", "status": "running"}
        )
        assert response.status_code == 503
        body = response.json()["error"]
        assert "Connect" not in body["message"]
        assert "refused" not in body["message"]


async def test_rest_bodies_nested_too_deep_are_4xx_not_500(http: httpx.AsyncClient) -> None:
    deep = "[" * 900 + "]" * 900
    for path, body in [
        ("/api/sessions", '{"prompt": "p", "style": ' + deep + "}"),
        (
            "/api/sessions/d-1/events",
            '{"agent": "a", "status": "info", "data": {"x": ' + deep + "}}",
        ),
    ]:
        headers = {"content-type": "application/json"}
        response = await http.post(path, content=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "validation_error"


async def test_progress_is_a_number_not_a_bool(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/api/sessions/b-1/events", json={"agent": "a", "status": "running", "progress": True}
    )
    assert response.status_code == 422


@pytest.mark.parametrize("message", ["NaN", '"\\ud800"', '{"k": [Infinity]}'])
async def test_a_broadcast_others_cannot_read_is_refused_and_they_stay_connected(
    server: LiveServer, http: httpx.AsyncClient, message: str
) -> None:
    other = await _joined(server, "room-u")
    sender = await _joined(server, "room-u")
    await sender.send('{"action": "broadcast", "message": ' + message + ', "request_id": "b"}')
    reply = await sender.recv()
    assert (reply["type"], reply["code"], reply["request_id"]) == ("error", "invalid_json", "b")
    await _still_live(other, http, "room-u")
    await sender.close()
    await other.close()


@pytest.mark.parametrize("data", ['{"x": NaN}', '{"x": [Infinity]}', '{"\\ud800": 1}'])
async def test_event_data_others_cannot_read_is_refused(http: httpx.AsyncClient, data: str) -> None:
    body = '{"agent": "a", "status": "info", "data": ' + data + "}"
    response = await http.post(
        "/api/sessions/nan-1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
