"""Where an event's publish→receive latency went, stage by stage (``hub_fanout --stages``).

The server (run under :mod:`bench.stage_probe`) timed each event's stages; each subscriber
process timed each delivery's arrival. Both use the wall clock of one machine, so they
line up: per delivery, the time from the publisher's timestamp to the request reaching
the hub, to the publish script written to Redis, to the listener reading it back, to
``Hub.on_event``, to the member's writer taking it off its queue, to the socket write,
to the subscriber. The server knows which connection took an event off its queue but the
subscriber does not: within one event, the k-th earliest writer time, send time and
arrival go together (a room's members are served in one order by one loop).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from array import array
from typing import Any

from bench.stage_probe import DUMP_SIGNAL

# (label, from, to): stages absent from a target (the memory bus has no Redis) are
# folded into the next one present.
STAGES = [
    ("HTTP: publisher → Hub.publish", "post", "handler"),
    ("wait for the batch in flight", "handler", "lua_sent"),
    ("Redis: script + pub/sub → listener", "lua_sent", "listener"),
    ("listener → Hub.on_event", "listener", "dispatch"),
    ("member queue → its writer", "dispatch", "writer"),
    ("writer → socket written", "writer", "sent"),
    ("socket → subscriber", "sent", "recv"),
]


class Deliveries:
    """Every timed delivery a subscriber process read: room, seq, post and arrival time."""

    def __init__(self) -> None:
        self.names: dict[str, int] = {}
        self.rooms = array("l")
        self.seqs = array("q")
        self.posted = array("d")
        self.arrived = array("d")

    def add(self, session: str, seq: int, posted: float, arrived: float) -> None:
        self.rooms.append(self.names.setdefault(session, len(self.names)))
        self.seqs.append(seq)
        self.posted.append(posted)
        self.arrived.append(arrived)


def read_server(server: subprocess.Popen[bytes], path: str) -> dict[str, Any] | None:
    """What the server's stage probe recorded (written on its dump signal)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server.send_signal(DUMP_SIGNAL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            with open(path) as f:
                found: dict[str, Any] = json.load(f)
            os.unlink(path)
            return found
        time.sleep(0.1)
    return None


def breakdown(server: dict[str, Any] | None, traces: list[Deliveries]) -> dict[str, Any]:
    """Per stage: its p50 and p99 over the deliveries, and its mean over the slowest 1 %."""
    if server is None:
        return {}
    names = server["rooms"]
    events: dict[tuple[str, int], dict[str, Any]] = {}
    for stage in ("handler", "lua_sent", "listener", "dispatch"):
        for room, seq, at in zip(*server[stage], strict=True):
            events.setdefault((names[room], seq), {})[stage] = at
    for stage in ("writer", "sent"):
        for room, seq, at in zip(*server[stage], strict=True):
            events.setdefault((names[room], seq), {}).setdefault(stage, []).append(at)
    arrivals: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for trace in traces:
        rooms = list(trace.names)
        for i, room in enumerate(trace.rooms):
            key = (rooms[room], trace.seqs[i])
            arrivals.setdefault(key, []).append((trace.posted[i], trace.arrived[i]))
    rows: list[dict[str, float]] = []
    for key, got in arrivals.items():
        event = events.get(key)
        if event is None:
            continue
        writers, sends = sorted(event.get("writer", [])), sorted(event.get("sent", []))
        for k, (posted, arrived) in enumerate(sorted(got, key=lambda pair: pair[1])):
            row = {name: at for name, at in event.items() if isinstance(at, float)}
            row["post"], row["recv"] = posted, arrived
            if k < len(writers):
                row["writer"] = writers[k]
            if k < len(sends):
                row["sent"] = sends[k]
            rows.append(row)
    return _figures(rows)


def _figures(rows: list[dict[str, float]]) -> dict[str, Any]:
    if not rows:
        return {}
    durations = [_split(row) for row in rows]
    totals = sorted(d["total"] for d in durations)
    p99 = totals[min(len(totals) - 1, int(0.99 * len(totals)))]
    tail = [d for d in durations if d["total"] >= p99]
    out: dict[str, Any] = {"deliveries": len(rows), "tail": len(tail), "stages": []}
    for label, *_ in [*STAGES, ("total", "", "")]:
        values = sorted(d[label] for d in durations if label in d)
        if not values:
            continue
        out["stages"].append(
            {
                "stage": label,
                "p50_ms": 1000 * values[len(values) // 2],
                "p99_ms": 1000 * values[min(len(values) - 1, int(0.99 * len(values)))],
                "tail_mean_ms": 1000 * sum(d.get(label, 0.0) for d in tail) / len(tail),
            }
        )
    return out


def _split(row: dict[str, float]) -> dict[str, float]:
    """The delivery's time in each stage; a stage whose end is missing goes to the next."""
    out: dict[str, float] = {"total": row["recv"] - row["post"]}
    start = row["post"]
    for label, _, end in STAGES:
        if end in row:
            out[label] = row[end] - start
            start = row[end]
    return out


def report(rows: list[dict[str, Any]]) -> None:
    print("\nwhere the latency went (per delivery; tail: mean over the slowest 1 %), ms")
    seen: set[str] = set()
    for row in rows:
        figures = row["stages"]
        if row["target"] in seen or not figures:
            continue
        seen.add(row["target"])
        print(f"  {row['target']} ({figures['deliveries']:,} deliveries timed)")
        print(f"    {'stage':<38}{'p50':>8}{'p99':>8}{'tail':>8}")
        for stage in figures["stages"]:
            print(
                f"    {stage['stage']:<38}{stage['p50_ms']:>8.2f}{stage['p99_ms']:>8.2f}"
                f"{stage['tail_mean_ms']:>8.2f}"
            )
