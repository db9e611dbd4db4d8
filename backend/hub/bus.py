"""The event bus: one Protocol, an in-memory and a Redis implementation.

A bus gives each session's events their ``seq`` (one order for the whole fleet), keeps
a bounded history and the latest event of each agent, and delivers live traffic to the
hub of every process that subscribed to the session: events, and the client messages
of ``broadcast`` and ``sendMessage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from backend.core.errors import Unavailable


class BusUnavailable(Unavailable):
    """The bus's store cannot be reached: publishing answers 503 and agents retry."""

    code = "bus_unavailable"


@dataclass(frozen=True, slots=True)
class Published:
    """One event as the bus carries it: the wire JSON is serialised once, here."""

    session_id: str
    seq: int
    epoch: str
    agent: str
    text: str
    published_at: float = 0.0  # publisher's wall clock, for the publish-to-send lag


@dataclass(frozen=True, slots=True)
class History:
    """A session's state and its events after some ``seq``."""

    epoch: str
    last_seq: int
    agents: dict[str, Any]
    events: list[Published] = field(default_factory=list)
    complete: bool = True  # False when the history no longer holds the whole gap


class Sink(Protocol):
    """The hub: told about every live event and message for the sessions it follows."""

    def on_event(self, event: Published) -> None: ...

    def on_message(self, envelope: dict[str, Any]) -> None: ...


class EventBus(Protocol):
    name: str
    node_id: str

    async def start(self, sink: Sink) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, session_id: str, fields: dict[str, Any]) -> Published:
        """Give the event the session's next ``seq``, store it, deliver it fleet-wide."""
        ...

    async def history(self, session_id: str, after_seq: int | None, limit: int = 1000) -> History:
        """Snapshot state, plus the events after ``after_seq`` when given."""
        ...

    async def follow(self, session_id: str) -> None:
        """Start delivering this session's live traffic to the sink."""
        ...

    async def unfollow(self, session_id: str) -> None: ...

    async def send(self, envelope: dict[str, Any]) -> None:
        """A client message: ``{"room": R, ...}`` to a room, ``{"target": C, ...}`` to one
        connection (whose id names its node)."""
        ...

    async def ping(self) -> None: ...


def node_of(connection_id: str) -> str:
    """Connection ids are ``<node>.<n>``: the node that holds the socket."""
    return connection_id.rsplit(".", 1)[0]
