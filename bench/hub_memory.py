"""Where a hub connection's memory goes: tracemalloc in the server, RSS beside it.

    uv run python -m bench.hub_memory                       # 2,000 connections, memory bus
    uv run python -m bench.hub_memory --redis               # with Redis (BENCH_REDIS_URL)
    uv run python -m bench.hub_memory --connections 500 --top 25
    uv run python -m bench.hub_memory --ws wsproto          # another uvicorn WebSocket protocol
    uv run python -m bench.hub_memory --allocator           # live vs freed-but-kept bytes

The service runs in this process under tracemalloc; a subprocess opens the connections
(so none of the client's allocations are counted) and holds them. It prints the traced
bytes per connection, grouped by the file that allocated them and by line, the RSS
growth per connection (which also counts allocator slack and freed-but-kept pages), and
the objects the garbage collector tracks per connection, by type (each full collection
walks them all).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import multiprocessing as mp
import os
import secrets
import socket
import tracemalloc
from pathlib import Path
from typing import Any

from backend.app.ws_protocol import WS_PROTOCOL
from bench import alloc_stats

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _clients(port: int, count: int, ready: Any, stop: Any) -> None:
    from websockets.asyncio.client import connect

    async def run() -> None:
        sockets = []
        for start in range(0, count, 100):
            batch = range(start, min(count, start + 100))
            opened = await asyncio.gather(
                *(
                    connect(f"ws://127.0.0.1:{port}/ws/mem-{i % 40}", compression=None)
                    for i in batch
                )
            )
            for ws in opened:
                await ws.recv()  # connected
                await ws.recv()  # snapshot
            sockets += opened
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    asyncio.run(run())


async def measure(args: argparse.Namespace) -> None:
    import uvicorn

    os.environ.update(
        ENVIRONMENT="test",
        LOG_LEVEL="WARNING",
        RATE_LIMITS_ENABLED="false",
        PIPELINE_ENGINE="off",
        INTERVIEW_WARM_MODELS="false",  # its thread's allocations would be counted
    )
    if args.redis:
        os.environ.update(REDIS_URL=REDIS_URL, REDIS_PREFIX=f"bench:{secrets.token_hex(4)}:")
    from backend.app.main import app

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, ws=args.ws, log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    ctx = mp.get_context("spawn")
    warm_ready, warm_stop = ctx.Event(), ctx.Event()
    warm = ctx.Process(target=_clients, args=(port, 40, warm_ready, warm_stop))
    warm.start()  # the first connections of each room pay for the room: not counted
    await asyncio.to_thread(warm_ready.wait, 120)
    gc.collect()
    tracked_before = _tracked()
    allocated = alloc_stats.snapshot()
    if not args.allocator:
        tracemalloc.start(args.depth)
    before = tracemalloc.take_snapshot() if not args.allocator else None
    rss_before = _rss_kib()
    ready, stop = ctx.Event(), ctx.Event()
    clients = ctx.Process(target=_clients, args=(port, args.connections, ready, stop))
    clients.start()
    await asyncio.to_thread(ready.wait, 600)
    await asyncio.sleep(1.0)
    gc.collect()
    after = tracemalloc.take_snapshot() if before is not None else None
    rss_after = _rss_kib()
    tracemalloc.stop()
    tracked = _tracked()
    tracked.subtract(tracked_before)
    n = args.connections
    print(f"\n{n} idle connections ({'Redis' if args.redis else 'memory'} bus)")
    if before is None or after is None:  # no trace: its bookkeeping would be most of the RSS
        alloc_stats.report(allocated, alloc_stats.snapshot(), n)
    else:
        _report_trace(before, after, tracked, rss_after - rss_before, args)
    stop.set()
    warm_stop.set()
    await asyncio.to_thread(clients.join, 60)
    await asyncio.to_thread(warm.join, 60)
    server.should_exit = True
    await serving


def _report_trace(
    before: tracemalloc.Snapshot,
    after: tracemalloc.Snapshot,
    tracked: collections.Counter[str],
    rss_kib: int,
    args: argparse.Namespace,
) -> None:
    n = args.connections
    by_file = after.compare_to(before, "filename")
    total = sum(stat.size_diff for stat in by_file)
    print(f"traced: {total / n / 1024:.1f} KiB per connection")
    print(f"RSS:    {rss_kib / n:.1f} KiB per connection")
    print(f"GC-tracked objects: {tracked.total() / n:.1f} per connection\n")
    print("by file (bytes per connection):")
    for stat in by_file[: args.top]:
        name = stat.traceback[0].filename.split("site-packages/")[-1].split("/lib/python3")[-1]
        print(f"  {stat.size_diff / n:8.0f}  {name}")
    print("\nby line (bytes per connection):")
    for stat in after.compare_to(before, "lineno")[: args.top]:
        frame = stat.traceback[0]
        name = frame.filename.split("site-packages/")[-1].split("/lib/python3")[-1]
        print(f"  {stat.size_diff / n:8.0f}  {name}:{frame.lineno}")
    print("\nGC-tracked objects per connection, by type:")
    for name, count in tracked.most_common(args.top):
        print(f"  {count / n:8.2f}  {name}")


def _tracked() -> collections.Counter[str]:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--redis", action="store_true", help="the Redis bus (BENCH_REDIS_URL)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--allocator",
        action="store_true",
        help="no tracemalloc: pymalloc's and glibc's bytes in use and free, and RSS",
    )
    parser.add_argument("--depth", type=int, default=1, help="traceback frames kept")
    parser.add_argument(
        "--ws",
        default=WS_PROTOCOL,
        help="uvicorn's WebSocket protocol: the service's (default), websockets-sansio, "
        "websockets, wsproto",
    )
    args = parser.parse_args(argv)
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
