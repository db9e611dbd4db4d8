"""The seam between the WebRTC layer and whatever speaks on a call.

The signaling layer (the only code that imports aiortc) owns the peer connection. For
each call it asks a :data:`ConversationFactory` for a :class:`Conversation`, feeds it
every inbound audio frame, sends whatever its ``outbound`` source yields as the
server's voice track, and forwards its events over the ``events`` data channel.
Nothing here knows about aiortc.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import av

SAMPLE_RATE_OUT = 48_000
FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class InterviewPlan:
    """What the interviewer needs to know about one interview."""

    interview_id: str
    user_id: str
    role: str | None = None
    questions: tuple[str, ...] = ()
    language: str = "en"
    max_duration_s: float = 1800.0
    extra: Mapping[str, Any] = field(default_factory=dict)


class WireEvent(Protocol):
    """A typed event of the conversation's (:mod:`interview_service.voice.events`)."""

    def to_wire(self) -> dict[str, Any]: ...


class EventSink(Protocol):
    def send(self, event: WireEvent) -> None:
        """Apply one event to the call and queue it for the browser; never blocks, drops
        when the channel closed."""


class AudioSource(Protocol):
    async def recv(self) -> av.AudioFrame:
        """The next 20 ms frame, paced in real time (silence when there is nothing to say)."""
        ...


class Conversation(Protocol):
    @property
    def outbound(self) -> AudioSource:
        """The server's voice, sent on every peer connection the call has."""
        ...

    async def run(self, inbound: AsyncIterator[av.AudioFrame], events: EventSink) -> None:
        """Listen and speak until the call ends; cancelled when it does."""
        ...


ConversationFactory = Callable[[InterviewPlan], Conversation]
