"""``kill -USR1 <pid>``: what a running process is doing, written to its log.

Two parts, because a stuck process is stuck in one of two ways:

- a call that never returns holds the event loop: :mod:`faulthandler` prints every
  thread's Python stack to stderr from the signal handler itself, so this part works
  even then;
- the loop runs but something awaits forever: the loop logs ``tasks_dump`` with every
  pending asyncio task and the lines it is suspended at.

Only from the main thread (where signal handlers can be set); the previous handler is put
back when the context ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

SIGNAL = signal.SIGUSR1
FRAMES_PER_TASK = 6


def pending_tasks() -> list[dict[str, object]]:
    """Every pending task of the running loop: its name, its coroutine, the innermost
    frames of the chain of awaits it is suspended in, and what that chain waits on."""
    out: list[dict[str, object]] = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frames, waiting_on = _awaits(coro)
        out.append(
            {
                "task": task.get_name(),
                "coro": getattr(coro, "__qualname__", "?"),
                "at": [
                    f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
                    for frame in frames[-FRAMES_PER_TASK:]
                ],
                "waiting_on": waiting_on,
            }
        )
    return sorted(out, key=lambda task: str(task["task"]))


def _awaits(awaitable: object) -> tuple[list[FrameType], str]:
    """The frames from a coroutine down its awaits (``Task.get_stack`` stops at the
    first), and a short repr of the object at the bottom (a future, usually)."""
    frames: list[FrameType] = []
    current: object = awaitable
    while current is not None and len(frames) < 100:
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    return frames, repr(current)[:200] if current is not None else ""


@contextlib.contextmanager
def dump_on_signal() -> Iterator[None]:
    """While the context is open, ``SIGUSR1`` dumps the threads' and the tasks' stacks."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()

    def log_tasks() -> None:
        tasks = pending_tasks()
        log.warning("tasks_dump", count=len(tasks), tasks=tasks)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(log_tasks)

    previous = signal.signal(SIGNAL, on_signal)
    # Registered second, so faulthandler's C handler runs first and then chains to the
    # one above (Python's, which runs on_signal when the main thread next can).
    faulthandler.register(SIGNAL, file=sys.stderr, all_threads=True, chain=True)
    try:
        yield
    finally:
        faulthandler.unregister(SIGNAL)
        signal.signal(SIGNAL, previous)
