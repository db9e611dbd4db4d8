"""Published files under MEDIA_DIR, served by the app at ``/media/...`` (with Range).

Keys hold an unguessable part (the run's publish key), so a URL is the capability to
read the file. Copies go through a temporary name and a rename: a reader never sees half
a file, and a file already in place is not copied again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path


class LocalMedia:
    name = "local media"

    def __init__(self, root: Path, *, base_url: str = "") -> None:
        self.root = root
        self._base_url = base_url.rstrip("/")

    def path(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise ValueError(f"media key outside the media directory: {key!r}")
        return target

    async def publish(self, key: str, source: Path, content_type: str) -> str:
        await asyncio.to_thread(_copy_once, source, self.path(key))
        return f"{self._base_url}/media/{key}"

    async def remove(self, prefix: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.path(prefix), True)


def _copy_once(source: Path, target: Path) -> None:
    if target.is_file() and target.stat().st_size == source.stat().st_size:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
