"""What the interviewer says, as it goes out: streamed text cut into sentences, each
sentence's audio and how much of it has played."""

from __future__ import annotations

import re

from interview_service.paced_audio import Segment
from interview_service.voice.local import split_sentences

SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+")


class Spoken:
    """One sentence of the interviewer's, and the queued segments it streamed into."""

    __slots__ = ("segments", "sentence")

    def __init__(self, sentence: str) -> None:
        self.sentence = sentence
        self.segments: list[Segment] = []

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.segments)

    @property
    def first_sent_at(self) -> float | None:
        return next((s.first_sent_at for s in self.segments if s.first_sent_at), None)


def sentences_and_rest(text: str) -> list[str]:
    """Complete sentences, then the unfinished rest exactly as streamed (possibly empty).

    A sentence is complete once whitespace follows its end mark, so "3." of "3.5" waits;
    the rest keeps its whitespace, so pieces ending in a space do not run together.
    """
    ends = [match.end() for match in SENTENCE_END.finditer(text)]
    if not ends:
        return [text]
    return [*split_sentences(text[: ends[-1]]), text[ends[-1] :]]


def first_sent(spoken: list[Spoken]) -> float | None:
    return next((line.first_sent_at for line in spoken if line.first_sent_at), None)
