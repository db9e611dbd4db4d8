"""Turn-taking decisions over 32 ms VAD chunks (pure), and the scripted interviewer."""

from __future__ import annotations

from interview_service.voice.local import ScriptedInterviewer, split_sentences
from interview_service.voice.providers import Reply, Turn
from interview_service.voice.turn_taking import CHUNK_S, Signal, TurnDetector, TurnTakingConfig


def _feed(
    detector: TurnDetector, seconds: float, prob: float, *, speaking: bool = False
) -> list[Signal]:
    return [
        detector.push(prob, interviewer_speaking=speaking) for _ in range(round(seconds / CHUNK_S))
    ]


def test_a_thinking_pause_does_not_end_the_turn_but_a_long_silence_does() -> None:
    detector = TurnDetector(TurnTakingConfig(end_silence_s=1.4))
    assert _feed(detector, 1.0, 0.9)[0] is Signal.SPEECH_STARTED
    assert Signal.END_OF_TURN not in _feed(detector, 0.8, 0.05)  # thinking
    assert Signal.SPEECH_STARTED not in _feed(detector, 1.0, 0.9)  # same turn goes on
    signals = _feed(detector, 1.5, 0.05)
    assert signals.count(Signal.END_OF_TURN) == 1


def test_a_cough_is_not_a_turn() -> None:
    detector = TurnDetector(TurnTakingConfig(end_silence_s=1.0, min_speech_s=0.25))
    _feed(detector, 0.1, 0.9)
    assert Signal.END_OF_TURN not in _feed(detector, 1.5, 0.0)


def test_mm_hm_over_the_interviewer_is_not_a_barge_in() -> None:
    detector = TurnDetector(TurnTakingConfig(barge_in_s=0.5))
    for _ in range(5):  # five short backchannels across a long line
        assert Signal.BARGE_IN not in _feed(detector, 0.25, 0.9, speaking=True)
        _feed(detector, 1.0, 0.0, speaking=True)


def test_half_a_second_of_speech_over_the_interviewer_is_a_barge_in() -> None:
    detector = TurnDetector(TurnTakingConfig(barge_in_s=0.5))
    signals = _feed(detector, 0.6, 0.9, speaking=True)
    assert signals.count(Signal.BARGE_IN) == 1
    assert detector.in_speech  # what follows is the candidate's turn


def test_hysteresis_keeps_a_soft_syllable_in_the_utterance() -> None:
    detector = TurnDetector(TurnTakingConfig(start_threshold=0.5, stop_threshold=0.35))
    _feed(detector, 0.3, 0.9)
    detector.push(0.4, interviewer_speaking=False)
    assert detector.voiced  # 0.4 continues speech though it would not start it


async def test_the_scripted_interviewer_follows_up_once_then_moves_on() -> None:
    interviewer = ScriptedInterviewer("SRE", ["Q1?", "Q2?"])
    assert "SRE" in interviewer.opening()
    history = [Turn("interviewer", "Q1?"), Turn("candidate", "Yes.")]
    outcome = Reply()
    short = "".join([piece async for piece in interviewer.reply(history, outcome)])
    assert "example" in short or "hardest" in short  # a follow-up to a short answer
    assert outcome.metadata["language_model"] is False
    history.append(Turn("candidate", "Yes. " * 20))
    outcome = Reply()
    assert "Q2?" in "".join([piece async for piece in interviewer.reply(history, outcome)])
    assert outcome.question_index == 1
    outcome = Reply()
    history.append(Turn("candidate", "word " * 20))
    goodbye = "".join([piece async for piece in interviewer.reply(history, outcome)])
    assert outcome.finished
    assert "Goodbye" in goodbye


def test_sentences_split_for_early_speech() -> None:
    assert split_sentences("Thank you. Why Python? Tell me!") == [
        "Thank you.",
        "Why Python?",
        "Tell me!",
    ]
