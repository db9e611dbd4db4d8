"""illustrator: each scene → a 16:9 image at the requested resolution.

Local slides are drawn in a child process (:mod:`backend.pipeline.render_process`):
Pillow's text layout holds the GIL, which stalled the service's event loop.
"""

from __future__ import annotations

from typing import Any

from backend.pipeline.context import StepContext
from backend.pipeline.render_process import render
from backend.pipeline.script import Script


async def run(ctx: StepContext) -> dict[str, Any]:
    script = Script.model_validate(ctx.outputs["script_writer"]["script"])
    count = len(script.scenes)
    paths = [ctx.workdir / f"scene-{index:02d}.png" for index in range(1, count + 1)]
    if ctx.openai is not None:
        for index, (scene, path) in enumerate(zip(script.scenes, paths, strict=True), 1):
            await ctx.openai.illustrate(scene, ctx.options, path)
            await ctx.progress(index / count, f"Scene {index}/{count} drawn as an OpenAI image")
    else:
        style = ctx.options.style

        async def progress(message: dict[str, Any]) -> None:
            done = message["done"]
            await ctx.progress(
                done / count, f"Scene {done}/{count} drawn as a local slide ({style} style)"
            )

        slides = [
            {
                "title": scene.title, "text": scene.narration, "footer": script.title,
                "index": index, "count": count, "style": style,
                "size": list(ctx.options.size), "out": str(path),
            }
            for index, (scene, path) in enumerate(zip(script.scenes, paths, strict=True), 1)
        ]  # fmt: skip
        await render({"kind": "slides", "slides": slides}, progress)
    return {
        "files": [ctx.rel(path) for path in paths],
        "summary": f"{count} images at {ctx.options.resolution}",
    }
