"""Fewer full garbage collections while connections arrive in a burst.

Python runs a full collection when the objects that survived since the last one grow by
a quarter (and ten younger collections ran). Each connection keeps its objects for its
whole life, so while thousands connect at once (a reconnect storm after a deploy) the
survivors grow by a quarter again and again: 8-11 full collections in a 5,000-client
storm, each a pause of every socket that walks every connection (0.1-0.5 s), a third of
the storm's CPU (docs/benchmarks.md, rounds 2 and 4).

A process also starts in a burst: after a deploy every client of the old one connects
at once, and its heap starts small (``HUB_GC_FREEZE`` moved the startup objects out of
the count), so a quarter's growth comes every few hundred connections.

During a burst the third threshold is raised (full collections need ten times more
younger ones, as ``HUB_GC_THRESHOLDS=[700,10,100]`` did in round 2); 30 quiet seconds
after it the thresholds are put back, and Python's next check runs the one full
collection the burst owed. Memory stays bounded: young collections run as usual, and
full collections still run during a burst that lasts, only less often.
"""

from __future__ import annotations

import asyncio
import gc
import time

BURST_OPENS = 100  # connections opened within one window that make a burst
WINDOW_S = 1.0
# Windows with fewer opens after which a burst is over: its connections keep catching
# up (snapshots, replays) after the last one opened; on this machine under load that
# took 25 s, with full collections again as soon as the thresholds came back at 5.
QUIET_WINDOWS = 30
BURST_FULL_EVERY = 100  # younger (generation 1) collections per full one during a burst


class CollectorBursts:
    """Told of each opened connection; owns the timer that ends a burst.

    ``thresholds``: what to put back after a burst (the process's, read when the hub
    starts: a module-level copy would be shared by every hub a test process builds).
    """

    __slots__ = ("_base", "_handle", "_opens", "_quiet", "_window_end", "bursts")

    def __init__(self, thresholds: tuple[int, int, int]) -> None:
        self._base = thresholds
        self._opens = 0  # in the current window
        self._window_end = 0.0
        self._quiet = 0  # windows of the burst without a burst's opens, in a row
        self._handle: asyncio.TimerHandle | None = None
        self.bursts = 0

    def opened(self) -> None:
        if self._handle is None:  # outside a burst the windows follow the opens
            now = time.monotonic()
            if now >= self._window_end:
                self._window_end = now + WINDOW_S
                self._opens = 0
        self._opens += 1
        if self._opens >= BURST_OPENS and self._handle is None:
            self._begin()

    @property
    def in_burst(self) -> bool:
        return self._handle is not None

    def close(self) -> None:
        """The thresholds back as they were (the burst is over, or the hub closing)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            gc.set_threshold(*self._base)
        self._opens = 0

    def expect(self) -> None:
        """A burst from now (a process that just started: after a deploy its clients
        come back at once). uvicorn accepts them and parses their handshakes before the
        app sees the first: measured, the whole of a 5,000-client storm's full
        collections (7) came before the hundredth connection reached the hub."""
        if self._handle is None:
            self._begin()

    def _begin(self) -> None:
        young, middle, full = self._base
        gc.set_threshold(young, middle, max(full, BURST_FULL_EVERY))
        self.bursts += 1
        self._opens = 0
        self._quiet = 0
        self._handle = asyncio.get_running_loop().call_later(WINDOW_S, self._check)

    def _check(self) -> None:
        """Each window of a burst: it goes on while connections arrive as fast, and for a
        few windows more, while the last of them catch up (their objects survive too)."""
        self._quiet = 0 if self._opens >= BURST_OPENS else self._quiet + 1
        self._opens = 0
        if self._quiet < QUIET_WINDOWS:
            self._handle = asyncio.get_running_loop().call_later(WINDOW_S, self._check)
            return
        self._handle = None
        gc.set_threshold(*self._base)
