"""The five agents of a run, in order. Each is ``async def run(ctx) -> output``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from backend.pipeline.agents import editor, illustrator, narrator, publisher, script_writer
from backend.pipeline.context import StepContext

Step = Callable[[StepContext], Awaitable[dict[str, Any]]]

STEPS: dict[str, Step] = {
    "script_writer": script_writer.run,
    "narrator": narrator.run,
    "illustrator": illustrator.run,
    "editor": editor.run,
    "publisher": publisher.run,
}
AGENTS = tuple(STEPS)

STARTING: dict[str, str] = {
    "script_writer": "Writing the script",
    "narrator": "Recording the narration",
    "illustrator": "Drawing the scenes",
    "editor": "Editing the video",
    "publisher": "Publishing the video",
}
