"""The interview's vocabulary reaches STT: every piece of an answer is transcribed with
the role, job description and questions' terms as its prompt (and the answer so far)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import av
import numpy as np

from interview_service.conversation_seam import InterviewPlan
from interview_service.voice.listener import Ended, Listener
from interview_service.voice.transcribe import Transcriber
from interview_service.voice.turn_taking import TurnDetector, TurnTakingConfig
from interview_service.voice.vocabulary import stt_prompt
from tests.support.voice_fakes import EnergyVad, FixedStt, voice_pcm

PLAN = InterviewPlan(
    "iv-vocabulary",
    "cand",
    role="Platform engineer",
    questions=("How would you run PostgreSQL on Kubernetes?",),
    job_description="Infrastructure in Terraform; services talk over gRPC.",
)


async def _frames(pcm: bytes) -> AsyncIterator[av.AudioFrame]:
    samples = np.frombuffer(pcm, dtype="<i2")
    for start in range(0, len(samples) - 959, 960):  # 20 ms frames, as a call sends them
        frame = av.AudioFrame.from_ndarray(
            samples[start : start + 960].reshape(1, -1).copy(), format="s16", layout="mono"
        )
        frame.sample_rate = 48_000
        yield frame
        await asyncio.sleep(0)


class _Silent:
    """The interviewer's side, saying nothing."""

    speaking = False

    def hold(self) -> None: ...

    def release(self) -> None: ...


def _listener(stt: FixedStt, plan: InterviewPlan) -> Listener:
    # the transcribe stage as the conversation builds it; the turn ends after 1.4 s
    return Listener(
        EnergyVad(),
        TurnDetector(TurnTakingConfig(max_silence_s=1.4, barge_in_s=0.5)),
        Transcriber(plan, stt, timeout_s=5.0),
        _Silent(),
        early_stt_s=0.6,
        interview_id=plan.interview_id,
    )


async def _turn(listener: Listener) -> Ended:
    async with asyncio.timeout(5):
        while True:
            heard = await listener.heard.get()
            assert heard is not None, "the listener failed"
            if isinstance(heard, Ended):
                return heard


async def test_each_piece_of_an_answer_is_transcribed_with_the_interviews_terms() -> None:
    stt = FixedStt(["I would run it with an operator", "and keep backups in object storage."])
    listener = _listener(stt, PLAN)
    silence = bytes(2 * 48_000)
    # two halves with a thinking pause: two STT pieces, the second after the first
    speech = voice_pcm(1.0) + silence[: 2 * 43_200] + voice_pcm(1.0) + silence * 2
    await listener.listen(_frames(speech))
    ended = await _turn(listener)
    assert await asyncio.gather(*ended.capture.pieces) == [
        "I would run it with an operator",
        "and keep backups in object storage.",
    ]
    vocabulary = stt_prompt(PLAN.role, PLAN.job_description, PLAN.questions)
    assert vocabulary is not None
    for term in ("Platform engineer", "PostgreSQL", "Kubernetes", "Terraform", "gRPC"):
        assert term in vocabulary
    assert stt.prompts == [vocabulary, f"{vocabulary} I would run it with an operator"]


async def test_an_interview_without_terms_sends_only_the_answer_so_far() -> None:
    stt = FixedStt(["I would run it with an operator", "and keep backups."])
    listener = _listener(stt, InterviewPlan("iv-plain", "cand"))
    silence = bytes(2 * 48_000)
    speech = voice_pcm(1.0) + silence[: 2 * 43_200] + voice_pcm(1.0) + silence * 2
    await listener.listen(_frames(speech))
    ended = await _turn(listener)
    await asyncio.gather(*ended.capture.pieces)
    assert stt.prompts == ["", "I would run it with an operator"]  # FixedStt records None as ""
