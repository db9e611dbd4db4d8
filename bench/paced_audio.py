"""CPU of the paced outbound source: N sources started at random moments, each sending
20 ms frames in real time for a few seconds, with the frames on the process-wide grid
(as served) and, as the baseline in the same run, each source on its own clock.

``--sending`` also times what aiortc then does with each frame, as its
``RTCRtpSender._next_encoded_frame`` does it, while every source speaks half the time:
PCM frames (aiortc computes the audio level and encodes in its thread pool, one hop per
frame: the old way) against the source's own Opus packets (aiortc only packs them), sent
every 20 ms and with the silence left out (DTX). aiortc's SRTP and UDP send per packet
are not in it (``bench/voice_latency.py`` measures a whole call).

    uv run python -m bench.paced_audio --sources 4 --seconds 4
    uv run python -m bench.paced_audio --sources 4 --seconds 6 --sending
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from unittest import mock

from aiortc import rtp
from aiortc.codecs.opus import OpusEncoder

from interview_service import paced_audio
from interview_service.paced_audio import PacedSource, tone

Sender = Callable[[PacedSource], Callable[[], Awaitable[object]]]


def _source_only(source: PacedSource) -> Callable[[], Awaitable[object]]:
    return source.recv


def _frames_encoded_by_aiortc(source: PacedSource) -> Callable[[], Awaitable[object]]:
    encoder, loop = OpusEncoder(), asyncio.get_running_loop()

    async def send() -> object:
        frame = await source.recv()
        rtp.compute_audio_level_dbov(frame)
        return await loop.run_in_executor(None, encoder.encode, frame, False)

    return send


def _our_packets(source: PacedSource) -> Callable[[], Awaitable[object]]:
    encoder = OpusEncoder()

    async def send() -> object:
        return encoder.pack((await source.recv_opus()).packet)

    return send


async def _cpu_per_source(sources: int, seconds: float, sender: Sender, talk: bool) -> float:
    """% of a core per source."""
    rng = random.Random(1)
    offsets = [rng.random() * paced_audio.FRAME_S for _ in range(sources)]
    line = tone(1.0)

    async def speak(source: PacedSource) -> None:
        while True:  # one second of speech in every two, as the voice loop queues it
            source.enqueue_pcm(line)
            await asyncio.sleep(2.0)

    async def pump(source: PacedSource, offset: float) -> None:
        send = sender(source)
        await asyncio.sleep(offset)
        end = time.monotonic() + seconds
        async with asyncio.TaskGroup() as tasks:
            # queued from its own task: a source in Opus DTX waits in recv_opus meanwhile
            speaker = tasks.create_task(speak(source)) if talk else None
            while time.monotonic() < end:
                await send()
            if speaker is not None:
                speaker.cancel()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(pump(PacedSource(), o) for o in offsets))
    return (time.process_time() - cpu) / (time.perf_counter() - wall) / sources * 100


async def _main(args: argparse.Namespace) -> None:
    for sources in args.sources:
        with mock.patch.object(paced_audio, "next_tick", lambda now: now):
            own = await _cpu_per_source(sources, args.seconds, _source_only, False)
        grid = await _cpu_per_source(sources, args.seconds, _source_only, False)
        print(
            f"{sources} sources: own clocks {own:.3f}% of a core each, shared grid "
            f"{grid:.3f}%: ratio {grid / own:.2f}"
        )
        if args.sending:
            frames = await _cpu_per_source(sources, args.seconds, _frames_encoded_by_aiortc, True)
            with mock.patch.object(paced_audio, "DTX_HANGOVER_FRAMES", 1 << 30):
                every = await _cpu_per_source(sources, args.seconds, _our_packets, True)
            packets = await _cpu_per_source(sources, args.seconds, _our_packets, True)
            print(
                f"  sending, half the time speech: PCM frames aiortc encodes {frames:.3f}% "
                f"of a core each, our Opus packets {every:.3f}% (every 20 ms), "
                f"{packets:.3f}% (silence left out, DTX): ratio to PCM {packets / frames:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--sending", action="store_true", help="and what aiortc does per frame")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
