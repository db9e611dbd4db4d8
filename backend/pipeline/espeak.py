"""Local speech with espeak-ng: one WAV per scene, its duration measured from the samples."""

from __future__ import annotations

import asyncio
import contextlib
import re
import wave
from pathlib import Path

from backend.pipeline.errors import StepFailed, TransientStepError

DEFAULT_VOICE = "en-us"
WORDS_PER_MINUTE = 160
TAIL_S = 0.35  # a breath between scenes, part of each scene's measured duration
_ESPEAK_VOICE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{1,8})*(\+[a-z0-9]{1,12})?")


def espeak_voice(requested: str | None) -> str:
    """espeak-ng's voice for a request: a language code it knows, else American English."""
    if requested and _ESPEAK_VOICE.fullmatch(requested.lower()):
        return requested.lower()
    return DEFAULT_VOICE


async def synthesize(
    text: str, out: Path, *, voice: str, binary: str = "espeak-ng", timeout_s: float = 60.0
) -> float:
    """Speak ``text`` into ``out`` (WAV) and return its duration in seconds."""
    args = [binary, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", str(out), "--", text]
    try:
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except FileNotFoundError:
        raise StepFailed(
            f"{binary} is not installed (apt-get install espeak-ng)", code="tts_unavailable"
        ) from None
    try:
        async with asyncio.timeout(timeout_s):
            _, stderr = await process.communicate()
    except TimeoutError:
        raise TransientStepError("espeak-ng took too long", code="tts_timeout") from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode and process.returncode < 0:
        raise TransientStepError(f"espeak-ng was killed (signal {-process.returncode})")
    if process.returncode or not await asyncio.to_thread(out.exists):
        detail = stderr.decode(errors="replace").strip()[:200] or f"exit {process.returncode}"
        raise StepFailed(f"espeak-ng failed: {detail}", code="tts_failed")
    return append_silence(out, TAIL_S)


def append_silence(path: Path, seconds: float) -> float:
    """Pad a WAV with silence; the new duration in seconds."""
    with wave.open(str(path), "rb") as source:
        params = source.getparams()
        frames = source.readframes(params.nframes)
    pad = b"\x00" * (int(params.framerate * seconds) * params.sampwidth * params.nchannels)
    with wave.open(str(path), "wb") as target:
        target.setparams(params)
        target.writeframes(frames + pad)
    return wav_duration(path)


def wav_duration(path: Path) -> float:
    with wave.open(str(path), "rb") as source:
        return source.getnframes() / source.getframerate()
