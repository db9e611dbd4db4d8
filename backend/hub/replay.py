"""Snapshot then replay: what a joining or resuming client is sent, on any transport."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from backend.hub import protocol
from backend.hub.bus import History

REPLAY_PAGE = 500


class HistoryReader(Protocol):
    async def history(
        self, session_id: str, after_seq: int | None, limit: int = 1000
    ) -> History: ...


@dataclass(frozen=True, slots=True)
class CaughtUp:
    epoch: str
    delivered_seq: int  # the client has everything up to here
    recovered: bool


class SharedReads:
    """History reads shared by the members of a room that need the same one at once.

    When a room's epoch changes (its first event, or a store that lost its history), or
    a reconnect storm resumes thousands of clients from the same ``last_seq``, every
    member would read the same history: one read per room serves them all instead.

    A read is shared only while no event of its room arrived since it started
    (:meth:`invalidate`): an event is stored before any process hears of it, so a read
    started after a member heard of an event holds it.
    """

    def __init__(self, reader: HistoryReader, *, concurrency: int = 32) -> None:
        self._reader = reader
        self._reads: dict[str, dict[tuple[int | None, int], asyncio.Future[History]]] = {}
        # Reads in flight at once: a reconnect storm's thousands queue here, not for the
        # store's pool, where each would count its wait against the pool's timeout.
        self._gate = asyncio.Semaphore(concurrency)

    async def history(self, session_id: str, after_seq: int | None, limit: int = 1000) -> History:
        key = (after_seq, limit)
        reads = self._reads.get(session_id)
        read = reads.get(key) if reads is not None else None
        if read is None:
            read = asyncio.ensure_future(self._read(session_id, after_seq, limit))
            self._reads.setdefault(session_id, {})[key] = read
            read.add_done_callback(functools.partial(self._done, session_id, key))
        # One member's cancellation (it disconnected) must not cancel the others' read.
        return await asyncio.shield(read)

    async def _read(self, session_id: str, after_seq: int | None, limit: int) -> History:
        async with self._gate:
            return await self._reader.history(session_id, after_seq, limit)

    def invalidate(self, session_id: str) -> None:
        """An event of the room arrived: reads started before it no longer serve newcomers."""
        self._reads.pop(session_id, None)

    def _done(
        self, session_id: str, key: tuple[int | None, int], read: asyncio.Future[History]
    ) -> None:
        if not read.cancelled():
            read.exception()  # raised to every waiter; retrieved here for when none is left
        reads = self._reads.get(session_id)
        if reads is not None and reads.get(key) is read:
            del reads[key]
            if not reads:
                del self._reads[session_id]


async def catch_up(
    bus: HistoryReader,
    room: str,
    last_seq: int | None,
    epoch: str | None,
    send: Callable[[str], Awaitable[None]],
    *,
    quiet: bool = False,
    send_many: Callable[[list[str]], Awaitable[None]] | None = None,
) -> CaughtUp:
    """Send the room's snapshot, then every event after ``last_seq`` when the history
    still holds them (``recovered``). ``quiet``: only the missed events when it can.
    ``send_many``: the snapshot and each page of events in one call."""

    async def flush(texts: list[str]) -> None:
        if send_many is not None:
            await send_many(texts)
            return
        for text in texts:
            await send(text)

    history = await bus.history(room, last_seq, limit=REPLAY_PAGE)
    epoch_ok = epoch in (None, history.epoch) or last_seq == 0
    recovered = last_seq is not None and epoch_ok and history.complete
    texts: list[str] = []
    if not (quiet and recovered):
        texts.append(
            protocol.dumps(
                protocol.snapshot(room, history.epoch, history.last_seq, recovered, history.agents)
            )
        )
    sent = -1
    page = history.events if recovered else []
    while page:
        texts += [event.text for event in page]
        sent = page[-1].seq
        await flush(texts)
        texts = []
        if sent >= history.last_seq or len(page) < REPLAY_PAGE:
            break
        page = (await bus.history(room, sent, limit=REPLAY_PAGE)).events
    if texts:
        await flush(texts)
    return CaughtUp(history.epoch, max(sent, history.last_seq), recovered)
