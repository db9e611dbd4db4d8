"""The fan-out benchmark's subscribers: join a session on each server, count what arrives.

Each kind of server has its own way in (the hub: ``/ws/{session}``, then ``connected`` and
a snapshot; the raw server: ``/sub/{session}``, then a snapshot; python-socketio: the
Engine.IO open packet, the namespace's ``40``, a ``join`` event, its snapshot) and its own
frame around the same event. What a delivery needs (its session, ``seq``, the publisher's
timestamp ``t``, whether it is warm-up ``w``, its step ``s``) is cut out of the frame's
bytes with one anchored regular expression instead of decoding the JSON: the publisher
writes ``data`` itself, in that key order, and each server keeps the event's keys in its
own fixed order (compact JSON for the hub and Socket.IO, ``json.dumps``'s default spaces
for the raw server). A frame the expression does not match (a snapshot, an answer) is not
a delivery; a changed frame format shows up as every event lost.

Loss and duplicates: each connection remembers the last ``seq`` it counted; a delivery at
or below it is a duplicate (or out of order) and is counted apart, never as delivered, so
``delivered == expected`` still means every subscriber got every event once.
"""

from __future__ import annotations

import json
import re

from bench import hub_stages
from bench.ws_reader import WebSocketClient, connect

_EVENT = (
    rb'\{"type": ?"agent_status", ?"session_id": ?"([^"]*)", ?"seq": ?(\d+), ?'
    rb'.*?"data": ?\{"t": ?([-+.eE0-9]+), ?"w": ?(true|false), ?"s": ?(\d+)'
)
PATTERNS = {
    "hub": re.compile(_EVENT, re.DOTALL),
    "raw": re.compile(_EVENT, re.DOTALL),
    "sio": re.compile(rb'42\["agent_status", ?' + _EVENT, re.DOTALL),
}


def source(index: int) -> tuple[str, int]:
    """A loopback source address (127.0.0.2-9): 20,000 sockets to one port stay within the
    ephemeral ports of each."""
    return (f"127.0.0.{2 + index % 8}", 0)


async def subscribe(kind: str, port: int, session: str, index: int = 0) -> WebSocketClient:
    """A connection to ``session`` on a server of ``kind``, past its greeting."""
    src = source(index)
    if kind == "hub":
        ws = await connect("127.0.0.1", port, f"/ws/{session}", src)
        await ws.recv()  # connected
        await ws.recv()  # snapshot
    elif kind == "raw":
        ws = await connect("127.0.0.1", port, f"/sub/{session}", src)
        await ws.recv()
    else:
        ws = await connect("127.0.0.1", port, "/socket.io/?EIO=4&transport=websocket", src)
        await ws.recv()  # engine.io open
        ws.send("40")
        await ws.recv()  # namespace connected
        ws.send(json.dumps(["join", session]).join(["42", ""]))
        while not (await ws.recv()).startswith(b'42["snapshot"'):
            pass
    return ws


class Tally:
    """What one subscriber process received: deliveries per step, latencies per step (the
    warm-up left out), duplicates, and (``--stages``) every timed delivery."""

    def __init__(self, kind: str, trace: hub_stages.Deliveries | None = None) -> None:
        self.kind = kind
        self.count = [0]
        self.latencies: dict[int, list[float]] = {}
        self.duplicates: dict[int, int] = {}  # per step
        self.trace = trace

    def listen(self, ws: WebSocketClient) -> None:
        """Count every event ``ws`` receives from now on (and whatever it had queued)."""
        match = PATTERNS[self.kind].match
        count, latencies, trace = self.count, self.latencies, self.trace
        engineio = self.kind == "sio"
        last = 0

        def on_message(ws: WebSocketClient, payload: bytes, now: float) -> None:
            nonlocal last
            found = match(payload)
            if found is None:
                if engineio and payload == b"2":  # Engine.IO's ping
                    ws.send("3")
                return
            seq, step = int(found[2]), int(found[5])
            if seq <= last:
                self.duplicates[step] = self.duplicates.get(step, 0) + 1
                return
            last = seq
            while len(count) <= step:
                count.append(0)
            count[step] += 1
            if found[4] == b"false":  # warm-up events count, but not for latency
                posted = float(found[3])
                latencies.setdefault(step, []).append(now - posted)
                if trace is not None:
                    trace.add(found[1].decode(), seq, posted, now)

        ws.drain(on_message)
