"""The seam between the WebRTC layer and whatever speaks on a call.

The signaling layer (the only code that imports aiortc) owns the peer connection. For
each call it asks a :data:`ConversationFactory` for a :class:`Conversation`, feeds it
every inbound audio frame, sends whatever its ``outbound`` source yields as the
server's voice track, and forwards its events over the ``events`` data channel.
Nothing here knows about aiortc.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import av

# The plan lives in its own pure module; it is named here too, where it always was.
from interview_service.plan import InterviewPlan as InterviewPlan

SAMPLE_RATE_OUT = 48_000
SAMPLE_RATE_IN = 16_000  # the candidate's voice as the listener takes it (Silero's rate)
FRAME_MS = 20


class WireEvent(Protocol):
    """A typed event of the conversation's (:mod:`interview_service.voice.events`)."""

    def to_wire(self) -> dict[str, Any]: ...


class EventSink(Protocol):
    def send(self, event: WireEvent) -> None:
        """Apply one event to the call and queue it for the browser; never blocks, drops
        when the channel closed."""


@dataclass(frozen=True, slots=True)
class OpusFrame:
    """20 ms of the server's voice encoded as Opus, and its s16 mono 48 kHz PCM."""

    packet: av.Packet[Any]
    pcm: bytes


class AudioSource(Protocol):
    async def recv(self) -> av.AudioFrame:
        """The next 20 ms frame, paced in real time (silence when there is nothing to say)."""
        ...

    async def recv_opus(self) -> OpusFrame:
        """The same, already encoded (what the peer sends when Opus was negotiated)."""
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
