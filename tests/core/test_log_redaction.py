"""No secret reaches the logs: a real uvicorn process, a flow full of credentials, a grep.

The process logs at DEBUG; every line it writes to stdout and stderr is searched for every
token, key, shared secret and TURN credential the flow used (issue 11: one run's log
held 119 JWTs, from uvicorn's ``WebSocket /ws/S?token=...`` lines).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import httpx
import pytest

from backend.core.api_keys import ApiKeys
from backend.core.auth import Role, mint_token
from backend.core.storage import open_store
from tests.conftest import JWT_SECRET
from tests.support.moto_apigw import REGION, MotoConnections
from tests.support.uvicorn_process import ServiceProcess
from tests.support.ws_client import Client

GATEWAY_SECRET = "g" * 24 + "AtEsTgAtEwAySeCrEt"
TURN_SECRET = "turn-shared-secret-for-the-redaction-test"


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoConnections]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    server = MotoConnections()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def service(moto: MotoConnections, redis_url: str, redis_prefix: str) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        {
            "LOG_LEVEL": "DEBUG",
            "AUTH_JWT_SECRET": JWT_SECRET,
            "REDIS_URL": redis_url,
            "REDIS_PREFIX": redis_prefix,
            "TURN_SERVER": "127.0.0.1:3478",
            "TURN_SECRET": TURN_SECRET,
            "APIGW_SHARED_SECRET": GATEWAY_SECRET,
            "APIGW_MANAGEMENT_ENDPOINT": moto.endpoint,
            "AWS_REGION": REGION,
            "INTERVIEW_CONVERSATION": "greeter",
        }
    )
    process.start()
    yield process
    process.stop()


async def _flow(service: ServiceProcess, agent_key: str, user_key: str) -> list[str]:
    """Drives every credential-carrying path; returns the secrets it used."""
    alice = mint_token(JWT_SECRET, "alice")
    agent_jwt = mint_token(JWT_SECRET, "renderer", Role.AGENT)
    secrets = [JWT_SECRET, alice, agent_jwt, agent_key, user_key, GATEWAY_SECRET, TURN_SECRET]
    async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
        created = await http.post(
            "/api/sessions", json={"prompt": "a cat"}, headers={"Authorization": f"Bearer {alice}"}
        )
        sid = created.json()["session_id"]
        for headers in (
            {"X-API-Key": agent_key},
            {"Authorization": f"ApiKey {agent_key}"},
            {"Authorization": f"Bearer {agent_jwt}"},
        ):
            published = await http.post(
                f"/api/sessions/{sid}/events",
                json={"agent": "renderer", "status": "running"},
                headers=headers,
            )
            assert published.status_code == 202
        # Credentials in query strings of REST requests, refused or not.
        await http.get(f"/api/me?token={alice}&api_key={agent_key}")
        await http.get("/api/me", headers={"Authorization": "Bearer not.a.jwt-" + alice[-20:]})
        await http.get("/api/me", headers={"X-API-Key": user_key + "x"})
        # WebSockets with the token and the key in the query (uvicorn logs the path).
        for query in (f"token={alice}", f"api_key={agent_key}", f"api_key={user_key}"):
            client = await Client.open(f"{service.ws_url}/ws/{sid}?{query}&last_seq=0")
            await client.recv()
            await client.close()
        forged = await Client.open(f"{service.ws_url}/ws/{sid}?token={alice[:-4]}AAAA")
        await forged.closed_with()
        # The API Gateway bridge: the shared secret in a header, credentials in the query.
        for cid, query in (("c1=", f"token={alice}"), ("c2=", f"api_key={agent_key}")):
            connect = await http.post(
                f"/ws?session_id={sid}&{query}",
                headers={
                    "connectionId": cid,
                    "eventType": "CONNECT",
                    "X-Gateway-Secret": GATEWAY_SECRET,
                },
            )
            assert connect.status_code == 200, connect.text
            await http.post(
                "/ws",
                content=json.dumps({"action": "ping"}),
                headers={"connectionId": cid, "eventType": "MESSAGE", "X-Gateway-Secret": "x"},
            )
        # TURN credentials: minted for an interview, fetched again.
        started = await http.post(
            "/api/interview/start",
            json={},
            headers={"Authorization": f"Bearer {alice}"},
        )
        assert started.status_code == 201, started.text
        interview = started.json()
        again = await http.get(
            f"/api/interview/{interview['session_id']}/ice-servers",
            headers={"Authorization": f"Bearer {alice}"},
        )
        for server in interview["ice_servers"] + again.json()["ice_servers"]:
            if server.get("credential"):
                secrets.append(server["credential"])
                credential = server["credential"]
                await http.get(f"/api/health?username=u&credential={credential}")
        await http.post(
            f"/api/interview/{interview['session_id']}/end",
            headers={"Authorization": f"Bearer {alice}"},
        )
    assert len(secrets) > 7, "the flow minted no TURN credential"
    return secrets


@pytest.mark.slow
async def test_no_secret_in_any_log_line(
    service: ServiceProcess, redis_url: str, redis_prefix: str
) -> None:
    store = open_store(redis_url, prefix=redis_prefix)
    keys = ApiKeys(store)
    agent_key, _ = await keys.create("renderer", Role.AGENT)
    user_key, _ = await keys.create("alice", Role.USER)
    await store.close()

    secrets = await _flow(service, agent_key, user_key)
    await asyncio.sleep(0.5)  # the last lines reach the file
    service.stop()
    logs = service.logs()

    assert '"WebSocket /ws/' in logs  # uvicorn's line is there, masked
    for line in logs.splitlines():
        if line.startswith("{"):
            json.loads(line)  # masking keeps every JSON line whole
    assert "token=[REDACTED]" in logs
    leaked = [secret for secret in secrets if secret in logs]
    assert not leaked, f"{len(leaked)} secrets in the log"
    assert not re.search(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.", logs)
    assert not re.search(r"pbk_[A-Za-z0-9_-]{16,}", logs)
