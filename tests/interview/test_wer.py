"""The word error rate: word-level Levenshtein over normalised words."""

from __future__ import annotations

import pytest

from interview_service.voice.wer import edit_distance, word_error_rate, words


def test_case_and_punctuation_are_not_errors() -> None:
    assert words("We use gRPC, PostgreSQL and Kubernetes!") == [
        "we",
        "use",
        "grpc",
        "postgresql",
        "and",
        "kubernetes",
    ]
    assert word_error_rate(["We use gRPC."], ["we use GRPC"]) == 0.0


def test_hyphens_split_words_and_apostrophes_stay() -> None:
    assert words("the on-call engineer's CI/CD") == ["the", "on", "call", "engineer's", "ci", "cd"]
    assert words("'quoted' don't") == ["quoted", "don't"]


def test_substitution_deletion_and_insertion_count_one_each() -> None:
    ref = words("we run kubernetes in production")
    assert edit_distance(ref, words("we run cuban it's in production")) == 2  # sub + ins
    assert edit_distance(ref, words("we run in production")) == 1  # deletion
    assert edit_distance(ref, words("we run kubernetes in production today")) == 1
    assert edit_distance([], ["a", "b"]) == 2
    assert edit_distance(["a", "b"], []) == 2


def test_the_rate_is_errors_over_all_reference_words() -> None:
    # 1 error in 4 words and 1 in 1 word: 2 of 5, not the mean of 25 % and 100 %
    rate = word_error_rate(
        ["We run Kubernetes daily.", "Distributed."], ["We run Cuban daily", "remuted"]
    )
    assert rate == pytest.approx(2 / 5)


def test_more_words_heard_than_said_can_exceed_one() -> None:
    assert word_error_rate(["yes"], ["yes yes yes"]) == 2.0


def test_mismatched_or_empty_sets_are_refused() -> None:
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        word_error_rate(["a"], [])
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(["?!"], ["anything"])
