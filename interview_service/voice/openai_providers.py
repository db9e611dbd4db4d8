"""The OpenAI stack: transcription, a streaming chat interviewer, streaming speech, rubric results.

One ``AsyncOpenAI`` client per process, pointed at ``OPENAI_BASE_URL`` when set (any
OpenAI-compatible server). Every call has a bounded timeout; the conversation turns a
failure into a short spoken apology, never a dead call.
"""

from __future__ import annotations

import io
import re
import wave
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Annotated, Any

import av
import numpy as np
import structlog
from openai import AsyncOpenAI, AsyncStream, omit
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel, Field, ValidationError

from interview_service.conversation_seam import FRAME_MS, SAMPLE_RATE_OUT
from interview_service.greeting import greeting
from interview_service.plan import DEFAULT_QUESTIONS
from interview_service.scoring import (
    Criterion,
    EvaluationError,
    Scored,
    check,
    evaluation_schema,
    reask_prompt,
    rubric_from,
    scoring_prompt,
    settle,
)
from interview_service.voice.providers import VAD_RATE, Reply, Turn

log = structlog.get_logger(__name__)

OPENAI_PCM_RATE = 24_000  # response_format="pcm": s16le mono 24 kHz
FRAME_BYTES_48K = SAMPLE_RATE_OUT * FRAME_MS // 1000 * 2
LANGUAGES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "ja": "Japanese",
    "zh": "Chinese",
}


def make_client(api_key: str, base_url: str | None, *, timeout_s: float) -> AsyncOpenAI:
    # One retry at most: a spoken conversation cannot wait for the SDK's backoff.
    return AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=1)


def language_name(code: str) -> str:
    return LANGUAGES.get(code.split("-")[0].lower(), code)


def wav_bytes(audio: np.ndarray, rate: int = VAD_RATE) -> bytes:
    """16-bit mono WAV of float32 samples."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm)
    return out.getvalue()


class OpenAiStt:
    name = "openai-transcription"

    def __init__(self, client: AsyncOpenAI, model: str) -> None:
        self._client = client
        self.model = model

    async def transcribe(
        self, audio: np.ndarray, *, language: str, prompt: str | None = None
    ) -> str:
        result = await self._client.audio.transcriptions.create(
            model=self.model,
            file=("answer.wav", wav_bytes(audio), "audio/wav"),
            language=language.split("-")[0],
            prompt=prompt[-800:] if prompt else omit,
        )
        return str(result.text).strip()


class OpenAiTts:
    """Streaming speech as 24 kHz PCM, resampled to 48 kHz in whole 20 ms frames."""

    name = "openai-speech"

    def __init__(self, client: AsyncOpenAI, model: str, voice: str) -> None:
        self._client = client
        self.model = model
        self.voice = voice

    async def synthesize(self, text: str, *, language: str) -> AsyncGenerator[bytes, None]:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE_OUT)
        odd = b""  # a sample split across two network chunks
        ready = bytearray()
        async with self._client.audio.speech.with_streaming_response.create(
            model=self.model, voice=self.voice, input=text, response_format="pcm"
        ) as response:
            async for chunk in response.iter_bytes(4800):
                data = odd + chunk
                whole = len(data) - len(data) % 2
                odd = data[whole:]
                if whole:
                    ready += _resample(resampler, data[:whole])
                usable = len(ready) - len(ready) % FRAME_BYTES_48K
                if usable:
                    yield bytes(ready[:usable])
                    del ready[:usable]
        for frame in resampler.resample(None):
            ready += bytes(frame.planes[0])[: frame.samples * 2]
        if ready:
            yield bytes(ready)


def _resample(resampler: av.AudioResampler, pcm24k: bytes) -> bytes:
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm24k) // 2)
    frame.planes[0].update(pcm24k)
    frame.sample_rate = OPENAI_PCM_RATE
    out = bytearray()
    for resampled in resampler.resample(frame):
        out += bytes(resampled.planes[0])[: resampled.samples * 2]
    return bytes(out)


# ---- the interviewer ---------------------------------------------------------------------

MARKER = re.compile(r"\[(Q(\d+)|END)\]", re.IGNORECASE)
MARKER_MAX = 8  # the longest marker, "[Q1234]"


def interviewer_prompt(
    role: str | None,
    questions: Sequence[str],
    language: str,
    *,
    job_description: str | None = None,
    max_follow_ups: int = 1,
) -> str:
    plan = "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1))
    role_text = f" for the {role} role" if role else ""
    job = f"The job description:\n{job_description[:4000]}\n\n" if job_description else ""
    follow = (
        "Do not ask follow-up questions: after each answer, ask the next question."
        if max_follow_ups <= 0
        else f"When an answer is vague, you may ask up to {max_follow_ups} brief "
        "follow-up(s) on that question before moving on."
    )
    return (
        f"You are a friendly, professional interviewer holding a spoken job interview"
        f"{role_text}. Speak {language_name(language)} only.\n{job}"
        f"Your questions, in order:\n{plan}\n\n"
        "Rules:\n"
        "- Everything you write is spoken aloud: one to three short sentences, no lists, "
        "no markdown, no emoji.\n"
        f"- Ask one question at a time. {follow}\n"
        "- Do not grade the candidate or give feedback during the interview.\n"
        "- Begin every turn that asks one of the numbered questions with its marker, "
        "for example [Q2].\n"
        "- After the candidate has answered the last question, thank them, say goodbye "
        "and end your message with [END]."
    )


class MarkerFilter:
    """Strips ``[Q<n>]`` and ``[END]`` from a streamed reply, recording them in ``outcome``."""

    def __init__(self, outcome: Reply, questions: int) -> None:
        self._outcome = outcome
        self._questions = questions
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        self._held = ""
        start = text.rfind("[")
        if start != -1 and "]" not in text[start:] and len(text) - start < MARKER_MAX:
            text, self._held = text[:start], text[start:]  # maybe a marker still arriving
        return self._strip(text)

    def close(self) -> str:
        text, self._held = self._held, ""
        return self._strip(text)

    def _strip(self, text: str) -> str:
        for match in MARKER.finditer(text):
            if match.group(1).upper() == "END":
                self._outcome.finished = True
            else:
                index = int(match.group(2)) - 1
                if 0 <= index < self._questions:
                    self._outcome.question_index = index
        return MARKER.sub("", text)


class OpenAiInterviewer:
    """Streaming chat completions with an interviewer prompt built from the plan."""

    name = "openai-chat"
    scripted = False

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        *,
        role: str | None,
        questions: Sequence[str],
        language: str,
        job_description: str | None = None,
        max_follow_ups: int = 1,
    ) -> None:
        self._client = client
        self.model = model
        self.role = role
        self.questions = list(questions) or list(DEFAULT_QUESTIONS)
        self.language = language
        self._system = interviewer_prompt(
            role,
            self.questions,
            language,
            job_description=job_description,
            max_follow_ups=max_follow_ups,
        )

    def opening(self) -> str:
        return greeting(self.role, self.questions[0])

    async def reply(self, history: Sequence[Turn], outcome: Reply) -> AsyncGenerator[str, None]:
        outcome.metadata = {"interviewer": self.name, "model": self.model, "language_model": True}
        markers = MarkerFilter(outcome, len(self.questions))
        stream: AsyncStream[ChatCompletionChunk] = await self._client.chat.completions.create(
            model=self.model,
            messages=[*self._messages(history), *_directives(outcome)],
            stream=True,
            temperature=0.6,
        )
        try:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                piece = chunk.choices[0].delta.content
                if piece:
                    text = markers.feed(piece)
                    if text:
                        yield text
            rest = markers.close()
            if rest:
                yield rest
        finally:
            await stream.close()

    async def is_complete(self, history: Sequence[Turn], partial: str) -> bool:
        question = next((t.text for t in reversed(history) if t.role == "interviewer"), "")
        result = await self._client.chat.completions.create(
            model=self.model,
            messages=[
                {
                    "role": "system",
                    "content": "You judge whether a candidate in a spoken interview has "
                    "finished their answer or paused mid-thought. Reply with one word: "
                    "complete or incomplete.",
                },
                {"role": "user", "content": f"Question: {question}\nAnswer so far: {partial}"},
            ],
            max_tokens=3,
            temperature=0,
        )
        verdict = (result.choices[0].message.content or "").strip().lower()
        return not verdict.startswith("incomplete")

    def _messages(self, history: Sequence[Turn]) -> list[Any]:
        messages: list[Any] = [{"role": "system", "content": self._system}]
        for turn in history:
            role = "assistant" if turn.role == "interviewer" else "user"
            if messages[-1]["role"] == role:  # the candidate went on after a pause
                messages[-1]["content"] += " " + turn.text
            else:
                messages.append({"role": role, "content": turn.text})
        return messages


def _directives(outcome: Reply) -> list[Any]:
    """What the plan asks of this reply (interview_service/plan.py), as system notes."""
    notes = []
    if not outcome.may_follow_up:
        notes.append(
            "The follow-ups for the current question are used up: do not ask another "
            "follow-up now. Ask the next numbered question, or close if none is left."
        )
    if outcome.time_warning:
        notes.append(
            f'You have just said: "{outcome.time_warning}" Time is nearly up: ask at most one '
            "more short question, then thank the candidate, say goodbye and end with [END]."
        )
    return [{"role": "system", "content": note} for note in notes]


# ---- questions from a job description ---------------------------------------------------

DRAFT_MIN, DRAFT_MAX = 4, 6
DRAFT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["questions"],
    "properties": {"questions": {"type": "array", "items": {"type": "string"}}},
}


class Drafted(BaseModel):
    questions: list[Annotated[str, Field(min_length=5, max_length=500)]] = Field(
        min_length=DRAFT_MIN, max_length=DRAFT_MAX
    )


class DraftingError(RuntimeError):
    """The model's questions were not 4 to 6 usable questions."""


class OpenAiQuestionDrafter:
    """4 to 6 spoken interview questions from a role and a job description (structured)."""

    def __init__(self, client: AsyncOpenAI, model: str) -> None:
        self._client = client
        self.model = model

    async def draft(self, role: str | None, job_description: str, *, language: str) -> list[str]:
        result = await self._client.chat.completions.create(
            model=self.model,
            messages=[
                {
                    "role": "system",
                    "content": "You prepare spoken job interviews. Write "
                    f"{DRAFT_MIN} to {DRAFT_MAX} open questions, in "
                    f"{language_name(language)}, that test what this job needs: one sentence "
                    "each, no lists or markdown, from warm-up to the hardest, each answerable "
                    "in two minutes of speech.",
                },
                {
                    "role": "user",
                    "content": f"Role: {role or 'unspecified'}\n"
                    f"Job description:\n{job_description}",
                },
            ],
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "interview_questions",
                    "strict": True,
                    "schema": DRAFT_SCHEMA,
                },
            },
            temperature=0.4,
        )
        try:
            drafted = Drafted.model_validate_json(result.choices[0].message.content or "")
        except ValidationError as exc:
            raise DraftingError(f"the drafted questions did not validate: {exc}") from exc
        return [" ".join(q.split()) for q in drafted.questions]


# ---- results -------------------------------------------------------------------------------


class OpenAiResults:
    """Rubric scores with evidence quotes and a summary, checked before anyone sees them.

    Structured output against the rubric's schema; the answer is checked by
    :mod:`interview_service.scoring`. What fails is asked again once; quotes that still
    are not the candidate's words are dropped, and a criterion left with none is
    reported unscored: nothing reaches the results that the transcript does not support.
    """

    name = "openai-rubric"

    def __init__(self, client: AsyncOpenAI, model: str) -> None:
        self._client = client
        self.model = model

    async def evaluate(self, plan: Mapping[str, Any], transcript: Sequence[Turn]) -> Scored:
        rubric = rubric_from(plan.get("rubric") or [])
        candidate = [t.text for t in transcript if t.role == "candidate"]
        messages: list[Any] = [
            {"role": "system", "content": "You are a fair, evidence-based interview assessor."},
            {
                "role": "user",
                "content": scoring_prompt(rubric, plan, [(t.role, t.text) for t in transcript]),
            },
        ]
        content = await self._ask(messages, rubric)
        first = check(content, rubric, candidate)
        second = None
        if first.failing:  # once: the failing criteria, with what was wrong
            log.info("evaluation_reask", failing=sorted(first.failing))
            messages += [
                {"role": "assistant", "content": content},
                {"role": "user", "content": reask_prompt(first.failing)},
            ]
            try:
                second = check(await self._ask(messages, rubric), rubric, candidate)
            except EvaluationError as exc:
                log.info("evaluation_reask_invalid", error=str(exc))
        scored = settle(rubric, first, second)
        for item in scored.unscored:
            log.info("evaluation_score_dropped", criterion=item["criterion"], reason="evidence")
        return scored

    async def _ask(self, messages: list[Any], rubric: Sequence[Criterion]) -> str:
        result = await self._client.chat.completions.create(
            model=self.model,
            messages=messages,
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "interview_evaluation",
                    "strict": True,
                    "schema": evaluation_schema(rubric),
                },
            },
            temperature=0,
        )
        return result.choices[0].message.content or ""
