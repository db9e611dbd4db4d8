from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from tests.support.live_server import LiveServer, live_server


@pytest.fixture(autouse=True)
def _no_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub's tests play the agents themselves: the service records sessions only."""
    monkeypatch.setenv("PIPELINE_ENGINE", "off")


@pytest.fixture(params=["memory", "redis"])
def hub_settings(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> Callable[..., Settings]:
    """Settings for the hub on each bus: the in-memory one and a real Redis."""

    def build(**overrides: Any) -> Settings:
        if request.param == "redis":
            overrides.setdefault("redis_url", redis_url)
            overrides.setdefault("redis_prefix", redis_prefix)
        return make_settings(**overrides)

    return build


@pytest.fixture
async def server(hub_settings: Callable[..., Settings]) -> AsyncIterator[LiveServer]:
    async with live_server(hub_settings()) as live:
        yield live


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        yield client


async def publish(
    http: httpx.AsyncClient,
    session_id: str,
    n: int = 1,
    *,
    agent: str = "script_writer",
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> list[int]:
    seqs = []
    for i in range(n):
        body = {
            "agent": agent,
            "status": "running",
            "progress": None,
            "message": f"step {i}",
            **fields,
        }
        response = await http.post(
            f"/api/sessions/{session_id}/events", json=body, headers=headers or {}
        )
        assert response.status_code == 202, response.text
        seqs.append(response.json()["seq"])
    return seqs
