"""The decide stage on the real local models: no thinking pause is cut, no backchannel
interrupts, a real interruption does.

Speech is espeak-ng's, played in real time into a conversation (no WebRTC) whose
listening side is the production one: Silero VAD, faster-whisper (the bundled base
model) and the smart-turn v3 model. The interviewer and its voice are fakes: what is
judged here is when it speaks, not what.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from interview_service.conversation_seam import InterviewPlan
from interview_service.espeak import EspeakVoice
from interview_service.voice.conversation import VoiceConversation
from interview_service.voice.decide import Silences, SmartTurnJudge
from interview_service.voice.local import SileroVad, WhisperStt
from interview_service.voice.smart_turn import SmartTurn
from interview_service.voice.stack import VoiceStack
from tests.support.voice_fakes import FixedInterviewer, FixedTts
from tests.support.voice_line import Line
from tests.support.voice_sets import (
    BACKCHANNELS,
    THINKING_PAUSES,
    backchannels,
    silence,
    thinking_pause_answers,
)

pytestmark = pytest.mark.slow

LONG_REPLY = " ".join(["Let me describe the next part of the role in some detail."] * 7)


@pytest.fixture(scope="module")
def models() -> tuple[WhisperStt, SmartTurnJudge]:
    cache = Path("~/.cache/pipeline-backend").expanduser()
    return WhisperStt(None, cache), SmartTurnJudge(SmartTurn(), Silences())


@pytest.fixture
async def make_line(
    models: tuple[WhisperStt, SmartTurnJudge],
) -> AsyncIterator[Callable[[FixedInterviewer], Line]]:
    stt, judge = models
    lines: list[Line] = []

    def build(interviewer: FixedInterviewer) -> Line:
        stack = VoiceStack(
            vad=SileroVad,
            stt=stt,
            interviewer=lambda plan: interviewer,
            tts=FixedTts(seconds_per_word=0.25),
            end_of_turn=lambda _: judge,
        )
        line = Line(VoiceConversation(InterviewPlan("iv-sets", "cand"), stack))
        lines.append(line)
        line.start()
        return line

    yield build
    for line in lines:
        await line.stop()


async def _answer_each(line: Line, answers: list[bytes]) -> list[dict[str, Any]]:
    """Plays each answer after the previous reply; returns the false cut-offs."""
    cut: list[dict[str, Any]] = []
    for answer in answers:
        replies = len(line.lines("interviewer"))
        heard = len(line.lines("candidate"))
        line.play(answer)
        await line.until(lambda r=replies: len(line.lines("interviewer")) > r, 30, "a reply")
        await asyncio.sleep(0.3)
        said = line.lines("candidate")[heard:]
        if len(said) != 1 or line.of_type("barge_in"):
            cut.append({"said": [item["text"] for item in said], "events": line.events[-8:]})
    return cut


async def test_no_thinking_pause_of_the_set_is_cut(make_line: Callable[..., Line]) -> None:
    answers = await thinking_pause_answers(EspeakVoice())
    half = len(answers) // 2
    lines = [make_line(FixedInterviewer(["Thank you. Next question?"])) for _ in range(2)]
    for line in lines:
        await line.greeted()
    cut = await asyncio.gather(
        _answer_each(lines[0], answers[:half]), _answer_each(lines[1], answers[half:])
    )
    false_cut_offs = [c for per_line in cut for c in per_line]
    assert false_cut_offs == [], false_cut_offs
    heard = " ".join(i["text"] for line in lines for i in line.lines("candidate")).lower()
    assert "kubernetes" in heard or "prometheus" in heard  # the answers were really heard
    assert len(THINKING_PAUSES) == 10


async def test_backchannels_do_not_interrupt_but_a_real_interruption_does(
    make_line: Callable[..., Line],
) -> None:
    voice = EspeakVoice()
    over = await backchannels(voice)
    line = make_line(FixedInterviewer([LONG_REPLY]))
    await line.greeted()
    line.play(await voice.synthesize("I have five years of experience with Python."))
    await line.until(lambda: line.lines("candidate"), 15, "the answer")
    heard = line.loud_frames_heard
    await line.until(lambda: line.loud_frames_heard > heard + 10, 10, "the long reply")

    for pcm in over:
        line.play(pcm + silence(0.8))
    await asyncio.sleep(len(b"".join(over)) / 96_000 + 0.8 * len(over) + 1.0)
    assert not line.of_type("barge_in"), line.events
    assert len(line.lines("candidate")) == 1  # agreement is not an answer
    assert len(BACKCHANNELS) == 10

    line.play(await voice.synthesize("Sorry, could you repeat the question about the pipelines?"))
    await line.until(lambda: line.of_type("barge_in"), 10, "the real interruption")
    cut = next(i for i in line.lines("interviewer") if i["interrupted"])
    assert len(cut["text"].split()) < len(LONG_REPLY.split())
