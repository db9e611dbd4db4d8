"""What /api/interview/start accepts: strict numbers, and a user_id tied to the caller.

The user_id becomes the TURN username ``<expiry>:<user_id>``, so it carries no ':' and
no control characters, and with auth on it is the caller's own id. No peer connection
is made here, so these run without the network namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from backend.app.settings import Settings
from backend.core.auth import Role, mint_token
from tests.conftest import JWT_SECRET

TURN = {"turn_server": "127.0.0.1:3478", "turn_secret": "a-turn-secret"}


def _as(sub: str, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub, role)}"}


@pytest.fixture
async def authed(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> Any:
    return (await start_app(make_settings(auth_jwt_secret=JWT_SECRET, **TURN))).client


def _turn_user(started: dict[str, Any]) -> str:
    turn = next(s for s in started["ice_servers"] if "username" in s)
    expiry, _, user = str(turn["username"]).partition(":")
    assert expiry.isdigit()
    return user


@pytest.mark.parametrize("value", [True, False, "600", [600], {"s": 1}])
async def test_max_duration_is_a_number_not_a_bool_or_a_string(authed: Any, value: object) -> None:
    response = await authed.post(
        "/api/interview/start", json={"max_duration_s": value}, headers=_as("alice")
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert "max_duration_s" in response.json()["error"]["message"]


@pytest.mark.parametrize("value", [600, 90.5])
async def test_max_duration_numbers_are_accepted(authed: Any, value: float) -> None:
    response = await authed.post(
        "/api/interview/start", json={"max_duration_s": value}, headers=_as("alice")
    )
    assert response.status_code == 201, response.text


async def test_user_id_defaults_to_the_caller(authed: Any) -> None:
    response = await authed.post("/api/interview/start", json={}, headers=_as("alice"))
    assert response.status_code == 201, response.text
    assert _turn_user(response.json()) == "alice"
    same = await authed.post(
        "/api/interview/start", json={"user_id": "alice"}, headers=_as("alice")
    )
    assert same.status_code == 201
    assert _turn_user(same.json()) == "alice"


@pytest.mark.parametrize("role", [Role.USER, Role.AGENT])
async def test_user_id_of_someone_else_is_refused(authed: Any, role: Role) -> None:
    response = await authed.post(
        "/api/interview/start", json={"user_id": "bob"}, headers=_as("alice", role)
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "user_id_mismatch"


@pytest.mark.parametrize(
    "user_id", ["a:b", "1999999999:admin", "line\nbreak", "nul\x00", "tab\t", "del\x7f", "\u2028"]
)
async def test_user_ids_that_would_forge_a_turn_username_are_refused(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings], user_id: str
) -> None:
    client = (await start_app(make_settings(**TURN))).client  # auth off: the body names the user
    response = await client.post("/api/interview/start", json={"user_id": user_id})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


async def test_with_auth_off_the_user_id_is_the_clients_and_required(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    client = (await start_app(make_settings(**TURN))).client
    response = await client.post("/api/interview/start", json={"user_id": "cand-7"})
    assert response.status_code == 201
    assert _turn_user(response.json()) == "cand-7"
    missing = await client.post("/api/interview/start", json={})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_user_id"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("transcript", {"role": "candidate", "text": "hi", "ts": True}),
        ("rtc/ice-candidate", {"candidate": "", "sdpMLineIndex": True}),
    ],
)
async def test_bools_are_not_numbers_elsewhere_either(
    authed: Any, path: str, body: dict[str, Any]
) -> None:
    started = await authed.post("/api/interview/start", json={}, headers=_as("alice"))
    interview = started.json()["session_id"]
    response = await authed.post(
        f"/api/interview/{interview}/{path}", json=body, headers=_as("alice")
    )
    assert response.status_code == 422, response.text


async def test_the_job_description_reaches_the_interview_plan(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    """The voice loop prompts STT with its terms; before, the router dropped it."""
    running = await start_app(make_settings(interview_conversation="greeter", **TURN))
    response = await running.client.post(
        "/api/interview/start",
        json={"user_id": "cand-8", "role": "SRE", "job_description": "Kubernetes and gRPC."},
    )
    assert response.status_code == 201, response.text
    call = running.services.interviews.calls[response.json()["session_id"]]
    assert call.conversation.plan.job_description == "Kubernetes and gRPC."
    too_long = await running.client.post(
        "/api/interview/start", json={"user_id": "cand-8", "job_description": "x" * 20_001}
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "validation_error"
