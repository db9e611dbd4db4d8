"""The interview's vocabulary as an STT prompt, so "Kubernetes" is not heard as "Cuban It's".

Speech models take a short text that comes "before" the audio (Whisper's prompt); names
spelled there are far more likely to be recognised. The terms come from what the
interview is about: the role, the job description and the questions. Pure functions:
text in, bounded text out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# Whisper reads at most 223 prompt tokens; a term is about 2-3 tokens. Half of that is
# the vocabulary's, the rest is left for the words the candidate said just before.
PROMPT_MAX_CHARS = 400
CONTEXT_MAX_CHARS = 360  # with the vocabulary, within the 800 OpenAI STT keeps
LONG_WORD = 8  # a lowercase word this long is likely a term ("distributed", "idempotent")

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[.+#/-][A-Za-z0-9]+)*[+#]*")
_SENTENCE = re.compile(r"[.!?;:]\s+|\s*\n\s*(?:[-*•]\s*)?")
_OPENER = "We use"
_CLOSER = "Sure, let me explain."
_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]?")  # e.g, i.e, U.S
# Common words that pass the tests below but carry nothing a recogniser needs.
_PLAIN_WORDS = """
    about ability across another anything approach because before building business
    candidate candidates challenge challenges collaborate collaboration communication
    company complex customer customers describe designing different difficult during
    engineer engineering engineers environment everything example excellent experience
    experienced explain familiar familiarity following including interested interview
    knowledge learning looking opportunity particular position preferred previous
    problem problems production project projects question questions required
    requirements responsibilities responsible senior situation something strong
    successful support teammates technical technologies technology together
    understanding various whether working would yourself
"""
_PLAIN = frozenset(_PLAIN_WORDS.split())


def stt_prompt(
    role: str | None,
    job_description: str | None,
    questions: Sequence[str],
    *,
    max_chars: int = PROMPT_MAX_CHARS,
) -> str | None:
    """A short prompt naming the interview's terms, or None when there are none.

    The role first (whole), then the terms of the questions (the candidate tends to echo
    them), then those of the job description, each once, until ``max_chars``. It reads as
    speech, "<role> interview. We use <terms>. Sure, let me explain.": on the technical
    set (docs/benchmarks.md) that wording beat a bare list of terms (17.9 % WER against
    21.7 %), which made Whisper answer in comma-separated fragments.
    """
    head = f"{_clip(role.strip(), max_chars // 2)} interview." if role and role.strip() else ""
    seen: set[str] = set()
    terms: list[str] = []
    size = len(head) + len(_OPENER) + len(_CLOSER) + 2
    for text in (*questions, job_description or ""):
        for term in terms_of(text):
            key = term.lower()
            if key in seen:
                continue
            if size + len(term) + 2 > max_chars:
                break
            seen.add(key)
            terms.append(term)
            size += len(term) + 2
    body = f"{_OPENER} {', '.join(terms)}. {_CLOSER}" if terms else ""
    prompt = " ".join(part for part in (head, body) if part)
    return prompt or None


def terms_of(text: str) -> Iterable[str]:
    """Words of ``text`` that look like names or jargon: mixed case (gRPC, PostgreSQL),
    digits or symbols (S3, C++, Node.js), capitalised inside a sentence (Kubernetes),
    or long and uncommon (idempotent)."""
    for sentence in _SENTENCE.split(text):
        for index, match in enumerate(_TOKEN.finditer(sentence)):
            word = match.group().rstrip(".-/")
            if _is_term(word, first=index == 0):
                yield word


def _is_term(word: str, *, first: bool) -> bool:
    if len(word) < 2 or word.lower() in _PLAIN or _ABBREVIATION.fullmatch(word):
        return False
    if any(c.isupper() for c in word[1:]) or any(c.isdigit() or c in "+#." for c in word):
        return True
    if word[0].isupper() and not first:
        return len(word) > 2
    # a sentence's first word is capitalised anyway: only a long one counts, as below
    return len(word) >= LONG_WORD


def with_context(vocabulary: str | None, said_before: str) -> str | None:
    """The prompt for one piece of an answer: the vocabulary, then the end of what the
    candidate said just before (Whisper keeps a prompt's end when it is too long)."""
    context = said_before.strip()
    if len(context) > CONTEXT_MAX_CHARS:
        context = context[-CONTEXT_MAX_CHARS:].split(" ", 1)[-1]
    prompt = " ".join(part for part in (vocabulary, context) if part)
    return prompt or None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0]
