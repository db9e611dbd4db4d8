"""The evidence rule without a model: quotes held to the candidate's own lines."""

from __future__ import annotations

import json

import pytest

from interview_service.scoring import (
    DEFAULT_RUBRIC,
    Criterion,
    EvaluationError,
    check,
    evaluation_schema,
    normalise,
    quote_found,
    rubric_from,
    settle,
)

LINES = [
    "I\u2019ve built Kubernetes operators, in Python, for video rendering.",
    "We cut the p95 latency by half.",
]
RUBRIC = (Criterion("depth", "Technical depth", 5), Criterion("impact", "Results", 3))


def _answer(**scores: tuple[int, list[str]]) -> str:
    return json.dumps(
        {
            "summary": "ok",
            "scores": [
                {"criterion": name, "score": score, "evidence": quotes}
                for name, (score, quotes) in scores.items()
            ],
        }
    )


def test_normalising_ignores_case_punctuation_and_curly_apostrophes() -> None:
    assert normalise("  I\u2019ve BUILT: operators!! ") == "i've built operators"


@pytest.mark.parametrize(
    ("quote", "found"),
    [
        ("I've built Kubernetes operators", True),
        ("i\u2019VE BUILT kubernetes OPERATORS!", True),
        ("operators in Python for video", True),  # the commas do not matter
        ("cut the p95 latency", True),
        ("built Kubernetes controllers", False),  # a paraphrase is not a quote
        ("rendering. We cut the", False),  # across two lines: stitched, not said
        ("Python", False),  # too short to prove anything
        ("in Python", False),
        ("uilt Kubernetes operator", False),  # words, not fragments of words
    ],
)
def test_a_quote_is_found_only_verbatim_in_one_line(quote: str, found: bool) -> None:
    assert quote_found(quote, [normalise(line) for line in LINES]) is found


def test_a_checked_answer_keeps_valid_quotes_and_names_what_failed() -> None:
    checked = check(
        _answer(depth=(4, ["I've built Kubernetes operators", "I know Rust well"])),
        RUBRIC,
        LINES,
    )
    assert checked.scores["depth"]["evidence"] == ["I've built Kubernetes operators"]
    assert checked.scores["depth"]["max"] == 5
    assert "'I know Rust well' is not in the candidate's words" in checked.failing["depth"]
    assert checked.failing["impact"] == ["no score was given"]


def test_settling_takes_the_reask_for_failed_criteria_only() -> None:
    first = check(_answer(depth=(4, ["cut the p95 latency"]), impact=(9, [])), RUBRIC, LINES)
    second = check(
        _answer(
            depth=(1, ["something else entirely"]), impact=(3, ["cut the p95 latency by half"])
        ),
        RUBRIC,
        LINES,
    )
    scored = settle(RUBRIC, first, second)
    assert [(s["criterion"], s["score"]) for s in scored.scores] == [("depth", 4), ("impact", 3)]
    assert scored.unscored == []


def test_a_criterion_without_any_valid_quote_is_unscored_not_guessed() -> None:
    first = check(_answer(depth=(5, ["a genius"]), impact=(2, [])), RUBRIC, LINES)
    scored = settle(RUBRIC, first, None)
    assert scored.scores == []
    assert [u["criterion"] for u in scored.unscored] == ["depth", "impact"]
    assert "no quote was given" in scored.unscored[1]["reason"]


def test_the_schema_allows_only_the_rubrics_criteria() -> None:
    schema = evaluation_schema(RUBRIC)
    item = schema["properties"]["scores"]["items"]
    assert item["properties"]["criterion"]["enum"] == ["depth", "impact"]
    assert item["additionalProperties"] is False


def test_no_rubric_means_the_default_one() -> None:
    assert rubric_from([]) == DEFAULT_RUBRIC
    assert rubric_from([{"name": "x", "description": "y"}]) == (Criterion("x", "y", 5),)


def test_an_answer_that_is_not_json_is_an_error() -> None:
    with pytest.raises(EvaluationError):
        check("{not json", RUBRIC, LINES)
