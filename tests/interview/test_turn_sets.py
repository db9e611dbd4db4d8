"""The decide stage on the real local models: no thinking pause is cut, no backchannel
interrupts, a real interruption does.

Speech is espeak-ng's, played in real time into a conversation (no WebRTC) whose
listening side is the production one: Silero VAD and the smart-turn v3 model, with
faster-whisper (the bundled base model) for the backchannels. The thinking-pause set
gets the words that were really said up to each pause from a scripted STT, so the
policy is what is tested; whisper itself sometimes drops a fragment's last word ("I
owned the" heard as "I owned."), which ``bench/voice_latency.py`` measures on the whole
local stack. The interviewer and its voice are fakes: what is judged here is when it
speaks, not what.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from interview_service.conversation_seam import InterviewPlan
from interview_service.espeak import EspeakVoice
from interview_service.voice.conversation import VoiceConversation
from interview_service.voice.decide import Silences, SmartTurnJudge, reads_unfinished
from interview_service.voice.local import SileroVad, WhisperStt
from interview_service.voice.providers import unsure_end
from interview_service.voice.smart_turn import SmartTurn
from interview_service.voice.stack import VoiceStack
from tests.support.stt_wer_set import to_16k
from tests.support.voice_fakes import FixedInterviewer, FixedTts
from tests.support.voice_line import Line
from tests.support.voice_sets import (
    BACKCHANNELS,
    THINKING_PAUSES,
    backchannels,
    silence,
    thinking_pause_parts,
    trimmed,
)

pytestmark = pytest.mark.slow

LONG_REPLY = " ".join(["Let me describe the next part of the role in some detail."] * 7)


@pytest.fixture(scope="module")
def models() -> tuple[WhisperStt, SmartTurnJudge]:
    cache = Path("~/.cache/pipeline-backend").expanduser()
    return WhisperStt(None, cache), SmartTurnJudge(SmartTurn(), Silences())


class SaidSoFar:
    """STT that returns what was said up to now: the words before the pause until the
    words after it begin, then those (each piece of an answer is one half or the other)."""

    name = "said-so-far"

    def __init__(self) -> None:
        self.answer: tuple[str, str, float] = ("", "", 0.0)  # before, after, after begins

    def play(self, before: str, after: str, after_in_s: float) -> None:
        self.answer = (before, after, time.time() + after_in_s)

    async def transcribe(self, audio: Any, *, language: str, prompt: str | None = "") -> str:
        before, after, begins = self.answer
        return after if time.time() > begins + 0.3 else before


@pytest.fixture
async def make_line(
    models: tuple[WhisperStt, SmartTurnJudge],
) -> AsyncIterator[Callable[..., Line]]:
    whisper, judge = models
    lines: list[Line] = []

    def build(interviewer: FixedInterviewer, stt: Any = None) -> Line:
        stack = VoiceStack(
            vad=SileroVad,
            stt=stt or whisper,
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


async def _answer_each(
    line: Line, stt: SaidSoFar, answers: list[tuple[tuple[str, float, str], tuple[bytes, float]]]
) -> list[dict[str, Any]]:
    """Plays each answer after the previous reply; returns the false cut-offs."""
    cut: list[dict[str, Any]] = []
    for (before, _, after), (pcm, after_in_s) in answers:
        replies = len(line.lines("interviewer"))
        heard = len(line.lines("candidate"))
        stt.play(before, after, after_in_s)
        line.play(pcm)
        await line.until(lambda r=replies: len(line.lines("interviewer")) > r, 30, "a reply")
        await asyncio.sleep(0.3)
        said = line.lines("candidate")[heard:]
        if len(said) != 1 or line.of_type("barge_in"):
            cut.append({"said": [item["text"] for item in said], "events": line.events[-8:]})
    return cut


async def test_no_thinking_pause_of_the_set_is_cut(make_line: Callable[..., Line]) -> None:
    answers = list(zip(THINKING_PAUSES, await thinking_pause_parts(EspeakVoice()), strict=True))
    half = len(answers) // 2
    stts = [SaidSoFar(), SaidSoFar()]
    lines = [make_line(FixedInterviewer(["Thank you. Next question?"]), stt) for stt in stts]
    for line in lines:
        await line.greeted()
    cut = await asyncio.gather(
        _answer_each(lines[0], stts[0], answers[:half]),
        _answer_each(lines[1], stts[1], answers[half:]),
    )
    false_cut_offs = [c for per_line in cut for c in per_line]
    assert false_cut_offs == [], false_cut_offs
    said = [item["text"] for line in lines for item in line.lines("candidate")]
    assert sorted(said) == sorted(f"{before} {after}" for before, _, after in THINKING_PAUSES)


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


async def test_whisper_marks_a_fragment_that_reads_finished_and_trusts_a_finished_answer(
    models: tuple[WhisperStt, SmartTurnJudge],
) -> None:
    # What the listener hands STT at a thinking pause: the words so far, the preroll's
    # silence before them and the 0.16 s pause after. Whisper hears some fragments as
    # finished sentences ("I think it was the" as "I think it was her."): those must come
    # back unsure, while most of the same answers said to the end must not (each unsure
    # one waits the unsure silence: more than half, and the median reply is slow). The
    # stops of finished answers reach down to 0.72, so a few of them wait.
    whisper, _ = models
    voice = EspeakVoice()

    async def heard(text: str) -> str:
        pcm = silence(0.32) + trimmed(await voice.synthesize(text)) + silence(0.2)
        return await whisper.transcribe(to_16k(pcm), language="en")

    fragments = [await heard(before) for before, _, _ in THINKING_PAUSES]
    reading_finished = [text for text in fragments if not reads_unfinished(text)]
    assert reading_finished, fragments  # whisper does guess: the check is not vacuous
    assert all(unsure_end(text) for text in reading_finished), reading_finished
    answers = [await heard(f"{before} {after}") for before, _, after in THINKING_PAUSES]
    trusted = [text for text in answers if not unsure_end(text)]
    assert len(trusted) > len(answers) // 2, answers
