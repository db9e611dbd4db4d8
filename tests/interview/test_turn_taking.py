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


def test_a_pause_is_judged_and_the_judge_says_how_much_silence_ends_the_turn() -> None:
    detector = TurnDetector(TurnTakingConfig(pause_s=0.16, max_silence_s=3.0))
    assert _feed(detector, 1.0, 0.9)[0] is Signal.SPEECH_STARTED
    signals = _feed(detector, 0.2, 0.05)
    assert signals.count(Signal.PAUSED) == 1
    detector.end_after(0.4)  # reads finished
    assert Signal.END_OF_TURN in _feed(detector, 0.25, 0.05)


def test_an_unfinished_answer_gets_the_longest_silence_and_no_more() -> None:
    detector = TurnDetector(TurnTakingConfig(pause_s=0.16, max_silence_s=3.0))
    _feed(detector, 1.0, 0.9)
    _feed(detector, 0.2, 0.05)
    detector.end_after(3.0)  # reads unfinished: "and, um"
    assert Signal.END_OF_TURN not in _feed(detector, 2.5, 0.05)  # a long thinking pause
    assert _feed(detector, 0.5, 0.9)[0] is Signal.RESUMED  # the same turn goes on
    signals = _feed(detector, 3.2, 0.05)
    assert signals.count(Signal.PAUSED) == 3  # judged again at 0.16, 0.5 and 1 s of silence
    assert signals.count(Signal.END_OF_TURN) == 1  # unjudged: the longest silence ends it


def test_a_cough_is_not_a_turn() -> None:
    detector = TurnDetector(TurnTakingConfig(min_speech_s=0.25))
    _feed(detector, 0.1, 0.9)
    signals = _feed(detector, 3.5, 0.0)
    assert Signal.END_OF_TURN not in signals
    assert Signal.PAUSED not in signals


def test_mm_hm_over_the_interviewer_holds_it_then_lets_it_go_on() -> None:
    detector = TurnDetector(TurnTakingConfig(hold_s=0.19, barge_in_s=0.6, release_s=0.3))
    for _ in range(5):  # five short backchannels across a long line
        signals = _feed(detector, 0.35, 0.9, speaking=True)
        assert signals.count(Signal.HOLD) == 1
        assert Signal.INTERRUPT not in signals
        assert _feed(detector, 1.0, 0.0, speaking=True).count(Signal.RELEASE) == 1


def test_a_click_over_the_interviewer_does_not_even_hold_it() -> None:
    detector = TurnDetector(TurnTakingConfig(hold_s=0.19))
    signals = _feed(detector, 0.1, 0.9, speaking=True) + _feed(detector, 1, 0.0, speaking=True)
    assert signals.count(Signal.NONE) == len(signals)


def test_speech_over_the_interviewer_is_an_interruption_to_check() -> None:
    detector = TurnDetector(TurnTakingConfig(hold_s=0.19, barge_in_s=0.6))
    signals = _feed(detector, 0.7, 0.9, speaking=True)
    assert signals.index(Signal.HOLD) < signals.index(Signal.INTERRUPT)
    assert signals.count(Signal.INTERRUPT) == 1
    detector.settle_interruption(real=True)
    assert detector.in_speech  # what follows is the candidate's turn
    signals = _feed(detector, 0.2, 0.05)
    assert Signal.PAUSED in signals


def test_a_false_interruption_leaves_no_turn_behind() -> None:
    detector = TurnDetector(TurnTakingConfig(barge_in_s=0.6))
    _feed(detector, 0.7, 0.9, speaking=True)
    detector.settle_interruption(real=False)  # "yeah, okay"
    assert not detector.in_speech
    assert Signal.END_OF_TURN not in _feed(detector, 3.5, 0.0, speaking=True)


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
