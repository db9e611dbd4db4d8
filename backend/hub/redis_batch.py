"""Calls of one Lua script, pipelined on one connection: sent at once, read in order.

Each call is written to Redis on a connection kept for the script, without waiting for
the replies of the calls before it: Redis runs a connection's commands in the order they
came and answers in that order, so the replies are read back in order and handed to
their callers. A call on an idle pipeline is written at once; while replies are on their
way (calls coming fast: agents publishing side by side) a call waits for the end of the
loop turn it was made in, so the calls made in that turn go in one write. Calls made
while a write is under way (a connect) go together in the next one. Writes are packed by
hiredis; replies that arrive together are read by one caller for all of them (a write
per call cost the publisher a syscall and Redis a wake-up each: docs/benchmarks.md,
round 6). Before (one batch in flight at a time, the next batch waiting for its reply
and for its own sender's turn on the loop) a publish waited for a whole round trip of
the one before it, plus the loop's turns around it: the largest share of the Redis
path's tail under fan-out (docs/benchmarks.md, "The Redis tail").

No task of its own: a caller that finds the write (or the read) free does it for every
call, and the others just wait for their reply (waking each of them whenever a role
came free cost a publisher two ``asyncio.wait`` per call, a quarter of its CPU). A
caller that leaves a role with work in it (its own reply is in, or it was cancelled)
hands the rest to a short-lived task, so publish-only users (``pipeline_agent``) need no
start; ``close`` stops such a task. The script goes as EVAL (Redis keeps it compiled by
its hash): a Redis that lost its scripts (a restart, SCRIPT FLUSH) answers it as before,
and no call is ever sent twice.

Not a transaction: each script still runs atomically on its own, in the order the calls
came, so events keep the order their publishers made them in. A reply that is an error
goes to its own caller; a connection that fails fails every call written on it and not
answered yet (a script may have run, as when the reply of a single call is lost: the
caller answers 503 and never runs it twice). A call cancelled before it was written
never runs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine, Sequence
from typing import Any

import hiredis
import redis.asyncio as redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

_Call = tuple[Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatches:
    def __init__(self, client: redis.Redis, script: str) -> None:
        self._pool = client.connection_pool
        self._script = script
        self._conn: AbstractConnection | None = None  # kept for the script's calls
        self._queued: list[_Call] = []  # made, not written yet
        self._unread: deque[_Call] = deque()  # written on ``_conn``, reply not read yet
        self._writing = False
        self._reading = False
        self._helpers: set[asyncio.Task[None]] = set()  # a role's work its caller left

    async def call(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply for ``keys`` and ``args``."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((keys, args, future))
        try:
            if not self._writing:
                await self._write_queued()
            if not future.done() and not self._reading and self._unread:
                await self._read_replies(future)
            # Whoever holds a role now finishes it for every call, ours too: nothing to
            # do but wait (no wake-up for callers that get no role).
            return await future
        except asyncio.CancelledError:
            # Not written yet: now it never will be (written: its reply is read and dropped).
            if not future.cancel() and not future.cancelled():
                future.exception()  # failed with its connection: read, the caller is gone
            raise

    async def close(self) -> None:
        """Stop the helpers a cancelled or finished caller left (calls not answered yet
        fail with the connection when its client closes)."""
        for task in list(self._helpers):
            task.cancel()
        await asyncio.gather(*self._helpers, return_exceptions=True)

    def _hand_on(self) -> None:
        """A caller leaves a role with work left in it (its own reply is in, or it was
        cancelled): a task of its own takes the role over."""
        if self._queued and not self._writing:
            self._spawn(self._write_queued())
        if self._unread and not self._reading and self._conn is not None:
            self._spawn(self._read_replies(None))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    async def _write_queued(self) -> None:
        if self._writing:  # a helper spawned while a caller took the role meanwhile
            return
        self._writing = True
        try:
            if self._unread:
                # Replies are on their way, so calls are coming fast: the rest of this
                # loop turn first, and the calls made in it go in this write. A call on an
                # idle pipeline (the service's publishes) is written at once, as before.
                await asyncio.sleep(0)
            while self._queued:  # calls made while a write awaited go in the next one
                batch, self._queued = [c for c in self._queued if not c[2].done()], []
                if batch:
                    await self._write(batch)
        finally:
            self._writing = False
            self._hand_on()

    async def _write(self, batch: list[_Call]) -> None:
        try:
            conn = await self._connection()
            await conn.send_packed_command(self._packed(batch), check_health=False)
            if conn is not self._conn:  # a failed read let the connection go meanwhile
                raise RedisConnectionError("the connection failed while the calls were sent")
            self._unread.extend(batch)
        except asyncio.CancelledError as exc:
            # This caller was cancelled while writing: whether the others' scripts ran is
            # unknown, as when a reply is lost (a 503 each, never a rerun).
            lost = RedisConnectionError(f"the call sending it was cancelled: {exc!r}")
            _fail(batch, lost)
            await self._broken(self._conn, lost)
            raise
        except Exception as exc:  # not written, or not all: whether they ran is unknown
            # A connection a failed read let go while this write awaited its connect or
            # drain has no writer left: redis-py raises AttributeError on it. To the
            # callers that is the connection's failure (a 503, retried), not a bug's 500.
            if isinstance(exc, AttributeError):
                exc = RedisConnectionError(f"the write failed: {exc!r}")
            _fail(batch, exc)
            await self._broken(self._conn, exc)

    def _packed(self, batch: list[_Call]) -> bytes:
        """The batch's EVALs as one buffer: hiredis's packer (C), where redis-py's (Python,
        ~10 µs for a call's 15 arguments) was a fifth of a publisher's CPU."""
        script = self._script
        return b"".join(
            hiredis.pack_command(("EVAL", script, len(keys), *keys, *args))
            for keys, args, _ in batch
        )

    async def _connection(self) -> AbstractConnection:
        conn = self._conn
        if conn is not None and not self._unread and await conn.can_read():
            # Idle, yet something to read: the server closed it (a restart), or it is dirty.
            await self._broken(conn, RedisConnectionError("the kept connection was closed"))
            conn = None
        if conn is None:
            conn = self._conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        return conn

    async def _read_replies(self, mine: asyncio.Future[Any] | None) -> None:
        """Read replies in order until ours is in (``mine``; None: until nothing written
        is left unread)."""
        if self._reading:  # a helper spawned while a caller took the role meanwhile
            return
        self._reading = True
        conn = self._conn
        try:
            while self._unread and conn is self._conn and conn is not None:
                if mine is not None and mine.done():
                    break
                try:
                    reply = await conn.read_response(disconnect_on_error=False)
                except ResponseError as exc:  # the script's own error: only its caller's
                    reply = exc
                _, _, future = self._unread.popleft()
                if future.done():
                    continue  # its caller is gone
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except Exception as exc:  # the connection failed: every call unanswered hears it
            await self._broken(conn, exc)
        finally:
            self._reading = False
            self._hand_on()

    async def _broken(self, conn: AbstractConnection | None, exc: BaseException) -> None:
        """Fail what was written on ``conn`` and not answered, and let it go."""
        if conn is None or conn is not self._conn:
            return  # already let go (a failed write or read before this one)
        self._conn = None
        unread, self._unread = list(self._unread), deque()
        _fail(unread, exc)
        await conn.disconnect(nowait=True)
        await self._pool.release(conn)


def _fail(batch: list[_Call], exc: BaseException) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(exc)
