"""The voice loop's own behaviour, with fixed-latency providers and a paced microphone.

No WebRTC here: frames go straight into the conversation and its outbound source is
played in real time, so these tests pin down turn-taking and resilience exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from interview_service.conversation_seam import InterviewPlan
from interview_service.voice.conversation import APOLOGY, VoiceConversation
from interview_service.voice.decide import SilenceWindowJudge
from interview_service.voice.listener import ListenerFailed
from interview_service.voice.spoken import sentences_and_rest as _sentences_and_rest
from interview_service.voice.stack import VoiceStack
from interview_service.voice.turn_taking import TurnTakingConfig
from tests.support.voice_fakes import EnergyVad, FixedInterviewer, FixedStt, FixedTts
from tests.support.voice_line import Line

SILENCE_S = 0.5


@pytest.fixture
async def make_line() -> AsyncIterator[Callable[..., Line]]:
    lines: list[Line] = []

    def build(
        stt: FixedStt | None = None,
        interviewer: FixedInterviewer | None = None,
        **stack: Any,
    ) -> Line:
        stack.setdefault("provider_timeout_s", 2.0)
        window = stack.pop("window_s", None)
        if window is not None:  # the first iteration's fixed silence window
            judge = SilenceWindowJudge(window)
            stack["end_of_turn"] = lambda interviewer: judge
        voice = VoiceStack(
            vad=stack.pop("vad", EnergyVad),
            stt=stt or FixedStt(),
            interviewer=lambda plan: interviewer or FixedInterviewer(),
            tts=FixedTts(seconds_per_word=0.1),
            turns=TurnTakingConfig(barge_in_s=0.5),
            **stack,
        )
        line = Line(VoiceConversation(InterviewPlan("iv-test", "cand"), voice))
        lines.append(line)
        line.start()
        return line

    yield build
    for line in lines:
        await line.stop()


async def test_a_failing_stt_apologises_and_the_interview_goes_on(
    make_line: Callable[..., Line],
) -> None:
    stt = FixedStt(["I like Python."])
    stt.fail = RuntimeError("model crashed")
    line = make_line(stt=stt)
    await line.greeted()

    line.say(1.0)
    await line.until(lambda: line.of_type("error"), 5, "the error event")
    assert line.of_type("error")[0] == {"type": "error", "stage": "stt", "message": "RuntimeError"}
    await line.until(lambda: len(line.lines("interviewer")) == 2, 5, "the apology")
    assert line.lines("interviewer")[1]["text"] == APOLOGY

    stt.fail = None  # the provider recovers: the same call carries on
    line.say(1.0)
    await line.until(lambda: line.lines("candidate"), 5, "the candidate's line")
    await line.until(lambda: len(line.lines("interviewer")) == 3, 5, "the reply")
    assert line.lines("interviewer")[2]["text"] == "Thank you. Next question?"


async def test_a_slow_interviewer_times_out_into_an_apology(
    make_line: Callable[..., Line],
) -> None:
    interviewer = FixedInterviewer(first_token_s=30)
    line = make_line(interviewer=interviewer, provider_timeout_s=0.4)
    await line.greeted()

    line.say(1.0)
    await line.until(lambda: line.lines("candidate"), 5, "the candidate's line")
    asked = time.monotonic()
    await line.until(lambda: line.of_type("error"), 5, "the error event")
    assert time.monotonic() - asked < 2.0  # bounded: twice the provider timeout, not 30 s
    assert line.of_type("error")[0]["stage"] == "llm_or_tts"
    heard = line.loud_frames_heard
    await line.until(lambda: line.loud_frames_heard > heard, 5, "the apology's audio")
    await line.until(lambda: len(line.lines("interviewer")) == 2, 5, "the apology")

    interviewer.first_token_s = 0
    line.say(1.0)
    await line.until(lambda: len(line.lines("interviewer")) == 3, 5, "the next reply")
    assert line.lines("interviewer")[2]["text"] == "Thank you. Next question?"


async def test_an_answer_that_reads_unfinished_is_waited_for(
    make_line: Callable[..., Line],
) -> None:
    interviewer = FixedInterviewer()
    interviewer.verdicts = [False, True]
    stt = FixedStt(["I think the main thing is", "that pipelines must be observable."])
    line = make_line(stt=stt, interviewer=interviewer)
    await line.greeted()

    # a pause of 2.5 s: far past the 0.4 s a finished answer gets, within the 3 s an
    # unfinished one does
    line.say(1.0)
    line.pause(2.5)
    line.say(1.0)
    await line.until(lambda: len(line.lines("interviewer")) == 2, 10, "the reply")
    assert [item["text"] for item in line.lines("candidate")] == [
        "I think the main thing is that pipelines must be observable."
    ]
    assert interviewer.replied == 1  # one reply, after the whole answer
    # "...is" reads unfinished by its words alone; the interviewer was asked at the end
    assert interviewer.checks == 1


async def test_with_the_old_silence_window_the_pause_ends_the_turn(
    make_line: Callable[..., Line],
) -> None:
    interviewer = FixedInterviewer()
    line = make_line(interviewer=interviewer, window_s=SILENCE_S)
    await line.greeted()

    line.say(1.0)
    line.pause(1.1)
    line.say(1.0)
    await line.until(lambda: interviewer.replied >= 1, 5, "the first reply")
    await line.until(lambda: len(line.lines("candidate")) == 2, 8, "the second line")
    await line.until(lambda: interviewer.replied == 2, 8, "the second reply")
    assert interviewer.checks == 0  # the window reads nothing


async def test_a_cough_after_an_unfinished_answer_does_not_stall_the_reply(
    make_line: Callable[..., Line],
) -> None:
    interviewer = FixedInterviewer()
    interviewer.verdicts = [False]
    line = make_line(interviewer=interviewer)
    await line.greeted()

    line.say(1.0)
    line.pause(0.8)
    line.say(0.1)  # too short to be a turn
    stopped = time.monotonic() + 1.9
    await line.until(lambda: interviewer.replied == 1, 8, "the reply")
    # it waited for the cough to end, then the longest silence; not for ever
    assert time.monotonic() - stopped < 3.0 + 1.0
    assert len(line.lines("candidate")) == 1


async def test_talking_over_a_streaming_reply_cancels_it_and_cuts_the_line(
    make_line: Callable[..., Line],
) -> None:
    reply = (
        "Thank you. That is interesting. Now I would like to hear about the largest "
        "system you have designed, how many people used it, and what broke first."
    )
    interviewer = FixedInterviewer([reply], word_s=0.15)  # streams for about 4 s
    stt = FixedStt()
    line = make_line(interviewer=interviewer, stt=stt)
    await line.greeted()

    line.say(1.0)
    await line.until(lambda: line.lines("candidate"), 5, "the candidate's line")
    heard = line.loud_frames_heard
    await line.until(lambda: line.loud_frames_heard > heard + 5, 5, "the reply playing")
    line.say(1.5)  # the candidate talks over it while the reply still streams
    await line.until(lambda: line.of_type("barge_in"), 5, "barge-in")
    cut_at = line.loud_frames_heard

    await line.until(lambda: any(i["interrupted"] for i in line.lines("interviewer")), 5, "cut")
    assert interviewer.closed_early == 1  # the language model's stream was closed
    await asyncio.sleep(0.5)
    assert line.loud_frames_heard - cut_at <= 2  # silent at once: queued audio was flushed
    cut = next(i for i in line.lines("interviewer") if i["interrupted"])
    assert 2 <= len(cut["text"].split()) < len(reply.split())
    assert reply.startswith(cut["text"].rstrip(".,"))  # what was played, in order
    assert line.of_type("barge_in")[0]["heard"] == cut["text"]
    # the interviewer's model is told only what the candidate heard
    said = [t.text for t in line.conversation.history if t.role == "interviewer"]
    assert said[-1] == cut["text"] + " —"
    metrics = line.of_type("turn_metrics")[0]["metrics"]
    assert metrics["interrupted"] is True
    # the interruption is heard from its start, not from when it counted as barge-in
    await line.until(lambda: len(line.lines("candidate")) == 2, 8, "the interruption's line")
    assert sum(stt.heard_s[1:]) >= 1.5


async def test_a_backchannel_holds_the_line_for_a_moment_and_it_goes_on(
    make_line: Callable[..., Line],
) -> None:
    reply = "Thank you. Now tell me about the largest system you have designed and run."
    interviewer = FixedInterviewer([reply])
    stt = FixedStt(["I like Python.", "Yeah, okay."])
    line = make_line(interviewer=interviewer, stt=stt)
    await line.greeted()

    line.say(1.0)
    await line.until(lambda: line.lines("candidate"), 5, "the candidate's line")
    heard = line.loud_frames_heard
    await line.until(lambda: line.loud_frames_heard > heard + 10, 5, "the reply playing")
    line.say(0.3)  # "mm-hm": too short to be an interruption
    line.pause(0.6)
    line.say(0.8)  # "yeah, okay": long enough to check, and only agreement
    await line.until(lambda: len(line.lines("interviewer")) == 2, 10, "the whole reply")
    assert not line.of_type("barge_in")
    assert line.lines("interviewer")[1] == {**line.lines("interviewer")[1], "text": reply}
    assert not line.lines("interviewer")[1]["interrupted"]
    assert [e["words"] for e in line.of_type("resumed")] == ["Yeah, okay."]
    assert len(line.lines("candidate")) == 1  # agreement is not an answer


@pytest.mark.parametrize(
    ("streamed", "expected"),
    [
        ("Thank ", ["Thank "]),
        ("Thank you. Why", ["Thank you.", "Why"]),
        ("Thank you. Why ", ["Thank you.", "Why "]),
        ("It costs 3.", ["It costs 3."]),  # maybe 3.5: wait for what follows
        ("It costs 3.5 euros. Next? ", ["It costs 3.5 euros.", "Next?", ""]),
        ('He said "stop." Then', ['He said "stop."', "Then"]),
    ],
)
def test_streamed_text_splits_into_sentences_and_a_raw_rest(
    streamed: str, expected: list[str]
) -> None:
    assert _sentences_and_rest(streamed) == expected


def test_pieces_ending_in_spaces_do_not_run_together() -> None:
    buffer, sentences = "", []
    for piece in ["Thank ", "you. ", "Now ", "tell ", "me ", "more."]:
        *complete, buffer = _sentences_and_rest(buffer + piece)
        sentences.extend(complete)
    assert [*sentences, buffer.strip()] == ["Thank you.", "Now tell me more."]


async def test_pauses_start_stt_early_and_the_answer_stays_one_line(
    make_line: Callable[..., Line],
) -> None:
    stt = FixedStt(["I built the encoder farm and", "ran it for three years."], latency_s=0.3)
    line = make_line(stt=stt, early_stt_s=0.6)
    await line.greeted()

    line.say(1.0)
    line.pause(0.9)  # a thinking pause: STT starts on the first half meanwhile
    line.say(1.0)
    await line.until(lambda: line.lines("candidate"), 8, "the candidate's line")
    assert [i["text"] for i in line.lines("candidate")] == [
        "I built the encoder farm and ran it for three years."
    ]
    await line.until(lambda: line.of_type("turn_metrics"), 5, "the turn's metrics")
    metrics = line.of_type("turn_metrics")[0]["metrics"]
    assert stt.calls == 2
    assert metrics["stt_pieces"] == 2
    assert stt.prompts == ["", "I built the encoder farm and"]  # the first half as context
    # the second half began at the first short pause, and the turn ended once its
    # words were read: nothing of STT was left to wait for
    assert metrics["stt_s"] < 0.1


async def test_speech_soon_after_a_pause_cancels_its_tentative_transcription(
    make_line: Callable[..., Line],
) -> None:
    stt = FixedStt(["I built the encoder farm and ran it for three years."], latency_s=0.3)
    line = make_line(stt=stt, early_stt_s=0.6)
    await line.greeted()

    line.say(1.0)
    line.pause(0.4)  # begun, then overtaken: the stretch goes on
    line.say(1.0)
    await line.until(lambda: line.of_type("turn_metrics"), 10, "the turn's metrics")
    metrics = line.of_type("turn_metrics")[0]["metrics"]
    assert metrics["stt_pieces"] == 1
    assert stt.calls == 2  # the cancelled one, then the whole answer at once
    assert stt.heard_s[1] >= 2.4


async def test_the_reply_is_prepared_in_the_pause_and_plays_when_the_turn_ends(
    make_line: Callable[..., Line],
) -> None:
    interviewer = FixedInterviewer(first_token_s=0.3)
    line = make_line(interviewer=interviewer, stt=FixedStt(latency_s=0.2))
    await line.greeted()

    line.say(1.0)
    await line.until(lambda: line.of_type("turn_metrics"), 8, "the turn's metrics")
    metrics = line.of_type("turn_metrics")[0]["metrics"]
    assert metrics["preempted"] is True
    # the language model's 0.3 s were spent while the turn's end was being confirmed
    assert metrics["voice_to_voice_s"] < metrics["end_of_utterance_s"] + 0.3


async def test_speech_after_the_pause_throws_the_prepared_reply_away(
    make_line: Callable[..., Line],
) -> None:
    interviewer = FixedInterviewer(["Thank you, that is clear. Next question?"], word_s=0.1)
    interviewer.verdicts = [True, False, True]  # the first half reads finished
    stt = FixedStt(["I led the migration", "I led the migration to the new render farm."])
    line = make_line(interviewer=interviewer, stt=stt)
    await line.greeted()

    line.say(1.0)
    line.pause(0.35)  # judged finished: a reply is prepared; then the candidate goes on
    line.say(1.0)
    await line.until(lambda: line.of_type("turn_metrics"), 10, "the turn's metrics")
    assert [i["text"] for i in line.lines("candidate")] == [
        "I led the migration to the new render farm."
    ]
    assert interviewer.closed_early >= 1  # the prepared reply's stream was closed
    assert len(line.lines("interviewer")) == 2  # the greeting and one reply
    said = [t.text for t in line.conversation.history if t.role == "candidate"]
    assert said == ["I led the migration to the new render farm."]


async def test_a_failing_listener_fails_the_conversation_loudly(
    make_line: Callable[..., Line],
) -> None:
    class BrokenVad(EnergyVad):
        def probability(self, chunk: Any) -> float:
            raise ValueError("the VAD model is corrupt")

    line = make_line(vad=BrokenVad)
    run = line._tasks[-1]
    # not a conversation that waits for ever for an answer it can no longer hear
    with pytest.raises(ListenerFailed):
        await asyncio.wait_for(asyncio.shield(run), 5)
