from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from backend.app.settings import Settings
from backend.core.auth import Role, mint_token
from tests.support.live_server import LiveServer, live_server

JWT_SECRET = "pipeline-agent-tests-secret-0123456789abcdef"


def agent_token(sub: str = "renderer") -> str:
    return mint_token(JWT_SECRET, sub, Role.AGENT)


@pytest.fixture
async def service(make_settings: Callable[..., Settings]) -> AsyncIterator[LiveServer]:
    """The service with JWT auth, in memory."""
    async with live_server(make_settings(auth_jwt_secret=JWT_SECRET)) as server:
        yield server
