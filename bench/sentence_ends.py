"""Which whisper probability tells a thinking pause's fragment from a finished answer.

    uv run python -m bench.sentence_ends

At a thinking pause the local STT transcribes the words so far; whisper base sometimes
hears the fragment as a finished sentence ("I owned the" as "I owned."), and the answer
would read finished. This prints, for each fragment of the thinking-pause set and each
finished answer (the same set said to the end, and the technical WER set), the
transcript, its last word's probability and its closing stop's, then how many of each
every rule marks as unsure: a fragment reading finished that is not marked may be cut,
a finished answer that is marked waits ``INTERVIEW_TURN_UNSURE_S`` (3 s). Audio is
espeak-ng's, padded as the listener hands it to STT (0.32 s before, 0.2 s after),
prompted with the interview's vocabulary as the service prompts it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from interview_service.voice.decide import reads_unfinished
from interview_service.voice.local import WhisperStt, sentence_end_probability
from interview_service.voice.vocabulary import stt_prompt
from tests.support import stt_wer_set
from tests.support.voice_sets import THINKING_PAUSES, silence, trimmed

LAST_WORD = (0.4, 0.5)
Row = tuple[str, float, float]  # the transcript, its last word's probability, its stop's
SENTENCE_END = (0.6, 0.7, 0.8, 0.9)


async def _clips(texts: list[str]) -> list[bytes]:
    from interview_service.espeak import EspeakVoice

    voice = EspeakVoice()
    return [silence(0.32) + trimmed(await voice.synthesize(t)) + silence(0.2) for t in texts]


def _measure(
    stt: WhisperStt, texts: list[str], prompt: str | None
) -> list[tuple[str, float, float]]:
    """(transcript, last word's probability, closing stop's) of each text, as heard."""
    rows = []
    for pcm in asyncio.run(_clips(texts)):
        text, words = stt.words(stt_wer_set.to_16k(pcm), "en", prompt)
        spoken = [w for w in words if w.word.strip() not in (".", "?", "!")]
        last = float(spoken[-1].probability) if spoken else 0.0
        rows.append((text, last, sentence_end_probability(words)))
        print(f"  {text[-48:]:48} last word {last:4.2f}  stop {rows[-1][2]:4.2f}", flush=True)
    return rows


def main() -> None:
    stt = WhisperStt(None, Path("~/.cache/pipeline-backend").expanduser())
    prompt = stt_prompt(stt_wer_set.ROLE, stt_wer_set.JOB_DESCRIPTION, stt_wer_set.QUESTIONS)
    began = time.perf_counter()
    print("fragments (the words before each thinking pause):")
    fragments = _measure(stt, [before for before, _, _ in THINKING_PAUSES], prompt)
    # only a fragment that reads finished can be cut: the others wait 3 s by their words
    guessed = [row for row in fragments if not reads_unfinished(row[0])]
    print("finished answers (the same answers said to the end, and the WER set):")
    said = [f"{before} {after}" for before, _, after in THINKING_PAUSES]
    finished = _measure(stt, [*said, *stt_wer_set.SENTENCES], prompt)
    print(f"\n{len(guessed)} of {len(fragments)} fragments read finished; {len(finished)} answers")
    print(f"  {'rule: unsure when':28} {'fragments marked':>17} {'answers that wait':>18}")
    rules = [(f"last word < {t}", 1, t) for t in LAST_WORD]
    rules += [(f"closing stop < {t}", 2, t) for t in SENTENCE_END]
    for name, column, threshold in rules:
        marked = sum(1 for row in guessed if row[column] < threshold)
        waiting = sum(1 for row in finished if row[column] < threshold)
        print(f"  {name:28} {marked:>10} of {len(guessed):<3} {waiting:>11} of {len(finished)}")
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
