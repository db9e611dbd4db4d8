"""illustrator: each scene → a 16:9 image at the requested resolution."""

from __future__ import annotations

from typing import Any

from backend.pipeline.context import StepContext
from backend.pipeline.script import Script
from backend.pipeline.slides import draw_slide
from backend.pipeline.threads import in_thread


async def run(ctx: StepContext) -> dict[str, Any]:
    script = Script.model_validate(ctx.outputs["script_writer"]["script"])
    files: list[str] = []
    count = len(script.scenes)
    for index, scene in enumerate(script.scenes, 1):
        path = ctx.workdir / f"scene-{index:02d}.png"
        if ctx.openai is not None:
            await ctx.openai.illustrate(scene, ctx.options, path)
            how = "OpenAI image"
        else:
            image = await in_thread(
                ctx.stop,
                lambda scene=scene, index=index: draw_slide(
                    title=scene.title,
                    text=scene.narration,
                    footer=script.title,
                    index=index,
                    count=count,
                    style=ctx.options.style,
                    size=ctx.options.size,
                ),
            )
            await in_thread(ctx.stop, image.save, path, "PNG")
            how = f"local slide ({ctx.options.style} style)"
        files.append(ctx.rel(path))
        await ctx.progress(index / count, f"Scene {index}/{count} drawn as a {how}")
    return {"files": files, "summary": f"{count} images at {ctx.options.resolution}"}
