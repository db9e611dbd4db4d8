"""The espeak-ng adapter: local text to speech through its executable."""

from __future__ import annotations

import asyncio
import contextlib
import shutil

from interview_service.paced_audio import to_pcm48k


class EspeakVoice:
    """Local text to speech through the espeak-ng executable (a separate process)."""

    def __init__(self, binary: str | None = None, *, voice: str = "en-us", speed_wpm: int = 165):
        self.binary = binary or shutil.which("espeak-ng")
        self.voice = voice
        self.speed_wpm = speed_wpm

    @property
    def available(self) -> bool:
        return self.binary is not None

    async def synthesize(self, text: str, *, language: str | None = None) -> bytes:
        """s16 mono 48 kHz PCM for ``text``."""
        if self.binary is None:
            raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
        voice = self.voice if not language or language == "en" else language
        process = await asyncio.create_subprocess_exec(
            self.binary,
            "-v",
            voice,
            "-s",
            str(self.speed_wpm),
            "--stdout",
            "--",
            text,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            wav, err = await process.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"espeak-ng failed: {err.decode(errors='replace')[:200]}")
        return await asyncio.to_thread(to_pcm48k, wav)
