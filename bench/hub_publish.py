"""CPU per published event, stage by stage, in one process: where `POST /events` goes.

    uv run python -m bench.hub_publish                   # Redis bus, 2,000 publishes a round
    uv run python -m bench.hub_publish --bus memory
    uv run python -m bench.hub_publish --profile 25      # + cProfile's top 25 of a request

The app runs with its lifespan and is called as uvicorn calls it (an ASGI scope, the
body in one ``http.request``), so the figures leave out the sockets and the HTTP parser
and keep everything of ours and of FastAPI's. Each stage awaits its publishes one after
another and is timed with the process's CPU clock; stages take turns over ``--rounds``
rounds so the machine's other load touches each alike, and the best round is printed
with the spread. Stages:

- ``request``: the whole request (middleware, routing, auth, validation, the bus, the 202),
- ``request, 8 at once``: eight such requests at a time (figures per publish), as agents
  publishing side by side do: what their publishes can share (one Redis pipeline),
- ``request+limits``: the same with rate limits on (each publish counted per principal
  and per IP),
- ``request+listener``: the room followed by this process, each publish waited for until
  the Redis listener handed it back (the difference to ``request`` is the listener's),
- ``hub.publish``: the event's fields checked and the bus's publish, no HTTP,
- ``redis PING``: one round trip through redis-py, the floor of any Redis call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bench.hub_fanout import REDIS_URL, clean_redis

Stage = Callable[[int], Awaitable[None]]


def _body(i: int) -> bytes:
    event = {
        "agent": "renderer",
        "status": "running",
        "progress": 0.5,
        "message": "frame",
        "data": {"t": time.time(), "w": False, "s": i},
    }
    return json.dumps(event).encode()


def _scope(path: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


@contextlib.asynccontextmanager
async def _app(bus: str, limits: bool) -> AsyncIterator[tuple[Any, Any]]:
    """The service's app with its lifespan running, and its AppState."""
    from asgi_lifespan import LifespanManager

    from backend.app.main import create_app
    from backend.app.settings import load_settings

    overrides: dict[str, Any] = {"environment": "test", "log_level": "WARNING"}
    overrides["rate_limits_enabled"] = limits
    if limits:  # counted as in production, but above what one process publishes here
        overrides.update(
            rate_limit_event_publish="5000/second", rate_limit_event_publish_per_ip="5000/second"
        )
    prefix = f"bench:{secrets.token_hex(4)}:"
    if bus == "redis":
        overrides.update(redis_url=REDIS_URL, redis_prefix=prefix)
    app = create_app(load_settings(**overrides))
    try:
        async with LifespanManager(app, startup_timeout=30) as manager:
            state = manager._state["services"]
            yield manager.app, state
    finally:
        if bus == "redis":
            clean_redis(prefix)


def _request_stage(app: Any, room: str) -> Stage:
    path = f"/api/sessions/{room}/events"

    async def one(i: int) -> None:
        body = _body(i)
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(_scope(path, body), receive, send)
        if sent[0]["status"] != 202:
            raise RuntimeError(f"publish answered {sent[0]['status']}: {sent[1:]}")

    return one


async def _timed(stage: Stage, count: int) -> float:
    """CPU µs per call of ``stage`` (``count`` calls, one after another)."""
    started = time.process_time()
    for i in range(count):
        await stage(i)
    return 1e6 * (time.process_time() - started) / count


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    from backend.hub.events import new_event_fields

    results: dict[str, list[float]] = {}
    async with _app(args.bus, False) as (app, state), _app(args.bus, True) as (limited, _):
        room, followed = f"bench-{secrets.token_hex(3)}", f"bench-{secrets.token_hex(3)}"
        request = _request_stage(app, room)
        async with state.hub.watch(followed) as heard:
            through_listener = _request_stage(app, followed)

            async def request_listened(i: int) -> None:
                await through_listener(i)
                await heard.get()

            async def hub_publish(i: int) -> None:
                body = json.loads(_body(i))
                fields = new_event_fields(
                    body["agent"], body["status"], body["progress"], body["message"], body["data"]
                )
                await state.hub.publish(room, fields)

            async def request_8(i: int) -> None:  # one call: 8 publishes at once, as agents do
                await asyncio.gather(*(request(8 * i + j) for j in range(8)))

            stages: dict[str, Stage] = {
                "request": request,
                "request, 8 at once": request_8,
                "request+limits": _request_stage(limited, room),
                "request+listener": request_listened,
                "hub.publish": hub_publish,
            }
            if args.bus == "redis":
                client = state.store.client

                async def ping(_: int) -> None:
                    await client.ping()

                stages["redis PING"] = ping
            for stage in stages.values():  # warm: imports, caches, pooled connections
                await _timed(stage, 100)
            for _ in range(args.rounds):
                for name, stage in stages.items():
                    calls = args.count // 8 if name.endswith("8 at once") else args.count
                    results.setdefault(name, []).append(await _timed(stage, calls))
            if args.profile:
                await _profile(request, args)
    return results


async def _profile(stage: Stage, args: argparse.Namespace) -> None:
    """cProfile over one round of ``stage``: the functions that took its time."""
    profiler = cProfile.Profile(time.process_time)  # CPU: a loaded machine adds waits
    profiler.enable()
    for i in range(args.count):
        await stage(i)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(args.profile)
    stats.sort_stats("cumulative").print_stats(args.profile)


def report(results: dict[str, list[float]], args: argparse.Namespace) -> None:
    print(
        f"\nCPU µs per publish, {args.bus} bus, {args.count} publishes a round, "
        f"best of {args.rounds} (spread), load average {os.getloadavg()[0]:.1f}"
    )
    for name, figures in results.items():
        per = 8 if name.endswith("8 at once") else 1  # per publish
        low, high = min(figures) / per, max(figures) / per
        print(f"  {name:<20}{low:>8.1f}   ({low:.1f}-{high:.1f})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bus", choices=("redis", "memory"), default="redis")
    parser.add_argument("--count", type=int, default=2000, help="publishes per stage a round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args))
    report(results, args)
    if args.json:
        print(json.dumps(results))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
