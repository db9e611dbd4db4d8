"""editor: images + speech → MP4 (H.264 + AAC, +faststart), WebVTT captions, a thumbnail.

The encoding runs in a child process (:mod:`backend.pipeline.render_process`): the
service's event loop never waits on it, and a cancel kills it at once.

Captions are a soft track: a WebVTT file beside the video (``captions_url``, for an HTML
``<track kind="captions">``), not burned into the picture. The slide already shows the
scene's text, viewers can switch captions off or restyle them, and the same file serves
translation and search; burning in would also cost a second full render.
"""

from __future__ import annotations

from typing import Any

from backend.pipeline.captions import cues_for, webvtt
from backend.pipeline.context import StepContext
from backend.pipeline.encoder import Clip
from backend.pipeline.espeak import TAIL_S
from backend.pipeline.render_process import render
from backend.pipeline.script import Script

THUMBNAIL = (640, 360)


async def run(ctx: StepContext) -> dict[str, Any]:
    script = Script.model_validate(ctx.outputs["script_writer"]["script"])
    narration = ctx.outputs["narrator"]
    durations: list[float] = narration["durations_s"]
    images = [ctx.run_dir / name for name in ctx.outputs["illustrator"]["files"]]
    speech = [ctx.run_dir / name for name in narration["files"]]
    clips = [Clip(i, s, d) for i, s, d in zip(images, speech, durations, strict=True)]

    video = ctx.workdir / "video.mp4"
    thumbnail = ctx.workdir / "thumbnail.jpg"

    async def progress(message: dict[str, Any]) -> None:
        done, count = message["done"], message["of"]
        await ctx.progress(0.9 * done / count, f"Encoded scene {done}/{count} (H.264 + AAC)")

    job = {
        "kind": "encode",
        "out": str(video),
        "size": list(ctx.options.size),
        "fps": ctx.settings.pipeline_fps,
        "preset": ctx.settings.pipeline_x264_preset,
        "clips": [
            {"image": str(c.image), "speech": str(c.speech), "duration_s": c.duration_s}
            for c in clips
        ],
        "thumbnail": {"out": str(thumbnail), "size": list(THUMBNAIL)},
    }
    duration = (await render(job, progress))["duration_s"]

    captions = ctx.workdir / "captions.vtt"
    speaking = [max(0.1, d - TAIL_S) for d in durations]
    cues = cues_for([s.narration for s in script.scenes], speaking, durations)
    captions.write_text(webvtt(cues), encoding="utf-8")
    await ctx.progress(1.0, "Captions (WebVTT) and thumbnail written")
    return {
        "files": [ctx.rel(video), ctx.rel(captions), ctx.rel(thumbnail)],
        "duration_s": round(duration, 3),
        "cues": len(cues),
        "summary": f"{duration:.1f} s MP4 at {ctx.options.resolution}, {len(cues)} captions",
    }
