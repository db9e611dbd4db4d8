"""The STT prompt built from the interview: its terms, once each, within a bound."""

from __future__ import annotations

from interview_service.voice.vocabulary import (
    CONTEXT_MAX_CHARS,
    PROMPT_MAX_CHARS,
    stt_prompt,
    terms_of,
    with_context,
)

JD = """We run a distributed platform on Kubernetes and Helm, with PostgreSQL and Redis.
- Terraform for all infrastructure, e.g. modules per team
- Services talk over gRPC; C++ and Node.js at the edges, files in S3
"""


def test_the_prompt_names_the_role_then_the_interviews_terms() -> None:
    prompt = stt_prompt("Backend engineer", JD, ["How do you make a message consumer idempotent?"])
    assert prompt is not None
    assert prompt.startswith("Backend engineer interview. We use ")
    assert prompt.endswith(". Sure, let me explain.")  # back to speech after the list
    terms = (
        prompt.removeprefix("Backend engineer interview. We use ")
        .removesuffix(". Sure, let me explain.")
        .split(", ")
    )
    # the question's terms come before the job description's
    assert terms[:2] == ["consumer", "idempotent"]
    for term in ("distributed", "Kubernetes", "Helm", "PostgreSQL", "Redis", "Terraform"):
        assert term in terms
    for term in ("gRPC", "C++", "Node.js", "S3"):
        assert term in terms


def test_plain_words_sentence_starts_and_abbreviations_are_not_terms() -> None:
    found = list(terms_of("We run it. How do you make it? The team, e.g. ours, is small."))
    assert found == []
    # a long word at a sentence's start still counts; a short capitalised one does not
    assert list(terms_of("Kubernetes runs it. Kafka too.")) == ["Kubernetes"]


def test_each_term_once_whatever_its_case() -> None:
    prompt = stt_prompt(None, "Kubernetes, kubernetes and KUBERNETES on Kubernetes.", [])
    assert prompt == "We use Kubernetes. Sure, let me explain."  # the first spelling


def test_nothing_to_say_is_no_prompt() -> None:
    assert stt_prompt(None, None, []) is None
    assert stt_prompt(None, "we do it", ["How are you?"]) is None
    assert stt_prompt("  ", "", []) is None
    assert stt_prompt("SRE", None, []) == "SRE interview."


def test_the_prompt_is_bounded_however_long_the_job_description() -> None:
    long_jd = " ".join(f"we use Tool{i} daily." for i in range(2000))
    prompt = stt_prompt("Staff engineer " * 40, long_jd, ["Why Kubernetes?"] * 50)
    assert prompt is not None
    assert len(prompt) <= PROMPT_MAX_CHARS
    assert "Kubernetes" in prompt  # the questions' terms come first, so they are kept


def test_the_context_keeps_the_end_of_what_was_said_after_the_vocabulary() -> None:
    said = " ".join(f"word{i}" for i in range(200))
    prompt = with_context("Kubernetes, gRPC.", said)
    assert prompt is not None
    assert prompt.startswith("Kubernetes, gRPC. ")
    context = prompt.removeprefix("Kubernetes, gRPC. ")
    assert len(context) <= CONTEXT_MAX_CHARS
    assert context.endswith("word199")
    assert context.split()[0].startswith("word")  # cut at a word boundary
    assert with_context(None, "") is None
    assert with_context(None, " so far ") == "so far"
    assert with_context("Kafka.", "") == "Kafka."


def test_vocabulary_and_context_fit_what_openai_stt_keeps_whole() -> None:
    """The OpenAI adapter keeps a prompt's last 800 characters: both parts fit in them."""
    long_jd = " ".join(f"we use Tool{i} daily." for i in range(2000))
    vocabulary = stt_prompt("Staff engineer " * 40, long_jd, ["Why Kubernetes?"])
    prompt = with_context(vocabulary, "and then " * 500)
    assert vocabulary is not None
    assert prompt is not None
    assert len(prompt) <= 800
    assert prompt.startswith(vocabulary)
