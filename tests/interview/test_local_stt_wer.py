"""The local STT hears an interview's technical terms once it is given its vocabulary.

The bundled whisper base model, on the hardest answers of the fixed set spoken by
espeak-ng, transcribed twice in the same run: bare, and prompted as the listener prompts
it (``stt_prompt`` of the interview's role, job description and questions). Bare, it hears
4 of these 10 terms ("item potent", "DRPC", "teleform", "Acubanite") at 22 % WER; prompted,
9 at 20 % (docs/benchmarks.md has the whole set).

The figures move by a point or two between machines (CI's CPU decoded one sentence
differently), so the test compares the two runs of one machine and keeps absolute
bounds only where a broken prompt or model would land far outside them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from interview_service.voice.local import WhisperStt
from interview_service.voice.vocabulary import stt_prompt
from interview_service.voice.wer import word_error_rate, words
from tests.support import stt_wer_set

pytestmark = pytest.mark.slow  # about 50 s on 2 busy cores

TERMS = ("kubernetes", "postgresql", "idempotent", "distributed", "grpc", "terraform")
WER_CEILING = 0.25  # prompted; a model that mishears whole sentences is well above it


async def test_the_vocabulary_prompt_makes_the_local_stt_hear_the_terms() -> None:
    references = [stt_wer_set.SENTENCES[i] for i in stt_wer_set.HARD]
    audio = await stt_wer_set.synthesize(tuple(references))
    stt = WhisperStt(None, Path("~/.cache/pipeline-backend").expanduser())
    prompt = stt_prompt(stt_wer_set.ROLE, stt_wer_set.JOB_DESCRIPTION, stt_wer_set.QUESTIONS)
    bare = [await stt.transcribe(clip, language="en") for clip in audio]
    prompted = [await stt.transcribe(clip, language="en", prompt=prompt) for clip in audio]

    said = [w for text in references for w in words(text) if w in TERMS]
    assert len(said) == 10

    def terms_heard(heard: list[str]) -> int:
        return sum(1 for text in heard for w in words(text) if w in TERMS)

    with_prompt, without = terms_heard(prompted), terms_heard(bare)
    assert with_prompt >= 8, f"heard {with_prompt} of 10 terms with the prompt: {prompted}"
    assert with_prompt >= without + 3, f"the prompt added {with_prompt - without} terms"
    rate, bare_rate = word_error_rate(references, prompted), word_error_rate(references, bare)
    assert rate < bare_rate, f"WER {rate:.1%} with the prompt, {bare_rate:.1%} without"
    assert rate <= WER_CEILING, f"WER {rate:.1%}: {prompted}"
