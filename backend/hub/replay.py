"""Snapshot then replay: what a joining or resuming client is sent, on any transport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from backend.hub import protocol
from backend.hub.bus import EventBus

REPLAY_PAGE = 500


@dataclass(frozen=True, slots=True)
class CaughtUp:
    epoch: str
    delivered_seq: int  # the client has everything up to here
    recovered: bool


async def catch_up(
    bus: EventBus,
    room: str,
    last_seq: int | None,
    epoch: str | None,
    send: Callable[[str], Awaitable[None]],
    *,
    quiet: bool = False,
) -> CaughtUp:
    """Send the room's snapshot, then every event after ``last_seq`` when the history
    still holds them (``recovered``). ``quiet``: only the missed events when it can."""
    history = await bus.history(room, last_seq, limit=REPLAY_PAGE)
    epoch_ok = epoch in (None, history.epoch) or last_seq == 0
    recovered = last_seq is not None and epoch_ok and history.complete
    if not (quiet and recovered):
        await send(
            protocol.dumps(
                protocol.snapshot(room, history.epoch, history.last_seq, recovered, history.agents)
            )
        )
    sent = -1
    page = history.events if recovered else []
    while page:
        for event in page:
            await send(event.text)
            sent = event.seq
        if sent >= history.last_seq or len(page) < REPLAY_PAGE:
            break
        page = (await bus.history(room, sent, limit=REPLAY_PAGE)).events
    return CaughtUp(history.epoch, max(sent, history.last_seq), recovered)
