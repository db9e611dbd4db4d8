"""The pipeline's OpenAI calls (OPENAI_API_KEY): a script, speech and images.

- script: a chat model with structured output (a strict JSON schema sized to the
  requested scene count), then validated with pydantic;
- speech: 24 kHz 16-bit PCM from the speech endpoint, written as WAV and measured;
- images: one generated picture per scene, cropped to 16:9 at the requested
  resolution, with the scene's title on a band so the slide reads without sound.

The SDK's own retries are off: the runner retries transient failures (429, 5xx,
timeouts, lost connections) with backoff and reports each retry; others fail the step.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
from openai import AsyncOpenAI
from PIL import Image, ImageDraw
from pydantic import ValidationError

from backend.pipeline.errors import StepFailed, TransientStepError
from backend.pipeline.espeak import TAIL_S, append_silence
from backend.pipeline.options import VideoOptions
from backend.pipeline.script import WORDS_PER_SECOND, Scene, Script
from backend.pipeline.settings import PipelineSettings
from backend.pipeline.slides import font, wrap

PCM_RATE = 24_000
VOICES = {
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
}
IMAGE_SIZE = "1536x1024"


def script_schema(scenes: int) -> dict[str, Any]:
    scene = {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "narration", "visual", "target_s"],
        "properties": {
            "title": {"type": "string", "description": "on-screen title, at most 60 characters"},
            "narration": {"type": "string", "description": "what the narrator says"},
            "visual": {"type": "string", "description": "what the picture shows"},
            "target_s": {"type": "number", "description": "seconds this scene lasts"},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "scenes"],
        "properties": {
            "title": {"type": "string"},
            "scenes": {"type": "array", "items": scene, "minItems": scenes, "maxItems": scenes},
        },
    }


class OpenAIMedia:
    def __init__(self, client: AsyncOpenAI, settings: PipelineSettings) -> None:
        self._client = client
        self._settings = settings

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> OpenAIMedia:
        assert settings.openai_api_key is not None
        client = AsyncOpenAI(
            api_key=settings.openai_api_key.get_secret_value(),
            base_url=settings.openai_base_url,
            max_retries=0,
            timeout=120.0,
        )
        return cls(client, settings)

    async def close(self) -> None:
        await self._client.close()

    async def write_script(self, prompt: str, options: VideoOptions) -> Script:
        count = options.scene_count
        words = round(options.duration_s * WORDS_PER_SECOND)
        instructions = (
            f"You write scripts for short narrated explainer videos. Write exactly {count} "
            f"scenes for a {options.duration_s}-second video, about {words} spoken words in "
            "all, shared between the scenes. Each scene has a short on-screen title, the "
            "narration (plain sentences, no stage directions), a one-sentence description "
            f"of the picture, and its length in seconds. Visual style: {options.style}."
        )
        async with _mapped("the script model"):
            response = await self._client.chat.completions.create(
                model=self._settings.pipeline_openai_script_model,
                messages=[
                    {"role": "system", "content": instructions},
                    {"role": "user", "content": prompt},
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": "video_script",
                        "strict": True,
                        "schema": script_schema(count),
                    },
                },
            )
        content = response.choices[0].message.content or ""
        try:
            script = Script.model_validate(json.loads(content))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise TransientStepError(f"the model's script did not validate: {exc}") from exc
        if len(script.scenes) != count:
            raise TransientStepError(
                f"the model wrote {len(script.scenes)} scenes instead of {count}"
            )
        return script

    async def speak(self, text: str, out: Path, voice: str | None) -> float:
        chosen = voice if voice in VOICES else self._settings.pipeline_openai_voice
        async with _mapped("the speech model"):
            response = await self._client.audio.speech.create(
                model=self._settings.pipeline_openai_tts_model,
                voice=chosen,
                input=text,
                response_format="pcm",
            )
        pcm = response.content
        if len(pcm) < PCM_RATE // 10:
            raise TransientStepError("the speech model answered almost no audio")
        return await asyncio.to_thread(_write_wav, pcm[: len(pcm) // 2 * 2], out)

    async def illustrate(self, scene: Scene, options: VideoOptions, out: Path) -> None:
        prompt = (
            f"{scene.visual} Style: {options.style}, clean composition, wide 16:9 framing, "
            "no text or lettering in the image."
        )
        async with _mapped("the image model"):
            response = await self._client.images.generate(
                model=self._settings.pipeline_openai_image_model,
                prompt=prompt,
                size=IMAGE_SIZE,
                n=1,
            )
        data = response.data[0].b64_json if response.data else None
        if not data:
            raise TransientStepError("the image model answered no image")
        await asyncio.to_thread(_frame, base64.b64decode(data), scene.title, options.size, out)


def _write_wav(pcm: bytes, out: Path) -> float:
    with wave.open(str(out), "wb") as target:
        target.setnchannels(1)
        target.setsampwidth(2)
        target.setframerate(PCM_RATE)
        target.writeframes(pcm)
    return append_silence(out, TAIL_S)


def _frame(raw: bytes, title: str, size: tuple[int, int], out: Path) -> None:
    """Crop to 16:9, scale to ``size`` and put the title on a dark band at the bottom."""
    with Image.open(io.BytesIO(raw)) as source:
        image = source.convert("RGB")
    width, height = image.size
    target_ratio = size[0] / size[1]
    if width / height > target_ratio:
        crop = round(height * target_ratio)
        image = image.crop(((width - crop) // 2, 0, (width + crop) // 2, height))
    else:
        crop = round(width / target_ratio)
        image = image.crop((0, (height - crop) // 2, width, (height + crop) // 2))
    image = image.resize(size, Image.Resampling.LANCZOS).convert("RGBA")
    band = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(band)
    unit = size[1] / 720
    face = font(max(14, round(44 * unit)), bold=True)
    lines = wrap(title, face, size[0] - round(160 * unit), draw)[:2]
    top = size[1] - round((40 + 56 * len(lines)) * unit)
    draw.rectangle((0, top, size[0], size[1]), fill=(0, 0, 0, 150))
    for index, line in enumerate(lines):
        draw.text((round(80 * unit), top + round((20 + 56 * index) * unit)), line, font=face,
                  fill=(255, 255, 255, 255))  # fmt: skip
    Image.alpha_composite(image, band).convert("RGB").save(out, "PNG")


@contextlib.asynccontextmanager
async def _mapped(what: str) -> AsyncIterator[None]:
    """OpenAI's errors as step errors: worth another try, or not."""
    try:
        yield
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        raise TransientStepError(f"{what} did not answer: {type(exc).__name__}") from exc
    except (openai.RateLimitError, openai.InternalServerError) as exc:
        raise TransientStepError(f"{what} is busy ({exc.status_code})") from exc
    except openai.APIStatusError as exc:
        if exc.status_code in (408, 409) or exc.status_code >= 500:
            raise TransientStepError(f"{what} failed ({exc.status_code})") from exc
        raise StepFailed(f"OpenAI refused the request to {what} ({exc.status_code})") from exc
