"""Fleet-wide delivery: two "processes" share Redis; each event reaches each connection once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from botocore.stub import Stubber

from backend.core.auth import Role
from backend.core.storage import Store, StoreUnavailable, open_store
from backend.gateway.apigw_sender import ApiGatewaySender, build_client
from backend.gateway.fanout import Fanout, RoomPump
from backend.gateway.registry import ConnectionRegistry, GatewayConnection
from tests.gateway.memory_feed import MemoryFeed
from tests.support.moto_apigw import REGION, MotoConnections

ROOM = "sess-fan"


class Process:
    """One process of the fleet: its own sender, registry view and fan-out."""

    def __init__(self, store: Store, moto: MotoConnections, feed: MemoryFeed) -> None:
        self.registry = ConnectionRegistry(store)
        client = build_client(moto.endpoint, REGION, pool_size=4)
        self.sender = ApiGatewaySender(client, on_gone=self.registry.remove, concurrency=4)
        self.fanout = Fanout(store, self.registry, self.sender, feed, lease_s=0.6)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.fanout.run())

    async def stop(self) -> None:
        # As the lifespan does: the flag first (a redis-py call in flight can swallow a
        # cancellation), then the cancel, bounded so a teardown can never hang.
        self.fanout.close()
        if self.task is not None:
            self.task.cancel()
            await asyncio.wait({self.task}, timeout=10)
        self.sender.close()


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[Store]:
    opened = open_store(redis_url, prefix=redis_prefix)
    yield opened
    await opened.close()


@pytest.fixture
def feed() -> MemoryFeed:
    return MemoryFeed()


@pytest.fixture
async def fleet(
    store: Store, moto_connections: MotoConnections, feed: MemoryFeed
) -> AsyncIterator[list[Process]]:
    processes = [Process(store, moto_connections, feed) for _ in range(2)]
    yield processes
    for process in processes:
        await process.stop()


async def _eventually(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


def _seqs(moto: MotoConnections, cid: str) -> list[int]:
    return [m["seq"] for m in moto.messages(cid) if m.get("type") == "agent_status"]


async def _join(registry: ConnectionRegistry, cid: str, delivered_seq: int = 0) -> None:
    record = GatewayConnection(cid, "alice", Role.USER, False, connected_at=time.time() - 60)
    await registry.register(record)
    assert await registry.join(record, ROOM, delivered_seq)


async def test_each_event_reaches_each_connection_once_in_order(
    fleet: list[Process], feed: MemoryFeed, moto_connections: MotoConnections
) -> None:
    a, b = fleet
    await _join(a.registry, "on-a=")  # registered through process a
    await _join(b.registry, "on-b=")  # and through process b
    for process in fleet:
        process.start()
    await _eventually(lambda: bool(a.fanout.pumping or b.fanout.pumping), "a pump started")
    for _ in range(30):
        feed.publish(ROOM)
    for cid in ("on-a=", "on-b="):
        await _eventually(lambda cid=cid: len(_seqs(moto_connections, cid)) >= 30, cid)
        assert _seqs(moto_connections, cid) == list(range(1, 31))
    assert len(a.fanout.pumping) + len(b.fanout.pumping) == 1  # one poster per room


async def test_snapshot_cursor_and_late_joiners_get_no_repeats_and_no_gaps(
    fleet: list[Process], feed: MemoryFeed, moto_connections: MotoConnections
) -> None:
    a, b = fleet
    for _ in range(5):
        feed.publish(ROOM)  # before anyone followed the room
    await _join(a.registry, "snap=", delivered_seq=3)  # its snapshot covered 1..3
    a.start()
    b.start()
    await _eventually(lambda: _seqs(moto_connections, "snap=") == [4, 5], "catch-up 4, 5")
    feed.publish(ROOM)
    await _join(b.registry, "late=", delivered_seq=6)
    feed.publish(ROOM)
    await _eventually(lambda: _seqs(moto_connections, "late=") == [7], "late joiner gets 7")
    await _eventually(lambda: _seqs(moto_connections, "snap=") == [4, 5, 6, 7], "snap=")


async def test_a_dead_leaseholders_rooms_are_taken_over_without_loss_or_repeats(
    fleet: list[Process], feed: MemoryFeed, moto_connections: MotoConnections
) -> None:
    a, b = fleet
    await _join(a.registry, "x=")
    a.start()
    await _eventually(lambda: bool(a.fanout.pumping), "a pumps")
    b.start()
    for _ in range(10):
        feed.publish(ROOM)
    await _eventually(lambda: len(_seqs(moto_connections, "x=")) == 10, "first ten")
    assert a.task is not None
    # the process dies: its pump stops and it lets go of the lease (as on SIGTERM: the
    # flag, then the cancel, since a redis-py call in flight can swallow a cancel)
    a.fanout.close()
    a.task.cancel()
    await asyncio.wait({a.task}, timeout=10)
    assert a.task.done()
    a.task = None
    for _ in range(10):
        feed.publish(ROOM)
    await _eventually(lambda: len(_seqs(moto_connections, "x=")) >= 20, "b takes over")
    assert _seqs(moto_connections, "x=") == list(range(1, 21))
    assert b.fanout.pumping == {ROOM}


async def test_nothing_is_posted_after_disconnect(
    fleet: list[Process], feed: MemoryFeed, moto_connections: MotoConnections
) -> None:
    a, b = fleet
    await _join(a.registry, "bye=")
    await _join(a.registry, "stay=")
    a.start()
    await _eventually(lambda: bool(a.fanout.pumping), "a pumps")
    feed.publish(ROOM)
    await _eventually(lambda: _seqs(moto_connections, "bye=") == [1], "first event")
    await b.registry.remove("bye=")  # DISCONNECT handled by the other process
    feed.publish(ROOM)
    await _eventually(lambda: _seqs(moto_connections, "stay=") == [1, 2], "stay= gets 2")
    assert _seqs(moto_connections, "bye=") == [1]


async def test_a_throttled_connection_is_caught_up_from_history_in_order(
    aws_credentials: None, feed: MemoryFeed
) -> None:
    store = open_store(None)
    registry = ConnectionRegistry(store)
    client = build_client("https://x.execute-api.us-east-1.amazonaws.com/dev", REGION, pool_size=2)
    sender = ApiGatewaySender(client, on_gone=registry.remove, max_attempts=2, base_delay_s=0.001)
    await _join(registry, "slow=")
    first, second = feed.publish(ROOM), feed.publish(ROOM)
    with Stubber(client) as stubber:
        for _ in range(2):  # the catch-up of 1: throttled on every attempt
            stubber.add_client_error(
                "post_to_connection", "LimitExceededException", http_status_code=429
            )
        for event in (first, second):  # the retry from history: 1 then 2, nothing twice
            stubber.add_response(
                "post_to_connection", {}, {"ConnectionId": "slow=", "Data": event.text.encode()}
            )
        pump = RoomPump(ROOM, feed, registry, sender, retry_s=0.05)
        task = asyncio.create_task(pump.run())
        try:
            await _eventually(lambda: _drained(stubber), "throttled, then caught up")
            await _eventually_async(
                lambda: registry.cursors(ROOM, ["slow="]), [2], "cursor advanced to 2"
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            sender.close()


async def _eventually_async(
    probe: Callable[[], Awaitable[object]], expected: object, what: str
) -> None:
    deadline = time.monotonic() + 15
    while await probe() != expected:
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


def _drained(stubber: Stubber) -> bool:
    """Every stubbed answer has been used."""
    try:
        stubber.assert_no_pending_responses()
    except AssertionError:
        return False
    return True


async def test_an_event_too_large_for_api_gateway_is_skipped_not_wedging_the_room(
    fleet: list[Process], feed: MemoryFeed, moto_connections: MotoConnections
) -> None:
    a, _ = fleet
    await _join(a.registry, "big=")
    a.start()
    await _eventually(lambda: bool(a.fanout.pumping), "a pumps")
    feed.publish(ROOM, agent="x" * (130 * 1024))  # over 128 KB: API Gateway would refuse it
    feed.publish(ROOM)
    await _eventually(lambda: _seqs(moto_connections, "big=") == [2], "the next event arrives")
    assert a.fanout.pumping == {ROOM}


class FlakyCursorWrites(ConnectionRegistry):
    """The store goes away right after the first post: that cursor write fails."""

    failures = 1

    async def advance(self, room: str, connection_id: str, seq: int) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("redis is unreachable (injected, between post and write)")
        await super().advance(room, connection_id, seq)


async def test_a_cursor_the_store_could_not_take_is_written_before_the_next_pump_posts(
    store: Store, moto_connections: MotoConnections, feed: MemoryFeed
) -> None:
    """Before: the restarted pump read the old cursor and posted event 1 again."""
    process = Process(store, moto_connections, feed)
    process.registry = FlakyCursorWrites(store)
    process.fanout = Fanout(store, process.registry, process.sender, feed, lease_s=0.6)
    try:
        await _join(process.registry, "once=")
        process.start()
        await _eventually(lambda: bool(process.fanout.pumping), "a pump")
        feed.publish(ROOM)
        await _eventually(lambda: _seqs(moto_connections, "once=") == [1], "event 1")
        await _eventually(lambda: bool(process.fanout.pumping), "the pump restarted")
        for _ in range(2):
            feed.publish(ROOM)
        await _eventually(lambda: len(_seqs(moto_connections, "once=")) >= 3, "events 2, 3")
        await asyncio.sleep(0.5)
        assert _seqs(moto_connections, "once=") == [1, 2, 3]
    finally:
        await process.stop()
