"""The server's WebRTC peer: the only module that imports aiortc.

One :class:`Peer` is one ``RTCPeerConnection``. Renegotiation and ICE restart build a
new one for the same call (see :mod:`interview_service.calls`). The peer reports what
happens through a :class:`PeerListener` and knows nothing of interviews.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import av
import structlog
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.sdp import SessionDescription, candidate_from_sdp

from backend.core.errors import InvalidInput, UpstreamFailed
from interview_service import opus_decoder
from interview_service.conversation_seam import AudioSource
from interview_service.sdp_shape import InvalidSdp, check_sdp, is_candidate

log = structlog.get_logger(__name__)

EVENTS_LABEL = "events"
OPUS = "audio/opus"
PENDING_EVENTS = 256  # events queued before the channel opens; the oldest go first


class PeerListener(Protocol):
    def peer_state(self, connection_state: str, ice_connection_state: str) -> None: ...

    def peer_frame(self, frame: av.AudioFrame) -> None: ...

    def peer_message(self, text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class PeerOptions:
    ice_servers: list[dict[str, Any]]  # the server's own list: never a public default
    relay_only: bool = False
    gather_timeout_s: float = 5.0
    # Inbound Opus decoded on the event loop at this rate, mono (None: aiortc's 48 kHz
    # stereo decode in its thread). See :func:`decode_on_loop`.
    decode_rate: int | None = None


class TurnUnusable(UpstreamFailed):
    """Relay-only, yet gathering produced no relay candidate: TURN refused or unreachable."""

    code = "turn_unusable"


class GatheringTimeout(UpstreamFailed):
    code = "ice_gathering_timeout"


def parse_candidate(raw: Mapping[str, Any]) -> Any:
    """A browser's ``{candidate, sdpMid, sdpMLineIndex}`` as aiortc's candidate; None ends them."""
    text = raw.get("candidate")
    if text in (None, ""):
        return None
    if not isinstance(text, str) or len(text) > 1024:
        raise InvalidInput("candidate must be an SDP candidate string", code="invalid_candidate")
    mid, index = raw.get("sdpMid"), raw.get("sdpMLineIndex")
    if mid is None and index is None:
        raise InvalidInput("a candidate needs sdpMid or sdpMLineIndex", code="invalid_candidate")
    if (mid is not None and not isinstance(mid, str)) or (
        index is not None and (not isinstance(index, int) or isinstance(index, bool))
    ):
        raise InvalidInput("sdpMid is a string, sdpMLineIndex an integer", code="invalid_candidate")
    text = text.removeprefix("a=").removeprefix("candidate:")
    if not is_candidate(text):
        raise InvalidInput(
            "candidate is 'candidate:<foundation> <component> <udp|tcp> <priority> <address> "
            "<port> typ <host|srflx|prflx|relay> ...'",
            code="invalid_candidate",
        )
    try:
        candidate = candidate_from_sdp(text)
    except Exception as exc:
        log.info("candidate_refused", error=repr(exc)[:300])
        raise InvalidInput("unparseable candidate", code="invalid_candidate") from None
    candidate.sdpMid = mid
    candidate.sdpMLineIndex = index
    return candidate


@contextlib.contextmanager
def _refused_sdp(kind: str) -> Iterator[None]:
    """Whatever aiortc raises on a remote description is the client's bad SDP: a 400.

    aiortc fails with ValueError, KeyError, AssertionError, AttributeError,
    StopIteration's RuntimeError, InvalidStateError, OperationError...; its words stay
    in the log.
    """
    try:
        yield
    except InvalidInput:
        raise
    except Exception as exc:
        log.info("sdp_refused", kind=kind, error=repr(exc)[:300])
        raise InvalidSdp(f"the {kind} was refused by the WebRTC stack") from None


def _without_empty_end_of_candidates(sdp: str) -> str:
    """Drop ``a=end-of-candidates`` from an offer that carries no candidate at all.

    aioice prunes every ICE component the remote ended without candidates, and then
    gathers nothing of its own: a peer that offers before it has a candidate (one that
    will trickle, or that can only be reached through our relay) would get an answer
    with no candidates and a dead call. Its real end marker can still come through
    ``rtc/ice-candidate``.
    """
    if "a=candidate:" in sdp or "a=end-of-candidates" not in sdp:
        return sdp
    return "".join(
        line for line in sdp.splitlines(keepends=True) if not line.startswith("a=end-of-candidates")
    )


class SourceTrack(MediaStreamTrack):
    """The server's voice: frames from the conversation's paced source.

    Once Opus is the codec negotiated (``opus``), it hands aiortc the source's Opus
    packets, which aiortc sends as they are; otherwise PCM frames, which aiortc encodes.
    """

    kind = "audio"

    def __init__(self, source: AudioSource) -> None:
        super().__init__()
        self._source = source
        self.opus = False

    async def recv(self) -> av.AudioFrame | av.Packet[Any]:
        if self.opus:
            return (await self._source.recv_opus()).packet
        return await self._source.recv()


def _audio_codecs(sdp: str) -> list[str]:
    """The codecs of the first audio m-line, lower-case mime types, in the SDP's order."""
    for media in SessionDescription.parse(sdp).media:
        if media.kind == "audio":
            return [codec.mimeType.lower() for codec in media.rtp.codecs]
    return []


def _opus_first(transceiver: Any) -> None:
    codecs = RTCRtpSender.getCapabilities("audio").codecs
    ranked = sorted(codecs, key=lambda codec: codec.mimeType.lower() != OPUS)
    transceiver.setCodecPreferences(ranked)


class ReceiverChanged(RuntimeError):
    """aiortc's receiver no longer looks as :func:`decode_on_loop` expects."""


def decode_on_loop(receiver: Any, rate: int) -> opus_decoder.OpusDecoder:
    """Decode the receiver's Opus frames on the event loop, at ``rate`` mono.

    aiortc's ``RTCRtpReceiver`` takes each packet on the event loop, puts it through
    its jitter buffer (reordering, dropping late packets, NACKs), and puts the whole
    encoded frame, ``(codec, JitterFrame)``, on a ``queue.Queue`` that its decoder
    thread reads; the thread decodes it at 48 kHz stereo and hands the frame back to
    the loop with ``run_coroutine_threadsafe`` onto the remote track's asyncio queue.
    Here that queue's ``put`` (called on the loop, by aiortc 1.16's
    ``_handle_rtp_packet``) decodes Opus frames at once with :mod:`opus_decoder` and
    puts the frame on the track's queue itself: no thread hop, no loop wake-up from
    another thread, no resampling after. Anything else (another codec, the ``None``
    that stops the thread) still goes to the thread, which otherwise sleeps.

    It relies on two private attributes of aiortc (pinned in uv.lock): the receiver's
    ``_RTCRtpReceiver__decoder_queue`` and the remote track's ``_queue``; it raises
    :class:`ReceiverChanged` when they are not what they were, and
    ``tests/webrtc/test_inbound_decode.py`` fails on an aiortc that changed them.
    """
    pending = getattr(receiver, "_RTCRtpReceiver__decoder_queue", None)
    remote = getattr(getattr(receiver, "track", None), "_queue", None)
    if not isinstance(pending, queue.Queue) or not isinstance(remote, asyncio.Queue):
        raise ReceiverChanged("aiortc's RTCRtpReceiver has no decoder queue or track queue")
    decoder = opus_decoder.OpusDecoder(rate)
    to_thread = pending.put

    def put(item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None or item[0].mimeType.lower() != OPUS:
            to_thread(item, block, timeout)
            return
        encoded = item[1]
        frame = decoder.decode(encoded.data, encoded.timestamp)
        if frame is not None:
            remote.put_nowait(frame)

    pending.put = put  # type: ignore[method-assign]
    return decoder


class Peer:
    def __init__(self, options: PeerOptions, source: AudioSource, listener: PeerListener) -> None:
        policy = RTCIceTransportPolicy.RELAY if options.relay_only else RTCIceTransportPolicy.ALL
        servers = [
            RTCIceServer(
                urls=server["urls"],
                username=server.get("username"),
                credential=server.get("credential"),
            )
            for server in options.ice_servers
        ]
        self._options = options
        self._listener = listener
        self._pc = RTCPeerConnection(
            RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)
        )
        self._track = SourceTrack(source)
        self._channel: RTCDataChannel | None = None
        self._pending: deque[str] = deque(maxlen=PENDING_EVENTS)
        self._readers: set[asyncio.Task[None]] = set()
        self._decoders: list[opus_decoder.OpusDecoder] = []
        self._closed = False
        self.awaiting_answer = False
        self._pc.on("connectionstatechange", self._report_state)
        self._pc.on("iceconnectionstatechange", self._report_state)
        self._pc.on("datachannel", self._adopt_channel)
        self._pc.on("track", self._read_track)

    # ---- signaling -------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """The answer to a browser's offer, with every local candidate gathered."""
        offer_sdp = _without_empty_end_of_candidates(offer_sdp)
        with _refused_sdp("offer"):
            await self._pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        audio = [t for t in self._pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise InvalidInput("the offer has no audio m-line", code="no_audio")
        with _refused_sdp("offer"):
            self._pc.addTrack(self._track)
            _opus_first(audio[0])
            answer = await self._pc.createAnswer()
        # aiortc sends the first codec of its answer (once ICE and DTLS are up)
        self._track.opus = _audio_codecs(answer.sdp)[:1] == [OPUS]
        return await self._describe(answer)

    async def offer(self) -> str:
        """A server offer (renegotiation, ICE restart); the browser replies via rtc/answer."""
        transceiver = self._pc.addTransceiver(self._track, direction="sendrecv")
        _opus_first(transceiver)
        self._adopt_channel(self._pc.createDataChannel(EVENTS_LABEL))
        sdp = await self._describe(await self._pc.createOffer())
        self.awaiting_answer = True
        return sdp

    async def accept_answer(self, answer_sdp: str) -> None:
        check_sdp(answer_sdp, "answer")
        with _refused_sdp("answer"):
            # our offer ranks Opus first, and aiortc sends the first of the answer's
            # codecs in that ranking
            self._track.opus = OPUS in _audio_codecs(answer_sdp)
            await self._pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))
        self.awaiting_answer = False

    @property
    def has_remote_description(self) -> bool:
        return self._pc.remoteDescription is not None

    async def add_candidate(self, candidate: Any) -> None:
        """One parsed remote candidate, or None for end-of-candidates."""
        try:
            await self._pc.addIceCandidate(candidate)
        except Exception as exc:  # aioice: after end-of-candidates, unresolvable host, ...
            log.info("candidate_refused", error=repr(exc)[:300])
            raise InvalidInput(
                "the WebRTC stack refused the candidate", code="invalid_candidate"
            ) from None

    async def _describe(self, description: RTCSessionDescription) -> str:
        # aiortc gathers every candidate inside setLocalDescription; bound it.
        try:
            async with asyncio.timeout(self._options.gather_timeout_s):
                await self._pc.setLocalDescription(description)
        except TimeoutError:
            raise GatheringTimeout(
                f"ICE gathering took over {self._options.gather_timeout_s:g}s; is TURN reachable?"
            ) from None
        sdp: str = self._pc.localDescription.sdp
        if self._options.relay_only and " typ relay" not in sdp:
            raise TurnUnusable(
                "relay-only, but TURN gave no relay candidate: check TURN_SERVER, TURN_SECRET "
                "and that coturn is reachable"
            )
        return sdp

    # ---- events channel --------------------------------------------------------------

    def send_event(self, event: Mapping[str, Any]) -> None:
        text = json.dumps(event, separators=(",", ":"))
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(text)
        else:
            self._pending.append(text)

    def _adopt_channel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_LABEL:
            return
        self._channel = channel
        channel.on("message", self._on_message)
        channel.on("open", self._flush)
        if channel.readyState == "open":
            self._flush()

    def _flush(self) -> None:
        channel = self._channel
        while self._pending and channel is not None and channel.readyState == "open":
            channel.send(self._pending.popleft())

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self._listener.peer_message(message)

    # ---- media -----------------------------------------------------------------------

    def _read_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        rate = self._options.decode_rate
        if rate is not None and opus_decoder.available():
            for receiver in self._pc.getReceivers():
                if receiver.track is track:
                    try:
                        self._decoders.append(decode_on_loop(receiver, rate))
                    except ReceiverChanged:
                        log.exception("inbound_decode_unavailable")  # aiortc decodes
        task = asyncio.get_running_loop().create_task(self._pump(track))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    async def _pump(self, track: MediaStreamTrack) -> None:
        # Always read, so frames never pile up in aiortc's jitter buffer.
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self._listener.peer_frame(frame)  # type: ignore[arg-type]

    def _report_state(self) -> None:
        if not self._closed:
            self._listener.peer_state(self._pc.connectionState, self._pc.iceConnectionState)

    @property
    def connection_state(self) -> str:
        return str(self._pc.connectionState)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._readers):
            task.cancel()
        with contextlib.suppress(Exception):
            await self._pc.close()
        for task in list(self._readers):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for decoder in self._decoders:
            decoder.close()
