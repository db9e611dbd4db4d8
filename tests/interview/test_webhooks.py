"""Interview webhooks: a real receiver on loopback, signatures, retries, refused targets.

The receiver is a real HTTP server (uvicorn) on 127.0.0.1; loopback is a private range,
so these apps run with WEBHOOK_ALLOW_PRIVATE=true, except where refusing it is the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from backend.app.settings import Settings
from interview_service.webhook_targets import WebhookTargetRefused, resolve_target
from tests.support.ports import free_port

SECRET = "a-webhook-secret"


class Receiver:
    """Answers each POST with the next status of ``statuses`` (the last one repeats)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/interview?team=7"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.received.append((headers, body))
        status = self.statuses[min(len(self.received), len(self.statuses)) - 1]
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[Receiver]:
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=receiver.port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the receiver did not start"
        await asyncio.sleep(0.02)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def _settings(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    overrides.setdefault("webhook_secret", SECRET)
    overrides.setdefault("webhook_allow_private", True)
    overrides.setdefault("webhook_backoff_s", 0.2)
    return make_settings(**overrides)


async def _results_when(
    client: httpx.AsyncClient, interview: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        body: dict[str, Any] = (await client.get(f"/api/interview/{interview}/results")).json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"webhook never settled: {body.get('webhook')}"
        await asyncio.sleep(0.1)


async def test_results_are_signed_delivered_and_retried_after_a_500(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(_settings(make_settings))
    async with serving(Receiver([500, 204])) as receiver:
        started = await app.client.post(
            "/api/interview/start", json={"user_id": "cand-1", "webhook_url": receiver.url}
        )
        assert started.status_code == 201, started.text
        interview = started.json()["session_id"]
        waiting = (await app.client.get(f"/api/interview/{interview}/results")).json()
        assert waiting["webhook"]["state"] == "waiting"
        assert receiver.received == []  # nothing before the end

        await app.client.post(f"/api/interview/{interview}/end")
        results = await _results_when(
            app.client, interview, lambda body: body["webhook"]["delivered"]
        )

    assert len(receiver.received) == 2
    first, second = receiver.received
    assert first[1] == second[1]  # a retry sends the very same bytes
    headers, body = second
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-signature"] == f"sha256={expected}"
    timestamped = hmac.new(
        SECRET.encode(), headers["x-webhook-timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["x-signature-timestamped"] == f"sha256={timestamped}"
    assert headers["x-webhook-id"] == interview
    assert [h["x-webhook-attempt"] for h, _ in receiver.received] == ["1", "2"]
    assert headers["host"] == f"127.0.0.1:{receiver.port}"
    sent = json.loads(body)
    assert sent["session_id"] == interview
    assert sent["status"] == "ended"
    assert sent["transcript"] == results["transcript"]
    assert "webhook" not in sent

    webhook = results["webhook"]
    assert webhook["url"] == receiver.url
    assert webhook["state"] == "delivered"
    assert [a["status"] for a in webhook["attempts"]] == [500, 204]
    assert webhook["attempts"][0]["error"] == "answered 500"
    assert "error" not in webhook["attempts"][1]
    assert all(a["at"].endswith("Z") for a in webhook["attempts"])
    metrics = (await app.client.get("/metrics")).text
    assert 'interview_webhook_attempts_total{outcome="retry"} 1.0' in metrics
    assert 'interview_webhook_attempts_total{outcome="delivered"} 1.0' in metrics


async def test_a_receiver_that_keeps_failing_is_given_up_on_after_the_attempts_allowed(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(_settings(make_settings, webhook_max_attempts=3, webhook_backoff_s=0.1))
    async with serving(Receiver([503])) as receiver:
        started = await app.client.post(
            "/api/interview/start", json={"user_id": "c", "webhook_url": receiver.url}
        )
        interview = started.json()["session_id"]
        await app.client.post(f"/api/interview/{interview}/end")
        results = await _results_when(
            app.client, interview, lambda body: body["webhook"]["state"] == "failed"
        )
    assert len(receiver.received) == 3
    assert [a["status"] for a in results["webhook"]["attempts"]] == [503, 503, 503]
    assert results["webhook"]["delivered"] is False


async def test_an_unreachable_receiver_is_retried_until_it_answers(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(_settings(make_settings, webhook_backoff_s=0.3))
    receiver = Receiver([200])
    started = await app.client.post(
        "/api/interview/start", json={"user_id": "c", "webhook_url": receiver.url}
    )
    interview = started.json()["session_id"]
    await app.client.post(f"/api/interview/{interview}/end")
    await _results_when(app.client, interview, lambda body: len(body["webhook"]["attempts"]) >= 1)
    async with serving(receiver):  # comes up after the first attempt failed to connect
        results = await _results_when(
            app.client, interview, lambda body: body["webhook"]["delivered"]
        )
    first = results["webhook"]["attempts"][0]
    assert first["status"] is None
    assert "ConnectError" in first["error"]
    assert len(receiver.received) == 1


async def test_the_outbox_survives_the_process_that_ended_the_call(
    start_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    """With Redis, another process delivers what a stopped one could not."""
    settings = _settings(
        make_settings, redis_url=redis_url, redis_prefix=redis_prefix, webhook_backoff_s=0.5
    )
    first = await start_app(settings)
    receiver = Receiver([200])
    started = await first.client.post(
        "/api/interview/start", json={"user_id": "c", "webhook_url": receiver.url}
    )
    interview = started.json()["session_id"]
    await first.client.post(f"/api/interview/{interview}/end")
    await _results_when(first.client, interview, lambda body: len(body["webhook"]["attempts"]) >= 1)
    await first.services.interviews.wrap_up.outbox.close()  # that process stops delivering

    second = await start_app(settings)
    async with serving(receiver):
        results = await _results_when(
            second.client, interview, lambda body: body["webhook"]["delivered"]
        )
    assert len(receiver.received) == 1
    assert results["webhook"]["attempts"][-1]["status"] == 200


def _fake_dns(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str]) -> list[str]:
    """``name`` resolves to each of ``answers`` in turn (the last one repeats)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        address = answers[min(len(asked), len(answers) - 1)]
        asked.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


async def test_delivery_connects_to_the_address_it_checked_and_names_the_host(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name exists only in this test's resolver: the request can only arrive by address."""
    _fake_dns(monkeypatch, "hooks.example.test", ["127.0.0.1"])
    app = await start_app(_settings(make_settings))
    async with serving(Receiver([200])) as receiver:
        url = f"http://hooks.example.test:{receiver.port}/in"
        started = await app.client.post(
            "/api/interview/start", json={"user_id": "c", "webhook_url": url}
        )
        interview = started.json()["session_id"]
        await app.client.post(f"/api/interview/{interview}/end")
        await _results_when(app.client, interview, lambda body: body["webhook"]["delivered"])
    ((headers, _),) = receiver.received
    assert headers["host"] == f"hooks.example.test:{receiver.port}"


async def test_a_host_that_turns_private_after_the_check_is_never_contacted(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: public when /start checked it, loopback when the webhook is due."""
    asked = _fake_dns(monkeypatch, "rebind.example.test", ["93.184.215.14", "127.0.0.1"])
    app = await start_app(
        _settings(make_settings, webhook_allow_private=False, webhook_max_attempts=2)
    )
    async with serving(Receiver([200])) as receiver:
        url = f"http://rebind.example.test:{receiver.port}/in"
        started = await app.client.post(
            "/api/interview/start", json={"user_id": "c", "webhook_url": url}
        )
        assert started.status_code == 201  # public at the time
        interview = started.json()["session_id"]
        await app.client.post(f"/api/interview/{interview}/end")
        results = await _results_when(
            app.client, interview, lambda body: body["webhook"]["state"] == "failed"
        )
    assert receiver.received == []
    assert asked == ["93.184.215.14", "127.0.0.1", "127.0.0.1"]
    for attempt in results["webhook"]["attempts"]:
        assert attempt["status"] is None
        assert "private" in attempt["error"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:192.168.0.1]/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "not a url",
    ],
)
async def test_private_and_malformed_targets_are_refused_at_start(
    url: str, start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(make_settings(webhook_secret=SECRET))
    response = await app.client.post(
        "/api/interview/start", json={"user_id": "c", "webhook_url": url}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "webhook_url"


async def test_webhooks_need_a_secret_to_sign_with(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(make_settings(webhook_allow_private=True))
    response = await app.client.post(
        "/api/interview/start", json={"user_id": "c", "webhook_url": "http://127.0.0.1/x"}
    )
    assert response.status_code == 422
    assert "WEBHOOK_SECRET" in response.json()["error"]["message"]


async def test_production_takes_https_only() -> None:
    with pytest.raises(WebhookTargetRefused, match="https"):
        await resolve_target("http://93.184.215.14/hook", production=True, allow_private=False)
    # a public address over https passes (no DNS needed for an address literal)
    assert await resolve_target(
        "https://93.184.215.14/hook", production=True, allow_private=False
    ) == ["93.184.215.14"]
    # allowing private ranges never allows plain http in production
    with pytest.raises(WebhookTargetRefused):
        await resolve_target("http://127.0.0.1/hook", production=True, allow_private=True)
