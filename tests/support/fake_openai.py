"""A local OpenAI-compatible server for tests and benchmarks, under a real uvicorn.

It speaks the wire format the openai SDK expects (server-sent events for streamed chat,
chunked PCM for speech, multipart uploads for transcription), so the service's OpenAI
path runs with the real SDK. What it answers is set per test: the texts it returns, a
status to fail with, or a delay to exceed the service's timeouts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.ports import free_port

PCM_RATE = 24_000


@dataclass
class Behaviour:
    """What one endpoint does next; ``fail`` and ``delay_s`` apply to every call."""

    fail: int | None = None  # answer with this HTTP status
    delay_s: float = 0.0  # before the first byte
    fail_times: int | None = None  # fail only this many calls, then answer normally


@dataclass
class FakeOpenAI:
    transcripts: list[str] = field(default_factory=lambda: ["I have worked with Python."])
    # What the candidate is saying now: every transcription answers it, a pause's tentative
    # piece included (the service transcribes at pauses, so one answer may cost two calls).
    # None: ``transcripts`` in turn, one per call.
    hearing: str | None = None
    replies: list[str] = field(default_factory=lambda: ["[Q2] Thank you. Next question?"])
    verdicts: list[str] = field(default_factory=lambda: ["complete"])
    evaluation: str = "{}"
    speech_s_per_char: float = 0.03
    transcription: Behaviour = field(default_factory=Behaviour)
    chat: Behaviour = field(default_factory=Behaviour)
    speech: Behaviour = field(default_factory=Behaviour)
    images: Behaviour = field(default_factory=Behaviour)
    # A structured (json_schema) chat answer: None builds a valid one from the schema;
    # a list answers its items in turn (the last one repeats).
    structured: str | list[str] | None = None
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def seen(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.requests if p == path]

    @staticmethod
    def _next(queue: list[str]) -> str:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    # ---- endpoints ---------------------------------------------------------------------

    async def _transcriptions(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append(
            ("transcriptions", {"bytes": len(body), "wav": b"RIFF" in body, "raw": body[:2000]})
        )
        failed = await self._behave(self.transcription)
        if failed is not None:
            return failed
        text = self.hearing if self.hearing is not None else self._next(self.transcripts)
        return JSONResponse({"text": text})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(("chat", body))
        failed = await self._behave(self.chat)
        if failed is not None:
            return failed
        if body.get("response_format", {}).get("type") == "json_schema":
            structured = self.structured
            if isinstance(structured, list):
                structured = self._next(structured)
            content = structured or _script_for(body["response_format"]["json_schema"])
            return JSONResponse(_completion(body["model"], content))
        if body.get("response_format", {}).get("type") == "json_object":
            return JSONResponse(_completion(body["model"], self.evaluation))
        if not body.get("stream"):
            return JSONResponse(_completion(body["model"], self._next(self.verdicts)))
        reply = self._next(self.replies)
        return StreamingResponse(_sse(body["model"], reply), media_type="text/event-stream")

    async def _speech(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(("speech", body))
        failed = await self._behave(self.speech)
        if failed is not None:
            return failed
        if body.get("response_format") != "pcm":
            return JSONResponse({"error": {"message": "only pcm here"}}, status_code=400)
        pcm = _voice(len(body["input"]) * self.speech_s_per_char)
        return StreamingResponse(_chunks(pcm), media_type="audio/pcm")

    async def _images(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(("images", body))
        failed = await self._behave(self.images)
        if failed is not None:
            return failed
        width, height = (int(n) for n in body.get("size", "1024x1024").split("x"))
        return JSONResponse(
            {"created": int(time.time()), "data": [{"b64_json": _picture(width, height)}]}
        )

    async def _behave(self, behaviour: Behaviour) -> Response | None:
        if behaviour.delay_s:
            await asyncio.sleep(behaviour.delay_s)
        if behaviour.fail_times is not None:
            if behaviour.fail_times <= 0:
                return None
            behaviour.fail_times -= 1
        if behaviour.fail is not None:
            return JSONResponse(
                {"error": {"message": "injected failure", "type": "server_error"}},
                status_code=behaviour.fail,
            )
        return None

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/audio/speech", self._speech, methods=["POST"]),
                Route("/v1/images/generations", self._images, methods=["POST"]),
            ]
        )


def _script_for(json_schema: dict[str, Any]) -> str:
    """A script that satisfies the pipeline's schema (its scene count included)."""
    count = json_schema["schema"]["properties"]["scenes"]["minItems"]
    scenes = [
        {
            "title": f"Part {n}",
            "narration": f"This is part {n} of the story. It is told by a test model.",
            "visual": f"A simple picture for part {n}",
            "target_s": 5,
        }
        for n in range(1, count + 1)
    ]
    return json.dumps({"title": "A test story", "scenes": scenes})


def _picture(width: int, height: int) -> str:
    """A PNG with a gradient, base64 encoded as the images endpoint answers."""
    from PIL import Image

    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (height, 1))] * 3, axis=-1)
    pixels[..., 2] = 160
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


async def _sse(model: str, reply: str) -> AsyncIterator[bytes]:
    """The reply in small pieces, as OpenAI streams it (markers may be split too)."""
    pieces = [reply[i : i + 3] for i in range(0, len(reply), 3)]
    for index, piece in enumerate([None, *pieces]):
        delta = {"role": "assistant", "content": ""} if piece is None else {"content": piece}
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
        yield f"data: {json.dumps(chunk)}\n\n".encode()
        if index % 4 == 0:
            await asyncio.sleep(0.005)
    done = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode()


def _voice(seconds: float) -> bytes:
    """A voiced-sounding 24 kHz s16 signal (harmonics with a slow tremolo)."""
    t = np.arange(int(max(seconds, 0.2) * PCM_RATE)) / PCM_RATE
    wave = sum(np.sin(2 * math.pi * f * t) / k for k, f in enumerate((180, 360, 540, 720), 1))
    wave = 0.25 * wave * (0.6 + 0.4 * np.sin(2 * math.pi * 4 * t))
    return (np.asarray(wave) * 32767 / 2).astype("<i2").tobytes()


async def _chunks(pcm: bytes) -> AsyncIterator[bytes]:
    # Odd sizes on purpose: a sample may be split across chunks.
    for offset in range(0, len(pcm), 4001):
        yield pcm[offset : offset + 4001]
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def fake_openai(fake: FakeOpenAI | None = None) -> AsyncIterator[FakeOpenAI]:
    fake = fake or FakeOpenAI()
    server = uvicorn.Server(
        uvicorn.Config(fake.app(), host="127.0.0.1", port=fake.port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("fake OpenAI server stopped during start-up")
            await asyncio.sleep(0.02)
        yield fake
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
