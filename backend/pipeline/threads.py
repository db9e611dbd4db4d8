"""CPU work off the event loop, stoppable: a cancel sets ``stop`` and waits for the thread.

The thread checks ``stop`` between units of work (a frame batch, a scene) and raises
:class:`StepCancelled`; the caller waits up to ``grace_s`` for it, so partial files are
no longer being written when the run removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def in_thread(
    stop: threading.Event, fn: Callable[..., T], *args: Any, grace_s: float = 5.0
) -> T:
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    future = loop.run_in_executor(None, functools.partial(context.run, fn, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait([future], timeout=grace_s)
        raise
