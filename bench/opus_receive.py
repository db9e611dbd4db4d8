"""CPU per inbound 20 ms frame: aiortc's receive path against decoding on the event loop.

    uv run python -m bench.opus_receive                   # 1,500 frames each, 3 rounds
    uv run python -m bench.opus_receive --frames 3000 --interval-ms 4

Both paths start where aiortc's ``RTCRtpReceiver`` puts a whole encoded frame (after its
jitter buffer) on its decoder queue, and end with the frame's samples as the listener
reads them (16 kHz mono float):

- ``aiortc``: aiortc's own ``decoder_worker`` thread (as ``RTCRtpReceiver.receive``
  starts it) decodes at 48 kHz stereo and hands the frame back with
  ``run_coroutine_threadsafe``; the reader takes it from the track and resamples it
  with ``av.AudioResampler`` (what the listener did).
- ``loop``: :func:`interview_service.peer.decode_on_loop` decodes at 16 kHz mono
  as the frame is put (``interview_service.opus_decoder``); the reader takes the samples
  as they are.

Packets are espeak-ng speech encoded by aiortc's Opus encoder (as aiortc sends a
microphone: 48 kHz stereo, 96 kbit/s), put one every ``--interval-ms`` so each frame
wakes the reader on its own, as in a call. The figure is the process's CPU time (every
thread) per frame, less the same pacing loop's CPU with nothing put; then the decode
(and resample) alone in a tight loop, which leaves out the hand-over to the reader.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection
from aiortc.codecs import get_capabilities
from aiortc.codecs.opus import OpusDecoder as AiortcOpusDecoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import decoder_worker

from interview_service.espeak import EspeakVoice
from interview_service.opus_decoder import OpusDecoder
from interview_service.opus_encoder import pcm_frame
from interview_service.peer import decode_on_loop
from interview_service.voice.providers import VAD_RATE

FRAME = 960  # 20 ms at 48 kHz


async def _packets() -> list[bytes]:
    pcm = await EspeakVoice().synthesize(
        "I have worked on video pipelines for five years, mostly on rendering and encoding."
    )
    pcm += bytes(-len(pcm) % (2 * FRAME))
    encoder = OpusEncoder()
    packets: list[bytes] = []
    for index, offset in enumerate(range(0, len(pcm), 2 * FRAME)):
        frame = pcm_frame(pcm[offset : offset + 2 * FRAME])
        frame.pts = index * FRAME
        packets += encoder.encode(frame)[0]
    return packets


def _opus_codec() -> RTCRtpCodecParameters:
    [opus] = [c for c in get_capabilities("audio").codecs if c.mimeType.lower() == "audio/opus"]
    return RTCRtpCodecParameters(
        mimeType=opus.mimeType, clockRate=opus.clockRate, channels=opus.channels, payloadType=96
    )


async def _receiver(pcs: list[RTCPeerConnection]) -> Any:
    """An aiortc receiver with its remote track, as a call's peer has (no media flows)."""
    caller, callee = RTCPeerConnection(), RTCPeerConnection()
    pcs += [caller, callee]
    caller.addTransceiver("audio")
    await caller.setLocalDescription(await caller.createOffer())
    await callee.setRemoteDescription(caller.localDescription)
    [receiver] = callee.getReceivers()
    return receiver


async def _run(path: str, packets: list[bytes], frames: int, interval_s: float) -> float:
    """CPU seconds for ``frames`` frames through ``path`` ("idle": pacing alone)."""
    pcs: list[RTCPeerConnection] = []
    receiver = await _receiver(pcs)
    pending = receiver._RTCRtpReceiver__decoder_queue
    track = receiver.track
    thread = None
    if path == "aiortc":
        thread = threading.Thread(
            target=decoder_worker,
            args=(asyncio.get_running_loop(), pending, track._queue, threading.Event()),
        )
        thread.start()
    elif path == "loop":
        decode_on_loop(receiver, VAD_RATE)
    codec = _opus_codec()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
    read = 0

    async def reader() -> None:
        nonlocal read
        while read < frames:
            frame = await track.recv()
            if path == "aiortc":
                for converted in resampler.resample(frame):
                    np.frombuffer(memoryview(converted.planes[0]), np.float32, converted.samples)
            else:
                np.frombuffer(memoryview(frame.planes[0]), np.float32, frame.samples)
            read += 1

    task = asyncio.create_task(reader()) if path != "idle" else None
    await asyncio.sleep(0.2)
    began = time.process_time()
    next_at = time.monotonic()
    for index in range(frames):
        next_at += interval_s
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if path != "idle":
            pending.put((codec, JitterFrame(packets[index % len(packets)], index * FRAME)))
    if task is not None:
        await asyncio.wait_for(task, 10)
    used = time.process_time() - began
    if thread is not None:
        pending.put(None)
        thread.join()
    for pc in pcs:
        await pc.close()
    return used


def _decode_only(packets: list[bytes], frames: int) -> dict[str, float]:
    """CPU µs per packet of the decode (and conversion) alone, in a tight loop."""
    old_decoder = AiortcOpusDecoder()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
    began = time.process_time()
    for index in range(frames):
        for frame in old_decoder.decode(JitterFrame(packets[index % len(packets)], index * FRAME)):
            resampler.resample(frame)
    old = time.process_time() - began
    decoder = OpusDecoder(VAD_RATE)
    began = time.process_time()
    for index in range(frames):
        decoder.decode(packets[index % len(packets)], index * FRAME)
    new = time.process_time() - began
    return {"aiortc": old / frames * 1e6, "loop": new / frames * 1e6}


async def _main(args: argparse.Namespace) -> None:
    packets = await _packets()
    interval_s = args.interval_ms / 1000
    print(
        f"{args.frames} frames per path, one every {args.interval_ms:g} ms, "
        f"{len(packets)} packets of speech looped; load average {_load()}"
    )
    results: dict[str, list[float]] = {"idle": [], "aiortc": [], "loop": []}
    for _ in range(args.rounds):
        for path in results:
            results[path].append(await _run(path, packets, args.frames, interval_s))
    idle = statistics.median(results["idle"]) / args.frames * 1e6
    print(f"  pacing alone: {idle:.1f} us CPU per frame (subtracted below)")
    for path in ("aiortc", "loop"):
        per_frame = [used / args.frames * 1e6 - idle for used in results[path]]
        rounds = ", ".join(f"{value:.1f}" for value in per_frame)
        print(f"  {path:7} {statistics.median(per_frame):6.1f} us CPU per 20 ms frame ({rounds})")
    alone = _decode_only(packets, args.frames)
    print(
        f"  the decode alone (tight loop, no hand-over): aiortc 48 kHz stereo + resampler "
        f"{alone['aiortc']:.1f} us, libopus 16 kHz mono {alone['loop']:.1f} us per frame"
    )
    print(f"load average after: {_load()}")


def _load() -> str:
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--interval-ms", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
