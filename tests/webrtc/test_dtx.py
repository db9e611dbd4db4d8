"""The interviewer's silence is not sent (Opus DTX), and what it says after is heard whole.

A server peer (``interview_service.peer``) sends a paced source to the aiortc caller of
the tests, over loopback in the namespace: what the caller receives is what a candidate's
browser would.
"""

from __future__ import annotations

import asyncio
import time

import av

from interview_service.paced_audio import PacedSource, tone
from interview_service.peer import Peer, PeerOptions
from interview_service.turn_credentials import turn_credentials
from tests.support.coturn import Coturn
from tests.support.rtc_client import RtcClient, until


class _Ears:
    def peer_state(self, connection_state: str, ice_connection_state: str) -> None:
        pass

    def peer_frame(self, frame: av.AudioFrame) -> None:
        pass

    def peer_message(self, text: str) -> None:
        pass


async def _line(client: RtcClient, source: PacedSource, seconds: float) -> int:
    """Say a tone of ``seconds``: how many loud frames the caller heard of it."""
    loud, heard = client.loud_frames_heard, client.frames_heard
    segment = source.enqueue_pcm(tone(seconds, hz=400.0, level=0.3))
    # its frames, the first silent one after (Opus's delay spills into it), and the four
    # packets aiortc's jitter buffer holds back (the hangover's silence pushes them out)
    await until(lambda: client.frames_heard >= heard + segment.frames + 1 + 4, 5, "the line")
    return client.loud_frames_heard - loud


async def test_silence_is_not_sent_and_speech_after_it_is_heard_whole(coturn: Coturn) -> None:
    creds = turn_credentials(coturn.secret, "cand", ttl_s=600, now=time.time())
    ice = [
        {
            "urls": [f"turn:{coturn.server}"],
            "username": creds.username,
            "credential": creds.credential,
        }
    ]
    source = PacedSource()
    peer = Peer(PeerOptions(ice_servers=ice, relay_only=True), source, _Ears())
    client = RtcClient(ice, relay_only=True, speak_s=0)
    try:
        await client.accept(await peer.answer(await client.offer()))
        await asyncio.wait_for(client.connected.wait(), 15)
        first = await _line(client, source, 0.5)
        assert first >= 25  # 0.5 s of tone: 25 frames (26 with Opus's delay)

        # two seconds of silence: a keep-alive now and then, not 100 packets
        heard, packets = client.frames_heard, source.packets_sent
        began = time.monotonic()
        await asyncio.sleep(2.0)
        silent_frames = (time.monotonic() - began) / 0.02
        assert source.packets_sent - packets < silent_frames / 10
        assert client.frames_heard - heard < silent_frames / 10

        # the first line after the silence is heard whole
        assert await _line(client, source, 0.5) >= 25
        assert client.misshapen_frames_heard == 0
    finally:
        await client.close()
        await peer.close()
