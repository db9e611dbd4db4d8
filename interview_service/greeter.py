"""The call's voice until the interviewer (the voice-loop issue) takes over.

It speaks a greeting (espeak-ng when installed, else a short tone, and it says which in
its log line), then listens: every inbound frame is read and measured so the call's
status can show that the candidate's audio arrives.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import av
import structlog

from interview_service.conversation_seam import EventSink, InterviewPlan
from interview_service.espeak import EspeakVoice
from interview_service.greeting import OPEN_QUESTION, greeting
from interview_service.loudness import rms
from interview_service.paced_audio import PacedSource, tone
from interview_service.voice.events import TranscriptLine

log = structlog.get_logger(__name__)

VOICED_RMS = 0.01  # about -40 dBFS: anything louder counts as sound, not silence


def greeting_text(plan: InterviewPlan) -> str:
    return greeting(plan.role, plan.questions[0] if plan.questions else OPEN_QUESTION)


class Greeter:
    def __init__(self, plan: InterviewPlan, voice: EspeakVoice | None = None) -> None:
        self.plan = plan
        self.voice = voice or EspeakVoice()
        self.outbound = PacedSource()
        self.frames_in = 0
        self.voiced_frames_in = 0

    async def run(self, inbound: AsyncIterator[av.AudioFrame], events: EventSink) -> None:
        text = greeting_text(self.plan)
        started = time.time()
        if self.voice.available:
            pcm = await self.voice.synthesize(text, language=self.plan.language)
            engine = "espeak-ng"
        else:
            pcm = tone(1.0)
            engine = "tone"
            log.warning("no_tts_engine", detail="espeak-ng not installed; greeting is a tone")
        self.outbound.enqueue_pcm(pcm)
        duration = len(pcm) / 2 / 48_000
        log.info("greeting", interview_id=self.plan.interview_id, engine=engine)
        events.send(TranscriptLine("interviewer", text, started, started + duration, id="greeting"))
        async for frame in inbound:
            self.frames_in += 1
            if rms(frame) >= VOICED_RMS:
                self.voiced_frames_in += 1
