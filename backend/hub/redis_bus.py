"""A fleet sharing Redis: one order per session, capped history, live fan-in by pub/sub.

Layout (documented for other languages in docs/redis-layout.md), with ``P`` the
deployment prefix and ``S`` the session id (in braces, so a cluster keeps a session's
keys in one slot):

- ``P hub:{S}:seq``    INCR counter, the last ``seq``
- ``P hub:{S}:epoch``  the history's epoch (new whenever ``seq`` starts again at 1)
- ``P hub:{S}:stream`` XADD stream, id ``<seq>-0``, fields ``v`` (event JSON), ``a`` (agent),
  ``t`` (publish time), capped by ``MAXLEN ~``
- ``P hub:{S}:agents`` HASH agent → latest event JSON
- channel ``P hub:ch:{S}``: ``{"k":"e","e":epoch,"s":seq,"t":time,"v":<event>}`` and
  client messages ``{"k":"m",...}``; channel ``P hub:node:<node>``: direct messages.

One Lua script does INCR, XADD, HSET, EXPIRE and PUBLISH atomically, so every process
sees one order. The listener (:mod:`.redis_listener`, supervised) reconnects with backoff
and re-reads each followed stream after the last seq it delivered: nothing is lost or
repeated across a Redis hiccup. History reads are idempotent and run once more on a
fresh connection when a restart killed the pooled one; the publish script never runs
twice (a 503, and the agent retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from typing import Any

import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError

from backend.core.storage.redis_pool import idempotent
from backend.hub.bus import BusUnavailable, History, Published, Sink, node_of
from backend.hub.hub_metrics import HubMetrics
from backend.hub.protocol import dumps
from backend.hub.redis_batch import ScriptBatches
from backend.hub.redis_listener import Listener, ListenerDown

log = structlog.get_logger(__name__)

PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local epoch = redis.call('GET', KEYS[4])
if seq == 1 or not epoch then
  if seq == 1 then redis.call('DEL', KEYS[2], KEYS[3]) end
  epoch = ARGV[6]
  redis.call('SET', KEYS[4], epoch)
end
local text = ARGV[1] .. seq .. ARGV[2]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], seq .. '-0',
           'v', text, 'a', ARGV[3], 't', ARGV[8])
redis.call('HSET', KEYS[3], ARGV[3], text)
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
redis.call('PUBLISH', ARGV[7], '{"k":"e","e":"' .. epoch .. '","s":' .. seq
           .. ',"t":' .. ARGV[8] .. ',"v":' .. text .. '}')
return {seq, epoch}
"""


def _wrap(exc: Exception) -> BusUnavailable:
    # Redis's own words stay in the log: clients get a fixed message (and a 503/1013).
    log.warning("hub_store_failed", error=repr(exc)[:300])
    return BusUnavailable("the event store is unavailable; retry shortly")


class RedisBus:
    name = "redis"

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        history_size: int,
        ttl_s: int,
        metrics: HubMetrics,
    ) -> None:
        self.node_id = secrets.token_hex(4)
        self._client = client
        self._prefix = prefix
        self._history_size = history_size
        self._ttl_s = ttl_s
        self._metrics = metrics
        self._publishes = ScriptBatches(client, PUBLISH)  # pipelined on a connection of its own
        self._sink: Sink | None = None
        self._followed: set[str] = set()
        self._last: dict[str, tuple[str, int]] = {}
        self._listener = Listener(
            client,
            channels=self._channels,
            on_subscribed=self._catch_up,
            on_message=self._dispatch,
            metrics=metrics,
        )
        self._task: asyncio.Task[None] | None = None

    # -- keys ------------------------------------------------------------------------
    def _key(self, session_id: str, part: str) -> str:
        return f"{self._prefix}hub:{{{session_id}}}:{part}"

    def _room_channel(self, session_id: str) -> str:
        return f"{self._prefix}hub:ch:{session_id}"

    def _node_channel(self, node_id: str) -> str:
        return f"{self._prefix}hub:node:{node_id}"

    # -- lifecycle -------------------------------------------------------------------
    async def start(self, sink: Sink) -> None:
        self._sink = sink
        # Owned here: close() cancels it, and its supervisor retires the listener.
        self._task = asyncio.create_task(self._listener.supervise(), name="hub-redis-supervisor")
        # Readiness should be true from the start when Redis is there.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._listener.connected_event.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._publishes.close()
        self._sink = None

    async def ping(self) -> None:
        """Readiness: the listener is subscribed and hearing Redis, and Redis answers."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):  # a reconnect may be under way
                await self._listener.connected_event.wait()
        try:
            self._listener.check()
        except ListenerDown as exc:
            raise BusUnavailable(str(exc)) from None
        try:
            await idempotent(self._client, self._client.ping)
        except (RedisError, OSError) as exc:
            raise _wrap(exc) from exc

    # -- publishing and history ------------------------------------------------------
    async def publish(self, session_id: str, fields: dict[str, Any]) -> Published:
        head = dumps({"type": "agent_status", "session_id": session_id})[:-1] + ',"seq":'
        rest = {k: fields.get(k) for k in ("agent", "status", "progress", "message", "data", "ts")}
        tail = "," + dumps(rest)[1:]
        now = time.time()
        keys = [self._key(session_id, p) for p in ("seq", "stream", "agents", "epoch")]
        args = [
            head,
            tail,
            fields["agent"],
            self._history_size,
            self._ttl_s,
            secrets.token_hex(6),
            self._room_channel(session_id),
            f"{now:.6f}",
        ]
        try:
            seq, epoch = await self._publishes.call(keys, args)
        except (RedisError, OSError) as exc:
            raise _wrap(exc) from exc
        seq = int(seq)
        return Published(session_id, seq, _text(epoch), fields["agent"], f"{head}{seq}{tail}", now)

    async def history(self, session_id: str, after_seq: int | None, limit: int = 1000) -> History:
        stream = self._key(session_id, "stream")

        async def read() -> list[Any]:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.get(self._key(session_id, "epoch"))
                pipe.get(self._key(session_id, "seq"))
                pipe.hgetall(self._key(session_id, "agents"))
                if after_seq is not None:
                    pipe.xrange(stream, min=f"{after_seq + 1}-0", max="+", count=limit)
                    pipe.xrange(stream, min="-", max="+", count=1)
                return await pipe.execute()

        try:
            results = await idempotent(self._client, read)
        except (RedisError, OSError) as exc:
            raise _wrap(exc) from exc
        epoch = _text(results[0]) if results[0] is not None else "0"
        last_seq = int(results[1] or 0)
        agents = {_text(k): json.loads(v) for k, v in results[2].items()}
        if after_seq is None:
            return History(epoch, last_seq, agents)
        entries, oldest = results[3], results[4]
        first = _seq_of(oldest[0][0]) if oldest else last_seq + 1
        complete = after_seq <= last_seq and after_seq >= first - 1
        events = [self._published(session_id, epoch, entry) for entry in entries]
        return History(epoch, last_seq, agents, events if complete else [], complete)

    def _published(self, session_id: str, epoch: str, entry: Any) -> Published:
        entry_id, values = entry
        fields = {_text(k): _text(v) for k, v in values.items()}
        return Published(
            session_id,
            _seq_of(entry_id),
            epoch,
            fields.get("a", ""),
            fields["v"],
            float(fields.get("t", 0.0)),
        )

    # -- live traffic ----------------------------------------------------------------
    async def follow(self, session_id: str) -> None:
        self._followed.add(session_id)
        try:
            await self._listener.subscribe(self._room_channel(session_id))
        except (RedisError, OSError) as exc:
            # The listener's connection failed: its reconnect subscribes every followed room.
            log.warning("hub_subscribe_failed", session_id=session_id, error=str(exc))
        if session_id not in self._last:
            try:
                head = await self.history(session_id, None)
                self._last[session_id] = (head.epoch, head.last_seq)
            except BusUnavailable:
                pass  # the listener's catch-up fills it once Redis is back

    async def unfollow(self, session_id: str) -> None:
        self._followed.discard(session_id)
        self._last.pop(session_id, None)
        # On failure a reconnect subscribes only what is followed then.
        with contextlib.suppress(RedisError, OSError):
            await self._listener.unsubscribe(self._room_channel(session_id))

    async def send(self, envelope: dict[str, Any]) -> None:
        target = envelope.get("target")
        channel = (
            self._node_channel(node_of(target))
            if target is not None
            else self._room_channel(str(envelope["room"]))
        )
        try:
            await self._client.publish(channel, dumps({"k": "m", **envelope}))
        except (RedisError, OSError) as exc:
            raise _wrap(exc) from exc

    def _channels(self) -> list[str]:
        """What a (re)connecting listener subscribes: this node, and every followed room."""
        rooms = (self._room_channel(room) for room in self._followed)
        return [self._node_channel(self.node_id), *rooms]

    async def _catch_up(self) -> None:
        """After (re)connecting: everything published while the listener was away."""
        for room in tuple(self._followed):
            self._listener.step()
            epoch, seq = self._last.get(room, ("", 0))
            await self._fill(room, epoch, seq)

    async def _fill(self, room: str, epoch: str, after: int) -> None:
        history = await self.history(room, after, limit=self._history_size)
        if history.epoch != epoch or not history.complete:
            self._last[room] = (history.epoch, history.last_seq)
            # The hub's connections see the new head and re-snapshot themselves.
            if self._sink is not None and history.last_seq:
                self._sink.on_event(
                    Published(room, history.last_seq, history.epoch, "", "", time.time())
                )
            return
        for event in history.events:
            self._emit(event)

    async def _dispatch(self, data: Any) -> None:
        try:
            body = json.loads(data)
            await self._route(body, data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # The channel is documented for other languages: a malformed message is
            # dropped, never the listener.
            log.warning("hub_bad_channel_message", error=repr(exc))

    async def _route(self, body: Any, data: Any) -> None:
        if body.get("k") == "m":
            if self._sink is not None:
                self._sink.on_message(body)
            return
        room = body["v"]["session_id"]
        if room not in self._followed:
            return
        epoch, seq = str(body["e"]), int(body["s"])
        last_epoch, last_seq = self._last.get(room, (epoch, seq - 1))
        if epoch == last_epoch and seq <= last_seq:
            return  # already delivered (catch-up raced the live message)
        if epoch == last_epoch and seq > last_seq + 1:
            await self._fill(room, last_epoch, last_seq)
            if self._last.get(room, ("", 0))[1] >= seq:
                return
        self._emit(
            Published(
                room,
                seq,
                epoch,
                str(body["v"].get("agent", "")),
                _event_text(data, body),
                float(body.get("t", 0.0)),
            )
        )

    def _emit(self, event: Published) -> None:
        self._last[event.session_id] = (event.epoch, event.seq)
        if self._sink is not None:
            self._sink.on_event(event)


_EVENT_HEAD = b'{"k":"e","e":"'
_EVENT_VALUE = b',"v":'


def _event_text(data: Any, body: dict[str, Any]) -> str:
    """The event's JSON as the publish script wrote it (the text history holds too),
    cut from the channel message rather than encoded again; any other shape is encoded."""
    if isinstance(data, bytes) and data.startswith(_EVENT_HEAD) and data.endswith(b"}"):
        start = data.find(_EVENT_VALUE)
        if start != -1:
            return data[start + len(_EVENT_VALUE) : -1].decode()
    return dumps(body["v"])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _seq_of(entry_id: Any) -> int:
    return int(_text(entry_id).split("-", 1)[0])
