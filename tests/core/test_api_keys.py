"""API keys (CONTRACT §5): created once, hashed at rest, listed, revoked; on REST and /ws."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.core.api_keys import ApiKeys, digest_of
from backend.core.auth import Role, mint_token
from backend.core.errors import NotFound, Unauthorized
from backend.core.storage import Store, open_store
from tests.conftest import JWT_SECRET
from tests.support.live_server import LiveServer, live_server
from tests.support.ws_client import Client


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[Store]:
    opened = open_store(redis_url if request.param == "redis" else None, prefix=redis_prefix)
    yield opened
    await opened.close()


def _iso(value: str | None) -> datetime:
    assert value is not None
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_key_is_shown_once_and_kept_only_as_its_hash(store: Store) -> None:
    keys = ApiKeys(store)
    key, record = await keys.create("renderer", "agent")
    assert re.fullmatch(r"pbk_[A-Za-z0-9_-]{43}", key)
    assert record.hash == digest_of(key)
    # Nothing in the store holds the key itself.
    stored = await store.get(f"apikey:{record.id}")
    assert stored is not None
    assert key.encode() not in stored
    principal = await keys.verify(key)
    assert (principal.sub, principal.role) == ("renderer", Role.AGENT)


async def test_list_shows_name_role_and_iso_times_never_the_key(store: Store) -> None:
    keys = ApiKeys(store)
    key, agent = await keys.create("renderer", Role.AGENT)
    await keys.create("dashboard", Role.SERVICE)
    before = {info.name: info for info in await keys.list()}
    assert before["renderer"].last_used_at is None
    await keys.verify(key)
    listed = {info.name: info for info in await keys.list()}
    assert set(listed) == {"renderer", "dashboard"}
    assert listed["dashboard"].role == "service"
    renderer = listed["renderer"]
    assert (renderer.id, renderer.role, renderer.revoked_at) == (agent.id, "agent", None)
    assert _iso(renderer.last_used_at) >= _iso(renderer.created_at)
    assert key not in repr(listed)
    assert agent.hash not in repr(listed)


async def test_a_revoked_key_stops_working(store: Store) -> None:
    keys = ApiKeys(store, cache_ttl_s=0.2)
    key, record = await keys.create("renderer", Role.AGENT)
    await keys.verify(key)
    other_process = ApiKeys(store, cache_ttl_s=0.2)  # its own cache, the same store
    await other_process.verify(key)
    revoked = await keys.revoke(record.id)
    assert _iso(revoked.revoked_at)
    with pytest.raises(Unauthorized):
        await keys.verify(key)
    await asyncio.sleep(0.3)
    with pytest.raises(Unauthorized):
        await other_process.verify(key)
    (info,) = await keys.list()
    assert info.revoked_at == revoked.revoked_at
    with pytest.raises(NotFound):
        await keys.revoke("no-such-id")


@pytest.mark.parametrize("key", ["", "pbk_", "pbk_" + "A" * 43, "not-a-key", "pbk_" + "x" * 200])
async def test_unknown_and_malformed_keys_are_refused(store: Store, key: str) -> None:
    with pytest.raises(Unauthorized):
        await ApiKeys(store).verify(key)


# -- through the app ----------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def secured(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> AsyncIterator[LiveServer]:
    extra: dict[str, Any] = (
        {"redis_url": redis_url, "redis_prefix": redis_prefix} if request.param == "redis" else {}
    )
    async with live_server(make_settings(auth_jwt_secret=JWT_SECRET, **extra)) as live:
        yield live


@pytest.fixture
async def api(secured: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=secured.base_url, timeout=10) as client:
        yield client


async def _key(live: LiveServer, name: str, role: Role) -> str:
    key, _ = await live.services.api_keys.create(name, role)
    return key


async def test_an_agent_key_publishes_in_either_header(
    secured: LiveServer, api: httpx.AsyncClient
) -> None:
    key = await _key(secured, "renderer", Role.AGENT)
    event = {"agent": "renderer", "status": "running"}
    for headers in ({"X-API-Key": key}, {"Authorization": f"ApiKey {key}"}):
        response = await api.post("/api/sessions/run-1/events", json=event, headers=headers)
        assert response.status_code == 202, response.text
    me = (await api.get("/api/me", headers={"X-API-Key": key})).json()
    assert me == {"sub": "renderer", "role": "agent", "anonymous": False}
    refused = await api.get("/api/me", headers={"X-API-Key": "pbk_" + "B" * 43})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"


async def test_a_user_key_is_that_user_and_owns_its_sessions(
    secured: LiveServer, api: httpx.AsyncClient
) -> None:
    alice_key = {"X-API-Key": await _key(secured, "alice", Role.USER)}
    created = await api.post("/api/sessions", json={"prompt": "a cat"}, headers=alice_key)
    assert created.status_code == 201
    sid = created.json()["session_id"]
    # The same user through a JWT reads it; another user does not; a user key cannot publish.
    alice_jwt = {"Authorization": f"Bearer {mint_token(JWT_SECRET, 'alice')}"}
    assert (await api.get(f"/api/sessions/{sid}", headers=alice_jwt)).status_code == 200
    bob_key = {"X-API-Key": await _key(secured, "bob", Role.USER)}
    assert (await api.get(f"/api/sessions/{sid}", headers=bob_key)).status_code == 403
    denied = await api.post(
        f"/api/sessions/{sid}/events", json={"agent": "x", "status": "info"}, headers=alice_key
    )
    assert denied.status_code == 403


async def test_websocket_takes_a_key_in_the_query(
    secured: LiveServer, api: httpx.AsyncClient
) -> None:
    key = await _key(secured, "watcher", Role.SERVICE)
    client = await Client.open(f"{secured.ws_url}/ws/run-9?api_key={key}")
    assert (await client.recv())["type"] == "connected"
    assert (await client.recv())["type"] == "snapshot"
    agent = {"X-API-Key": await _key(secured, "renderer", Role.AGENT)}
    published = await api.post(
        "/api/sessions/run-9/events", json={"agent": "renderer", "status": "info"}, headers=agent
    )
    assert published.status_code == 202
    assert [e["seq"] for e in await client.events(1)] == [1]
    await client.close()
    forged = await Client.open(f"{secured.ws_url}/ws/run-9?api_key=pbk_{'C' * 43}")
    assert await forged.closed_with() == 4401


async def test_a_revoked_key_is_refused_by_the_running_service(
    secured: LiveServer, api: httpx.AsyncClient
) -> None:
    key, record = await secured.services.api_keys.create("renderer", Role.AGENT)
    assert (await api.get("/api/me", headers={"X-API-Key": key})).status_code == 200
    await ApiKeys(secured.services.store).revoke(record.id)  # as another process would
    deadline = asyncio.get_running_loop().time() + 5
    while (await api.get("/api/me", headers={"X-API-Key": key})).status_code == 200:
        assert asyncio.get_running_loop().time() < deadline, "still accepted after 5 s"
        await asyncio.sleep(0.2)
