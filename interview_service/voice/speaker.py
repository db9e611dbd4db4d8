"""The speak stage: streamed text → sentences (the first clause early) → TTS → paced audio.

A reply may be prepared before the candidate's turn is over (preemptive generation):
its audio waits behind ``gate`` and goes out only once the turn ends, or is thrown away.
What was actually played is kept per sentence, so an interrupted line is cut to what the
candidate heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog

from interview_service.paced_audio import PacedSource
from interview_service.voice.providers import TextToSpeech
from interview_service.voice.spoken import Spoken, speakable_and_rest

log = structlog.get_logger(__name__)

PLAYOUT_MARGIN_S = 5.0  # beyond the queued audio, before playback counts as stalled


class Speaker:
    def __init__(self, tts: TextToSpeech, language: str, outbound: PacedSource) -> None:
        self.tts = tts
        self.language = language
        self.outbound = outbound

    async def say(
        self,
        pieces: AsyncIterator[str],
        spoken: list[Spoken],
        metrics: dict[str, Any],
        gate: asyncio.Event,
    ) -> str:
        """Speak a streamed line; returns its whole text. ``spoken`` fills as it goes."""
        began = time.perf_counter()
        text: list[str] = []
        buffer = ""
        async for piece in pieces:
            if not text:
                metrics["llm_first_token_s"] = round(time.perf_counter() - began, 3)
            text.append(piece)
            buffer += piece
            *complete, buffer = speakable_and_rest(buffer, first=not spoken)
            for sentence in complete:
                await self._synthesize(sentence, spoken, metrics, gate)
        if buffer.strip():
            await self._synthesize(buffer.strip(), spoken, metrics, gate)
        return "".join(text).strip()

    async def _synthesize(
        self, sentence: str, spoken: list[Spoken], metrics: dict[str, Any], gate: asyncio.Event
    ) -> None:
        began = time.perf_counter()
        line = Spoken(sentence)
        spoken.append(line)
        speech = self.tts.synthesize(sentence, language=self.language)
        async with contextlib.aclosing(speech) as chunks:
            async for pcm in chunks:
                if "tts_first_byte_s" not in metrics:
                    metrics["tts_first_byte_s"] = round(time.perf_counter() - began, 3)
                if not gate.is_set():
                    await gate.wait()
                line.segments.append(self.outbound.enqueue_pcm(pcm))

    async def played(self, interview_id: str) -> None:
        """Until the queued speech has gone out; bounded, should the track stop pulling."""
        budget = self.outbound.queued_s + PLAYOUT_MARGIN_S
        try:
            async with asyncio.timeout(budget):
                await self.outbound.drained()
        except TimeoutError:
            log.warning(
                "outbound_stalled",
                interview_id=interview_id,
                queued_s=round(self.outbound.queued_s, 2),
            )
            self.outbound.flush()


def heard(spoken: list[Spoken]) -> str:
    """The line as far as it was played: whole sentences, then the played share of the
    one that was cut."""
    words: list[str] = []
    for line in spoken:
        if line.sent == 0:
            break
        sentence = line.sentence.split()
        fraction = line.sent / line.frames if line.frames else 1.0
        words.extend(sentence[: max(1, round(len(sentence) * fraction))])
        if line.sent < line.frames:
            break
    return " ".join(words)
