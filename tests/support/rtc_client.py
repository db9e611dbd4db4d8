"""A browser stand-in for tests and benchmarks: an aiortc peer that calls the service.

It opens the ``events`` data channel before its offer (as the contract asks of
browsers), sends a tone as its microphone, and records what it hears and receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import av
import httpx
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from interview_service.loudness import rms
from interview_service.paced_audio import PacedSource, tone
from interview_service.peer import SourceTrack


class RtcClient:
    def __init__(
        self,
        ice_servers: list[dict[str, Any]] | None = None,
        *,
        relay_only: bool = False,
        speak_s: float = 3.0,
        only_codec: str | None = None,
    ) -> None:
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in (ice_servers or [])
        ]
        policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
        self.microphone = PacedSource()
        if speak_s > 0:
            self.microphone.enqueue_pcm(tone(speak_s, hz=330.0, level=0.3))
        self.pc.addTrack(SourceTrack(self.microphone))
        if only_codec is not None:  # a peer that offers just this codec (e.g. "audio/PCMU")
            [transceiver] = self.pc.getTransceivers()
            codecs = RTCRtpSender.getCapabilities("audio").codecs
            transceiver.setCodecPreferences(
                [codec for codec in codecs if codec.mimeType.lower() == only_codec.lower()]
            )
        self.channel = self.pc.createDataChannel("events")
        self.events: list[dict[str, Any]] = []
        self.frames_heard = 0
        self.loud_frames_heard = 0
        # frames that are not 20 ms long: packets decoded with a codec they were not
        # encoded with (Opus bytes read as PCMU come out as a few samples of noise)
        self.misshapen_frames_heard = 0
        self.onsets: list[float] = []  # wall clock of each quiet->loud change heard
        self.last_loud_at = 0.0  # wall clock of the last loud frame heard
        self.connected = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.events.append(json.loads(message))

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.get_running_loop().create_task(self._listen(track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        was_loud = False
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.AudioFrame)
            self.frames_heard += 1
            if frame.samples * 50 != frame.sample_rate:
                self.misshapen_frames_heard += 1
            loud = rms(frame) > 0.01
            if loud:
                if not was_loud:
                    self.onsets.append(time.time())
                self.loud_frames_heard += 1
                self.last_loud_at = time.time()
            was_loud = loud

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))

    async def call(self, http: httpx.AsyncClient, interview_id: str) -> str:
        """Offer through the REST API and apply the answer; returns the answer SDP."""
        response = await http.post(
            f"/api/interview/{interview_id}/rtc/offer",
            json={"sdp": await self.offer(), "type": "offer"},
        )
        response.raise_for_status()
        answer: str = response.json()["sdp"]
        await self.accept(answer)
        return answer

    def transcript(self, role: str | None = None) -> list[dict[str, Any]]:
        items = [e["item"] for e in self.events if e.get("type") == "transcript"]
        return [item for item in items if role is None or item["role"] == role]

    def event_types(self) -> list[str]:
        return [str(event.get("type")) for event in self.events]

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()

    async def vanish(self) -> None:
        """The tab is gone without a goodbye: the network goes quiet, no DTLS close_notify
        reaches the server (``close`` sends one). ``close`` still tidies up after."""
        for task in self._readers:
            task.cancel()
        for transceiver in self.pc.getTransceivers():
            with contextlib.suppress(Exception):
                await transceiver.sender.transport.transport.stop()  # the ICE transport


async def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms; fail the test naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def connected_interview(
    http: httpx.AsyncClient, body: dict[str, Any], *, relay_only: bool = True
) -> tuple[str, RtcClient]:
    """Start an interview and connect a silent caller to it: (session id, caller)."""
    started = (await http.post("/api/interview/start", json=body)).json()
    client = RtcClient(started["ice_servers"], relay_only=relay_only, speak_s=0)
    await client.call(http, started["session_id"])
    await asyncio.wait_for(client.connected.wait(), 15)
    return str(started["session_id"]), client
