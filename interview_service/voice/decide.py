"""The decide stage: is the candidate's answer over, and was that an interruption?

At each pause the judge reads the answer two ways: how it sounds (the smart-turn v3
model, :mod:`interview_service.voice.smart_turn`) and what it says (the early
transcript: an answer that stops on "and", "because", "um"... is not over, whatever its
tone). Its :class:`Verdict` is how much silence ends the turn, and whether the reply may
be prepared already. Which question comes next, or a follow-up, is the interviewer's
(:class:`~interview_service.voice.providers.Interviewer`.reply): one place a plan drives.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import structlog

from interview_service.voice.providers import Interviewer, Turn, unsure_end
from interview_service.voice.smart_turn import SmartTurn

log = structlog.get_logger(__name__)

# Words an answer does not end on: the candidate is thinking, not done.
UNFINISHED_ENDINGS = frozenset(
    {
        "and",
        "but",
        "so",
        "or",
        "because",
        "um",
        "umm",
        "uh",
        "uhh",
        "er",
        "erm",
        "hmm",
        "like",
        "the",
        "a",
        "an",
        "to",
        "of",
        "with",
        "for",
        "in",
        "on",
        "at",
        "by",
        "from",
        "as",
        "than",
        "if",
        "when",
        "while",
        "whereas",
        "which",
        "who",
        "whose",
        "where",
        "my",
        "our",
        "your",
        "their",
        "his",
        "her",
        "its",
        "is",
        "was",
        "are",
        "were",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "will",
        "would",
        "could",
        "should",
        "can",
        "also",
        "then",
        "just",
        "very",
        "really",
        "actually",
        "basically",
        "mean",
        "about",
        "around",
        "into",
        "onto",
        "through",
        "over",
        "under",
        "using",
        "some",
        "this",
        "these",
        "those",
    }
)
# What a listener says to keep a speaker going, not to take the turn.
BACKCHANNELS = frozenset(
    {
        "yeah",
        "yes",
        "yep",
        "yup",
        "mm",
        "mmm",
        "mhm",
        "mm-hm",
        "mm-hmm",
        "hm",
        "hmm",
        "uh-huh",
        "uh",
        "huh",
        "um",
        "okay",
        "ok",
        "right",
        "sure",
        "alright",
        "cool",
        "great",
        "nice",
        "true",
        "exactly",
        "totally",
        "wow",
        "oh",
        "ah",
        "aha",
        "i",
        "see",
        "got",
        "it",
    }
)
WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")


def reads_unfinished(text: str) -> bool:
    """The words stop mid-thought: a trailing conjunction, article, filler, comma or dots."""
    stripped = text.strip()
    if stripped.endswith(("...", "…", ",", "-", "—", ":", ";")):
        return True
    words = WORD.findall(stripped.lower())
    return bool(words) and words[-1] in UNFINISHED_ENDINGS


def is_backchannel(text: str) -> bool:
    """ "yeah", "mm-hm", "okay, right": agreement, not an interruption (at most 4 words)."""
    words = WORD.findall(text.lower())
    return 0 < len(words) <= 4 and all(word in BACKCHANNELS for word in words)


@dataclass(frozen=True, slots=True)
class Verdict:
    finished: bool  # confident the answer is over
    end_after_s: float  # the silence that ends the turn
    probability: float | None  # the model's P(complete), when a model ran
    judge: str
    seconds: float = 0.0  # what judging took
    prepare: bool = False  # the words read finished: the reply may be prepared now


@dataclass(frozen=True, slots=True)
class Silences:
    confident_s: float = 0.4  # reads finished, and the model agrees
    unsure_s: float = 3.0  # reads finished, the model does not (it is asked again later)
    max_s: float = 3.0  # reads unfinished: all the time the candidate needs


# How long into a judged pause (itself 0.16 s of silence) the model starts: a pause
# that ends sooner costs no model run.
MODEL_AFTER_S = 0.1


class EndOfTurn(Protocol):
    name: str

    async def judge(
        self, speech: np.ndarray, text: Awaitable[str], history: Sequence[Turn]
    ) -> Verdict: ...


class SmartTurnJudge:
    """The smart-turn v3 model on the speech, and the early transcript's last words."""

    name = "smart-turn-v3"

    def __init__(
        self,
        model: SmartTurn,
        silences: Silences,
        threshold: float = 0.5,
        *,
        model_after_s: float = MODEL_AFTER_S,
    ) -> None:
        self.model = model
        self.silences = silences
        self.threshold = threshold
        self.model_after_s = model_after_s
        self.runs = 0  # model decisions made (each is 35-100 ms of a core)

    async def judge(
        self, speech: np.ndarray, text: Awaitable[str], history: Sequence[Turn]
    ) -> Verdict:
        began = time.perf_counter()
        words_task = asyncio.ensure_future(text)
        # The model waits a moment: most pauses inside a sentence end before it (then the
        # conversation cancels this judgement and the model never runs), and words that
        # read unfinished by then need no model at all. It still decides before STT's
        # words are back, so the verdict is not later for it.
        await asyncio.wait({words_task}, timeout=self.model_after_s)
        s = self.silences
        if words_task.done() and (not words_task.result() or reads_unfinished(words_task.result())):
            took = time.perf_counter() - began
            return Verdict(False, s.max_s, None, self.name, took)
        self.runs += 1
        sounding = asyncio.ensure_future(asyncio.to_thread(self.model.complete_probability, speech))
        try:
            words = await words_task
        finally:
            probability = await sounding
        took = time.perf_counter() - began
        if not words or reads_unfinished(words):
            return Verdict(False, s.max_s, probability, self.name, took)
        # The words read finished: prepare the reply (thrown away if the candidate goes
        # on); the model says how soon it may play, unless STT was unsure the sentence
        # ends there (a dropped "the" reads finished): then it waits like an unsure model.
        if probability >= self.threshold and not unsure_end(words):
            return Verdict(True, s.confident_s, probability, self.name, took, prepare=True)
        return Verdict(False, s.unsure_s, probability, self.name, took, prepare=True)


class LanguageModelJudge:
    """The interviewer reads the answer (the OpenAI one asks its model, bounded)."""

    name = "language-model"

    def __init__(self, interviewer: Interviewer, silences: Silences, timeout_s: float) -> None:
        self.interviewer = interviewer
        self.silences = silences
        self.timeout_s = timeout_s
        self._last: tuple[str, bool] | None = None  # the same words are asked about once

    async def judge(
        self, speech: np.ndarray, text: Awaitable[str], history: Sequence[Turn]
    ) -> Verdict:
        began = time.perf_counter()
        words = await text
        if not words or reads_unfinished(words):
            return Verdict(False, self.silences.max_s, None, self.name)
        if self._last is not None and self._last[0] == words:
            finished = self._last[1]
        else:
            try:
                async with asyncio.timeout(self.timeout_s):
                    finished = await self.interviewer.is_complete(history, words)
            except Exception as exc:  # a slow or failing check: the words decide
                log.info("semantic_check_skipped", error=repr(exc)[:200])
                finished = True
            self._last = (words, finished)
        end = self.silences.confident_s if finished else self.silences.max_s
        took = time.perf_counter() - began
        return Verdict(finished, end, None, self.name, took, prepare=finished)


class SilenceWindowJudge:
    """The first iteration's policy: a fixed silence ends the turn, nothing is prepared
    early. Kept as the benchmark's baseline (``INTERVIEW_TURN_MODEL=window``)."""

    name = "silence-window"

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s

    async def judge(
        self, speech: np.ndarray, text: Awaitable[str], history: Sequence[Turn]
    ) -> Verdict:
        return Verdict(False, self.window_s, None, self.name)
