"""The calls this process holds, and whether it takes new ones (not while draining).

A read-only mapping of interview id to :class:`~interview_service.calls.Call` for
everyone else; the service adds a call when it starts and removes it when it finishes.
The drain on shutdown waits until none is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping

from prometheus_client import Gauge

from interview_service.calls import Call


class LiveCalls(Mapping[str, Call]):
    def __init__(self, gauge: Gauge) -> None:
        self._calls: dict[str, Call] = {}
        self._gauge = gauge
        self._idle = asyncio.Event()  # set while no call is live: the drain waits on it
        self._idle.set()
        self.draining = False

    def __getitem__(self, interview_id: str) -> Call:
        return self._calls[interview_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._calls)

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, call: Call) -> None:
        self._calls[call.id] = call
        self._idle.clear()
        self._gauge.set(len(self._calls))

    def remove(self, call: Call) -> bool:
        """Forget a finished call; False when it was forgotten already."""
        if self._calls.pop(call.id, None) is None:
            return False
        self._gauge.set(len(self._calls))
        if not self._calls:
            self._idle.set()
        return True

    async def idle(self, timeout_s: float) -> bool:
        """Wait until no call is left, at most ``timeout_s``; True when none is."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        return not self._calls
