"""Where interview recordings are kept: the pipeline's media adapters, under their own root.

The interview service defines what it needs (:class:`interview_service.recording.RecordingStore`)
and imports no storage backend; the app hands it one of these. Locally, recordings live
in ``INTERVIEW_RECORDINGS_DIR`` (not under ``/media``, which anyone holding a URL may
read) and are served to their owner by ``GET /api/interview/{id}/recording``; with
``S3_BUCKET`` they go under ``<S3_PREFIX>interviews/`` (inside the prefix the ECS tasks
may write) and are handed out as presigned URLs, and the bucket's lifecycle rule expires
them (deploy/aws/bucket.yaml, ``RetentionDays``).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from backend.pipeline.local_media import LocalMedia
from backend.pipeline.s3_media import S3Media
from backend.pipeline.settings import PipelineSettings
from interview_service.recording import RecordingStore
from interview_service.settings import InterviewSettings


class LocalRecordings:
    name = "local recordings"

    def __init__(self, root: Path) -> None:
        self._media = LocalMedia(root)
        self._root = root

    async def save(self, key: str, source: Path, content_type: str) -> None:
        await self._media.publish(key, source, content_type)

    async def link(self, key: str) -> str | None:
        return None  # served, with auth, by the interview router

    def path(self, key: str) -> Path | None:
        return self._media.path(key)

    async def remove(self, interview_id: str) -> None:
        await self._media.remove(interview_id)

    async def sweep(self, older_than_s: float) -> int:
        return await asyncio.to_thread(_sweep, self._root, time.time() - older_than_s)


def _sweep(root: Path, before: float) -> int:
    """Remove each interview's directory whose newest file is older than ``before``."""
    removed = 0
    if not root.is_dir():
        return 0
    for folder in root.iterdir():
        if not folder.is_dir():
            continue
        files = [item for item in folder.iterdir() if item.is_file()]
        newest = max((item.stat().st_mtime for item in files), default=folder.stat().st_mtime)
        if newest < before:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


class S3Recordings:
    name = "S3 recordings"

    def __init__(self, media: S3Media) -> None:
        self._media = media

    async def save(self, key: str, source: Path, content_type: str) -> None:
        await self._media.publish(key, source, content_type)

    async def link(self, key: str) -> str | None:
        return await self._media.link(key)

    def path(self, key: str) -> Path | None:
        return None

    async def remove(self, interview_id: str) -> None:
        await self._media.remove(interview_id)

    async def sweep(self, older_than_s: float) -> int:
        return 0  # the bucket's lifecycle rule expires them (deploy/aws/bucket.yaml)


def open_recordings(
    settings: InterviewSettings, pipeline_settings: PipelineSettings
) -> RecordingStore:
    if pipeline_settings.s3_bucket:
        scoped = pipeline_settings.model_copy(
            update={"s3_prefix": f"{pipeline_settings.s3_prefix}interviews/"}
        )
        return S3Recordings(S3Media.from_settings(scoped))
    return LocalRecordings(settings.interview_recordings_dir)
