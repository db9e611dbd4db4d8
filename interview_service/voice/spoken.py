"""What the interviewer says, as it goes out: streamed text cut into sentences, each
sentence's audio and how much of it has played."""

from __future__ import annotations

import re

from interview_service.paced_audio import Segment
from interview_service.voice.local import split_sentences

SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*\s+")
CLAUSE_END = re.compile(r"[,;:—]\s+")
FIRST_CLAUSE_WORDS = 4  # a first clause at least this long is spoken before its sentence ends


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


def speakable_and_rest(text: str, *, first: bool) -> list[str]:
    """Like :func:`sentences_and_rest`; for the reply's first words, a clause that is long
    enough ("Thank you for that answer, ...") goes to TTS before its sentence ends."""
    parts = sentences_and_rest(text)
    if not first or len(parts) > 1:
        return parts
    ends = [match.end() for match in CLAUSE_END.finditer(text)]
    if ends and len(text[: ends[-1]].split()) >= FIRST_CLAUSE_WORDS:
        return [text[: ends[-1]].strip(), text[ends[-1] :]]
    return parts


def first_sent(spoken: list[Spoken]) -> float | None:
    return next((line.first_sent_at for line in spoken if line.first_sent_at), None)
