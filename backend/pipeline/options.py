"""What a client may ask of a video, validated at the edge (CONTRACT §2.2)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.core.errors import InvalidInput

STYLES = ("clean", "dark", "warm", "ocean", "noir", "playful")
_RESOLUTION = re.compile(r"(\d{3,4})x(\d{3,4})")
_VOICE = re.compile(r"[A-Za-z0-9_+-]{1,32}")


class VideoOptions(BaseModel):
    """A video's options: every one has a sane default and a bound."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_s: int = Field(default=30, ge=10, le=180, strict=True)
    scenes: int | None = Field(default=None, ge=1, le=12, strict=True)
    voice: str | None = None
    style: str = "clean"
    resolution: str = "1280x720"

    @field_validator("voice")
    @classmethod
    def _voice(cls, voice: str | None) -> str | None:
        if voice is not None and not _VOICE.fullmatch(voice):
            raise ValueError("a voice name is 1 to 32 of [A-Za-z0-9_+-] (e.g. en-us, alloy)")
        return voice

    @field_validator("style")
    @classmethod
    def _style(cls, style: str) -> str:
        if style not in STYLES:
            raise ValueError(f"style is one of {', '.join(STYLES)}")
        return style

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, resolution: str) -> str:
        match = _RESOLUTION.fullmatch(resolution)
        if not match:
            raise ValueError("resolution is WIDTHxHEIGHT, e.g. 1280x720")
        width, height = int(match[1]), int(match[2])
        if not (320 <= width <= 1920 and 180 <= height <= 1080):
            raise ValueError("resolution is between 320x180 and 1920x1080")
        if width % 2 or height % 2:
            raise ValueError("resolution needs an even width and height (H.264 4:2:0)")
        if abs(width / height - 16 / 9) > 0.01:
            raise ValueError("resolution is 16:9 (e.g. 640x360, 1280x720, 1920x1080)")
        return resolution

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.resolution.split("x")
        return int(width), int(height)

    @property
    def scene_count(self) -> int:
        """The scenes asked for, or about one per 6 seconds (3 to 8)."""
        if self.scenes is not None:
            return self.scenes
        return max(3, min(8, round(self.duration_s / 6)))


def parse_options(raw: dict[str, Any]) -> VideoOptions:
    """The options, or InvalidInput naming the first bad field."""
    try:
        return VideoOptions.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "options"
        if first["type"] == "extra_forbidden":
            allowed = ", ".join(VideoOptions.model_fields)
            message = f"{where}: unknown option (known: prompt, session_id, {allowed})"
        else:
            message = f"{where}: {str(first['msg']).removeprefix('Value error, ')}"
        raise InvalidInput(message, code="invalid_option") from None
