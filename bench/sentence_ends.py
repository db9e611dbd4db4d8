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
through Opus as on a call (without it whisper hears nearly every fragment as trailing
off, "My last project was a...", and the question hardly arises), without a prompt and
prompted with two interviews' vocabulary (as the service prompts): which fragments
whisper hears as sentences depends on the prompt.
"""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from interview_service.voice.decide import reads_unfinished
from interview_service.voice.local import WhisperStt, sentence_end_probability
from interview_service.voice.vocabulary import stt_prompt
from tests.support import stt_wer_set
from tests.support.voice_sets import THINKING_PAUSES, silence, trimmed

Row = tuple[str, float, float]  # the transcript, its last word's probability, its stop's
# (what it says, the Row column it reads, the threshold)
RULES = [(f"last word < {t}", 1, t) for t in (0.4, 0.5)]
RULES += [(f"closing stop < {t}", 2, t) for t in (0.6, 0.7, 0.8, 0.9)]


async def _clips(texts: list[str]) -> list[bytes]:
    from interview_service.espeak import EspeakVoice

    voice = EspeakVoice()
    return [silence(0.32) + trimmed(await voice.synthesize(t)) + silence(0.2) for t in texts]


def _through_opus(pcm: bytes) -> np.ndarray:
    """s16 48 kHz mono as the service hears it on a call: aiortc's Opus encoder and
    decoder (96 kbit/s, voip), then 16 kHz float32 through the listener's resampler."""
    from aiortc.codecs.opus import OpusDecoder, OpusEncoder
    from aiortc.jitterbuffer import JitterFrame

    encoder, decoder = OpusEncoder(), OpusDecoder()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=16_000)
    samples = np.frombuffer(pcm, dtype="<i2")
    out = []
    for start in range(0, len(samples) - 959, 960):
        frame = av.AudioFrame.from_ndarray(samples[None, start : start + 960], layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48_000, start, Fraction(1, 48_000)
        for payload in encoder.encode(frame)[0]:
            for decoded in decoder.decode(JitterFrame(data=payload, timestamp=start)):
                assert isinstance(decoded, av.AudioFrame)
                out += [f.to_ndarray().reshape(-1) for f in resampler.resample(decoded)]
    return np.concatenate(out).astype(np.float32)


def _measure(
    stt: WhisperStt, texts: list[str], prompt: str | None
) -> list[tuple[str, float, float]]:
    """(transcript, last word's probability, closing stop's) of each text, as heard."""
    rows = []
    for pcm in asyncio.run(_clips(texts)):
        text, words = stt.words(_through_opus(pcm), "en", prompt)
        spoken = [w for w in words if w.word.strip() not in (".", "?", "!")]
        last = float(spoken[-1].probability) if spoken else 0.0
        rows.append((text, last, sentence_end_probability(words)))
        print(f"  {text[-48:]:48} last word {last:4.2f}  stop {rows[-1][2]:4.2f}", flush=True)
    return rows


def main() -> None:
    from bench.voice_latency import QUESTIONS

    stt = WhisperStt(None, Path("~/.cache/pipeline-backend").expanduser())
    wer_set = stt_prompt(stt_wer_set.ROLE, stt_wer_set.JOB_DESCRIPTION, stt_wer_set.QUESTIONS)
    prompts = {
        "no prompt": None,
        "bench.voice_latency's interview": stt_prompt("pipeline engineer", "", QUESTIONS),
        "the WER set's interview": wer_set,
    }
    said = [f"{before} {after}" for before, _, after in THINKING_PAUSES]
    began = time.perf_counter()
    guessed: list[Row] = []
    finished: list[Row] = []
    for name, prompt in prompts.items():
        print(f"prompted with {name}; fragments (the words before each thinking pause):")
        fragments = _measure(stt, [before for before, _, _ in THINKING_PAUSES], prompt)
        # only a fragment that reads finished can be cut: the others wait by their words
        guessed += [row for row in fragments if not reads_unfinished(row[0])]
        print("finished answers (the same answers said to the end, and the WER set):")
        finished += _measure(stt, [*said, *stt_wer_set.SENTENCES], prompt)
    print(f"\n{len(guessed)} fragments read finished; {len(finished)} finished answers")
    print(f"  {'rule: unsure when':28} {'fragments marked':>17} {'answers that wait':>18}")
    for name, column, threshold in RULES:
        marked = sum(1 for row in guessed if float(row[column]) < threshold)
        waiting = sum(1 for row in finished if float(row[column]) < threshold)
        print(f"  {name:28} {marked:>10} of {len(guessed):<3} {waiting:>11} of {len(finished)}")
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
