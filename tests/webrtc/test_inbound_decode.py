"""The candidate's Opus is decoded on the event loop at 16 kHz mono, over a real call.

An aiortc caller (a browser's stand-in) speaks espeak-ng speech between silences through
coturn to a server peer (``interview_service.peer``) that decodes at the listener's rate.
Silero VAD, run on what the peer handed on, hears the speech where it was sent. The
peer relies on two private attributes of aiortc's receiver: these tests fail, naming
them, on an aiortc that changed them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection
from aiortc.codecs import get_capabilities
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from interview_service.conversation_seam import SAMPLE_RATE_IN
from interview_service.espeak import EspeakVoice
from interview_service.paced_audio import PacedSource
from interview_service.peer import Peer, PeerOptions, decode_on_loop
from interview_service.turn_credentials import turn_credentials
from interview_service.voice.local import SileroVad
from interview_service.voice.providers import VAD_CHUNK
from tests.support.coturn import Coturn
from tests.support.rtc_client import RtcClient, until

SILENCE_S = 1.0


class _Ears:
    def __init__(self) -> None:
        self.frames: list[av.AudioFrame] = []

    def peer_state(self, connection_state: str, ice_connection_state: str) -> None:
        pass

    def peer_frame(self, frame: av.AudioFrame) -> None:
        self.frames.append(frame)

    def peer_message(self, text: str) -> None:
        pass


def _ice(coturn: Coturn) -> list[dict[str, Any]]:
    creds = turn_credentials(coturn.secret, "cand", ttl_s=600, now=time.time())
    return [
        {
            "urls": [f"turn:{coturn.server}"],
            "username": creds.username,
            "credential": creds.credential,
        }
    ]


async def _call(coturn: Coturn, *, only_codec: str | None = None) -> tuple[Peer, RtcClient, _Ears]:
    ice, ears = _ice(coturn), _Ears()
    peer = Peer(
        PeerOptions(ice_servers=ice, relay_only=True, decode_rate=SAMPLE_RATE_IN),
        PacedSource(),
        ears,
    )
    client = RtcClient(ice, relay_only=True, speak_s=0, only_codec=only_codec)
    await client.accept(await peer.answer(await client.offer()))
    await asyncio.wait_for(client.connected.wait(), 15)
    return peer, client, ears


async def test_speech_is_decoded_at_16_khz_and_heard_where_it_was_said(coturn: Coturn) -> None:
    speech = await EspeakVoice().synthesize("I have worked on video pipelines for five years.")
    speech_s = len(speech) / 2 / 48_000
    silence = bytes(int(48_000 * SILENCE_S) * 2)
    peer, client, ears = await _call(coturn)
    try:
        await until(lambda: len(ears.frames) >= 10, 10, "the caller's first frames")
        start = len(ears.frames)
        segment = client.microphone.enqueue_pcm(silence + speech + silence)
        await until(lambda: len(ears.frames) >= start + segment.frames, 20, "the whole segment")
    finally:
        await client.close()
        await peer.close()

    shapes = {(f.sample_rate, f.layout.name, f.format.name, f.samples) for f in ears.frames}
    assert shapes == {(SAMPLE_RATE_IN, "mono", "flt", 320)}, (
        f"frames came as {shapes}: the peer did not decode them, aiortc did (did aiortc's "
        "RTCRtpReceiver stop calling _RTCRtpReceiver__decoder_queue.put on the loop?)"
    )
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in ears.frames[start:]])
    samples = samples[: len(samples) // VAD_CHUNK * VAD_CHUNK]
    vad = SileroVad()
    voiced = [vad.probability(chunk) >= 0.5 for chunk in samples.reshape(-1, VAD_CHUNK)]
    chunk_s = VAD_CHUNK / SAMPLE_RATE_IN
    times = [index * chunk_s for index, is_voiced in enumerate(voiced) if is_voiced]
    assert times, "Silero heard no speech in what was decoded"
    # the speech starts after the leading silence and ends before the trailing one
    # (within the jitter buffer's and the pacing's slack)
    assert SILENCE_S - 0.2 <= times[0] <= SILENCE_S + 0.4, times[0]
    assert times[-1] <= SILENCE_S + speech_s + 0.3, (times[-1], speech_s)
    assert len(times) * chunk_s >= 0.6 * speech_s  # most of the speech is heard as speech


async def test_another_codec_is_still_decoded_by_aiortc(coturn: Coturn) -> None:
    peer, client, ears = await _call(coturn, only_codec="audio/PCMU")
    try:
        client.microphone.enqueue_pcm(bytes(48_000 * 2))
        await until(lambda: len(ears.frames) >= 10, 10, "the caller's PCMU frames")
    finally:
        await client.close()
        await peer.close()
    assert {f.sample_rate for f in ears.frames} == {8_000}  # G.711, through aiortc's thread


async def test_the_receiver_hands_opus_frames_to_the_loop_decoder() -> None:
    """No media flows: aiortc's receiver still has the queue and the track the peer uses,
    and what is put on that queue comes out of the track decoded."""
    caller, callee = RTCPeerConnection(), RTCPeerConnection()
    try:
        caller.addTransceiver("audio")
        await caller.setLocalDescription(await caller.createOffer())
        await callee.setRemoteDescription(caller.localDescription)
        [receiver] = callee.getReceivers()
        decoder = decode_on_loop(receiver, SAMPLE_RATE_IN)
        [opus] = [
            codec
            for codec in get_capabilities("audio").codecs
            if codec.mimeType.lower() == "audio/opus"
        ]
        codec = RTCRtpCodecParameters(
            mimeType=opus.mimeType, clockRate=opus.clockRate, channels=opus.channels, payloadType=96
        )
        silence = bytes([0xF8, 0xFF, 0xFE])  # one 20 ms CELT frame of digital silence
        receiver._RTCRtpReceiver__decoder_queue.put((codec, JitterFrame(silence, 960)))
        frame = await asyncio.wait_for(receiver.track.recv(), 1)
        assert (frame.sample_rate, frame.samples, frame.pts) == (SAMPLE_RATE_IN, 320, 320)
        decoder.close()
    finally:
        await caller.close()
        await callee.close()
