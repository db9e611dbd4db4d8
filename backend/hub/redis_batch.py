"""Calls of one Lua script that arrive together go to Redis together (group commit).

While a batch is on its way, the calls that arrive queue; when it is back, one of their
callers sends all of them in one pipeline: one pooled connection, one write and one read
for the lot instead of a round trip each. Under load (agents publishing at once) that was
most of what a publish cost this process. A call that finds nothing on its way is sent at
once, by its own caller: no task of its own, so publish-only users (``pipeline_agent``)
need no start or close.

Not a transaction: each script still runs atomically on its own, in the order the calls
came, so events keep the order their publishers awaited them in. A reply that is an
error goes to its own caller; a connection that fails fails the whole batch (a script
may have run, as when the reply of a single call is lost: the caller answers 503 and
never runs it twice). NOSCRIPT (Redis lost its scripts: a restart, SCRIPT FLUSH) means
those calls did not run: the script is loaded and they are sent once more.
"""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

_Call = tuple[Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatches:
    def __init__(self, client: redis.Redis, script: str) -> None:
        self._client = client
        self._script = client.register_script(script)
        self._queued: list[_Call] = []
        self._in_flight: asyncio.Future[None] | None = None  # done when the batch is back

    async def call(self, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """The script's reply for ``keys`` and ``args``, sent with whatever else is queued."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((keys, args, future))
        try:
            while not future.done():
                if self._in_flight is not None:  # wait for our reply, or our turn to send
                    await asyncio.wait((future, self._in_flight), return_when=FIRST_COMPLETED)
                else:
                    await self._send_queued()
        except asyncio.CancelledError:
            if not future.cancel():  # not sent yet: now it never will be
                future.exception()  # sent, and failed with the batch: read, the caller is gone
            raise
        return future.result()

    async def _send_queued(self) -> None:
        batch, self._queued = self._queued, []
        self._in_flight = done = asyncio.get_running_loop().create_future()
        try:
            await self._send([call for call in batch if not call[2].done()])
        except BaseException as exc:
            # This caller was cancelled with the batch on its way: whether the others'
            # scripts ran is unknown, as when a reply is lost (a 503 each, never a rerun).
            _fail(batch, RedisConnectionError(f"the call sending it was cancelled: {exc!r}"))
            raise
        finally:
            self._in_flight = None
            done.set_result(None)

    async def _send(self, batch: list[_Call]) -> None:
        if not batch:
            return
        try:
            replies = await self._execute(batch)
            lost = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if lost:  # they did not run: load the script, send them again
                await self._client.script_load(self._script.script)
                again = await self._execute([batch[i] for i in lost])
                for i, reply in zip(lost, again, strict=True):
                    replies[i] = reply
        except Exception as exc:  # the connection failed: every caller of the batch hears it
            _fail(batch, exc)
            return
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for keys, args, _ in batch:
                pipe.evalsha(self._script.sha, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies


def _fail(batch: list[_Call], exc: BaseException) -> None:
    for _, _, future in batch:
        if not future.done():
            future.set_exception(exc)
