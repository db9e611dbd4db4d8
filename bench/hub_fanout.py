"""Fan-out benchmark of the status hub against the raw `websockets` ceiling and python-socketio.

    uv run python -m bench.hub_fanout                      # 100 sessions x 50 subscribers
    uv run python -m bench.hub_fanout --sessions 20 --subscribers 50 --rate 200
    uv run python -m bench.hub_fanout --quick              # smoke run
    uv run python -m bench.hub_fanout --repeat 5 --targets hub-memory,hub-redis,python-socketio

One invocation measures, with the same subscriber processes and the same publisher rate:
(a) the service with the in-memory bus, (b) the service with Redis, (c) a minimal raw
`websockets` broadcast server (the Python ceiling), (d) python-socketio with
AsyncRedisManager. It prints delivered events/s, p50/p99 publish->receive latency, RSS
per idle connection, and the throughput ratios of (a) and (b) to (c) and (d).

The load generator (subscriber processes, publisher, storm clients) reads through
:mod:`bench.ws_reader` and :mod:`bench.fanout_subscriber` on uvloop, a few µs of Python
per received frame, so that the server, not the generator, is what a saturation step
finds; ``--pin`` puts the server on CPU 0 and the generator on CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import os
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from backend.app.ws_protocol import WS_PROTOCOL
from bench import fanout_subscriber, gc_probe, hub_rounds, hub_stages, ws_reader
from bench.ws_reader import WebSocketClient

Pause = gc_probe.Pause
# What a subscriber process reports: latencies per step, deliveries per step, its
# collections, (``--stages``) every delivery's event and arrival time, and the duplicate
# (or out-of-order) deliveries per step.
Reply = tuple[
    dict[int, list[float]], list[int], list[Pause], "hub_stages.Deliveries | None", dict[int, int]
]

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _raise_nofile(want: int = 65536) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:  # a privileged process may raise the hard limit (20,000 sockets need more)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, hard), max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Target:
    name: str
    kind: str  # hub | raw | sio
    command: list[str]
    env: dict[str, str]
    port: int
    prefix: str = ""
    direct: bool = False  # publish straight into Redis, as pipeline_agent's RedisReporter


def targets(which: list[str]) -> list[Target]:
    out = []
    base_env = {**os.environ, "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
    base_env["RATE_LIMITS_ENABLED"] = "false"  # thousands of sockets from one address
    # The voice models load in a thread once the port is open: RSS moved by +-100 MiB
    # while the connections opened (up to 50 KiB "per connection" at 2,000), and a core.
    base_env["INTERVIEW_WARM_MODELS"] = "false"
    for name in which:
        port = _free_port()
        if name in ("hub-memory", "hub-redis", "hub-redis-direct"):
            env = dict(base_env)
            prefix = ""
            if name != "hub-memory":
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
                WS_PROTOCOL,
                "--log-level",
                "warning",
                "--no-access-log",
            ]
            out.append(Target(name, "hub", cmd, env, port, prefix, name == "hub-redis-direct"))
        elif name == "raw-websockets":
            cmd = [sys.executable, "-m", "bench.fanout_servers", "raw", str(port)]
            out.append(Target(name, "raw", cmd, base_env, port))
        elif name == "python-socketio":
            cmd = [sys.executable, "-m", "bench.fanout_servers", "socketio", str(port), REDIS_URL]
            out.append(Target(name, "sio", cmd, base_env, port))
    return out


# -- subscribers (run in worker processes: bench.fanout_subscriber) ---------------------


def _worker(
    kind: str,
    port: int,
    sessions: list[str],
    ready: Any,
    go: Any,
    stop: Any,
    results: Any,
    offset: int = 0,
    hold: bool = False,
    gc_log: bool = False,
    freeze: bool = True,
    stages: bool = False,
) -> None:
    """Subscribe to ``sessions``; then read (latency per step) or, ``hold``, only hold the
    sockets open (answering the server's pings) until ``stop``."""
    _raise_nofile()
    if gc_log:
        gc_probe.install()

    async def subscribe(session: str, index: int) -> WebSocketClient | None:
        for _ in range(3):  # a handshake the loaded server dropped or closed is tried again
            try:
                async with asyncio.timeout(60):
                    return await fanout_subscriber.subscribe(kind, port, session, index)
            except (OSError, TimeoutError):
                await asyncio.sleep(0.5)
        return None

    async def run() -> None:
        sockets: list[WebSocketClient] = []
        for i in range(0, len(sessions), 100):
            opened = await asyncio.gather(
                *(subscribe(s, offset + i + j) for j, s in enumerate(sessions[i : i + 100]))
            )
            sockets += [ws for ws in opened if ws is not None]
        # From here every frame is counted as it is parsed (held sockets answer pings).
        tally = fanout_subscriber.Tally(kind, hub_stages.Deliveries() if stages else None)
        for ws in sockets:
            tally.listen(ws)
        if freeze:
            # This process only timestamps arrivals: its own collections (full ones took
            # 170-470 ms with 2,500 sockets, and the young ones added up to seconds while
            # it lagged) would count as the server's latency. What is alive now stays to
            # the end and is frozen; the collector is off for the bounded run after it.
            gc.collect()
            gc.freeze()
            gc.disable()
        ready.put(len(sockets))
        while not go.is_set():
            await asyncio.sleep(0.05)
        while not stop.is_set():
            await asyncio.sleep(0.05 if not hold else 0.2)
        if hold:
            alive = sum(ws.close_code is None for ws in sockets)
            results.put(({}, [alive], gc_probe.pauses(), None, {}))
        else:
            pauses = gc_probe.pauses()
            results.put((tally.latencies, tally.count, pauses, tally.trace, tally.duplicates))
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    uvloop.run(run())  # asyncio's own loop cost ~20 µs per read, most of a frame's


# Keep-alive HTTP/1.1 connections of the publisher: one per session (an agent per session,
# as in production), up to this many. Requests on one connection are answered one after
# the other, so with 4 of them (before round 4) every request waited for the whole
# round trip of the ones before it on its lane: any slow loop turn of the server queued
# the lane behind it, and that queue was most of the tail ("The Redis tail").
HTTP_LANES = 100


# -- the publisher -------------------------------------------------------------------------
async def _publish(
    target: Target,
    sessions: list[str],
    steps: list[tuple[float, float]],
    warmup: float,
    pids: dict[str, list[int]] | None = None,
) -> tuple[list[int], list[dict[str, float]]]:
    """Publish at each step's rate for its seconds (the first ``warmup`` of each left out
    of latency); the sent count of each step, and the CPU seconds each role's processes
    (``pids``: the server, the subscribers; and this process, the publisher) used in it."""
    counts = [0 for _ in steps]
    cpu: list[dict[str, float]] = []
    for index, (rate, seconds) in enumerate(steps):
        before, began = _cpu_of(pids), time.monotonic()
        counts[index] = await _publish_step(target, sessions, index, rate, seconds, warmup)
        after = _cpu_of(pids)
        # The step lasts until its last reply came: longer than planned when the server lags.
        cpu.append({role: after[role] - before[role] for role in after})
        cpu[-1]["wall"] = time.monotonic() - began
    return counts, cpu


def _cpu_of(pids: dict[str, list[int]] | None) -> dict[str, float]:
    """CPU seconds used so far by each role's processes, by this one (the publisher) and,
    when ``pids`` names it (``"redis": []``), by the Redis server (INFO: it may run
    elsewhere, and it is shared: other clients' commands count too)."""
    used = {
        role: sum(_cpu_s(pid) for pid in group)
        for role, group in (pids or {}).items()
        if role != "redis"
    }
    used["publisher"] = time.process_time()
    if pids and "redis" in pids:
        used["redis"] = _redis_cpu_s()
    return used


def _redis_cpu_s() -> float:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def _publish_step(
    target: Target, sessions: list[str], step: int, rate: float, duration: float, warmup: float
) -> int:
    duration += warmup
    sent = 0
    start = time.monotonic()

    def event() -> dict[str, Any]:
        return {
            "agent": "renderer",
            "status": "running",
            "progress": 0.5,
            "message": "frame",
            "data": {"t": time.time(), "w": time.monotonic() - start < warmup, "s": step},
        }

    if target.direct:
        return await _publish_direct(target, sessions, rate, duration, event)
    if target.kind == "hub":
        # Keep-alive HTTP/1.1, a socket per session, requests written by hand: a general-purpose
        # client (httpx) costs most of a core at these rates and would starve the server
        # it measures on a 2-core machine.
        count = min(len(sessions), HTTP_LANES)
        lanes = [await asyncio.open_connection("127.0.0.1", target.port) for _ in range(count)]
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
        async for due in _schedule(start, rate, duration):
            for _ in range(due):
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
        ws = await ws_reader.connect("127.0.0.1", target.port, "/publish")
        frame = lambda s: json.dumps({"publish": s, "event": event()})  # noqa: E731
    else:
        ws = await fanout_subscriber.subscribe("sio", target.port, "publisher")
        frame = lambda s: "42" + json.dumps(["publish", {"publish": s, "event": event()}])  # noqa: E731
    fanout_subscriber.Tally(target.kind).listen(ws)  # answers Engine.IO's pings
    async for due in _schedule(start, rate, duration):
        for _ in range(due):
            ws.send(frame(sessions[sent % len(sessions)]))
            sent += 1
    await ws.close()
    return sent


async def _publish_direct(
    target: Target,
    sessions: list[str],
    rate: float,
    duration: float,
    event: Callable[[], dict[str, Any]],
) -> int:
    """Agents reporting straight into Redis through ``pipeline_agent.RedisReporter`` (the
    hub's own Lua script, pipelined on one connection): the service under test only fans
    out. One reporter for the generator's agents, each publish a task of its own, as
    agents sharing a process report side by side."""
    from pipeline_agent.redis_reporter import RedisReporter

    reporter = RedisReporter(REDIS_URL, prefix=target.prefix, history_size=1000, ttl_s=3600)
    sent = 0
    pending: set[asyncio.Task[Any]] = set()
    start = time.monotonic()
    async for due in _schedule(start, rate, duration):
        for _ in range(due):
            body = event()
            report = reporter.report(
                sessions[sent % len(sessions)],
                body["agent"],
                body["status"],
                body["progress"],
                body["message"],
                body["data"],
            )
            task = asyncio.create_task(report)
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
    results = await asyncio.gather(*pending, return_exceptions=True)
    failed = sum(isinstance(r, BaseException) for r in results)
    await reporter.aclose()
    if failed:
        print(f"  {target.name}: {failed} publishes failed", file=sys.stderr)
    return sent - failed


# The publisher's clock. Events due within one tick go out in the same loop turn (each
# stamped with its own time), as agents publishing side by side do, and every target is
# offered the same schedule; one loop turn per event made the generator's clock, not the
# server, the limit of the Redis publisher at a few thousand events/s (round 6).
TICK_S = 0.001


async def _schedule(start: float, rate: float, duration: float) -> AsyncIterator[int]:
    """How many events are due, once per tick, for ``duration`` seconds from ``start``
    (event ``i`` is due at ``start + i / rate``)."""
    sent = 0
    while (now := time.monotonic()) - start < duration:
        due = int((now - start) * rate) + 1
        if due > sent:
            yield due - sent
            sent = due
        await asyncio.sleep(max(TICK_S, start + sent / rate - time.monotonic()))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def _profile(
    target: Target, pid: int, args: argparse.Namespace, what: str = ""
) -> subprocess.Popen[bytes]:
    """py-spy on the server while events are published (not while sockets connect), or
    during a reconnect storm (``what``: "storm", in the file's name)."""
    out = f"{args.profile}-{what + '-' if what else ''}{target.name}.txt"
    command = ["py-spy", "record", "--nonblocking", "--rate", "200", "--format", "raw"]
    command += ["--pid", str(pid), "-o", out]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def _server(
    target: Target,
    extra: list[str] | None = None,
    gc_out: str | None = None,
    stages_out: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    command = [*target.command, *(extra or [])]
    if gc_out:  # the same module run under bench.gc_probe: [python, -m, module, ...]
        command = [command[0], "-m", "bench.gc_probe", gc_out, *command[1:]]
    if stages_out:  # and under bench.stage_probe (which runs the gc_probe, if any)
        command = [command[0], "-m", "bench.stage_probe", stages_out, *command[1:]]
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=target.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(target.port, server)
        time.sleep(0.5)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        if target.prefix:
            clean_redis(target.prefix)


@dataclass
class Workers:
    """Subscriber processes, each holding its share of the sockets."""

    processes: list[Any]
    ready: Any
    go: Any
    stop: Any
    results: Any

    @classmethod
    def start(
        cls,
        target: Target,
        subscriptions: list[str],
        count: int,
        *,
        hold: bool = False,
        gc_log: bool = False,
        freeze: bool = True,
        stages: bool = False,
    ) -> Workers:
        ctx = mp.get_context("spawn")
        ready, results = ctx.Queue(), ctx.Queue()
        go, stop = ctx.Event(), ctx.Event()
        processes = [
            ctx.Process(
                target=_worker,
                args=(target.kind, target.port, subscriptions[i::count], ready, go, stop),
                kwargs={
                    "results": results,
                    "offset": i,
                    "hold": hold,
                    "gc_log": gc_log,
                    "freeze": freeze,
                    "stages": stages,
                },
            )
            for i in range(count)
        ]
        for process in processes:
            process.start()
        return cls(processes, ready, go, stop, results)

    def connected(self) -> int:
        return sum(self.ready.get(timeout=600) for _ in self.processes)

    def finish(self) -> list[Reply]:
        self.stop.set()
        replies = [self.results.get(timeout=120) for _ in self.processes]
        self.join()
        return replies

    def join(self) -> None:
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def _pct(latencies: list[float], p: float) -> float:
    if not latencies:
        return float("nan")
    return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000


def measure(target: Target, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Fan-out at each rate of ``args.steps`` over the same connections: a row per step."""
    gc_name = f"bench-gc-{target.name}-{os.getpid()}.json"
    gc_out = os.path.join(tempfile.gettempdir(), gc_name) if args.gc else None
    stages_name = f"bench-stages-{target.name}-{os.getpid()}.json"
    stages = args.stages and target.kind == "hub"
    stages_out = os.path.join(tempfile.gettempdir(), stages_name) if stages else None
    with _server(target, gc_out=gc_out, stages_out=stages_out) as server:
        if args.pin:
            _pin(server.pid, SERVER_CPU)
        rss_before = _rss_kib(server.pid)
        sessions = [f"bench-{i}" for i in range(args.sessions)]
        subscriptions = [s for s in sessions for _ in range(args.subscribers)]
        workers = Workers.start(
            target,
            subscriptions,
            args.workers,
            gc_log=args.gc,
            freeze=not args.client_gc,
            stages=stages,
        )
        connected = workers.connected()
        time.sleep(1.0)
        rss_idle = _rss_kib(server.pid)
        full_gc = _full_collection(server, gc_out) if gc_out else {}
        spy = _profile(target, server.pid, args) if args.profile else None
        workers.go.set()
        pids = {"server": [server.pid], "subscribers": [p.pid for p in workers.processes]}
        if target.prefix or target.kind == "sio":
            pids["redis"] = []  # its CPU too: the Redis path's share of the machine
        # Collections are counted from the end of the first step's warm-up, as latency is:
        # the warm-up's (a room's first event, the fills) are not the steady state's.
        window_start = time.monotonic() + args.warmup
        sent, cpu = uvloop.run(_publish(target, sessions, args.steps, args.warmup, pids))
        busy = [dict(used) for used in cpu]  # while publishing, before the drain
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
            spy.wait(timeout=60)
        published_cpu = _cpu_s(server.pid)
        time.sleep(args.drain)  # let the last events land
        cpu[-1]["server"] += _cpu_s(server.pid) - published_cpu  # what the drain delivered
        window_end = time.monotonic()
        server_pauses = _server_pauses(server, gc_out) if gc_out else []
        young = _young_objects(gc_out) if gc_out else {}
        server_stages = hub_stages.read_server(server, stages_out) if stages_out else None
        replies = workers.finish()
    gc_figures: dict[str, Any] = {}
    if args.gc:
        client_pauses = [p for _, _, pauses, _, _ in replies for p in pauses]
        gc_figures = {
            "gc_server": gc_probe.summary(server_pauses, window_start, window_end),
            "gc_clients": gc_probe.summary(client_pauses, window_start, window_end),
            "gc_full": full_gc,
            "gc_young": young,
        }
    if server_stages is not None:
        gc_figures["stages"] = hub_stages.breakdown(
            server_stages, [trace for _, _, _, trace, _ in replies if trace is not None]
        )
    rows = []
    for step, (rate, seconds) in enumerate(args.steps):
        latencies = sorted(x for lat, _, _, _, _ in replies for x in lat.get(step, []))
        delivered = sum(count[step] if step < len(count) else 0 for _, count, _, _, _ in replies)
        duplicates = sum(dups.get(step, 0) for _, _, _, _, dups in replies)
        rows.append(
            {
                "target": target.name,
                "connections": connected,
                "rate": rate,
                "published": sent[step],
                "delivered": delivered,  # each (connection, seq) once
                "duplicates": duplicates,  # seqs a connection had already had
                "expected": sent[step] * args.subscribers,
                "delivered_per_s": delivered / (seconds + args.warmup),
                "p50_ms": _pct(latencies, 0.50),
                "p99_ms": _pct(latencies, 0.99),
                "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
                "rss_per_conn_kib": (rss_idle - rss_before) / max(1, connected),
                # The server's CPU for each delivery while this step published: what a
                # delivery costs, whatever else the machine was doing.
                "server_cpu_s": cpu[step]["server"],
                "cpu_us_per_delivery": (
                    1e6 * cpu[step]["server"] / delivered if delivered else float("nan")
                ),
                "subscriber_cpu_us_per_delivery": (
                    1e6 * busy[step]["subscribers"] / delivered if delivered else float("nan")
                ),
                # Each role's CPU over the step, in % of one core: who ran out first.
                **{
                    f"{role}_cpu_pct": 100 * used / busy[step]["wall"]
                    for role, used in busy[step].items()
                    if role != "wall"
                },
                **gc_figures,
            }
        )
    return rows


# ``--pin``: the server under test on one core, the load generator (this process, the
# subscriber processes it spawns, the publisher) on the other.
SERVER_CPU, GENERATOR_CPU = {0}, {1}


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` onto ``cpus`` (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


def _full_collection(server: subprocess.Popen[bytes], path: str) -> dict[str, Any]:
    """One full collection in the server with every connection open (SIGUSR2): its length
    and the objects the collector tracks."""
    server.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            with open(path + ".full") as f:
                found: dict[str, Any] = json.load(f)
            os.unlink(path + ".full")
            time.sleep(0.5)
            return found
        time.sleep(0.1)
    return {}


def _young_objects(path: str) -> dict[str, Any]:
    """What the server's young collections found alive (written beside its pauses)."""
    with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
        with open(path + ".young") as f:
            found: dict[str, Any] = json.load(f)
        os.unlink(path + ".young")
        return found
    return {}


def _server_pauses(server: subprocess.Popen[bytes], path: str) -> list[Pause]:
    """The collections the server timed (bench.gc_probe writes them on SIGUSR1)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                records = [tuple(p) for p in json.load(f)]
            os.unlink(path)
            return records  # type: ignore[return-value]
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.1)
    print(f"  no GC record from the server in {path}", file=sys.stderr)
    return []


# -- reconnect storm ---------------------------------------------------------------------
def _storm_worker(
    kind: str,
    port: int,
    resumes: list[tuple[str, int, str | None, int]],
    offset: int,
    start_at: Any,
    results: Any,
) -> None:
    """Open every socket at ``start_at``; each is done once it has everything up to its
    session's last seq (hub: snapshot ``recovered`` then the missed events, in order)."""
    _raise_nofile()

    async def one(i: int, session: str, last_seq: int, epoch: str | None, head: int) -> str:
        query = f"?last_seq={last_seq}" + (f"&epoch={epoch}" if epoch else "")
        path = f"/ws/{session}{query}" if kind == "hub" else f"/sub/{session}"
        try:
            async with asyncio.timeout(60):
                ws = await ws_reader.connect(
                    "127.0.0.1", port, path, fanout_subscriber.source(offset + i)
                )
        except (OSError, TimeoutError) as exc:
            return type(exc).__name__
        try:
            if kind != "hub":
                await ws.recv()  # the raw server's snapshot: all it has
                return "ok"
            expected = last_seq + 1
            async with asyncio.timeout(60):
                while expected <= head:
                    body = json.loads(await ws.recv())
                    if body["type"] == "snapshot" and not body["recovered"]:
                        return "not_recovered"
                    if body["type"] == "agent_status":
                        if body["seq"] != expected:
                            return "out_of_order"
                        expected += 1
            return "ok"
        except ConnectionError:
            return f"closed {ws.close_code}"
        except Exception as exc:
            return type(exc).__name__
        finally:
            await ws.close()

    async def run() -> None:
        start = start_at.get()
        # As the fan-out's subscribers: this process's full collections (over thousands
        # of sockets) would be timed as the server's. The storm is bounded.
        gc.collect()
        gc.freeze()
        gc.disable()
        await asyncio.sleep(max(0.0, start - time.time()))
        outcomes: list[str] = []
        ends: list[float] = []

        async def timed(i: int, item: tuple[str, int, str | None, int]) -> None:
            outcomes.append(await one(i, *item))
            ends.append(time.time())

        await asyncio.gather(*(timed(i, item) for i, item in enumerate(resumes)))
        results.put((outcomes, max(ends) - start if ends else 0.0))

    uvloop.run(run())


def _session_heads(port: int, sessions: list[str]) -> dict[str, tuple[int, str | None]]:
    import urllib.request

    heads: dict[str, tuple[int, str | None]] = {}
    for session in sessions:
        url = f"http://127.0.0.1:{port}/api/sessions/{session}/events?limit=1"
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = json.loads(reply.read())
        heads[session] = (int(body["last_seq"]), body["epoch"])
    return heads


def storm(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """N clients reconnect at once with ``last_seq`` (after a deploy): time until every one
    has its snapshot and the events it missed, and connects+catch-ups per second."""
    sessions = [f"storm-{i}" for i in range(max(1, args.storm // args.subscribers))]
    gc_name = f"bench-gc-storm-{target.name}-{os.getpid()}.json"
    gc_out = os.path.join(tempfile.gettempdir(), gc_name) if args.gc else None
    with _server(target, gc_out=gc_out) as server:
        if target.kind == "hub":
            events = len(sessions) * args.storm_missed
            uvloop.run(_publish(target, sessions, [(500.0, events / 500.0)], 0.0))
            heads = _session_heads(target.port, sessions)
        else:
            heads = dict.fromkeys(sessions, (args.storm_missed, None))
        resumes = [
            (
                session,
                max(0, heads[session][0] - args.storm_missed),
                heads[session][1],
                heads[session][0],
            )
            for session in sessions
            for _ in range(args.subscribers)
        ][: args.storm]
        ctx = mp.get_context("spawn")
        start_at, results = ctx.Queue(), ctx.Queue()
        count = args.workers
        processes = [
            ctx.Process(
                target=_storm_worker,
                args=(target.kind, target.port, resumes[i::count], i, start_at, results),
            )
            for i in range(count)
        ]
        for process in processes:
            process.start()
        time.sleep(3.0)  # the workers import and wait
        spy = _profile(target, server.pid, args, "storm") if args.profile else None
        cpu_before = _cpu_s(server.pid)
        window_start = time.monotonic()
        begin = time.time() + 1.0
        for _ in processes:
            start_at.put(begin)
        replies = [results.get(timeout=300) for _ in processes]
        cpu = _cpu_s(server.pid) - cpu_before
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled, then exits
            spy.wait(timeout=60)
        window_end = time.monotonic()
        pauses = _server_pauses(server, gc_out) if gc_out else []
        for process in processes:
            process.join(timeout=30)
    outcomes = [o for out, _ in replies for o in out]
    seconds = max(took for _, took in replies)
    failures: dict[str, int] = {}
    for outcome in outcomes:
        if outcome != "ok":
            failures[outcome] = failures.get(outcome, 0) + 1
    return {
        "target": target.name,
        "clients": len(resumes),
        "missed_each": args.storm_missed if target.kind == "hub" else 0,
        "caught_up": outcomes.count("ok"),
        "failures": failures,
        "seconds": seconds,
        "per_s": outcomes.count("ok") / seconds if seconds else float("nan"),
        "server_cpu_s": cpu,
        "gc_server": gc_probe.summary(pauses, window_start, window_end) if gc_out else None,
    }


# -- idle connections --------------------------------------------------------------------
def idle(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    """``args.idle`` connections held open: RSS per connection, and the server's CPU over
    ``args.idle_window`` seconds of nothing but keep-alive pings."""
    sessions = [f"idle-{i}" for i in range(max(1, args.idle // args.subscribers))]
    subscriptions = [s for s in sessions for _ in range(args.subscribers)][: args.idle]
    extra = []
    if target.kind == "hub":
        extra = ["--ws-ping-interval", str(args.ping_interval)]
    with _server(target, extra) as server:
        rss_before = _rss_kib(server.pid)
        workers = Workers.start(target, subscriptions, args.workers, hold=True)
        connected = workers.connected()
        time.sleep(2.0)
        rss_idle = _rss_kib(server.pid)
        workers.go.set()
        cpu_before = _cpu_s(server.pid)
        time.sleep(args.idle_window)
        cpu = _cpu_s(server.pid) - cpu_before
        alive = sum(count[0] for _, count, _, _, _ in workers.finish())
    return {
        "target": target.name,
        "connections": connected,
        "alive_after": alive,
        "rss_mib": rss_idle / 1024,
        "rss_per_conn_kib": (rss_idle - rss_before) / max(1, connected),
        "cpu_pct": 100 * cpu / args.idle_window,
        "window_s": args.idle_window,
        "ping_interval_s": args.ping_interval if target.kind == "hub" else 20.0,
    }


def clean_redis(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    steps = ", ".join(f"{rate:g}/s for {seconds:g} s" for rate, seconds in args.steps)
    print(
        f"\n{args.sessions} sessions x {args.subscribers} subscribers, events at {steps} "
        f"after {args.warmup:g} s warm-up each ({args.workers} subscriber processes), "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
        + (", server pinned to CPU 0, load generator to CPU 1" if args.pin else "")
    )
    header = (
        f"{'target':<17}{'conns':>7}{'rate':>7}{'delivered/s':>13}{'lost':>7}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'KiB/conn':>10}{'CPU us/dlv':>11}  {'CPU % server/subs/pub/redis':>27}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['target']:<17}{row['connections']:>7}{row['rate']:>7g}"
            f"{row['delivered_per_s']:>13.0f}{row['expected'] - row['delivered']:>7}"
            f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['rss_per_conn_kib']:>10.1f}"
            f"{row['cpu_us_per_delivery']:>11.1f}  {_cpu_pcts(row):>27}"
        )
    by = {row["target"]: row for row in rows if row["rate"] == args.steps[0][0]}
    print()
    for ours in ("hub-memory", "hub-redis"):
        for base in ("raw-websockets", "python-socketio"):
            if ours in by and base in by and by[base]["p99_ms"]:
                ratio = by[ours]["p99_ms"] / by[base]["p99_ms"]
                print(f"p99 {ours} / {base}: {ratio:.2f}x")
    if "hub-redis" in by and "hub-memory" in by:
        ratio = by["hub-redis"]["p99_ms"] / by["hub-memory"]["p99_ms"]
        print(f"p99 hub-redis / hub-memory: {ratio:.2f}x")
    if args.gc:
        _report_gc([row for row in rows if row["rate"] == args.steps[-1][0]])
    if args.stages:
        hub_stages.report([row for row in rows if row.get("stages")])
    if len(args.steps) > 1:
        _report_saturation(rows)


def _cpu_pcts(row: dict[str, Any]) -> str:
    """The server's, the subscriber processes' (all of them), the publisher's and (when the
    target uses it) Redis's CPU over the step, in % of one core: a role near 100 % per
    process is what held the rate; their sum near 200 % is the machine's 2 cores."""
    roles = ("server", "subscribers", "publisher", "redis")
    return "/".join(f"{row[f'{role}_cpu_pct']:.0f}" for role in roles if f"{role}_cpu_pct" in row)


def _report_gc(rows: list[dict[str, Any]]) -> None:
    print(
        "\ngarbage collections while events were published: count, total pause ms, "
        "longest ms, CPU ms (a pause far above its CPU waited for a core)"
    )
    print(f"{'target':<17}{'side':<9}{'gen 0':>29}{'gen 1':>29}{'gen 2':>29}")
    for row in rows:
        for side in ("server", "clients"):
            cells = "".join(
                f"{g['count']:>6} {g['total_ms']:>7.1f} {g['max_ms']:>6.1f} {g['cpu_ms']:>7.1f}"
                for g in (row[f"gc_{side}"][f"gen{n}"] for n in (0, 1, 2))
            )
            print(f"{row['target']:<17}{side:<9}{cells}")
    print("\none full collection in the server with the connections open, before publishing:")
    for row in rows:
        full = row["gc_full"]
        if full:
            print(
                f"  {row['target']:<17}{full['full_ms']:>8.1f} ms over {full['objects']:,} "
                f"tracked objects ({full['frozen']:,} frozen besides)"
            )
            per = row["connections"] or 1
            top = ", ".join(f"{name} {count / per:.1f}" for name, count in full["types"][:10])
            print(f"    tracked per connection: {top}")
    print("\nobjects alive in generation 0 when the server's young collections began:")
    for row in rows:
        young = row.get("gc_young") or {}
        runs = young.get("collections", 0)
        if runs:
            top = ", ".join(f"{name} {count / runs:.0f}" for name, count in young["types"])
            print(f"  {row['target']:<17}per collection ({runs}): {top}")


def _report_saturation(rows: list[dict[str, Any]]) -> None:
    """The highest rate each target kept with nothing lost and p99 under 200 ms."""
    best: dict[str, float] = {}
    for row in rows:
        ok = row["delivered"] == row["expected"] and row["p99_ms"] < SATURATION_P99_MS
        ok = ok and not row["duplicates"]
        best.setdefault(row["target"], 0.0)
        if ok:
            best[row["target"]] = max(best[row["target"]], row["rate"])
    print(
        "\nsaturation (highest rate with nothing lost and p99 < 200 ms), and the first step "
        "that failed: CPU % of one core of the server/subscribers/publisher(/Redis), and the "
        "subscribers' CPU µs per delivery (the load generator's own cost)"
    )
    for name, rate in best.items():
        failed = [r for r in rows if r["target"] == name and r["rate"] > rate]
        at = failed[0] if failed else None
        why = "held every step offered"
        if at is not None:
            lost = at["expected"] - at["delivered"]
            why = (
                f"failed {at['rate']:g}/s (lost {lost}, dup {at['duplicates']}, p99 "
                f"{at['p99_ms']:.0f} ms; CPU % {_cpu_pcts(at)}, "
                f"subs {at['subscriber_cpu_us_per_delivery']:.1f} µs/dlv)"
            )
        print(f"  {name:<17}{rate:>8g} events/s  {why}")
    for ours in ("hub-memory", "hub-redis", "hub-redis-direct"):
        for base in ("raw-websockets", "python-socketio"):
            if best.get(ours) is not None and best.get(base):
                print(f"saturation {ours} / {base}: {best[ours] / best[base]:.2f}x")


SATURATION_P99_MS = 200.0


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
    parser.add_argument(
        "--saturation",
        metavar="RATES",
        help="comma-separated publish rates, stepped up over the same connections "
        "(each for --duration after --warmup) to find the highest one that holds",
    )
    parser.add_argument("--drain", type=float, default=1.0, help="seconds to let the last land")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--targets", default="hub-memory,hub-redis,raw-websockets,python-socketio")
    parser.add_argument("--storm", type=int, default=0, help="reconnect storm of N clients")
    parser.add_argument("--storm-missed", type=int, default=20, help="events each one missed")
    parser.add_argument("--idle", type=int, default=0, help="N idle connections: RSS and CPU")
    parser.add_argument("--idle-window", type=float, default=40.0)
    parser.add_argument("--ping-interval", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="a small smoke configuration")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the server under test on CPU 0 and the load generator (subscribers and "
        "publisher) on CPU 1, so that a saturation step measures the server",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="latency mode: N rounds, each target once a round in an order rotated by the "
        "round, then the medians of each target's p50/p99 and the p99 targets on them",
    )
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument(
        "--client-gc",
        action="store_true",
        help="leave the subscriber processes' collector as it is (by default it is off "
        "once they are connected, so their collections do not add to the latency)",
    )
    parser.add_argument(
        "--gc",
        action="store_true",
        help="time every garbage collection in the server and the subscriber processes "
        "while events are published, after the warm-up (bench.gc_probe), and print them "
        "per generation",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="time each event's stages in the hub servers (bench.stage_probe) and print "
        "where the latency went: HTTP, the publish script, pub/sub, the listener, the "
        "dispatch, the member's queue, the send, the subscriber",
    )
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="sample each server with py-spy while events are published or during the "
        "storm (run under "
        "`uv run --with py-spy`); collapsed stacks go to PREFIX-<target>.txt",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or (args.repeat > 1 and (args.saturation or args.storm or args.idle)):
        parser.error("--repeat N (N >= 1) is for the latency mode, without --saturation")
    if args.quick:
        args.sessions, args.subscribers, args.rate, args.duration = 2, 5, 20.0, 2.0
        args.warmup = 0.5
        args.workers = 1
        if args.storm:
            args.storm = min(args.storm, 20)
    rates = [float(r) for r in args.saturation.split(",")] if args.saturation else [args.rate]
    args.steps = [(rate, args.duration) for rate in rates]
    _raise_nofile()
    if args.pin:
        _pin(os.getpid(), GENERATOR_CPU)  # the subscriber processes are spawned from here
    chosen = targets(args.targets.split(","))
    out: dict[str, Any] = {}
    if args.storm:
        storms = [storm(t, args) for t in chosen if t.kind in ("hub", "raw")]
        _report_storm(storms)
        out["storm"] = storms
    elif args.idle:
        idles = [idle(t, args) for t in chosen]
        _report_idle(idles)
        out["idle"] = idles
    elif args.repeat > 1:
        out["rows"] = rounds(args)
        out["summary"] = hub_rounds.summary(out["rows"])
        hub_rounds.report(out["summary"])
    else:
        rows = [row for target in chosen for row in measure(target, args)]
        report(rows, args)
        out["rows"] = rows
    if args.json:
        print(json.dumps(out if args.repeat > 1 else out.get("rows", out)))


def rounds(args: argparse.Namespace) -> list[dict[str, Any]]:
    """``args.repeat`` rounds of every target, each round's rows printed as one run's and
    tagged with the round (from 1). Target i runs at position (i + r) mod n of round r, on
    a fresh port and Redis prefix."""
    rows: list[dict[str, Any]] = []
    for index in range(args.repeat):
        chosen = hub_rounds.rotated(targets(args.targets.split(",")), index)
        order = ", ".join(target.name for target in chosen)
        at = time.strftime("%H:%M:%S UTC", time.gmtime())
        print(f"\n== round {index + 1} of {args.repeat} ({at}): {order}", flush=True)
        ran = [row for target in chosen for row in measure(target, args)]
        for row in ran:
            row["round"] = index + 1
        report(ran, args)
        rows += ran
    return rows


def _report_storm(rows: list[dict[str, Any]]) -> None:
    print("\nreconnect storm: every client connects at once with last_seq")
    header = f"{'target':<17}{'clients':>8}{'missed':>8}{'caught up':>10}{'seconds':>9}{'per s':>8}"
    print(header + f"{'cpu s':>7}  failures")
    print("-" * (len(header) + 17))
    for row in rows:
        print(
            f"{row['target']:<17}{row['clients']:>8}{row['missed_each']:>8}"
            f"{row['caught_up']:>10}{row['seconds']:>9.2f}{row['per_s']:>8.0f}"
            f"{row['server_cpu_s']:>7.1f}  {row['failures'] or '-'}"
        )
    for row in rows:
        if row.get("gc_server"):
            full = row["gc_server"]["gen2"]
            print(
                f"  {row['target']}: {full['count']} full collections in the server during "
                f"the storm, {full['total_ms']:.0f} ms in all, the longest {full['max_ms']:.0f} ms"
            )


def _report_idle(rows: list[dict[str, Any]]) -> None:
    print("\nidle connections held open")
    print(
        f"{'target':<17}{'conns':>7}{'alive':>7}{'RSS MiB':>9}{'KiB/conn':>10}{'CPU %':>7}  pings"
    )
    for row in rows:
        print(
            f"{row['target']:<17}{row['connections']:>7}{row['alive_after']:>7}"
            f"{row['rss_mib']:>9.0f}{row['rss_per_conn_kib']:>10.1f}{row['cpu_pct']:>7.1f}"
            f"  every {row['ping_interval_s']:g} s over {row['window_s']:g} s"
        )


if __name__ == "__main__":
    main()
