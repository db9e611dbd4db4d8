"""The hub as deployed: real processes sharing one Redis, outages, signals, the CLI."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.redis_server import RedisServer
from tests.support.uvicorn_process import ROOT, ServiceProcess
from tests.support.ws_client import Client

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture
def two_services(redis_url: str, redis_prefix: str) -> Iterator[list[ServiceProcess]]:
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix}
    services = [ServiceProcess(env), ServiceProcess(env)]
    for service in services:
        service.start()
    yield services
    for service in services:
        service.stop()


async def _publish(base_url: str, session_id: str, n: int, agent: str = "a") -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        for i in range(n):
            response = await http.post(
                f"/api/sessions/{session_id}/events",
                json={"agent": agent, "status": "running", "message": str(i)},
            )
            assert response.status_code == 202, response.text


async def test_two_processes_deliver_one_order_to_everyone(
    two_services: list[ServiceProcess],
) -> None:
    one, two = two_services
    clients = [await Client.open(f"{s.ws_url}/ws/multi-1") for s in (one, two, two)]
    for client in clients:
        await client.recv_until("snapshot")
    # Publish through both processes at once, interleaved.
    await asyncio.gather(
        _publish(one.base_url, "multi-1", 25, "left"),
        _publish(two.base_url, "multi-1", 25, "right"),
    )
    for client in clients:
        seqs = [e["seq"] for e in await client.events(50, timeout=20)]
        assert seqs == list(range(1, 51)), "same order everywhere, no gaps, no duplicates"
        await client.close()


async def test_broadcast_and_send_message_cross_processes(
    two_services: list[ServiceProcess],
) -> None:
    one, two = two_services
    alice = await Client.open(f"{one.ws_url}/ws/xchat")
    alice_id = (await alice.recv_until("snapshot"))[0]["connection_id"]
    bob = await Client.open(f"{two.ws_url}/ws/xchat")
    bob_id = (await bob.recv_until("snapshot"))[0]["connection_id"]
    await alice.send({"action": "broadcast", "room": "xchat", "message": "hi all"})
    assert (await alice.recv())["type"] == "sent"
    assert await bob.recv() == {
        "type": "message",
        "from": alice_id,
        "room": "xchat",
        "message": "hi all",
    }
    await bob.send({"action": "sendMessage", "targetId": alice_id, "message": "hi alice"})
    assert (await bob.recv())["type"] == "sent"
    assert await alice.recv() == {"type": "message", "from": bob_id, "message": "hi alice"}
    await alice.close()
    await bob.close()


async def test_redis_restart_mid_stream_loses_nothing(private_redis: RedisServer) -> None:
    service = ServiceProcess({"REDIS_URL": private_redis.url})
    service.start()
    try:
        client = await Client.open(f"{service.ws_url}/ws/outage-1")
        await client.recv_until("snapshot")
        await _publish(service.base_url, "outage-1", 5)
        private_redis.stop()
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            refused = await http.post(
                "/api/sessions/outage-1/events", json={"agent": "a", "status": "running"}
            )
            assert refused.status_code == 503
            assert refused.headers["retry-after"]
            assert (await http.get("/health/ready")).status_code == 503
            assert (await http.get("/health")).status_code == 200
        private_redis.start()  # AOF: the history survives
        for _ in range(50):
            async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
                if (await http.get("/health/ready")).status_code == 200:
                    break
            await asyncio.sleep(0.2)
        await _publish(service.base_url, "outage-1", 5)
        seqs = [e["seq"] for e in await client.events(10, timeout=20)]
        assert seqs == list(range(1, 11)), "seq continues; nothing lost or repeated"
        await client.close()
        metrics = httpx.get(f"{service.base_url}/metrics").text
        assert re.search(r"hub_listener_reconnects_total [1-9]", metrics)
    finally:
        service.stop()


async def test_sigterm_closes_websockets_with_1012_and_exits(redis_url: str) -> None:
    service = ServiceProcess({}, grace_s=3, cli=True)
    service.start()
    client = await Client.open(f"{service.ws_url}/ws/bye-1")
    await client.recv_until("snapshot")
    service.terminate()
    assert await client.closed_with(timeout=5) in (1001, 1012)
    assert await asyncio.to_thread(service.wait, 10) == 0


def test_cli_publish_reaches_a_subscriber(tmp_path: Path) -> None:
    service = ServiceProcess({})
    service.start()
    try:

        async def scenario() -> dict[str, object]:
            client = await Client.open(f"{service.ws_url}/ws/cli-1")
            await client.recv_until("snapshot")
            result = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "backend.app.cli",
                    "publish",
                    "cli-1",
                    "--agent",
                    "renderer",
                    "--status",
                    "running",
                    "--progress",
                    "0.25",
                    "--url",
                    service.base_url,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            [event] = await client.events(1)
            await client.close()
            return event

        event = asyncio.run(scenario())
        assert (event["agent"], event["status"], event["progress"]) == ("renderer", "running", 0.25)
    finally:
        service.stop()


def test_redis_layout_document_lets_any_language_publish(redis_url: str, redis_prefix: str) -> None:
    """Publish with plain redis-py, following docs/redis-layout.md, to a live subscriber."""
    from backend.hub.redis_bus import PUBLISH

    doc = (ROOT / "docs/redis-layout.md").read_text()
    script = re.search(r"```lua\n(.*?)```", doc, re.S)
    assert script, "the document carries the publish script"
    assert " ".join(script.group(1).split()) == " ".join(PUBLISH.split()), (
        "the documented script is the one the service runs"
    )
    service = ServiceProcess({"REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix})
    service.start()
    try:

        async def scenario() -> dict[str, object]:
            client = await Client.open(f"{service.ws_url}/ws/polyglot-1")
            await client.recv_until("snapshot")
            sid, p = "polyglot-1", redis_prefix
            r = redis.Redis.from_url(redis_url)
            head = f'{{"type":"agent_status","session_id":"{sid}","seq":'
            tail = (
                ',"agent":"go_worker","status":"completed","progress":1.0,'
                '"message":"done","data":{},"ts":"2026-11-22T10:00:00.000Z"}'
            )
            keys = [
                f"{p}hub:{{{sid}}}:seq",
                f"{p}hub:{{{sid}}}:stream",
                f"{p}hub:{{{sid}}}:agents",
                f"{p}hub:{{{sid}}}:epoch",
            ]
            args = [
                head,
                tail,
                "go_worker",
                1000,
                604800,
                "fromdoc",
                f"{p}hub:ch:{sid}",
                "1700000000.0",
            ]
            seq, _epoch = r.eval(script.group(1), 4, *keys, *args)
            r.close()
            assert seq == 1
            [event] = await client.events(1)
            await client.close()
            return event

        event = asyncio.run(scenario())
        assert (event["agent"], event["status"], event["seq"]) == ("go_worker", "completed", 1)
    finally:
        service.stop()


@pytest.mark.parametrize(("setting", "negotiated"), [(None, False), ("true", True)])
async def test_serve_negotiates_compression_only_when_configured(
    setting: str | None, negotiated: bool
) -> None:
    service = ServiceProcess({"WS_PER_MESSAGE_DEFLATE": setting} if setting else {}, cli=True)
    service.start()
    try:
        # Like a browser, the client offers permessage-deflate.
        client = await Client.open(f"{service.ws_url}/ws/deflate-1", compression="deflate")
        await client.recv_until("snapshot")
        assert client.ws.response is not None
        extensions = client.ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        assert ("permessage-deflate" in extensions) is negotiated, extensions
        await client.close()
    finally:
        service.stop()
