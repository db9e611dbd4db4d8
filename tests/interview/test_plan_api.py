"""Plans, rubrics, times and the report through the running app (no peer connection).

What /start accepts (clear 422s), questions drafted from a job description by the
OpenAI path against the fake OpenAI server, ISO 8601 times in every answer, records
written before this release still readable from Redis, and the HTML report.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from backend.app.settings import Settings
from backend.core.auth import Role, mint_token
from backend.core.clock import to_seconds
from interview_service.plan import DEFAULT_QUESTIONS
from tests.conftest import JWT_SECRET
from tests.support.fake_openai import FakeOpenAI, fake_openai

JOB = "Platform engineer for a video pipeline in Python: ECS, S3, Redis, WebRTC."
DRAFTED = [
    "What brought you to platform engineering?",
    "How would you run a Python service on ECS behind a load balancer?",
    "How do you keep Redis from becoming a single point of failure?",
    "Tell me about a WebRTC problem you debugged.",
    "How do you decide what to measure in a video pipeline?",
]


def _iso(value: Any) -> float:
    assert isinstance(value, str)
    assert value.endswith("Z")
    return to_seconds(value)


async def _start(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/interview/start", json={"user_id": "cand", **body})
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


# ---- what /start accepts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"questions": [f"Question {n}?" for n in range(51)]}, "questions"),
        ({"questions": ["Why Python?", "  "]}, "questions"),
        ({"questions": ["x" * 1001]}, "questions"),
        ({"job_description": "x" * 20_001}, "job_description"),
        ({"job_description": "   "}, "job_description"),
        ({"role": ""}, "role"),
        ({"rubric": []}, "rubric"),
        ({"rubric": [{"name": "depth"}]}, "rubric"),
        ({"rubric": [{"name": "depth", "description": "d", "scale": 1}]}, "rubric"),
        ({"rubric": [{"name": "depth", "description": "d", "scale": 11}]}, "rubric"),
        ({"rubric": [{"name": "depth", "description": "d", "scale": "5"}]}, "rubric"),
        ({"rubric": [{"name": "depth", "description": "d", "weight": 2}]}, "rubric"),
        (
            {
                "rubric": [
                    {"name": "Depth", "description": "a"},
                    {"name": "depth", "description": "b"},
                ]
            },
            "distinct names",
        ),
        ({"rubric": [{"name": f"c{n}", "description": "d"} for n in range(11)]}, "rubric"),
        ({"max_follow_ups": 6}, "max_follow_ups"),
        ({"max_follow_ups": -1}, "max_follow_ups"),
        ({"max_follow_ups": True}, "max_follow_ups"),
    ],
)
async def test_bad_plans_get_a_422_that_names_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/interview/start", json={"user_id": "cand", **body})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message"]


async def test_a_plan_is_kept_and_shown_in_the_results(client: httpx.AsyncClient) -> None:
    rubric = [{"name": "Python depth", "description": "Knows the runtime", "scale": 4}]
    started = await _start(
        client,
        role="backend engineer",
        questions=["  Why Python?  ", "What is asyncio for?"],
        rubric=rubric,
        max_follow_ups=0,
    )
    assert started["questions"] == ["Why Python?", "What is asyncio for?"]
    assert started["questions_source"] == "given"
    results = (await client.get(f"/api/interview/{started['session_id']}/results")).json()
    assert results["plan"]["rubric"] == rubric
    assert results["plan"]["max_follow_ups"] == 0
    assert results["scores"] is None  # nothing scored without a language model


async def test_without_questions_the_local_path_uses_its_defaults(
    client: httpx.AsyncClient,
) -> None:
    started = await _start(client, job_description=JOB)  # the greeter drafts nothing
    assert started["questions"] == list(DEFAULT_QUESTIONS)
    assert started["questions_source"] == "default"
    results = (await client.get(f"/api/interview/{started['session_id']}/results")).json()
    assert [c["name"] for c in results["plan"]["rubric"]] == [
        "relevance",
        "depth",
        "examples",
        "communication",
    ]


# ---- questions drafted on the OpenAI path -----------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with fake_openai(FakeOpenAI(structured=json.dumps({"questions": DRAFTED}))) as server:
        yield server


@pytest.fixture
async def openai_app(
    fake: FakeOpenAI, start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> Any:
    return await start_app(
        make_settings(
            interview_conversation="interviewer",
            openai_api_key="sk-test",
            openai_base_url=fake.base_url,
            openai_llm_model="chat-test",
            interview_provider_timeout_s=2.0,
        )
    )


async def test_questions_are_drafted_from_the_job_description_before_the_call(
    openai_app: Any, fake: FakeOpenAI
) -> None:
    started = await _start(openai_app.client, role="platform engineer", job_description=JOB)
    assert started["questions"] == DRAFTED
    assert started["questions_source"] == "drafted"
    (request,) = fake.seen("chat")
    assert request["model"] == "chat-test"
    assert JOB in request["messages"][1]["content"]
    results = await openai_app.client.get(f"/api/interview/{started['session_id']}/results")
    assert results.json()["plan"]["questions"] == DRAFTED


async def test_given_questions_are_not_drafted(openai_app: Any, fake: FakeOpenAI) -> None:
    started = await _start(openai_app.client, job_description=JOB, questions=["Why ECS?"])
    assert started["questions"] == ["Why ECS?"]
    assert fake.seen("chat") == []


async def test_a_failed_draft_is_a_503_to_retry(openai_app: Any, fake: FakeOpenAI) -> None:
    fake.structured = json.dumps({"questions": ["Only one?"]})
    response = await openai_app.client.post(
        "/api/interview/start", json={"user_id": "cand", "job_description": JOB}
    )
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "question_drafting_failed"
    assert response.headers["retry-after"] == "5"


# ---- times and states -------------------------------------------------------------------


async def test_every_time_in_the_answers_is_iso_8601_utc(client: httpx.AsyncClient) -> None:
    before = time.time()
    started = await _start(client)
    interview = started["session_id"]
    assert _iso(started["expires_at"]) > before
    status = (await client.get(f"/api/interview/{interview}/status")).json()
    assert before - 1 <= _iso(status["created_at"]) <= time.time()
    assert status["started_at"] is None
    assert status["ended_at"] is None

    line = await client.post(
        f"/api/interview/{interview}/transcript",
        json={"role": "candidate", "text": "Hello there, I am ready.", "ts": 1_800_000_000.5},
    )
    assert line.status_code == 201
    assert line.json()["start"] == "2027-01-15T08:00:00.500Z"

    ended = (await client.post(f"/api/interview/{interview}/end")).json()
    assert _iso(ended["ended_at"]) >= _iso(ended["created_at"])
    assert ended["connection_state"] == "closed"
    assert ended["ice_connection_state"] == "closed"
    results = (await client.get(f"/api/interview/{interview}/results")).json()
    assert results["transcript"][0]["start"] == "2027-01-15T08:00:00.500Z"
    assert results["transcript"][0]["end"] == "2027-01-15T08:00:00.500Z"


OLD_RECORD = {  # as the release before this one stored it: floats, and "connected"
    "id": "old1",
    "user_id": "cand",
    "owner": "anonymous",
    "role": None,
    "questions": ["Why Python?"],
    "language": "en",
    "max_duration_s": 600.0,
    "created_at": 1_800_000_000.0,
    "expires_at": 1_800_000_120.0,
    "status": "ended",
    "connection_state": "connected",
    "ice_connection_state": "completed",
    "started_at": 1_800_000_010.0,
    "ended_at": 1_800_000_070.25,
    "end_reason": "completed",
    "turns": 1,
    "current_question": 0,
    "transcript": [
        {
            "role": "candidate",
            "text": "I like it.",
            "start": 1_800_000_020.0,
            "end": 1_800_000_021.0,
            "id": "a",
            "interrupted": False,
            "final": True,
            "source": "server",
            "a_field_from_a_later_release": 1,
        }
    ],
    "media": {},
    "turn_metrics": [],
    "interviewer": {},
    "evaluation": "none",
    "summary": None,
    "scores": None,
    "a_field_from_a_later_release": {"x": 1},
}


async def test_records_stored_before_the_change_still_load_from_redis(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    app = await start_app(make_settings(redis_url=redis_url, redis_prefix=redis_prefix))
    store = redis.Redis.from_url(redis_url)
    try:
        await store.set(f"{redis_prefix}interview:old1", json.dumps(OLD_RECORD), ex=60)
    finally:
        await store.aclose()
    status = (await app.client.get("/api/interview/old1/status")).json()
    assert status["started_at"] == "2027-01-15T08:00:10.000Z"
    assert status["ended_at"] == "2027-01-15T08:01:10.250Z"
    assert status["duration_s"] == 60.25
    assert status["connection_state"] == "closed"  # the stale "connected" is not reported
    results = (await app.client.get("/api/interview/old1/results")).json()
    assert results["transcript"][0]["start"] == "2027-01-15T08:00:20.000Z"
    report = await app.client.get("/api/interview/old1/report")
    assert report.status_code == 200
    assert "I like it." in report.text


# ---- the report -------------------------------------------------------------------------

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


def _as(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub, Role.USER)}"}


async def test_the_report_has_the_results_auth_and_escapes_the_transcript(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(make_settings(auth_jwt_secret=JWT_SECRET))
    client = app.client
    started = (
        await client.post(
            "/api/interview/start", json={"role": "<b>engineer</b>"}, headers=_as("alice")
        )
    ).json()
    interview = started["session_id"]
    await client.post(
        f"/api/interview/{interview}/transcript",
        json={"role": "candidate", "text": HOSTILE},
        headers=_as("alice"),
    )
    assert (await client.get(f"/api/interview/{interview}/report")).status_code == 401
    assert (
        await client.get(f"/api/interview/{interview}/report", headers=_as("bob"))
    ).status_code == 403
    response = await client.get(f"/api/interview/{interview}/report", headers=_as("alice"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page
    assert "Interview report: &lt;b&gt;engineer&lt;/b&gt;" in page
    assert "Only a language model writes a summary" in page
