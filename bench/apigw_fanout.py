"""How fast room events reach API Gateway connections through @connections.

    uv run python -m bench.apigw_fanout --connections 50 --events 40 --concurrency 16

Runs moto's @connections backend on a loopback port (so the figures measure this
service's side: the fan-out, boto3 and the thread pool, not AWS), puts N connections in
one room, publishes M events, and prints posts/s and how long each event took to reach
every connection. The registry is the real Redis when --redis-url is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
import uuid

from backend.core.auth import Role
from backend.core.storage import open_store
from backend.gateway.apigw_sender import ApiGatewaySender, build_client
from backend.gateway.fanout import RoomPump
from backend.gateway.registry import ConnectionRegistry, GatewayConnection
from tests.gateway.memory_feed import MemoryFeed
from tests.support.moto_apigw import REGION, MotoConnections

ROOM = "bench-room"


async def _all_reached(registry: ConnectionRegistry, ids: list[str], seq: int) -> bool:
    return all(c is not None and c >= seq for c in await registry.cursors(ROOM, ids))


async def run(args: argparse.Namespace) -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    moto = MotoConnections()
    moto.start()
    store = open_store(args.redis_url, prefix=f"bench:{uuid.uuid4().hex[:8]}:")
    registry = ConnectionRegistry(store)
    client = build_client(moto.endpoint, REGION, pool_size=args.concurrency)
    sender = ApiGatewaySender(client, on_gone=registry.remove, concurrency=args.concurrency)
    feed = MemoryFeed()
    ids = [f"bench{n}=" for n in range(args.connections)]
    for cid in ids:
        record = GatewayConnection(cid, "bench", Role.USER, False)
        await registry.register(record)
        await registry.join(record, ROOM)
    pump = RoomPump(ROOM, feed, registry, sender)
    task = asyncio.create_task(pump.run())
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + args.max_seconds
    try:
        await asyncio.sleep(0.2)  # let the pump subscribe
        started = time.perf_counter()
        for _ in range(args.events):
            sent = time.perf_counter()
            event = feed.publish(ROOM)
            while not await _all_reached(registry, ids, event.seq):
                if time.perf_counter() > deadline:
                    raise SystemExit("bench: ran past --max-seconds")
                await asyncio.sleep(0.001)
            latencies.append(time.perf_counter() - sent)
        elapsed = time.perf_counter() - started
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sender.close()
        for cid in ids:
            await registry.remove(cid)
        await store.close()
        moto.stop()
    posts = args.connections * args.events
    print(
        f"store={store.name} connections={args.connections} events={args.events} "
        f"concurrency={args.concurrency}"
    )
    print(f"posts={posts} in {elapsed:.2f}s -> {posts / elapsed:.0f} posts/s")
    print(
        f"event -> all connections: median {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
