"""CPU per event of an agent process reporting into Redis (``pipeline_agent.RedisReporter``).

    uv run python -m bench.reporter_publish                       # 4,000/s for 4 s
    uv run python -m bench.reporter_publish --rate 8000 --tick 0.01

The agents' side of the ``hub-redis-direct`` path of ``bench/hub_fanout.py``, alone: one
reporter, 100 sessions, each report a task of its own (agents sharing a process report
side by side), paced by a clock that ticks every ``--tick`` seconds and starts the
reports due since the last tick (``--tick 0``: one report per loop turn, each at its own
time). Prints the process's CPU per report and the share of a core: on this 2-core
machine the publisher shares the cores with the server, the subscribers and Redis, so
what it spends is taken from the fan-out it measures. Nothing listens; the keys are
deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from typing import Any

import uvloop

from bench.hub_fanout import REDIS_URL, clean_redis
from pipeline_agent.redis_reporter import RedisReporter


async def run(rate: float, seconds: float, tick: float, prefix: str) -> tuple[int, float, float]:
    """Reports made, CPU seconds and wall seconds of the paced run."""
    reporter = RedisReporter(REDIS_URL, prefix=prefix, ttl_s=600)
    sessions = [f"bench-{i}" for i in range(100)]
    await reporter.report("warm-up", "renderer", "running")
    pending: set[asyncio.Task[Any]] = set()
    sent = 0
    cpu, start = time.process_time(), time.monotonic()
    while time.monotonic() - start < seconds:
        due = int((time.monotonic() - start) * rate) + 1 if tick else sent + 1
        while sent < due:
            data = {"t": time.time(), "w": False, "s": 0}
            report = reporter.report(
                sessions[sent % len(sessions)], "renderer", "running", 0.5, "frame", data
            )
            task = asyncio.create_task(report)
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        pause = tick if tick else start + sent / rate - time.monotonic()
        await asyncio.sleep(max(0.0, pause))
    await asyncio.gather(*pending)
    used, wall = time.process_time() - cpu, time.monotonic() - start
    await reporter.aclose()
    return sent, used, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=4000.0, help="reports/s")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--tick", type=float, default=0.001, help="the clock's tick, s")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.rounds):
        prefix = f"bench:{secrets.token_hex(4)}:"
        try:
            sent, used, wall = uvloop.run(run(args.rate, args.seconds, args.tick, prefix))
        finally:
            clean_redis(prefix)
        print(
            f"{args.rate:g}/s, tick {args.tick:g} s: {sent} reports, "
            f"{1e6 * used / sent:.1f} µs CPU each, {100 * used / wall:.0f} % of a core"
        )


if __name__ == "__main__":
    main()
