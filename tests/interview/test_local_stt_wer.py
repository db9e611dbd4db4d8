"""The local STT hears an interview's technical terms once it is given its vocabulary.

The bundled whisper base model, on the hardest answers of the fixed set spoken by
espeak-ng, prompted as the listener prompts it (``stt_prompt`` of the interview's role,
job description and questions). Without the prompt the same model hears 4 of these 10
terms ("item potent", "DRPC", "teleform", "Acubanite") at 20 % WER; with it, 9 at
16.5 % (docs/benchmarks.md has the whole set). Greedy decoding of the same audio gives
the same words, so the ceilings are not a matter of luck.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from interview_service.voice.local import WhisperStt
from interview_service.voice.vocabulary import stt_prompt
from interview_service.voice.wer import word_error_rate, words
from tests.support import stt_wer_set

pytestmark = pytest.mark.slow  # about 25 s on 2 busy cores

TERMS = ("kubernetes", "postgresql", "idempotent", "distributed", "grpc", "terraform")
WER_CEILING = 0.18


async def test_the_vocabulary_prompt_makes_the_local_stt_hear_the_terms() -> None:
    references = [stt_wer_set.SENTENCES[i] for i in stt_wer_set.HARD]
    audio = await stt_wer_set.synthesize(tuple(references))
    stt = WhisperStt(None, Path("~/.cache/pipeline-backend").expanduser())
    prompt = stt_prompt(stt_wer_set.ROLE, stt_wer_set.JOB_DESCRIPTION, stt_wer_set.QUESTIONS)
    heard = [await stt.transcribe(clip, language="en", prompt=prompt) for clip in audio]

    said = [w for text in references for w in words(text) if w in TERMS]
    recognised = [w for text in heard for w in words(text) if w in TERMS]
    assert len(said) == 10
    missed = sorted(set(said) - set(recognised))
    assert len(recognised) >= 8, f"heard {len(recognised)} of 10 terms, missed {missed}: {heard}"
    rate = word_error_rate(references, heard)
    assert rate <= WER_CEILING, f"WER {rate:.1%}: {heard}"
