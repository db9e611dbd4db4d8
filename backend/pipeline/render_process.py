"""CPU-heavy rendering in a child process, so the service's event loop never waits on it.

Drawing slides and encoding the MP4 hold the GIL in places (Pillow's text layout, PyAV's
per-frame calls); in the service process that showed as event-loop stalls of hundreds
of milliseconds. A child process has its own GIL. The parent writes one JSON job to the
child's stdin and reads one JSON line per unit of work back (progress, then the result);
cancelling kills the child, which stops the work at once.

    python -m backend.pipeline.render_process < job.json
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from backend.pipeline.errors import StepFailed

Progress = Callable[[dict[str, Any]], Awaitable[None]]


async def render(job: dict[str, Any], on_progress: Progress) -> dict[str, Any]:
    """Run ``job`` in a child process; its result, or StepFailed with the child's error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "backend.pipeline.render_process",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdin, stdout, stderr = process.stdin, process.stdout, process.stderr
    assert stdin is not None
    assert stdout is not None
    assert stderr is not None
    result: dict[str, Any] | None = None
    try:
        stdin.write(json.dumps(job).encode())
        stdin.close()
        async with asyncio.TaskGroup() as group:
            errors_read = group.create_task(stderr.read())  # drained alongside stdout
            async for line in stdout:
                message = json.loads(line)
                if "result" in message:
                    result = message["result"]
                else:
                    await on_progress(message)
        errors = errors_read.result().decode(errors="replace")
        await process.wait()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode != 0 or result is None:
        detail = errors.strip().splitlines()[-1:] or [f"exit {process.returncode}"]
        raise StepFailed(f"rendering failed: {detail[0][:300]}", code="render_failed")
    return result


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _slides(job: dict[str, Any]) -> dict[str, Any]:
    from backend.pipeline.slides import draw_slide

    for index, slide in enumerate(job["slides"], 1):
        image = draw_slide(
            title=slide["title"], text=slide["text"], footer=slide["footer"],
            index=slide["index"], count=slide["count"], style=slide["style"],
            size=tuple(slide["size"]),
        )  # fmt: skip
        image.save(slide["out"], "PNG")
        _emit({"done": index, "of": len(job["slides"])})
    return {}


def _encode(job: dict[str, Any]) -> dict[str, Any]:
    from PIL import Image

    from backend.pipeline.encoder import Clip, Mp4Writer

    stop = threading.Event()  # never set here: the parent kills the process instead
    writer = Mp4Writer(
        Path(job["out"]), size=tuple(job["size"]), fps=job["fps"], preset=job["preset"]
    )
    clips = [Clip(Path(c["image"]), Path(c["speech"]), c["duration_s"]) for c in job["clips"]]
    for index, clip in enumerate(clips, 1):
        writer.add(clip, stop)
        _emit({"done": index, "of": len(clips)})
    duration = writer.finish()
    thumbnail = job.get("thumbnail")
    if thumbnail:
        with Image.open(clips[0].image) as image:
            image.convert("RGB").resize(tuple(thumbnail["size"])).save(
                thumbnail["out"], "JPEG", quality=85
            )
    return {"duration_s": duration}


def _die_with_parent() -> None:
    """A worker killed with SIGKILL cannot kill its child: the child must exit by itself,
    so it never writes into a run that another worker has taken over. On Linux the kernel
    sends it SIGKILL the moment its parent dies (PR_SET_PDEATHSIG); elsewhere, and as a
    second line, a thread notices the new parent within 0.2 s."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # it died before the request took effect
            os._exit(3)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def main() -> int:
    _die_with_parent()
    job = json.loads(sys.stdin.read())
    kinds = {"slides": _slides, "encode": _encode}
    _emit({"result": kinds[job["kind"]](job)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
