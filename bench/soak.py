"""Soak: N minutes of mixed traffic on one service process with Redis; does anything leak?

    uv run python -m bench.soak                       # 10 minutes, a redis-server of its own
    uv run python -m bench.soak --minutes 3 --sample-s 30
    uv run python -m bench.soak --redis-url redis://127.0.0.1:6379/0 --json

Traffic, all at once and all bounded: an agent publishing to a set of sessions with an
API key; WebSocket churn (connect, read, close; half of them resume with ``last_seq``
and must get every event after it, some join and leave a second room, some drop the
socket without a close frame); a few long-lived subscribers; REST polling; interviews
started and ended with the greeter (signaling only: no WebRTC media in this soak).
Rate limits are off in the service (``RATE_LIMITS_ENABLED=false``): one address opens
thousands of sockets. The pipeline is off (`PIPELINE_ENGINE=off`): sessions are
records and status channels here, not videos to render.

Each sample prints the service's RSS and open fds (from /proc/PID) and its asyncio task
count (``process_asyncio_tasks`` from /metrics). At the end: RSS growth per hour (the
least-squares slope over the samples taken during the churn), and fds and tasks after the
churn stopped compared with before it started (goal: 0 left over).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

MAX_MINUTES = 120.0
SESSIONS = 12
JWT_SECRET = secrets.token_urlsafe(32)


@dataclass
class Counts:
    connects: int = 0
    resumes: int = 0
    resume_gaps: int = 0
    aborted: int = 0
    published: int = 0
    interviews: int = 0
    polls: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


@dataclass
class Sample:
    t_s: float
    rss_mb: float
    fds: int
    redis_fds: int  # the Redis pool's sockets: it keeps idle ones, up to its maximum
    tasks: int
    connections: int


def _socket_peers() -> dict[str, int]:
    """Socket inode -> remote port, for every TCP socket on the machine."""
    peers = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                peers[fields[9]] = int(fields[2].rsplit(":", 1)[1], 16)
    return peers


def _fds(pid: int, redis_port: int) -> tuple[int, int]:
    """Open fds of ``pid``, and how many of them are sockets to Redis."""
    peers = _socket_peers()
    total = redis = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        total += 1
        with contextlib.suppress(OSError):
            target = fd.readlink().as_posix()
            if target.startswith("socket:[") and peers.get(target[8:-1]) == redis_port:
                redis += 1
    return total, redis


class Soak:
    def __init__(
        self, base_url: str, pid: int, redis_port: int, agent_key: str, user_token: str
    ) -> None:
        self.redis_port = redis_port
        self.base_url = base_url
        self.ws_url = base_url.replace("http://", "ws://")
        self.pid = pid
        self.agent = {"X-API-Key": agent_key}
        self.user = {"Authorization": f"Bearer {user_token}"}
        self.user_token = user_token
        self.sessions = [f"soak-{i}" for i in range(SESSIONS)]
        self.counts = Counts()
        self.stop = asyncio.Event()

    # -- measurements ------------------------------------------------------------------
    async def sample(self, http: httpx.AsyncClient, started: float) -> Sample:
        status = Path(f"/proc/{self.pid}/status").read_text()
        rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        fds, redis_fds = _fds(self.pid, self.redis_port)
        text = (await http.get("/metrics")).text
        tasks = _metric(text, "process_asyncio_tasks")
        connections = _metric(text, 'hub_connections{transport="websocket"}')
        elapsed = round(time.monotonic() - started, 1)
        return Sample(elapsed, round(rss_kb / 1024, 1), fds, redis_fds, tasks, connections)

    # -- traffic -----------------------------------------------------------------------
    async def publisher(self, http: httpx.AsyncClient, rate: float) -> None:
        started, sent = time.monotonic(), 0
        while not self.stop.is_set():
            session = random.choice(self.sessions)
            body = {"agent": random.choice(["script_writer", "narrator", "editor"]),
                    "status": "running", "progress": round(random.random(), 2),
                    "message": "soak " + "x" * random.randint(0, 200)}  # fmt: skip
            try:
                response = await http.post(
                    f"/api/sessions/{session}/events", json=body, headers=self.agent
                )
                if response.status_code == 202:
                    self.counts.published += 1
                else:
                    self.counts.error(f"publish_{response.status_code}")
            except httpx.HTTPError as exc:
                self.counts.error(type(exc).__name__)
            sent += 1  # paced by the schedule, not by each request's latency
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))

    async def subscriber(self) -> None:
        """A long-lived client: the traffic it sees must stay in order without gaps."""
        session = random.choice(self.sessions)
        async with connect(f"{self.ws_url}/ws/{session}?token={self.user_token}") as ws:
            last = None
            while not self.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        message = json.loads(await ws.recv())
                        seq = _seq_of(message, last)
                        if last is not None and seq is not None and seq != last + 1:
                            self.counts.error("live_gap")
                        last = seq if seq is not None else last

    async def churner(self) -> None:
        last_seen: dict[str, int] = {}
        while not self.stop.is_set():
            session = random.choice(self.sessions)
            resume = session in last_seen and random.random() < 0.5
            query = f"token={self.user_token}"
            if resume:
                query += f"&last_seq={last_seen[session]}"
            try:
                async with asyncio.timeout(20):
                    ws = await connect(f"{self.ws_url}/ws/{session}?{query}", open_timeout=10)
                    self.counts.connects += 1
                    seen = await self._visit(ws, session, resume, last_seen.get(session))
                    if seen is not None:
                        last_seen[session] = seen
            except (OSError, ConnectionClosed, InvalidStatus, TimeoutError) as exc:
                self.counts.error(type(exc).__name__)
            await asyncio.sleep(random.uniform(0, 0.2))

    async def _visit(
        self, ws: ClientConnection, session: str, resume: bool, after: int | None
    ) -> int | None:
        """Read for a while; check a resume's replay; leave cleanly or drop the socket."""
        last = None
        try:
            until = time.monotonic() + random.uniform(0.3, 2.5)
            extra_room = random.random() < 0.2
            other = random.choice([s for s in self.sessions if s != session])
            if extra_room:
                await ws.send(json.dumps({"action": "joinRoom", "room": other}))
                await ws.send(json.dumps({"action": "ping", "request_id": 1}))
            while time.monotonic() < until:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.01, until - time.monotonic())):
                        message = json.loads(await ws.recv())
                        if message.get("type") == "snapshot" and message["session_id"] == session:
                            # A resume's replay follows its snapshot, from after+1 on.
                            last = message["last_seq"]
                            if resume:
                                self.counts.resumes += 1
                                if message["recovered"]:
                                    last = after
                                else:
                                    self.counts.resume_gaps += 1
                        elif message.get("session_id") == session and "seq" in message:
                            if last is not None and message["seq"] != last + 1:
                                self.counts.error("resume_gap" if resume else "gap")
                            last = message["seq"]
            if extra_room:
                await ws.send(json.dumps({"action": "leaveRoom", "room": other}))
            if random.random() < 0.1:
                self.counts.aborted += 1
                ws.transport.abort()  # gone without a close frame
            else:
                await ws.close()
        finally:
            if ws.transport is not None and not ws.transport.is_closing():
                ws.transport.abort()
        return last

    async def interviews(self, http: httpx.AsyncClient) -> None:
        """Started and ended with the greeter; signaling only, no media (said in the docs)."""
        while not self.stop.is_set():
            try:
                started = await http.post("/api/interview/start", json={}, headers=self.user)
                if started.status_code != 201:
                    self.counts.error(f"interview_start_{started.status_code}")
                else:
                    interview = started.json()["session_id"]
                    await http.get(f"/api/interview/{interview}/status", headers=self.user)
                    ended = await http.post(f"/api/interview/{interview}/end", headers=self.user)
                    if ended.is_success:
                        self.counts.interviews += 1
                    else:
                        self.counts.error(f"interview_end_{ended.status_code}")
            except httpx.HTTPError as exc:
                self.counts.error(type(exc).__name__)
            await asyncio.sleep(random.uniform(0.5, 1.5))

    async def poller(self, http: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            session = random.choice(self.sessions)
            with contextlib.suppress(httpx.HTTPError):
                response = await http.get(
                    f"/api/sessions/{session}/events?after=0&limit=50", headers=self.agent
                )
                self.counts.polls += response.status_code == 200
            await asyncio.sleep(0.5)


def _seq_of(message: dict[str, Any], last: int | None) -> int | None:
    if message.get("type") == "snapshot":
        return int(message["last_seq"])
    if message.get("type") == "agent_status":
        return int(message["seq"])
    return last


def _metric(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[-1]))
    return 0


def rss_slope_mb_per_hour(samples: list[Sample]) -> float:
    """Least-squares slope of RSS over time, in MB per hour."""
    if len(samples) < 2:
        return 0.0
    xs = [s.t_s for s in samples]
    ys = [s.rss_mb for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    return slope * 3600


async def run(
    args: argparse.Namespace, base_url: str, pid: int, redis_port: int, agent_key: str
) -> dict[str, Any]:
    from backend.core.auth import mint_token

    soak = Soak(base_url, pid, redis_port, agent_key, mint_token(JWT_SECRET, "soak-user"))
    duration = args.minutes * 60
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for session in soak.sessions:  # the user's own, so its clients may follow them
            created = await http.post(
                "/api/sessions", json={"prompt": "soak", "session_id": session}, headers=soak.user
            )
            created.raise_for_status()
        started = time.monotonic()
        before = await soak.sample(http, started)
        print(_row("before", before, soak.counts), flush=True)
        workers = [soak.publisher(http, args.rate), soak.interviews(http), soak.poller(http)]
        workers += [soak.churner() for _ in range(args.churners)]
        workers += [soak.subscriber() for _ in range(args.subscribers)]
        tasks = [asyncio.create_task(w) for w in workers]
        samples: list[Sample] = []
        deadline = started + duration
        while time.monotonic() < deadline:
            await asyncio.sleep(min(args.sample_s, max(0.0, deadline - time.monotonic())))
            samples.append(await soak.sample(http, started))
            print(_row("during", samples[-1], soak.counts), flush=True)
        soak.stop.set()
        async with asyncio.timeout(60):
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                soak.counts.error(f"worker_{type(result).__name__}")
        await asyncio.sleep(args.settle_s)  # closes finish, idle tasks end
        after = await soak.sample(http, started)
        print(_row("after", after, soak.counts), flush=True)
    return {
        "minutes": args.minutes,
        "samples": [asdict(s) for s in samples],
        "before": asdict(before),
        "after": asdict(after),
        "rss_growth_mb_per_hour": round(rss_slope_mb_per_hour(samples), 1),
        "fds_left": after.fds - before.fds,
        # What is left besides the Redis pool's idle connections: the leak figure.
        "fds_left_besides_redis_pool": (after.fds - after.redis_fds)
        - (before.fds - before.redis_fds),
        "tasks_left": after.tasks - before.tasks,
        "connections_left": after.connections,
        "counts": asdict(soak.counts),
    }


def _row(label: str, s: Sample, c: Counts) -> str:
    return (
        f"{label:>6} t={s.t_s:7.1f}s rss={s.rss_mb:7.1f}MB fds={s.fds:4d} "
        f"(redis {s.redis_fds:3d}) tasks={s.tasks:4d} "
        f"ws_open={s.connections:3d} | connects={c.connects} resumes={c.resumes} "
        f"published={c.published} interviews={c.interviews} aborted={c.aborted} "
        f"errors={c.errors}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--sample-s", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--redis-url", help="use this Redis (default: start a redis-server)")
    parser.add_argument("--churners", type=int, default=16, help="concurrent churning clients")
    parser.add_argument("--subscribers", type=int, default=4, help="long-lived clients")
    parser.add_argument("--rate", type=float, default=40.0, help="events published per second")
    parser.add_argument("--settle-s", type=float, default=5.0, help="idle time before 'after'")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes is between 0 and {MAX_MINUTES:g}")
    args.sample_s = max(1.0, min(args.sample_s, args.minutes * 60))
    return asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> int:
    from tests.support.redis_server import RedisServer
    from tests.support.uvicorn_process import ServiceProcess

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        redis = None
        url = args.redis_url
        if url is None:
            redis = RedisServer(Path(tmp), persistent=False)
            redis.start()
            url = redis.url
        prefix = f"soak:{secrets.token_hex(4)}:"
        service = ServiceProcess(
            {
                "REDIS_URL": url,
                "REDIS_PREFIX": prefix,
                "AUTH_JWT_SECRET": JWT_SECRET,
                "RATE_LIMITS_ENABLED": "false",
                # Sessions are records and status channels here, not videos to render.
                "PIPELINE_ENGINE": "off",
                "INTERVIEW_CONVERSATION": "greeter",
                "INTERVIEW_MAX_CONCURRENT": "100",
                "LOG_LEVEL": "WARNING",
            }
        )
        try:
            service.start()
            assert service.process is not None
            agent_key = await _agent_key(url, prefix)
            redis_port = int(url.rsplit(":", 1)[1].split("/")[0])
            pid = service.process.pid
            report = await run(args, service.base_url, pid, redis_port, agent_key)
        finally:
            service.stop()
            if redis is not None:
                redis.stop()
            elif args.redis_url:
                await _drop_prefix(args.redis_url, prefix)
    _summary(report)
    if args.json:
        print(json.dumps(report))
    return 0


async def _agent_key(url: str, prefix: str) -> str:
    from backend.core.api_keys import ApiKeys
    from backend.core.auth import Role
    from backend.core.storage import open_store

    store = open_store(url, prefix=prefix)
    try:
        key, _ = await ApiKeys(store).create("soak-agent", Role.AGENT)
    finally:
        await store.close()
    return key


async def _drop_prefix(url: str, prefix: str) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


def _summary(report: dict[str, Any]) -> None:
    counts = report["counts"]
    print(
        f"\nsoak {report['minutes']:g} min: {counts['connects']} WebSocket connections "
        f"({counts['resumes']} resumes, {counts['aborted']} dropped without a close), "
        f"{counts['published']} events published, {counts['interviews']} interviews, "
        f"{counts['polls']} polls, {counts['errors']} errors {counts['error_kinds'] or ''}"
    )
    print(f"RSS growth: {report['rss_growth_mb_per_hour']:+.1f} MB/hour (least squares)")
    before, after = report["before"], report["after"]
    print(
        f"fds:   before {before['fds']} ({before['redis_fds']} to Redis), after {after['fds']} "
        f"({after['redis_fds']} to Redis: the pool's idle connections); left besides the "
        f"pool: {report['fds_left_besides_redis_pool']:+d}"
    )
    print(
        f"tasks: before {report['before']['tasks']}, after {report['after']['tasks']} "
        f"(left: {report['tasks_left']:+d}); WebSockets still open: {report['connections_left']}"
    )
    print(f"resumes that lost events: {counts['resume_gaps']}")


if __name__ == "__main__":
    sys.exit(main())
