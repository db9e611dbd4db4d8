"""Rubric scores held to the transcript. Pure: no model and no I/O.

A language model scores the interview against a rubric (the interview's own, or
:data:`DEFAULT_RUBRIC`), and every score must carry quotes of the candidate. Here: the
prompt and the JSON schema the model answers in, and the check of that answer. A quote
counts when, after :func:`normalise` (case folded, curly quotes made straight, every
character that is not a letter, digit or apostrophe turned into a space, runs of spaces
collapsed), it appears inside one of the candidate's own transcript lines and has at
least :data:`MIN_QUOTE_WORDS` words. The interviewer's lines never count.

What fails (a quote not found, a score outside the scale, a criterion missing) is asked
again once (:func:`reask_prompt`); what still fails is dropped. A criterion left with no
valid quote gets no score at all: it is listed in ``unscored`` with the reason, because a
number that the transcript does not support is exactly what the evidence rule forbids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, ValidationError

MIN_QUOTE_WORDS = 3
MAX_QUOTES = 5


class EvaluationError(RuntimeError):
    """The model's evaluation was not valid JSON of the expected shape."""


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    description: str
    scale: int = 5  # scores run from 1 to scale


DEFAULT_RUBRIC = (
    Criterion("relevance", "The answers address the questions that were asked."),
    Criterion("depth", "Technical depth and accuracy of what the candidate explains."),
    Criterion("examples", "Concrete examples from the candidate's own experience."),
    Criterion("communication", "Clarity and structure of the answers."),
)


def rubric_from(raw: Sequence[Mapping[str, Any]]) -> tuple[Criterion, ...]:
    """The interview's rubric as stored, or the default one when it has none."""
    if not raw:
        return DEFAULT_RUBRIC
    return tuple(
        Criterion(str(c["name"]), str(c["description"]), int(c.get("scale") or 5)) for c in raw
    )


def normalise(text: str) -> str:
    text = text.casefold().replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(re.sub(r"[^\w']|_", " ", text).split())


def quote_found(quote: str, candidate_lines: Sequence[str]) -> bool:
    """Whether ``quote`` is the candidate's own words (lines already normalised)."""
    words = normalise(quote)
    if len(words.split()) < MIN_QUOTE_WORDS:
        return False
    return any(f" {words} " in f" {line} " for line in candidate_lines)


# ---- what the model is asked ------------------------------------------------------------


def evaluation_schema(rubric: Sequence[Criterion]) -> dict[str, Any]:
    """The structured-output schema: a summary and one score per criterion."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "scores"],
        "properties": {
            "summary": {"type": "string"},
            "scores": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["criterion", "score", "evidence"],
                    "properties": {
                        "criterion": {"type": "string", "enum": [c.name for c in rubric]},
                        "score": {"type": "integer"},
                        "evidence": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }


def scoring_prompt(
    rubric: Sequence[Criterion], plan: Mapping[str, Any], transcript: Sequence[tuple[str, str]]
) -> str:
    said = "\n".join(f"{role.upper()}: {text}" for role, text in transcript)
    criteria = "\n".join(f"- {c.name} (1 to {c.scale}): {c.description}" for c in rubric)
    return (
        f"Role: {plan.get('role') or 'unspecified'}\n"
        f"Questions: {json.dumps(list(plan.get('questions') or []))}\n"
        f"Score the candidate on each criterion, on its own scale:\n{criteria}\n"
        f"For every score give 1 to {MAX_QUOTES} quotes of the CANDIDATE's exact words "
        f"(each at least {MIN_QUOTE_WORDS} words, copied from one CANDIDATE line, never "
        "the interviewer's) that support it. Then a short, factual summary.\n\n"
        f"Transcript:\n{said}"
    )


def reask_prompt(failing: Mapping[str, Sequence[str]]) -> str:
    problems = "\n".join(f"- {name}: {'; '.join(why)}" for name, why in failing.items())
    return (
        "Some of your scores cannot be used:\n"
        f"{problems}\n"
        "Answer again in the same JSON shape, for these criteria only, with quotes copied "
        "exactly from the CANDIDATE's lines of the transcript."
    )


# ---- what the model answered ------------------------------------------------------------


class _Score(BaseModel):
    criterion: str = Field(min_length=1, max_length=80)
    score: int
    evidence: list[str] = Field(default_factory=list)


class _Evaluation(BaseModel):
    summary: str = Field(default="", max_length=4000)
    scores: list[_Score] = Field(default_factory=list, max_length=24)


@dataclass(slots=True)
class Checked:
    """One answer of the model, checked: what holds, and what fails and why."""

    summary: str
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # criterion -> score
    failing: dict[str, list[str]] = field(default_factory=dict)  # criterion -> reasons
    dropped: list[str] = field(default_factory=list)  # notes for the results


def check(content: str, rubric: Sequence[Criterion], candidate_lines: Sequence[str]) -> Checked:
    """The model's answer against the rubric and the candidate's lines."""
    try:
        answer = _Evaluation.model_validate_json(content)
    except ValidationError as exc:
        raise EvaluationError(f"invalid evaluation: {exc.error_count()} errors") from exc
    lines = [normalise(line) for line in candidate_lines]
    given = {score.criterion: score for score in answer.scores}
    checked = Checked(summary=answer.summary.strip())
    for criterion in rubric:
        score = given.get(criterion.name)
        if score is None:
            checked.failing[criterion.name] = ["no score was given"]
            continue
        reasons: list[str] = []
        if not 1 <= score.score <= criterion.scale:
            reasons.append(f"score {score.score} is outside 1 to {criterion.scale}")
        quotes = [q.strip() for q in score.evidence[:MAX_QUOTES] if q.strip()]
        valid = [q for q in quotes if quote_found(q, lines)]
        for quote in quotes:
            if quote not in valid:
                reasons.append(f"{quote!r} is not in the candidate's words")
                checked.dropped.append(f"{criterion.name}: dropped quote {quote!r}")
        if not quotes:
            reasons.append("no quote was given")
        if valid and 1 <= score.score <= criterion.scale:
            checked.scores[criterion.name] = {
                "criterion": criterion.name,
                "score": score.score,
                "max": criterion.scale,
                "evidence": valid,
            }
        if reasons:
            checked.failing[criterion.name] = reasons
    return checked


@dataclass(slots=True)
class Scored:
    """The evaluation as the results show it."""

    summary: str | None
    scores: list[dict[str, Any]]
    unscored: list[dict[str, str]]
    notes: list[str]


def settle(rubric: Sequence[Criterion], first: Checked, second: Checked | None = None) -> Scored:
    """Each criterion from the latest answer that holds; with no valid quote, no score."""
    scores: list[dict[str, Any]] = []
    unscored: list[dict[str, str]] = []
    notes = list(first.dropped) + (list(second.dropped) if second else [])
    for criterion in rubric:
        name = criterion.name
        asked_again = second is not None and name in first.failing
        chosen = second.scores.get(name) if second is not None and asked_again else None
        chosen = chosen or first.scores.get(name)
        if chosen is not None:
            scores.append(chosen)
            continue
        last = second if second is not None and asked_again else first
        reasons = last.failing.get(name, ["no score was given"])
        unscored.append({"criterion": name, "reason": "; ".join(reasons)[:500]})
    summary = second.summary if second is not None and second.summary else first.summary
    return Scored(summary=summary or None, scores=scores, unscored=unscored, notes=notes)
