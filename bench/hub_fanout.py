"""Fan-out benchmark of the status hub against the raw `websockets` ceiling and python-socketio.

    uv run python -m bench.hub_fanout                      # 100 sessions x 50 subscribers
    uv run python -m bench.hub_fanout --sessions 20 --subscribers 50 --rate 200
    uv run python -m bench.hub_fanout --quick              # smoke run

One invocation measures, with the same subscriber processes and the same publisher rate:
(a) the service with the in-memory bus, (b) the service with Redis, (c) a minimal raw
`websockets` broadcast server (the Python ceiling), (d) python-socketio with
AsyncRedisManager. It prints delivered events/s, p50/p99 publish->receive latency, RSS
per idle connection, and the throughput ratios of (a) and (b) to (c) and (d).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Target:
    name: str
    kind: str  # hub | raw | sio
    command: list[str]
    env: dict[str, str]
    port: int
    prefix: str = ""


def targets(which: list[str]) -> list[Target]:
    out = []
    base_env = {**os.environ, "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
    base_env["RATE_LIMITS_ENABLED"] = "false"  # thousands of sockets from one address
    for name in which:
        port = _free_port()
        if name in ("hub-memory", "hub-redis"):
            env = dict(base_env)
            prefix = ""
            if name == "hub-redis":
                prefix = f"bench:{secrets.token_hex(4)}:"
                env.update(REDIS_URL=REDIS_URL, REDIS_PREFIX=prefix)
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws",
                "websockets-sansio",
                "--log-level",
                "warning",
                "--no-access-log",
            ]
            out.append(Target(name, "hub", cmd, env, port, prefix))
        elif name == "raw-websockets":
            cmd = [sys.executable, "-m", "bench.fanout_servers", "raw", str(port)]
            out.append(Target(name, "raw", cmd, base_env, port))
        elif name == "python-socketio":
            cmd = [sys.executable, "-m", "bench.fanout_servers", "socketio", str(port), REDIS_URL]
            out.append(Target(name, "sio", cmd, base_env, port))
    return out


# -- subscribers (run in worker processes) ----------------------------------------------
async def _subscribe(kind: str, port: int, session: str) -> ClientConnection:
    if kind == "hub":
        ws = await connect(
            f"ws://127.0.0.1:{port}/ws/{session}", max_size=None, compression=None, open_timeout=30
        )
        await ws.recv()  # connected
        await ws.recv()  # snapshot
    elif kind == "raw":
        ws = await connect(
            f"ws://127.0.0.1:{port}/sub/{session}", compression=None, open_timeout=30
        )
        await ws.recv()
    else:
        ws = await connect(
            f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
            compression=None,
            open_timeout=30,
        )
        await ws.recv()  # engine.io open
        await ws.send("40")
        await ws.recv()  # namespace connected
        await ws.send(json.dumps(["join", session]).join(["42", ""]))
        while not str(await ws.recv()).startswith('42["snapshot"'):
            pass
    return ws


def _event_of(kind: str, raw: str | bytes) -> dict[str, Any] | None:
    text = raw if isinstance(raw, str) else raw.decode()
    if kind == "sio":
        if not text.startswith('42["agent_status"'):
            return None
        payload: dict[str, Any] = json.loads(text[2:])[1]
        return payload
    body: dict[str, Any] = json.loads(text)
    return body if body.get("type") == "agent_status" else None


async def _read(
    kind: str, ws: ClientConnection, lat: list[float], count: list[int], stop: Any
) -> None:
    while not stop.is_set():
        try:
            raw = await asyncio.wait_for(ws.recv(), 0.5)
        except TimeoutError:
            continue
        except Exception:
            return
        if kind == "sio" and raw == "2":
            await ws.send("3")
            continue
        event = _event_of(kind, raw)
        if event is not None:
            count[0] += 1
            if not event["data"].get("w"):  # warm-up events count, but not for latency
                lat.append(time.time() - float(event["data"]["t"]))


def _worker(
    kind: str, port: int, sessions: list[str], ready: Any, go: Any, stop: Any, results: Any
) -> None:
    _raise_nofile()

    async def run() -> None:
        sockets = []
        for i in range(0, len(sessions), 100):
            sockets += await asyncio.gather(
                *(_subscribe(kind, port, s) for s in sessions[i : i + 100])
            )
        ready.put(len(sockets))
        while not go.is_set():
            await asyncio.sleep(0.05)
        lat: list[float] = []
        count = [0]
        await asyncio.gather(*(_read(kind, ws, lat, count, stop) for ws in sockets))
        results.put((lat, count[0]))
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    asyncio.run(run())


HTTP_LANES = 4


# -- the publisher -------------------------------------------------------------------------
async def _publish(
    target: Target, sessions: list[str], rate: float, duration: float, warmup: float
) -> int:
    interval = 1.0 / rate
    duration += warmup
    sent = 0
    start = time.monotonic()

    def event() -> dict[str, Any]:
        return {
            "agent": "renderer",
            "status": "running",
            "progress": 0.5,
            "message": "frame",
            "data": {"t": time.time(), "w": time.monotonic() - start < warmup},
        }

    if target.kind == "hub":
        # Keep-alive HTTP/1.1 on a few sockets, requests written by hand: a general-purpose
        # client (httpx) costs most of a core at these rates and would starve the server
        # it measures on a 2-core machine.
        lanes = [await asyncio.open_connection("127.0.0.1", target.port) for _ in range(HTTP_LANES)]
        in_flight = [asyncio.Queue[float]() for _ in lanes]
        failed = 0

        async def read_replies(lane: int) -> None:
            nonlocal failed
            reader = lanes[lane][0]
            while True:
                await in_flight[lane].get()
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                failed += status != 202
                in_flight[lane].task_done()

        readers = [asyncio.create_task(read_replies(i)) for i in range(len(lanes))]
        while time.monotonic() - start < duration:
            lane = sent % len(lanes)
            body = json.dumps(event()).encode()
            lanes[lane][1].write(
                f"POST /api/sessions/{sessions[sent % len(sessions)]}/events HTTP/1.1\r\n"
                f"host: 127.0.0.1\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            in_flight[lane].put_nowait(time.monotonic())
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
        try:
            await asyncio.wait_for(asyncio.gather(*(q.join() for q in in_flight)), 30)
        except TimeoutError:
            failed += sum(q.qsize() for q in in_flight)
        for task in readers:
            task.cancel()
        for _, writer in lanes:
            writer.close()
        if failed:
            print(f"  {target.name}: {failed} publishes failed", file=sys.stderr)
        return sent - failed
    if target.kind == "raw":
        ws = await connect(f"ws://127.0.0.1:{target.port}/publish", compression=None)
        frame = lambda s: json.dumps({"publish": s, "event": event()})  # noqa: E731
    else:
        ws = await _subscribe("sio", target.port, "publisher")
        frame = lambda s: "42" + json.dumps(["publish", {"publish": s, "event": event()}])  # noqa: E731
    while time.monotonic() - start < duration:
        await ws.send(frame(sessions[sent % len(sessions)]))
        sent += 1
        await asyncio.sleep(max(0.0, start + sent * interval - time.monotonic()))
    await ws.close()
    return sent


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


def measure(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    server = subprocess.Popen(
        target.command,
        cwd=ROOT,
        env=target.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(target.port, server)
        time.sleep(0.5)
        rss_before = _rss_kib(server.pid)
        sessions = [f"bench-{i}" for i in range(args.sessions)]
        subscriptions = [s for s in sessions for _ in range(args.subscribers)]
        ctx = mp.get_context("spawn")
        ready, results = ctx.Queue(), ctx.Queue()
        go, stop = ctx.Event(), ctx.Event()
        chunks = [subscriptions[i :: args.workers] for i in range(args.workers)]
        workers = [
            ctx.Process(
                target=_worker, args=(target.kind, target.port, chunk, ready, go, stop, results)
            )
            for chunk in chunks
        ]
        for worker in workers:
            worker.start()
        connected = sum(ready.get(timeout=180) for _ in workers)
        time.sleep(1.0)
        rss_idle = _rss_kib(server.pid)
        go.set()
        sent = asyncio.run(_publish(target, sessions, args.rate, args.duration, args.warmup))
        time.sleep(1.0)  # let the last events land
        stop.set()
        replies = [results.get(timeout=60) for _ in workers]
        latencies = [x for lat, _ in replies for x in lat]
        delivered = sum(count for _, count in replies)
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        if target.prefix:
            _clean_redis(target.prefix)
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
    return {
        "target": target.name,
        "connections": connected,
        "published": sent,
        "delivered": delivered,
        "expected": sent * args.subscribers,
        "delivered_per_s": delivered / (args.duration + args.warmup),
        "p50_ms": pct(0.50) if latencies else float("nan"),
        "p99_ms": pct(0.99) if latencies else float("nan"),
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "rss_per_conn_kib": (rss_idle - rss_before) / max(1, connected),
    }


def _clean_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\n{args.sessions} sessions x {args.subscribers} subscribers, {args.rate:g} events/s "
        f"for {args.duration:g} s after {args.warmup:g} s warm-up ({args.workers} subscriber "
        f"processes), {os.cpu_count()} cores"
    )
    header = (
        f"{'target':<17}{'conns':>7}{'delivered/s':>13}{'lost':>7}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'KiB/conn':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['target']:<17}{row['connections']:>7}{row['delivered_per_s']:>13.0f}"
            f"{row['expected'] - row['delivered']:>7}{row['p50_ms']:>9.1f}"
            f"{row['p99_ms']:>9.1f}{row['rss_per_conn_kib']:>10.1f}"
        )
    by = {row["target"]: row for row in rows}
    print()
    for ours in ("hub-memory", "hub-redis"):
        for base in ("raw-websockets", "python-socketio"):
            if ours in by and base in by and by[base]["delivered_per_s"]:
                ratio = by[ours]["delivered_per_s"] / by[base]["delivered_per_s"]
                print(f"throughput {ours} / {base}: {ratio:.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--rate", type=float, default=200.0, help="published events/s")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds published first, left out of latency"
    )
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--targets", default="hub-memory,hub-redis,raw-websockets,python-socketio")
    parser.add_argument("--quick", action="store_true", help="a small smoke configuration")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.sessions, args.subscribers, args.rate, args.duration = 2, 5, 20.0, 2.0
        args.warmup = 0.5
        args.workers = 1
    _raise_nofile()
    rows = [measure(target, args) for target in targets(args.targets.split(","))]
    report(rows, args)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
