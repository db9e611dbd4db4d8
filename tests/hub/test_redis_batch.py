"""Publishes are pipelined to Redis on one connection and keep every guarantee: the
order they were made in, each event once, a 503 (never a hang) when Redis is gone, and
none waits for the reply of the one before it.

The bus is used publish-only here, as ``pipeline_agent`` uses it: no start, no listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from backend.core.storage.redis_pool import open_pool
from backend.hub.bus import BusUnavailable
from backend.hub.hub_metrics import HubMetrics
from backend.hub.redis_bus import RedisBus
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def bus(private_redis: RedisServer) -> AsyncIterator[RedisBus]:
    client = open_pool(private_redis.url, max_connections=16)
    yield RedisBus(
        client, prefix="t:", history_size=1000, ttl_s=600, metrics=HubMetrics(CollectorRegistry())
    )
    await client.aclose()


def _event(i: int) -> dict[str, Any]:
    return {"agent": f"agent{i % 3}", "status": "running", "message": str(i), "ts": "t"}


async def _messages(bus: RedisBus, session: str) -> list[str]:
    history = await bus.history(session, 0)
    return [json.loads(event.text)["message"] for event in history.events]


async def test_publishes_made_at_once_keep_their_order_and_each_runs_once(bus: RedisBus) -> None:
    published = await asyncio.gather(*(bus.publish("s1", _event(i)) for i in range(300)))
    assert [event.seq for event in published] == list(range(1, 301))
    assert [json.loads(event.text)["message"] for event in published] == [
        str(i) for i in range(300)
    ]
    assert await _messages(bus, "s1") == [str(i) for i in range(300)]
    # Sessions published to side by side each keep their own numbering.
    both = await asyncio.gather(*(bus.publish(f"s{2 + i % 2}", _event(i)) for i in range(10)))
    assert [(event.session_id, event.seq) for event in both] == [
        (f"s{2 + i % 2}", 1 + i // 2) for i in range(10)
    ]


async def test_a_batch_survives_redis_forgetting_the_script(
    bus: RedisBus, private_redis: RedisServer
) -> None:
    await bus.publish("s1", _event(0))
    private_redis.command("SCRIPT", "FLUSH")  # as a restart without persistence does
    published = await asyncio.gather(*(bus.publish("s1", _event(i)) for i in range(1, 6)))
    assert [event.seq for event in published] == [2, 3, 4, 5, 6]
    assert await _messages(bus, "s1") == [str(i) for i in range(6)]  # none ran twice


async def test_every_publish_of_a_batch_fails_when_redis_is_gone_and_works_again_after(
    bus: RedisBus, private_redis: RedisServer
) -> None:
    await bus.publish("s1", _event(0))
    private_redis.stop()
    failed = await asyncio.gather(
        *(bus.publish("s1", _event(i)) for i in range(1, 6)), return_exceptions=True
    )
    assert all(isinstance(result, BusUnavailable) for result in failed), failed
    private_redis.start()
    published = await asyncio.gather(*(bus.publish("s1", _event(i)) for i in range(6, 9)))
    assert [event.seq for event in published] == [2, 3, 4]
    assert await _messages(bus, "s1") == ["0", "6", "7", "8"]


async def test_a_publish_cancelled_before_it_was_sent_never_runs(bus: RedisBus) -> None:
    first = asyncio.create_task(bus.publish("s1", _event(0)))
    await asyncio.sleep(0)  # it is on its way to Redis
    queued = [asyncio.create_task(bus.publish("s1", _event(i))) for i in range(1, 4)]
    await asyncio.sleep(0)  # they wait behind it
    queued[1].cancel()
    await asyncio.gather(first, *queued, return_exceptions=True)
    assert queued[1].cancelled()
    assert [task.result().seq for task in (first, queued[0], queued[2])] == [1, 2, 3]
    assert await _messages(bus, "s1") == ["0", "1", "3"]


class _ReplyGate:
    """A TCP proxy to Redis that can hold back Redis's replies while passing commands."""

    def __init__(self, redis_port: int) -> None:
        self._redis_port = redis_port
        self.open = asyncio.Event()
        self.open.set()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def close(self) -> None:
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            self._server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await asyncio.open_connection("127.0.0.1", self._redis_port)
        for pipe in (
            self._pipe(reader, upstream[1], None),
            self._pipe(upstream[0], writer, self.open),
        ):
            task = asyncio.create_task(pipe)
            self._pipes.add(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event | None
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if gate is not None:
                    await gate.wait()
                writer.write(data)
                await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def _gated_bus(
    private_redis: RedisServer,
) -> AsyncIterator[tuple[_ReplyGate, RedisBus, Callable[[], int]]]:
    """A publish-only bus that reaches Redis through a :class:`_ReplyGate`, and the
    session ``s1``'s last sequence number as Redis holds it."""
    gate = _ReplyGate(private_redis.port)
    client = open_pool(await gate.start(), max_connections=16)
    bus = RedisBus(
        client, prefix="t:", history_size=1000, ttl_s=600, metrics=HubMetrics(CollectorRegistry())
    )

    def last_seq() -> int:
        return int(private_redis.command("GET", "t:hub:{s1}:seq") or 0)

    try:
        yield gate, bus, last_seq
    finally:
        gate.open.set()
        await client.aclose()
        await gate.close()


async def _until(check: Callable[[], bool]) -> bool:
    for _ in range(500):  # bounded: 5 s
        if check():
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_publish_goes_to_redis_while_the_reply_before_it_is_still_on_its_way(
    private_redis: RedisServer,
) -> None:
    async with _gated_bus(private_redis) as (gate, bus, last_seq):
        await bus.publish("s1", _event(0))
        gate.open.clear()  # Redis's replies are held back from here on
        first = asyncio.create_task(bus.publish("s1", _event(1)))
        assert await _until(lambda: last_seq() == 2)
        second = asyncio.create_task(bus.publish("s1", _event(2)))
        # The second event is in Redis (its subscribers hear it) though the first's
        # reply has not come back: it did not wait for it.
        assert await _until(lambda: last_seq() == 3)
        assert not first.done()
        gate.open.set()
        assert [(await first).seq, (await second).seq] == [2, 3]
        assert await _messages(bus, "s1") == ["0", "1", "2"]


async def test_a_publisher_cancelled_while_reading_replies_shifts_no_one_elses(
    private_redis: RedisServer,
) -> None:
    """The caller reading the replies is cancelled mid-read (its client went away): its
    event stays published, and every other caller still gets its own reply, not the next
    one's; the connection goes on serving publishes."""
    async with _gated_bus(private_redis) as (gate, bus, last_seq):
        await bus.publish("s1", _event(0))
        gate.open.clear()
        reader = asyncio.create_task(bus.publish("s1", _event(1)))
        assert await _until(lambda: last_seq() == 2)
        others = [asyncio.create_task(bus.publish("s1", _event(i))) for i in (2, 3)]
        assert await _until(lambda: last_seq() == 4)
        reader.cancel()  # it is waiting in the read of the first reply
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        gate.open.set()
        assert [(await task).seq for task in others] == [3, 4]
        assert (await bus.publish("s1", _event(4))).seq == 5
        assert await _messages(bus, "s1") == ["0", "1", "2", "3", "4"]


async def test_a_publisher_cancelled_before_its_write_leaves_the_others_written(
    private_redis: RedisServer,
) -> None:
    """Replies on their way, a caller takes the write and waits for the end of the loop
    turn; cancelled there, its own event never runs and the calls queued behind it still
    go (a helper takes the write over): none of their callers waits forever."""
    async with _gated_bus(private_redis) as (gate, bus, last_seq):
        await bus.publish("s1", _event(0))
        gate.open.clear()
        in_flight = asyncio.create_task(bus.publish("s1", _event(1)))
        assert await _until(lambda: last_seq() == 2)
        writer = asyncio.create_task(bus.publish("s1", _event(2)))
        behind = asyncio.create_task(bus.publish("s1", _event(3)))
        await asyncio.sleep(0)  # the writer waits out the turn; the other is queued
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        assert await _until(lambda: last_seq() == 3)  # written, reply still held
        gate.open.set()
        assert [(await in_flight).seq, (await behind).seq] == [2, 3]
        assert writer.cancelled()
        assert await _messages(bus, "s1") == ["0", "1", "3"]
