"""editor: images + speech → MP4 (H.264 + AAC, +faststart), WebVTT captions, a thumbnail.

Captions are a soft track: a WebVTT file beside the video (``captions_url``, for an HTML
``<track kind="captions">``), not burned into the picture. The slide already shows the
scene's text, viewers can switch captions off or restyle them, and the same file serves
translation and search; burning in would also cost a second full render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from backend.pipeline.captions import cues_for, webvtt
from backend.pipeline.context import StepContext
from backend.pipeline.encoder import Clip, Mp4Writer
from backend.pipeline.espeak import TAIL_S
from backend.pipeline.script import Script
from backend.pipeline.threads import in_thread

THUMBNAIL = (640, 360)


async def run(ctx: StepContext) -> dict[str, Any]:
    script = Script.model_validate(ctx.outputs["script_writer"]["script"])
    narration = ctx.outputs["narrator"]
    durations: list[float] = narration["durations_s"]
    images = [ctx.run_dir / name for name in ctx.outputs["illustrator"]["files"]]
    speech = [ctx.run_dir / name for name in narration["files"]]
    clips = [Clip(i, s, d) for i, s, d in zip(images, speech, durations, strict=True)]

    video = ctx.workdir / "video.mp4"
    settings = ctx.settings
    writer = await in_thread(
        ctx.stop,
        lambda: Mp4Writer(
            video, size=ctx.options.size, fps=settings.pipeline_fps,
            preset=settings.pipeline_x264_preset,
        ),
    )  # fmt: skip
    try:
        for index, clip in enumerate(clips, 1):
            await in_thread(ctx.stop, writer.add, clip, ctx.stop)
            await ctx.progress(
                0.9 * index / len(clips), f"Encoded scene {index}/{len(clips)} (H.264 + AAC)"
            )
        duration = await in_thread(ctx.stop, writer.finish)
    except BaseException:
        await in_thread(ctx.stop, writer.abort)
        raise

    captions = ctx.workdir / "captions.vtt"
    speaking = [max(0.1, d - TAIL_S) for d in durations]
    cues = cues_for([s.narration for s in script.scenes], speaking, durations)
    captions.write_text(webvtt(cues), encoding="utf-8")
    thumbnail = ctx.workdir / "thumbnail.jpg"
    await in_thread(ctx.stop, _thumbnail, images[0], thumbnail)
    await ctx.progress(1.0, "Captions (WebVTT) and thumbnail written")
    return {
        "files": [ctx.rel(video), ctx.rel(captions), ctx.rel(thumbnail)],
        "duration_s": round(duration, 3),
        "cues": len(cues),
        "summary": f"{duration:.1f} s MP4 at {ctx.options.resolution}, {len(cues)} captions",
    }


def _thumbnail(source: Path, target: Path) -> None:
    with Image.open(source) as image:
        image.convert("RGB").resize(THUMBNAIL).save(target, "JPEG", quality=85)
