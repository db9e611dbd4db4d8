"""A video's script: scenes with narration, an on-screen title, a visual description."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Scene(BaseModel):
    title: str = Field(min_length=1, max_length=80)
    narration: str = Field(min_length=1, max_length=1200)
    visual: str = Field(min_length=1, max_length=600)
    target_s: float = Field(gt=0, le=180)


class Script(BaseModel):
    title: str = Field(min_length=1, max_length=120)
    scenes: list[Scene] = Field(min_length=1, max_length=12)

    @property
    def narration(self) -> str:
        return " ".join(scene.narration for scene in self.scenes)


WORDS_PER_SECOND = 2.6  # a calm narrator (espeak-ng at ~160 wpm, OpenAI voices alike)
