"""script_writer: prompt → scenes (narration, on-screen title, visual, target seconds)."""

from __future__ import annotations

from typing import Any

from backend.pipeline.context import StepContext
from backend.pipeline.local_writer import write_script


async def run(ctx: StepContext) -> dict[str, Any]:
    if ctx.openai is not None:
        await ctx.progress(0.1, "Asking the OpenAI model for a script")
        script = await ctx.openai.write_script(ctx.prompt, ctx.options)
        source = "openai"
    else:
        await ctx.progress(0.1, "Local script writer (template, no AI model) drafting scenes")
        script = write_script(ctx.prompt, ctx.options)
        source = "local template"
    return {
        "script": script.model_dump(),
        "source": source,
        "summary": f"{len(script.scenes)} scenes written by the {source} writer",
        "files": [],
    }
