"""A candidate on the other end of a conversation, without WebRTC: a paced microphone in,
real-time playback out, and every event the conversation reports, as sent on the wire."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import av

from interview_service.loudness import rms
from interview_service.paced_audio import PacedSource
from interview_service.voice.conversation import VoiceConversation
from tests.support.voice_fakes import voice_pcm


class Line:
    """A candidate on the other end: a paced microphone in, real-time playback out."""

    def __init__(self, conversation: VoiceConversation) -> None:
        self.conversation = conversation
        self.microphone = PacedSource()
        self.events: list[dict[str, Any]] = []
        self.loud_frames_heard = 0
        self._tasks: list[asyncio.Task[Any]] = []

    def send(self, event: Any) -> None:
        self.events.append(event.to_wire())

    async def _frames(self) -> AsyncIterator[av.AudioFrame]:
        while True:
            yield await self.microphone.recv()

    async def _play(self) -> None:
        while True:
            frame = await self.conversation.outbound.recv()
            if rms(frame) > 0.01:
                self.loud_frames_heard += 1

    def start(self) -> asyncio.Task[None]:
        self._tasks.append(asyncio.create_task(self._play()))
        run = asyncio.create_task(self.conversation.run(self._frames(), self))
        self._tasks.append(run)
        return run

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def lines(self, role: str) -> list[dict[str, Any]]:
        return [
            e["item"]
            for e in self.events
            if e["type"] == "transcript" and e["item"]["role"] == role
        ]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.events}"
            await asyncio.sleep(0.02)

    async def greeted(self) -> None:
        await self.until(lambda: self.lines("interviewer"), 5, "the greeting")

    def say(self, seconds: float) -> None:
        self.microphone.enqueue_pcm(voice_pcm(seconds))

    def pause(self, seconds: float) -> None:
        self.microphone.enqueue_pcm(bytes(int(48_000 * seconds) * 2))

    def play(self, pcm: bytes) -> None:
        """s16 mono 48 kHz audio (speech synthesised with espeak-ng) into the microphone."""
        self.microphone.enqueue_pcm(pcm)
