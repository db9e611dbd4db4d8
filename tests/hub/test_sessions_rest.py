"""Sessions over REST (CONTRACT §2.2) and who may see and follow what (§5)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.core.auth import Role, mint_token
from tests.conftest import JWT_SECRET
from tests.hub.conftest import publish
from tests.support.live_server import LiveServer, live_server
from tests.support.ws_client import Client


def bearer(sub: str, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub, role)}"}


ALICE, BOB = bearer("alice"), bearer("bob")


@pytest.fixture
async def secured(hub_settings: Callable[..., Settings]) -> AsyncIterator[LiveServer]:
    async with live_server(hub_settings(auth_jwt_secret=JWT_SECRET)) as live:
        yield live


@pytest.fixture
async def agent(secured: LiveServer) -> dict[str, str]:
    """Agents use API keys (CONTRACT §5); a JWT with the agent role works the same."""
    key, _ = await secured.services.api_keys.create("renderer", Role.AGENT)
    return {"X-API-Key": key}


@pytest.fixture
async def api(secured: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secured.base_url, timeout=10) as client:
        yield client


async def _create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await api.post(
        "/api/sessions", json={"prompt": "a cat video", **body}, headers=ALICE
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_session_is_created_owned_and_reported(
    api: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    created = await _create(api, style="noir")
    sid = created["session_id"]
    assert created["status"] == "created"
    assert created["options"] == {"style": "noir"}
    assert created["owner"] == "alice"
    assert created["last_seq"] == 0
    await publish(api, sid, 1, agent="script_writer", headers=agent)
    await publish(
        api,
        sid,
        1,
        agent="renderer",
        headers=agent,
        data={"video_url": "https://cdn.example/v.mp4"},
    )
    for path in (f"/api/sessions/{sid}", f"/api/get-video-session/{sid}"):
        view = (await api.get(path, headers=ALICE)).json()
        assert view["session_id"] == sid
        assert view["status"] == "running"
        assert view["last_seq"] == 2
        assert set(view["agents"]) == {"script_writer", "renderer"}
        assert view["video_url"] == "https://cdn.example/v.mp4"
        assert view["created_at"]
        assert view["updated_at"]


async def test_only_the_owner_and_agents_read_a_session(
    api: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    sid = (await _create(api))["session_id"]
    assert (await api.get(f"/api/sessions/{sid}", headers=BOB)).status_code == 403
    assert (await api.get(f"/api/sessions/{sid}")).status_code == 401
    assert (await api.get(f"/api/sessions/{sid}", headers=agent)).status_code == 200
    assert (await api.get("/api/sessions/nobody-made-this", headers=ALICE)).status_code == 404


async def test_only_agents_and_services_publish(
    api: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    sid = (await _create(api))["session_id"]
    denied = await api.post(
        f"/api/sessions/{sid}/events", json={"agent": "x", "status": "running"}, headers=ALICE
    )
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden_role"
    accepted = await api.post(
        f"/api/sessions/{sid}/events", json={"agent": "x", "status": "running"}, headers=agent
    )
    assert accepted.status_code == 202
    assert accepted.json() == {"seq": 1}
    agent_jwt = bearer("renderer", Role.AGENT)  # tokens with the agent role publish too
    by_token = await api.post(
        f"/api/sessions/{sid}/events", json={"agent": "x", "status": "info"}, headers=agent_jwt
    )
    assert by_token.json() == {"seq": 2}


async def test_events_page_for_polling_clients(
    api: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    sid = (await _create(api))["session_id"]
    await publish(api, sid, 7, headers=agent)
    page = (await api.get(f"/api/sessions/{sid}/events?after=2&limit=3", headers=ALICE)).json()
    assert [e["seq"] for e in page["events"]] == [3, 4, 5]
    assert page["last_seq"] == 7
    bad = await api.get(f"/api/sessions/{sid}/events?after=-1", headers=ALICE)
    assert bad.status_code == 422


async def test_cancel_ends_running_agents_as_cancelled(
    api: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    sid = (await _create(api))["session_id"]
    await publish(api, sid, 1, agent="renderer", headers=agent)
    await api.post(
        f"/api/sessions/{sid}/events",
        headers=agent,
        json={"agent": "script_writer", "status": "completed", "progress": 1.0},
    )
    view = (await api.post(f"/api/sessions/{sid}/cancel", headers=ALICE)).json()
    assert view["status"] == "cancelled"
    assert view["agents"]["renderer"]["status"] == "cancelled"
    assert view["agents"]["script_writer"]["status"] == "completed"
    assert (await api.post(f"/api/sessions/{sid}/cancel", headers=BOB)).status_code == 403


async def test_websocket_auth_closes_4401_and_4403(
    secured: LiveServer, api: httpx.AsyncClient
) -> None:
    sid = (await _create(api))["session_id"]
    no_token = await Client.open(f"{secured.ws_url}/ws/{sid}")
    assert await no_token.closed_with() == 4401
    forged = await Client.open(f"{secured.ws_url}/ws/{sid}?token=not-a-jwt")
    assert await forged.closed_with() == 4401
    bob_token = mint_token(JWT_SECRET, "bob")
    bob = await Client.open(f"{secured.ws_url}/ws/{sid}?token={bob_token}")
    assert await bob.closed_with() == 4403

    alice_token = mint_token(JWT_SECRET, "alice")
    alice = await Client.open(f"{secured.ws_url}/ws?token={alice_token}")
    await alice.recv()
    await alice.send({"action": "joinRoom", "room": "someone-elses", "request_id": "j"})
    refused = await alice.recv()
    assert (refused["type"], refused["request_id"]) == ("error", "j")
    assert refused["code"] == "session_not_found"
    await alice.send({"action": "joinRoom", "room": sid})
    assert (await alice.recv())["type"] == "joined"
    assert (await alice.recv())["type"] == "snapshot"
    await alice.close()


async def test_listing_gives_the_callers_sessions_newest_first_page_by_page(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    for store_url in (None, redis_url):
        app = await start_app(
            make_settings(
                auth_jwt_secret=JWT_SECRET, redis_url=store_url, redis_prefix=redis_prefix
            )
        )
        alice, bob = bearer("alice"), bearer("bob")
        made = []
        for n in range(5):
            response = await app.client.post(
                "/api/sessions", json={"prompt": f"video {n}"}, headers=alice
            )
            assert response.status_code == 201, response.text
            made.append(response.json()["session_id"])
            await asyncio.sleep(0.002)  # created_at has millisecond resolution
        await app.client.post("/api/sessions", json={"prompt": "bob's"}, headers=bob)
        seen, cursor = [], None
        while True:
            query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = await app.client.get("/api/sessions", params=query, headers=alice)
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["sessions"]) <= 2
            seen += [session["session_id"] for session in body["sessions"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(made))  # newest first, each once, none of bob's
        assert all(s["status"] for s in body["sessions"])
        bad = await app.client.get("/api/sessions", params={"cursor": "%%%"}, headers=alice)
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_cursor"


async def test_session_records_live_as_long_as_hub_session_ttl_s(
    start_app: Callable[[Settings], Any], hub_settings: Callable[..., Settings]
) -> None:
    running = await start_app(hub_settings(hub_session_ttl_s=120))
    created = await running.client.post("/api/sessions", json={"prompt": "a short one"})
    assert created.status_code == 201, created.text
    session_id = created.json()["session_id"]
    store = running.services.store
    # HUB_SESSION_TTL_S, not a week: the record and the owner's index expire with the events.
    for key in (f"session:{session_id}", "sessions-of:anonymous"):
        ttl = await store.ttl(key)
        assert ttl is not None, key
        assert 0 < ttl <= 120, (key, ttl)
