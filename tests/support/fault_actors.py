"""The people around a Redis fault: an agent publishing, subscribers reading, a prober.

Each behaves like a real client and records what it saw, for the test to judge:

- :class:`Agent` publishes steadily over REST, retrying on 503 like a real agent, and
  keeps the ``seq`` of every event the service accepted (2xx), with when it was accepted.
- :class:`Subscriber` is a native WebSocket client that resumes with ``last_seq`` and
  ``epoch`` after the server closes it (1011/1013/4008), and notes every close, and
  whether it came with a close frame.
- :class:`Prober` calls each Redis user's REST endpoints in turn and keeps every status.

Every loop is bounded: they stop when told, and the agent at ``MAX_EVENTS``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

MAX_EVENTS = 5000  # per agent: a bound on the publishing loop
RESUME_CODES = {1011, 1012, 1013, 4008}  # the server dropped us: resume


@dataclass
class Accepted:
    room: str
    seq: int
    at: float  # monotonic


class Agent:
    """Publishes to ``rooms`` in turn through ``base_urls`` in turn, every ``interval_s``."""

    def __init__(self, base_urls: list[str], rooms: list[str], interval_s: float = 0.05) -> None:
        self._base_urls = base_urls
        self._rooms = rooms
        self._interval_s = interval_s
        self.accepted: list[Accepted] = []
        self.refused: list[int] = []  # 503s (retried)
        self.failures: list[str] = []  # anything else: a bug
        self.stop = asyncio.Event()

    def accept(self, room: str, seq: int) -> None:
        """An event published some other way (the documented Redis layout)."""
        self.accepted.append(Accepted(room, seq, time.monotonic()))

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=20) as http:
            for n in range(MAX_EVENTS):
                if self.stop.is_set():
                    return
                room = self._rooms[n % len(self._rooms)]
                await self._publish(http, n, room)
                await asyncio.sleep(self._interval_s)

    async def _publish(self, http: httpx.AsyncClient, n: int, room: str) -> None:
        body = {"agent": "steady", "status": "running", "message": f"event {n}"}
        attempt = 0
        while not self.stop.is_set():
            base = self._base_urls[(n + attempt) % len(self._base_urls)]
            attempt += 1
            try:
                response = await http.post(f"{base}/api/sessions/{room}/events", json=body)
            except httpx.HTTPError as exc:  # the process must keep answering
                self.failures.append(f"{room}#{n}: {exc!r}")
                return
            if response.status_code == 202:
                self.accept(room, int(response.json()["seq"]))
                return
            if response.status_code != 503:
                self.failures.append(f"{room}#{n}: {response.status_code} {response.text}")
                return
            self.refused.append(503)
            await asyncio.sleep(0.1)


@dataclass
class Seen:
    """What one subscriber received: snapshots, events and closes, in order."""

    # ("connect", None), ("snapshot", the snapshot message) or ("event", its seq)
    items: list[tuple[str, Any]] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)  # None: no close frame
    connects: int = 0
    errors: list[str] = field(default_factory=list)  # connects that failed, and why


class Subscriber:
    def __init__(self, ws_base: str, room: str) -> None:
        self._ws_base = ws_base
        self.room = room
        self.seen = Seen()
        self.stop = asyncio.Event()
        self._last_seq: int | None = None
        self._epoch: str | None = None

    @property
    def last_seq(self) -> int | None:
        return self._last_seq

    async def run(self) -> None:
        while not self.stop.is_set():
            url = f"{self._ws_base}/ws/{self.room}"
            if self._last_seq is not None:
                url += f"?last_seq={self._last_seq}&epoch={self._epoch}"
            try:
                async with connect(url, open_timeout=10, close_timeout=2) as ws:
                    self.seen.connects += 1
                    self.seen.items.append(("connect", None))
                    await self._read(ws)
            except ConnectionClosed as exc:
                self.seen.closes.append(exc.rcvd.code if exc.rcvd else None)
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self.seen.errors.append(repr(exc))  # try again, like a client with backoff
            if not self.stop.is_set():
                await asyncio.sleep(0.2)

    async def _read(self, ws: Any) -> None:
        while not self.stop.is_set():
            try:
                async with asyncio.timeout(0.2):
                    raw = await ws.recv()
            except TimeoutError:
                continue
            message = json.loads(raw)
            if message.get("type") == "snapshot":
                self.seen.items.append(("snapshot", message))
                self._epoch = message["epoch"]
                if not message["recovered"]:
                    self._last_seq = message["last_seq"]
            elif message.get("type") == "agent_status":
                self.seen.items.append(("event", message["seq"]))
                self._last_seq = message["seq"]


def check_order(seen: Seen) -> tuple[list[str], dict[int, set[int]]]:
    """Problems with the order (a gap, a repeat) and, per history, the seqs the client has
    (received, or stood in for by a ``recovered: false`` snapshot).

    Histories are numbered from 1: each ``recovered: false`` snapshot starts one. Not by
    epoch: a session with no event yet is "0" before and after Redis lost its data, and
    events carry no epoch of their own.
    """
    problems: list[str] = []
    covered: dict[int, set[int]] = {}
    history = 0
    expected: int | None = None
    for kind, value in seen.items:
        if kind == "connect":
            continue
        if kind == "snapshot":
            if not value["recovered"]:
                history += 1
                expected = value["last_seq"] + 1
                covered.setdefault(history, set()).update(range(1, value["last_seq"] + 1))
            continue
        if value != expected:
            problems.append(f"seq {value} where {expected} was due")
        expected = value + 1
        covered.setdefault(history, set()).add(value)
    return problems, covered


Probe = Callable[[httpx.AsyncClient, str], Awaitable[int]]


class Prober:
    """Calls every probe on every process in turn; keeps (probe, status) pairs."""

    def __init__(self, base_urls: list[str], probes: dict[str, Probe]) -> None:
        self._base_urls = base_urls
        self._probes = probes
        self.statuses: list[tuple[str, int]] = []
        self.stop = asyncio.Event()

    async def run(self, interval_s: float = 0.1) -> None:
        async with httpx.AsyncClient(timeout=20) as http:
            turn = 0
            while not self.stop.is_set():
                for name, probe in self._probes.items():
                    base = self._base_urls[turn % len(self._base_urls)]
                    turn += 1
                    try:
                        status = await probe(http, base)
                    except httpx.HTTPError:
                        status = -1  # the process did not answer at all
                    self.statuses.append((name, status))
                    await asyncio.sleep(interval_s)
