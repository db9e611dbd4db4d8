"""One process, in memory: the embedded default. Bounded history per session."""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from backend.hub.bus import History, Published, Sink, node_of
from backend.hub.events import wire_event
from backend.hub.protocol import dumps


@dataclass(slots=True)
class _Session:
    epoch: str
    history: deque[Published]
    seq: int = 0
    agents: dict[str, str] = field(default_factory=dict)


class MemoryBus:
    name = "memory"

    def __init__(self, *, history_size: int = 1000, max_sessions: int = 10_000) -> None:
        self.node_id = secrets.token_hex(4)
        self._history_size = history_size
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._followed: set[str] = set()
        self._sink: Sink | None = None

    async def start(self, sink: Sink) -> None:
        self._sink = sink

    async def close(self) -> None:
        self._sink = None

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            session = _Session(secrets.token_hex(6), deque(maxlen=self._history_size))
            self._sessions[session_id] = session
            while len(self._sessions) > self._max_sessions:
                self._sessions.popitem(last=False)  # the least recently used session goes
        self._sessions.move_to_end(session_id)
        return session

    async def publish(self, session_id: str, fields: dict[str, Any]) -> Published:
        session = self._session(session_id)
        session.seq += 1
        text = dumps(wire_event(session_id, session.seq, fields))
        event = Published(
            session_id, session.seq, session.epoch, fields["agent"], text, time.time()
        )
        session.history.append(event)
        session.agents[event.agent] = text
        if self._sink is not None and session_id in self._followed:
            self._sink.on_event(event)
        return event

    async def history(self, session_id: str, after_seq: int | None, limit: int = 1000) -> History:
        session = self._sessions.get(session_id)
        if session is None:
            return History(
                epoch=_EMPTY_EPOCH, last_seq=0, agents={}, events=[], complete=not after_seq
            )
        agents = {name: _load(text) for name, text in session.agents.items()}
        if after_seq is None:
            return History(session.epoch, session.seq, agents)
        oldest = session.history[0].seq if session.history else session.seq + 1
        complete = after_seq <= session.seq and after_seq >= oldest - 1
        events = [e for e in session.history if e.seq > after_seq][:limit] if complete else []
        return History(session.epoch, session.seq, agents, events, complete)

    async def follow(self, session_id: str) -> None:
        self._followed.add(session_id)

    async def unfollow(self, session_id: str) -> None:
        self._followed.discard(session_id)

    async def send(self, envelope: dict[str, Any]) -> None:
        target = envelope.get("target")
        if target is not None and node_of(target) != self.node_id:
            return  # no other process shares this memory
        if self._sink is not None:
            self._sink.on_message(envelope)

    async def ping(self) -> None:
        return None


_EMPTY_EPOCH = "0"  # a session nothing was published to yet


def _load(text: str) -> Any:
    return json.loads(text)
