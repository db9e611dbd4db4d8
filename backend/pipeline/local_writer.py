"""A local script writer: no model, a template filled from the prompt. It says so.

It finds the topic in the prompt ("A 30-second video about a cat" → "a cat"), then
writes an introduction, one scene per aspect of the topic and a closing scene, each
with narration sized for its share of the duration at a calm speaking rate.
"""

from __future__ import annotations

import re

from backend.pipeline.options import VideoOptions
from backend.pipeline.script import WORDS_PER_SECOND, Scene, Script

_LEAD_IN = re.compile(
    r"^\s*(?:please\s+)?(?:make|create|generate|produce|give me|i want)?\s*"
    r"(?:an?\s+)?(?:short\s+)?(?:\d+[\s-]*(?:second|sec|s|minute|min)s?[\s-]*(?:long\s+)?)?"
    r"(?:video|clip|film|explainer|story)?\s*(?:about|on|of|explaining|showing)?\s+",
    re.IGNORECASE,
)

_ASPECTS: list[tuple[str, list[str]]] = [
    (
        "What it is",
        [
            "Let us start with the basics of {topic}.",
            "At its heart, {topic} is something many people meet every day,"
            " yet few stop to look at closely.",
            "Seen up close, it has more detail than a first glance suggests.",
        ],
    ),
    (
        "How it works",
        [
            "Next, how {topic} works.",
            "Every part has a job, and the parts depend on each other.",
            "When one changes, the others adapt, and that balance is what keeps it going.",
        ],
    ),
    (
        "Why it matters",
        [
            "Why does {topic} matter?",
            "Because it shapes the way we live, think and spend our time.",
            "Small choices around it add up to large effects over the years.",
        ],
    ),
    (
        "A closer look",
        [
            "Take a closer look at {topic}.",
            "Patterns appear that are easy to miss: rhythms, habits and small surprises.",
            "Noticing them is the first step to understanding them.",
        ],
    ),
    (
        "Common questions",
        [
            "People often ask the same questions about {topic}.",
            "Where did it come from, how does it change, and what comes next?",
            "The answers are simpler than they sound, and more interesting.",
        ],
    ),
    (
        "A surprising fact",
        [
            "Here is something surprising about {topic}.",
            "It has been studied, described and admired for a very long time,"
            " and it still has secrets left.",
        ],
    ),
    (
        "In everyday life",
        [
            "In everyday life, {topic} shows up in quiet ways.",
            "In homes, in streets and in stories, it leaves its mark without asking for attention.",
        ],
    ),
    (
        "Looking ahead",
        [
            "Looking ahead, {topic} will keep changing.",
            "New ideas and new people will see it with fresh eyes.",
        ],
    ),
    (
        "Tips to remember",
        [
            "A few tips to remember about {topic}.",
            "Stay curious, look for details, and ask why things are the way they are.",
        ],
    ),
    (
        "The big picture",
        [
            "Step back for the big picture of {topic}.",
            "Everything we have seen fits together into one connected story.",
        ],
    ),
]

_FILLER = [
    "Take a moment to picture it.",
    "It is worth a second look.",
    "There is always more to see.",
    "Keep that in mind as we go on.",
]


def topic_of(prompt: str) -> str:
    """The subject of a prompt, without the request around it."""
    first = re.split(r"(?<=[.!?])\s", prompt.strip(), maxsplit=1)[0].strip()
    topic = _LEAD_IN.sub("", first, count=1).strip().rstrip(".!?").strip()
    topic = topic or first.rstrip(".!?") or "this topic"
    return topic[:60].rsplit(" ", 1)[0] if len(topic) > 60 else topic


def _sized(sentences: list[str], topic: str, seconds: float) -> str:
    """The sentences with the topic filled in, trimmed or padded to about ``seconds``."""
    budget = max(5, round(seconds * WORDS_PER_SECOND))
    chosen: list[str] = []
    words = 0
    for sentence in [s.format(topic=topic) for s in sentences]:
        count = len(sentence.split())
        if chosen and words + count > budget * 1.15:
            break
        chosen.append(sentence)
        words += count
    filler = iter(_FILLER * 3)
    while words < budget * 0.8:
        extra = next(filler, None)
        if extra is None:
            break
        chosen.append(extra)
        words += len(extra.split())
    return " ".join(chosen)


def write_script(prompt: str, options: VideoOptions) -> Script:
    topic = topic_of(prompt)
    title = topic[:1].upper() + topic[1:]
    count = options.scene_count
    share = options.duration_s / count
    scenes: list[Scene] = []
    if count == 1:
        body = [
            f"This is a short video about {topic}.",
            *_ASPECTS[0][1][1:],
            "Thanks for watching.",
        ]
        narration = _sized(body, topic, share)
        return Script(title=title, scenes=[_scene(title, narration, topic, share)])
    intro = [
        f"Welcome. This short video is about {topic}.",
        "In the next few moments we will look at what it is, how it works, and why it matters.",
    ]
    scenes.append(_scene(title, _sized(intro, topic, share), topic, share))
    for heading, sentences in _ASPECTS[: count - 2]:
        scenes.append(_scene(heading, _sized(sentences, topic, share), topic, share))
    outro = [
        f"That is our short look at {topic}.",
        "There is always more to learn. Thanks for watching.",
    ]
    scenes.append(_scene("Thanks for watching", _sized(outro, topic, share), topic, share))
    return Script(title=title[:120], scenes=scenes)


def _scene(title: str, narration: str, topic: str, seconds: float) -> Scene:
    return Scene(
        title=title[:80],
        narration=narration,
        visual=f"A title card about {topic}: '{title}' over a calm gradient",
        target_s=round(seconds, 2),
    )
