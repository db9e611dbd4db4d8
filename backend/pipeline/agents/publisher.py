"""publisher: the video, captions and thumbnail to storage, and the URLs to hand out.

Idempotent: every file goes under the run's ``publish_key`` (chosen once, stored with the
run), and the media store skips what it already holds, so a retried publish uploads
nothing twice and answers the same URLs.
"""

from __future__ import annotations

from typing import Any

from backend.pipeline.context import StepContext

CONTENT_TYPES = {".mp4": "video/mp4", ".vtt": "text/vtt", ".jpg": "image/jpeg"}
OUTPUT_NAMES = {
    "video.mp4": "video_url",
    "captions.vtt": "captions_url",
    "thumbnail.jpg": "thumbnail_url",
}


async def run(ctx: StepContext) -> dict[str, Any]:
    edited = ctx.outputs["editor"]
    urls: dict[str, Any] = {}
    files = [ctx.run_dir / name for name in edited["files"]]
    for index, path in enumerate(files, 1):
        key = f"{ctx.session_id}/{ctx.publish_key}/{path.name}"
        urls[OUTPUT_NAMES[path.name]] = await ctx.media.publish(
            key, path, CONTENT_TYPES[path.suffix]
        )
        await ctx.progress(index / len(files), f"Stored {path.name} ({ctx.media.name})")
    return {
        "outputs": {**urls, "duration_s": edited["duration_s"]},
        "files": [],
        "summary": f"Published to {ctx.media.name}",
    }
