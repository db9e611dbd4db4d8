"""Word error rate: how far a transcript is from what was said, in words.

Case and punctuation are not errors ("gRPC," and "GRPC" are the same word); a hyphen
or slash splits words ("on-call" is "on call"), an apostrophe does not ("don't").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NOT_WORD = re.compile(r"[^\w\s']+")


def words(text: str) -> list[str]:
    """The words of ``text``, lower case, punctuation removed."""
    cleaned = _NOT_WORD.sub(" ", text.lower())
    return [word.strip("'") for word in cleaned.split() if word.strip("'")]


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions turning ``reference`` into ``hypothesis``."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(
                min(
                    previous[j] + 1,  # the reference word was dropped
                    current[j - 1] + 1,  # a word was inserted
                    previous[j - 1] + (ref != hyp),  # kept, or substituted
                )
            )
        previous = current
    return previous[-1]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Errors over reference words, summed over a set of sentences (not averaged per
    sentence, so a long sentence weighs as much as its words)."""
    if len(references) != len(hypotheses):
        raise ValueError("one hypothesis per reference")
    errors = total = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref = words(reference)
        errors += edit_distance(ref, words(hypothesis))
        total += len(ref)
    if total == 0:
        raise ValueError("the references have no words")
    return errors / total
