"""Retention and DELETE: what expires, what an owner can remove, what others cannot see."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio as redis

from backend.app.recordings import LocalRecordings
from backend.app.settings import Settings
from backend.core.auth import mint_token
from tests.conftest import JWT_SECRET
from tests.interview.test_webhooks import SECRET, Receiver, serving


def _as(sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(JWT_SECRET, sub)}"}


async def _keys(redis_url: str, prefix: str, interview: str) -> list[bytes]:
    client = redis.Redis.from_url(redis_url)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}*{interview}*")]
    finally:
        await client.aclose()


async def test_the_owner_deletes_an_interview_and_others_get_404(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings]
) -> None:
    app = await start_app(make_settings(auth_jwt_secret=JWT_SECRET))
    started = await app.client.post("/api/interview/start", json={}, headers=_as("alice"))
    interview = started.json()["session_id"]
    assert interview in app.services.interviews.calls  # a live call, waiting for an offer

    theirs = await app.client.delete(f"/api/interview/{interview}", headers=_as("bob"))
    assert theirs.status_code == 404
    assert theirs.json()["error"]["code"] == "interview_not_found"
    kept = await app.client.get(f"/api/interview/{interview}/status", headers=_as("alice"))
    assert kept.status_code == 200

    mine = await app.client.delete(f"/api/interview/{interview}", headers=_as("alice"))
    assert mine.status_code == 204
    assert mine.content == b""
    assert interview not in app.services.interviews.calls  # the call was ended first
    for path in ("status", "results"):
        gone = await app.client.get(f"/api/interview/{interview}/{path}", headers=_as("alice"))
        assert gone.status_code == 404
    again = await app.client.delete(f"/api/interview/{interview}", headers=_as("alice"))
    assert again.status_code == 404


async def test_delete_removes_the_record_and_the_webhook_outbox_from_redis(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    app = await start_app(
        make_settings(
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            webhook_secret=SECRET,
            webhook_allow_private=True,
            webhook_backoff_s=0.4,
        )
    )
    async with serving(Receiver([500])) as receiver:
        started = await app.client.post(
            "/api/interview/start", json={"user_id": "c", "webhook_url": receiver.url}
        )
        interview = started.json()["session_id"]
        await app.client.post(f"/api/interview/{interview}/end")
        deadline = time.monotonic() + 10
        while not receiver.received:
            assert time.monotonic() < deadline, "no first attempt"
            await asyncio.sleep(0.05)
        assert len(await _keys(redis_url, redis_prefix, interview)) >= 2  # record + outbox

        deleted = await app.client.delete(f"/api/interview/{interview}")
        assert deleted.status_code == 204
        assert await _keys(redis_url, redis_prefix, interview) == []
        attempts = len(receiver.received)
        await asyncio.sleep(1.5)  # past the next retry: nothing is sent for it any more
        assert len(receiver.received) == attempts
    assert await _keys(redis_url, redis_prefix, interview) == []


async def test_records_and_outboxes_expire_after_the_retention(
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    redis_url: str,
    redis_prefix: str,
) -> None:
    retention_s = 2.0
    app = await start_app(
        make_settings(
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            interview_retention_days=retention_s / 86400,
            webhook_secret=SECRET,
            webhook_allow_private=True,
        )
    )
    async with serving(Receiver([200])) as receiver:
        started = await app.client.post(
            "/api/interview/start", json={"user_id": "c", "webhook_url": receiver.url}
        )
        interview = started.json()["session_id"]
        await app.client.post(f"/api/interview/{interview}/end")
        deadline = time.monotonic() + 10
        while not receiver.received:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    client = redis.Redis.from_url(redis_url)
    try:
        keys = await _keys(redis_url, redis_prefix, interview)
        assert len(keys) == 2  # the record and its delivered webhook
        for key in keys:
            assert 0 < await client.pttl(key) <= retention_s * 1000
    finally:
        await client.aclose()
    await asyncio.sleep(retention_s + 0.5)
    assert (await app.client.get(f"/api/interview/{interview}/results")).status_code == 404
    assert await _keys(redis_url, redis_prefix, interview) == []


def _old_recording(root: Path, interview: str, age_s: float) -> Path:
    folder = root / interview
    folder.mkdir(parents=True)
    file = folder / "recording.ogg"
    file.write_bytes(b"OggS" + bytes(100))
    then = time.time() - age_s
    os.utime(file, (then, then))
    return folder


async def test_the_sweeper_removes_local_recordings_past_the_retention(
    start_app: Callable[[Settings], Any], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    root = tmp_path / "kept"
    old = _old_recording(root, "a" * 32, age_s=3 * 86400)
    young = _old_recording(root, "b" * 32, age_s=60)
    assert await LocalRecordings(root).sweep(2 * 86400) == 1
    assert not old.exists()
    assert young.exists()

    # and the service runs it by itself, every INTERVIEW_RETENTION_SWEEP_S
    stale = _old_recording(root, "c" * 32, age_s=120)
    await start_app(
        make_settings(
            interview_recordings_dir=root,
            interview_retention_days=100 / 86400,
            interview_retention_sweep_s=0.2,
        )
    )
    deadline = time.monotonic() + 5
    while stale.exists():
        assert time.monotonic() < deadline, "the sweeper left an expired recording"
        await asyncio.sleep(0.05)
    assert young.exists()  # 60 s old, within the 100 s retention
