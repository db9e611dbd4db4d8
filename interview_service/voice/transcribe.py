"""The transcribe stage: the candidate's speech to text in pieces, begun at pauses.

Each stretch of audio is transcribed once. A pause (``pause_s``, 0.16 s) starts a
*tentative* transcription of the speech since the last cut, so a verdict on the answer
is ready a moment after the candidate stops; speech before ``early_stt_s`` of silence
cancels it (the stretch goes on), a longer pause commits it as a piece. When the turn
ends, only what came after the last pause is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np

from interview_service.conversation_seam import InterviewPlan
from interview_service.voice.providers import SpeechToText, Words, unsure_end
from interview_service.voice.vocabulary import stt_prompt, with_context

PREROLL_CHUNKS = 10  # 320 ms kept before speech starts, so first syllables are not lost

Transcribe = Callable[[np.ndarray, Sequence[asyncio.Task[str]]], asyncio.Task[str]]


class Transcriber:
    """Runs STT pieces as tasks it owns; the conversation cancels what is left."""

    def __init__(self, plan: InterviewPlan, stt: SpeechToText, timeout_s: float) -> None:
        self.plan = plan
        self.stt = stt
        self.timeout_s = timeout_s
        self.tasks: set[asyncio.Task[str]] = set()
        # STT's prompt: the interview's terms, spelled right ("Kubernetes", not "Cuban It's")
        self.vocabulary = stt_prompt(plan.role, plan.job_description, plan.questions)

    def __call__(self, audio: np.ndarray, before: Sequence[asyncio.Task[str]]) -> asyncio.Task[str]:
        task = asyncio.create_task(self._after(audio, list(before)))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _after(self, audio: np.ndarray, before: list[asyncio.Task[str]]) -> str:
        # the vocabulary, then the answer so far (a short piece alone is often misheard:
        # "one customer sent thousands" came back as "1,000")
        parts = await asyncio.gather(*(asyncio.shield(p) for p in before)) if before else []
        said = " ".join(part for part in parts if part)
        async with asyncio.timeout(self.timeout_s):
            return await self.stt.transcribe(
                audio, language=self.plan.language, prompt=with_context(self.vocabulary, said)
            )

    def cancel_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()


class Capture:
    """The utterance being heard: its audio since the last cut, and its pieces."""

    __slots__ = ("_cut_at", "chunks", "pieces", "started_at", "tentative", "voiced")

    def __init__(self, chunks: list[np.ndarray], started_at: float) -> None:
        self.chunks = chunks  # 512-sample views, since the last cut
        self.pieces: list[asyncio.Task[str]] = []
        self.started_at = started_at
        self.voiced = True  # speech since the last cut
        self.tentative: asyncio.Task[str] | None = None
        self._cut_at = 0  # len(chunks) when the tentative piece began

    def audio(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)

    def pause(self, transcribe: Transcribe) -> None:
        """A short pause: transcribe the stretch so far, tentatively."""
        if self.voiced and self.tentative is None:
            self._cut_at = len(self.chunks)
            self.tentative = transcribe(self.audio(), self.pieces)

    def resume(self) -> None:
        """Speech again before the pause was long enough: the stretch goes on."""
        if self.tentative is not None:
            self.tentative.cancel()
            self.tentative = None
        self.voiced = True

    def commit(self, transcribe: Transcribe) -> None:
        """A long pause, or the end: the stretch so far becomes a piece."""
        if self.tentative is not None:
            self.pieces.append(self.tentative)
            self.tentative = None
            del self.chunks[: self._cut_at]
        elif self.voiced:
            self.pieces.append(transcribe(self.audio(), self.pieces))
            self.chunks = []
        del self.chunks[:-PREROLL_CHUNKS]
        self.voiced = False

    def so_far(self) -> list[asyncio.Task[str]]:
        """The pieces and the tentative one: everything said up to this pause."""
        return [*self.pieces, *([self.tentative] if self.tentative is not None else [])]

    def abandon(self) -> None:
        for piece in self.so_far():
            piece.cancel()
        self.tentative = None


async def text_of(pieces: Sequence[asyncio.Task[str]]) -> str:
    """The pieces' words joined; shielded, so a waiter's cancellation spares them."""
    parts = [part for part in await asyncio.gather(*(asyncio.shield(p) for p in pieces)) if part]
    text = " ".join(parts)
    # the last piece's unsure ending is the whole text's
    return Words(text) if parts and unsure_end(parts[-1]) else text
