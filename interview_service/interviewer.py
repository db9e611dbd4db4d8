"""Who speaks on a call: the greeter, or the voice stack, built once per process (its
models loaded off the event loop) and warmed at startup."""

from __future__ import annotations

import asyncio
import time

import structlog
from prometheus_client import CollectorRegistry

from backend.core.errors import Unavailable
from interview_service.conversation_seam import Conversation, ConversationFactory, InterviewPlan
from interview_service.greeter import Greeter
from interview_service.settings import InterviewSettings
from interview_service.voice.conversation import VoiceConversation
from interview_service.voice.factory import stack_builder, turn_histogram
from interview_service.voice.providers import QuestionDrafter
from interview_service.voice.stack import VoiceStack

log = structlog.get_logger(__name__)


class Interviewer:
    def __init__(
        self,
        settings: InterviewSettings,
        registry: CollectorRegistry,
        conversations: ConversationFactory | None = None,
    ) -> None:
        self.settings = settings
        self._conversations = conversations  # given (tests): used as it is
        self._voice: VoiceStack | None = None
        self._voice_lock = asyncio.Lock()
        self._turn_histogram = turn_histogram(registry)

    @property
    def drafter(self) -> QuestionDrafter | None:
        """Drafts questions from a job description; None until the stack is built, and
        on the local stack."""
        return self._voice.drafter if self._voice is not None else None

    async def conversations(self) -> ConversationFactory:
        if self._conversations is not None:
            return self._conversations
        if self.settings.interview_conversation == "greeter":
            return _greeter
        async with self._voice_lock:
            if self._voice is None:
                try:  # loads the models once per process, off the event loop
                    builder = stack_builder(self.settings.interview_voice_stack)
                    self._voice = await asyncio.to_thread(
                        builder, self.settings, self._turn_histogram
                    )
                except Exception as exc:
                    log.exception("voice_stack_failed")
                    raise Unavailable(
                        f"the interviewer's speech models could not load: {exc}",
                        code="voice_unavailable",
                    ) from exc
        stack = self._voice

        def voice(plan: InterviewPlan) -> Conversation:
            return VoiceConversation(plan, stack)

        return voice

    async def warm(self) -> None:
        """Build the voice stack and run each model once, off the event loop, so the
        first call's greeting comes within a second of it connecting."""
        settings = self.settings
        if (
            self._conversations is not None
            or settings.interview_conversation != "interviewer"
            or not settings.interview_warm_models
        ):
            return
        began = time.perf_counter()
        try:
            await self.conversations()
        except Unavailable:
            return  # logged as voice_stack_failed; /start answers 503 voice_unavailable
        stack = self._voice
        if stack is not None and stack.warm is not None:
            try:
                await asyncio.to_thread(stack.warm)
            except Exception:
                log.exception("voice_warm_failed")
                return
        log.info("voice_models_warm", seconds=round(time.perf_counter() - began, 3))

    async def aclose(self) -> None:
        async with self._voice_lock:  # a stack being built in its thread is waited for
            if self._voice is not None:
                await self._voice.aclose()


def _greeter(plan: InterviewPlan) -> Conversation:
    return Greeter(plan)
