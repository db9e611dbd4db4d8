"""narrator: each scene's narration → speech, with its measured duration."""

from __future__ import annotations

from typing import Any

from backend.pipeline.context import StepContext
from backend.pipeline.espeak import espeak_voice, synthesize
from backend.pipeline.script import Script


async def run(ctx: StepContext) -> dict[str, Any]:
    script = Script.model_validate(ctx.outputs["script_writer"]["script"])
    voice = ctx.options.voice
    if ctx.openai is None:
        voice = espeak_voice(voice)
    files: list[str] = []
    durations: list[float] = []
    count = len(script.scenes)
    for index, scene in enumerate(script.scenes, 1):
        path = ctx.workdir / f"scene-{index:02d}.wav"
        if ctx.openai is not None:
            seconds = await ctx.openai.speak(scene.narration, path, voice)
            how = "OpenAI speech"
        else:
            seconds = await synthesize(
                scene.narration, path, voice=voice or "", binary=ctx.settings.pipeline_espeak_binary
            )
            how = f"espeak-ng locally ({voice})"
        files.append(ctx.rel(path))
        durations.append(round(seconds, 3))
        await ctx.progress(
            index / count, f"Scene {index}/{count} narrated with {how}: {seconds:.1f} s"
        )
    total = sum(durations)
    return {
        "files": files,
        "durations_s": durations,
        "total_s": round(total, 3),
        "voice": voice,
        "summary": f"{count} clips, {total:.1f} s of narration",
    }
