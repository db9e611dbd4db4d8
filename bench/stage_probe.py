"""Per-stage timestamps of every event in a hub server under ``bench.hub_fanout --stages``.

    python -m bench.stage_probe OUT.json -m uvicorn backend.app.main:app --port ...

runs the module like ``python -m`` would, with the hub's publish path wrapped so each
event's way through the process is timed on the wall clock (the publisher's and the
subscribers' clock: one machine):

- ``handler``: the request reached ``Hub.publish`` (HTTP parsing, FastAPI, validation done),
- ``lua_sent``: its publish script went to be written to Redis (its batch's write began),
- ``lua_back``: the script's reply was back with its caller,
- ``listener``: the pub/sub message was read by the listener (``RedisBus._dispatch``),
- ``dispatch``: ``Hub.on_event`` began (offered to every member's queue),
- per delivery: ``writer`` (the member's writer admitted it: off its queue) and
  ``sent`` (its ``send_texts`` returned: written to the socket); a delivery written
  straight from the fan-out (``Hub._write_now``) gets both at the moment it was written.

Nothing of this is in the service: it is a diagnostic of the benchmark, wrapped around
the hub's methods here, so it costs production nothing (and costs the measured server
~2 µs per delivery while on). Times are kept in ``array`` columns, which the garbage
collector does not track, so recording them makes no collections of its own. On
SIGRTMIN+3 the process writes what it recorded to OUT.json and goes on.
"""

from __future__ import annotations

import json
import runpy
import signal
import sys
import time
from array import array
from typing import Any

PER_EVENT = ("handler", "lua_sent", "lua_back", "listener", "dispatch")
PER_DELIVERY = ("writer", "sent")
DUMP_SIGNAL = signal.SIGRTMIN + 3


class _Column:
    """(room index, seq, wall time) rows, untracked by the collector."""

    def __init__(self) -> None:
        self.rooms = array("l")
        self.seqs = array("q")
        self.times = array("d")

    def add(self, room: int, seq: int, at: float) -> None:
        self.rooms.append(room)
        self.seqs.append(seq)
        self.times.append(at)

    def rows(self) -> list[list[Any]]:
        return [self.rooms.tolist(), self.seqs.tolist(), self.times.tolist()]


_rooms: dict[str, int] = {}
_columns = {stage: _Column() for stage in (*PER_EVENT, *PER_DELIVERY)}


def _room(session_id: str) -> int:
    index = _rooms.get(session_id)
    if index is None:
        index = _rooms[session_id] = len(_rooms)
    return index


def _mark(stage: str, session_id: str, seq: int, at: float) -> None:
    _columns[stage].add(_room(session_id), seq, at)


def install() -> None:
    """Wrap the hub's publish path (before the app is built: the bus binds its methods)."""
    from backend.app.routers import ws
    from backend.hub import hub, redis_batch, redis_bus

    publish = hub.Hub.publish

    async def timed_publish(self: Any, session_id: str, fields: dict[str, Any]) -> Any:
        began = time.time()
        event = await publish(self, session_id, fields)
        _mark("handler", session_id, event.seq, began)
        return event

    hub.Hub.publish = timed_publish  # type: ignore[method-assign]

    sent_at: dict[int, float] = {}
    batches = redis_batch.ScriptBatches
    call = batches.call
    # Where the calls are written: ``_execute(batch)`` (one batch in flight at a time,
    # before round 4) or ``_write_queued()`` (pipelined on one connection, round 4).
    writes = "_execute" if hasattr(batches, "_execute") else "_write_queued"
    write = getattr(batches, writes)

    async def timed_write(self: Any, *batch: Any) -> Any:
        now = time.time()
        for _, args, _ in batch[0] if batch else self._queued:
            sent_at.setdefault(id(args), now)  # a NOSCRIPT resend keeps the first
        return await write(self, *batch)

    async def timed_call(self: Any, keys: Any, args: Any) -> Any:
        try:
            reply = await call(self, keys, args)
        finally:
            sent = sent_at.pop(id(args), None)
        room = str(args[6]).rsplit(":", 1)[-1]  # the room's channel: P hub:ch:<session>
        seq = int(reply[0])
        if sent is not None:
            _mark("lua_sent", room, seq, sent)
        _mark("lua_back", room, seq, time.time())
        return reply

    redis_batch.ScriptBatches.call = timed_call  # type: ignore[method-assign]
    setattr(batches, writes, timed_write)

    read_at = [0.0]
    dispatch, emit = redis_bus.RedisBus._dispatch, redis_bus.RedisBus._emit

    async def timed_dispatch(self: Any, data: Any) -> None:
        read_at[0] = time.time()
        await dispatch(self, data)

    def timed_emit(self: Any, event: Any) -> None:
        _mark("listener", event.session_id, event.seq, read_at[0])
        emit(self, event)

    redis_bus.RedisBus._dispatch = timed_dispatch  # type: ignore[method-assign]
    redis_bus.RedisBus._emit = timed_emit  # type: ignore[method-assign]

    on_event, admit = hub.Hub.on_event, hub.Hub._admit
    pending: dict[int, list[tuple[str, int]]] = {}

    def timed_on_event(self: Any, event: Any) -> None:
        if event.text:
            _mark("dispatch", event.session_id, event.seq, time.time())
        on_event(self, event)

    def timed_admit(self: Any, conn: Any, event: Any) -> bool:
        admitted: bool = admit(self, conn, event)
        if admitted:
            _mark("writer", event.session_id, event.seq, time.time())
            pending.setdefault(id(conn.transport), []).append((event.session_id, event.seq))
        return admitted

    write_now = hub.Hub._write_now

    def timed_write_now(self: Any, conn: Any, event: Any) -> bool:
        # Written straight from the fan-out: off the queue and on the socket at once.
        written: bool = write_now(self, conn, event)
        if written:
            now = time.time()
            _mark("writer", event.session_id, event.seq, now)
            _mark("sent", event.session_id, event.seq, now)
        return written

    hub.Hub.on_event = timed_on_event  # type: ignore[method-assign]
    hub.Hub._admit = timed_admit  # type: ignore[method-assign]
    hub.Hub._write_now = timed_write_now  # type: ignore[method-assign]

    # The status socket's transports (a subclass writes frames of its own): each one's
    # own ``send_texts`` is wrapped; a delivery is marked when the first wrap returns.
    for transport in (ws.WebSocketTransport, *ws.WebSocketTransport.__subclasses__()):
        if "send_texts" in vars(transport):
            transport.send_texts = _timed_send_texts(transport.send_texts, pending)


def _timed_send_texts(send_texts: Any, pending: dict[int, list[tuple[str, int]]]) -> Any:
    async def timed(self: Any, texts: list[str]) -> None:
        await send_texts(self, texts)
        done = time.time()
        for session_id, seq in pending.pop(id(self), ()):
            _mark("sent", session_id, seq, done)

    return timed


def dump(path: str) -> None:
    names = sorted(_rooms, key=_rooms.__getitem__)
    found = {"rooms": names, **{stage: col.rows() for stage, col in _columns.items()}}
    with open(path + ".tmp", "w") as f:
        json.dump(found, f)
    import os

    os.replace(path + ".tmp", path)


def main() -> None:
    out, flag, module, *rest = sys.argv[1:]
    if flag != "-m":
        raise SystemExit("usage: python -m bench.stage_probe OUT.json -m MODULE [ARGS...]")
    signal.signal(DUMP_SIGNAL, lambda *_: dump(out))
    install()
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
