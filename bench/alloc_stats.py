"""What this process's allocators hold: pymalloc's arenas, glibc's heap, the kernel's RSS.

RSS growth per connection mixes live bytes with memory freed but kept (a pymalloc arena
with one live block, glibc heap below a live chunk). :func:`snapshot` tells them apart:
pymalloc's bytes in use and free (``sys._debugmallocstats``), glibc's (``mallinfo2``),
and ``/proc/self/smaps_rollup``. Used by ``bench/hub_memory.py --allocator``.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
from pathlib import Path

ARENA = 1 << 20  # pymalloc's arena on 3.10+


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _pymalloc() -> dict[str, int]:
    """Parse ``sys._debugmallocstats()``, which only writes to the C stderr."""
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()

    def number(pattern: str) -> int:
        found = re.search(pattern + r"\s*=\s*([\d,]+)", text)
        return int(found.group(1).replace(",", "")) if found else 0

    return {
        "pymalloc arenas": number(r"# arenas allocated current") * ARENA,
        "pymalloc in use": number(r"# bytes in allocated blocks"),
        "pymalloc free blocks": number(r"# bytes in available blocks"),
        "pymalloc free pools": number(r"unused pools \* \d+ bytes"),
    }


def snapshot() -> dict[str, int]:
    """Bytes: RSS and anonymous memory, glibc's heap (in use, free), pymalloc's."""
    rollup = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        rollup[key] = int(value.split()[0]) * 1024
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {
        "RSS": rollup["Rss"],
        "anonymous": rollup["Anonymous"],
        "glibc heap": info.arena + info.hblkhd,
        "glibc in use": info.uordblks + info.hblkhd,
        "glibc free": info.fordblks,
        **_pymalloc(),
    }


def report(before: dict[str, int], after: dict[str, int], per: int) -> None:
    print(f"allocators (KiB per connection; {'pymalloc' if _has_pymalloc() else 'no pymalloc'}):")
    for key, value in after.items():
        print(f"  {(value - before[key]) / per / 1024:8.2f}  {key}")


def _has_pymalloc() -> bool:
    return os.environ.get("PYTHONMALLOC", "pymalloc") in ("pymalloc", "pymalloc_debug")
