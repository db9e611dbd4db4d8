"""The decide stage alone: the words' verdict, backchannels, and the smart-turn model."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest

from interview_service.espeak import EspeakVoice
from interview_service.voice.decide import (
    Silences,
    SmartTurnJudge,
    is_backchannel,
    reads_unfinished,
)
from interview_service.voice.providers import Words, unsure_end
from interview_service.voice.smart_turn import WINDOW, SmartTurn, bundled_model
from interview_service.voice.transcribe import text_of


@pytest.mark.parametrize(
    ("text", "unfinished"),
    [
        ("I have worked on video pipelines for five years.", False),
        ("Mostly on rendering and", True),
        ("My last project was a.", True),  # whisper's period on a fragment
        ("I would start by...", True),
        ("The reason is, um", True),
        ("We used Kubernetes,", True),
        ("Yes.", False),
        ("", False),
    ],
)
def test_the_words_say_whether_an_answer_stopped_mid_thought(text: str, unfinished: bool) -> None:
    assert reads_unfinished(text) is unfinished


@pytest.mark.parametrize(
    ("text", "backchannel"),
    [
        ("Yeah.", True),
        ("Mm-hmm.", True),
        ("Yeah, okay.", True),
        ("Right, right!", True),
        ("I see.", True),
        ("Sorry, could you repeat that?", False),
        ("Yeah, but that is not what I meant.", False),
        ("", False),
    ],
)
def test_agreement_is_told_from_an_interruption(text: str, backchannel: bool) -> None:
    assert is_backchannel(text) is backchannel


def test_the_model_ships_in_the_pipecat_wheel_and_its_features_match_the_reference() -> None:
    from pipecat.audio.turn.smart_turn._whisper_features import compute_whisper_log_mel_features

    assert bundled_model().stat().st_size > 1_000_000
    model = SmartTurn()
    rng = np.random.default_rng(7)
    speech = (rng.standard_normal(3 * 16_000) * 0.1).astype(np.float32)
    window = np.zeros(WINDOW, np.float32)
    window[-len(speech) :] = speech  # shorter speech: silence before it
    reference = compute_whisper_log_mel_features(window, do_normalize=True)
    normalised = (window - window.mean()) / np.sqrt(window.var() + 1e-7)
    ours = model._features(normalised, lead=WINDOW - len(speech))
    assert ours.shape == reference.shape == (80, 800)
    assert np.abs(ours - reference).max() < 1e-3


async def _judge(judge: SmartTurnJudge, speech: np.ndarray, words: str) -> tuple[bool, float]:
    text: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    text.set_result(words)
    verdict = await judge.judge(speech, text, [])
    return verdict.finished, verdict.end_after_s


async def test_unfinished_words_get_the_longest_silence_whatever_the_model_hears() -> None:
    voice = EspeakVoice()
    pcm = await voice.synthesize("Yes, that is right.")
    speech = np.frombuffer(pcm, dtype="<i2").astype(np.float32)[::3] / 32768
    silences = Silences(confident_s=0.4, unsure_s=1.0, max_s=3.0)
    judge = SmartTurnJudge(SmartTurn(), silences)
    assert await _judge(judge, speech, "Yes, that is right and") == (False, 3.0)
    verdict = await _judge(judge, speech, "Yes, that is right.")
    assert verdict in ((True, 0.4), (False, 1.0))  # the model decides how sure


async def test_the_model_runs_only_for_pauses_that_last_and_words_that_read_finished() -> None:
    speech = (np.random.default_rng(2).standard_normal(16_000) * 0.1).astype(np.float32)
    judge = SmartTurnJudge(SmartTurn(), Silences(), model_after_s=0.1)
    # the words read unfinished before the model's moment: no model run
    assert await _judge(judge, speech, "I owned the") == (False, Silences().max_s)
    assert judge.runs == 0
    # the candidate goes on before the model's moment: the judgement is cancelled, no run
    pending: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    judging = asyncio.ensure_future(judge.judge(speech, pending, []))
    await asyncio.sleep(0.02)
    judging.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await judging
    assert judge.runs == 0
    # words that read finished: the model decides
    await _judge(judge, speech, "I owned the ingestion layer.")
    assert judge.runs == 1


class _Sure(SmartTurn):
    """The model at its most confident: what it heard was a finished answer."""

    def __init__(self) -> None:
        pass

    def complete_probability(self, speech: np.ndarray) -> float:
        return 0.99


async def test_a_guessed_last_word_does_not_make_the_answer_read_finished() -> None:
    # whisper heard "I owned the" as "I owned." and was unsure of "owned": the answer
    # waits like an unsure model's (the reply is prepared, not played after 0.4 s)
    speech = np.zeros(16_000, np.float32)
    silences = Silences(confident_s=0.4, unsure_s=3.0, max_s=3.0)
    judge = SmartTurnJudge(_Sure(), silences, model_after_s=0.0)
    assert await _judge(judge, speech, "I owned.") == (True, 0.4)
    unsure: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    unsure.set_result(Words("I owned."))
    verdict = await judge.judge(speech, unsure, [])
    assert (verdict.finished, verdict.end_after_s, verdict.prepare) == (False, 3.0, True)


async def test_the_last_piece_says_whether_the_words_end_unsure() -> None:
    async def piece(text: str) -> str:
        return text

    sure_then_unsure = [
        asyncio.ensure_future(piece("In my role")),
        asyncio.ensure_future(piece(Words("I owned."))),
    ]
    assert unsure_end(await text_of(sure_then_unsure))
    unsure_then_sure = [
        asyncio.ensure_future(piece(Words("In my role"))),
        asyncio.ensure_future(piece("I owned it.")),
    ]
    text = await text_of(unsure_then_sure)
    assert text == "In my role I owned it."
    assert not unsure_end(text)
