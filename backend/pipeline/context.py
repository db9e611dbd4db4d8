"""What a step gets: its inputs, a place to write, a way to report, and a stop signal."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from backend.pipeline.options import VideoOptions
from backend.pipeline.settings import PipelineSettings

Progress = Callable[[float, str], Awaitable[None]]


class MediaStore(Protocol):
    """Where published outputs go: local files under /media, or S3."""

    name: str

    async def publish(self, key: str, source: Path, content_type: str) -> str:
        """Store ``source`` under ``key`` (idempotent) and answer the URL to hand out."""
        ...

    async def remove(self, prefix: str) -> None: ...


@dataclass(slots=True)
class StepContext:
    session_id: str
    prompt: str
    options: VideoOptions
    settings: PipelineSettings
    run_dir: Path  # the run's work directory; outputs name files relative to it
    workdir: Path  # this step's own (partial until the step completes)
    outputs: dict[str, dict[str, Any]]  # earlier steps' outputs
    progress: Progress
    stop: threading.Event
    media: MediaStore
    publish_key: str
    openai: Any = None  # an OpenAI media client when configured

    def rel(self, path: Path) -> str:
        """``path`` as the run's outputs name it (the step dir's final name)."""
        return f"{self.workdir.name.removesuffix('.partial')}/{path.name}"
