"""WebVTT captions that follow the narration: a pure function of texts and durations.

Each scene's narration is cut into short cues (a sentence, or about a dozen words) and
the scene's speech time is shared between them by their length in characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_WORDS = 12


@dataclass(frozen=True, slots=True)
class Cue:
    start: float
    end: float
    text: str


def _chunks(narration: str) -> list[str]:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", narration.strip()) if s]
    chunks: list[str] = []
    for sentence in sentences:
        words = sentence.split()
        while len(words) > MAX_WORDS:
            chunks.append(" ".join(words[:MAX_WORDS]))
            words = words[MAX_WORDS:]
        if words:
            chunks.append(" ".join(words))
    return chunks


def cues_for(narrations: list[str], speech_s: list[float], scene_s: list[float]) -> list[Cue]:
    """Cues for scenes that speak for ``speech_s`` and last ``scene_s`` each."""
    cues: list[Cue] = []
    offset = 0.0
    for text, speaking, lasting in zip(narrations, speech_s, scene_s, strict=True):
        chunks = _chunks(text)
        total = sum(len(chunk) for chunk in chunks) or 1
        at = offset
        for chunk in chunks:
            length = speaking * len(chunk) / total
            cues.append(Cue(round(at, 3), round(min(at + length, offset + lasting), 3), chunk))
            at += length
        offset += lasting
    return cues


def timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def webvtt(cues: list[Cue]) -> str:
    blocks = ["WEBVTT", ""]
    for number, cue in enumerate(cues, 1):
        blocks += [str(number), f"{timestamp(cue.start)} --> {timestamp(cue.end)}", cue.text, ""]
    return "\n".join(blocks)
