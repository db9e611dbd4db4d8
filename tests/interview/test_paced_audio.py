"""The paced outbound source: speech then silence, pts always growing, one shared grid;
as PCM frames and as the Opus packets a receiver decodes."""

from __future__ import annotations

import asyncio

import av
import numpy as np

from interview_service import paced_audio
from interview_service.paced_audio import (
    DTX_HANGOVER_FRAMES,
    DTX_KEEPALIVE_S,
    FRAME_S,
    SAMPLES_PER_FRAME,
    PacedSource,
    next_tick,
    tone,
)


async def test_speech_then_silence_with_growing_pts() -> None:
    source = PacedSource()
    speech = (np.arange(2 * SAMPLES_PER_FRAME) % 100 + 1).astype("<i2").tobytes()
    source.enqueue_pcm(speech)
    seen = []
    for _ in range(5):
        frame = await source.recv()
        seen.append((frame.pts, frame.to_ndarray().reshape(-1).copy()))
    assert [pts for pts, _ in seen] == [i * SAMPLES_PER_FRAME for i in range(5)]
    heard = np.concatenate([samples for _, samples in seen[:2]])
    assert heard.tobytes() == speech
    assert all(not samples.any() for _, samples in seen[2:])
    assert not source.speaking
    assert source.speech_frames_sent == 2


async def test_sources_share_the_frame_grid() -> None:
    # two calls' sources started at different moments wake the loop on the same ticks
    for now in (paced_audio._GRID_EPOCH + 0.0031, paced_audio._GRID_EPOCH + 7.0177):
        tick = next_tick(now)
        assert now <= tick < now + FRAME_S
        steps = (tick - paced_audio._GRID_EPOCH) / FRAME_S
        assert abs(steps - round(steps)) < 1e-6


def _decoder() -> av.AudioCodecContext:
    codec = av.CodecContext.create("libopus", "r")
    assert isinstance(codec, av.AudioCodecContext)
    codec.format, codec.layout, codec.sample_rate = "s16", "mono", 48_000
    return codec


async def _heard(
    source: PacedSource, frames: int, decoder: av.AudioCodecContext | None = None
) -> tuple[np.ndarray, list[int]]:
    """What a receiver decodes of the next ``frames`` packets, and their pts."""
    decoder = decoder or _decoder()
    samples, stamps = [], []
    for _ in range(frames):
        encoded = await source.recv_opus()
        stamps.append(encoded.packet.pts)
        samples += [
            f.to_ndarray().reshape(-1) for f in decoder.decode(av.Packet(bytes(encoded.packet)))
        ]
    return np.concatenate(samples).astype(np.float32) / 32768, stamps


def _matches(heard: np.ndarray, said: np.ndarray) -> bool:
    """Opus gives back the waveform, 312 samples late, to within ~10 dB of noise."""
    late = heard[312 : 312 + said.size]
    return float(np.sum((late - said) ** 2)) < 0.2 * float(np.sum(said**2))


async def test_opus_packets_decode_to_the_speech_then_silence() -> None:
    source = PacedSource()
    speech = tone(0.2)
    said = np.frombuffer(speech, dtype="<i2").astype(np.float32) / 32768
    source.enqueue_pcm(speech)
    heard, stamps = await _heard(source, 10 + DTX_HANGOVER_FRAMES)
    assert stamps == [i * SAMPLES_PER_FRAME for i in range(10 + DTX_HANGOVER_FRAMES)]
    assert _matches(heard, said)
    assert not np.abs(heard[12 * SAMPLES_PER_FRAME :]).any()  # silence is silent
    assert source.speech_frames_sent == 10
    assert not source.speaking


async def test_a_flush_silences_the_next_packet_and_the_next_line_decodes() -> None:
    source = PacedSource()
    cut = source.enqueue_pcm(tone(0.4, hz=300))
    decoder = _decoder()
    for _ in range(5):
        decoder.decode(av.Packet(bytes((await source.recv_opus()).packet)))
    assert source.flush() == 15
    after = (await source.recv_opus()).packet
    assert bytes(after) == bytes((await source.recv_opus()).packet)  # the one silent packet
    assert (cut.sent, cut.frames) == (5, 20)  # what was played, for "cut to what was heard"
    speech = tone(0.2, hz=500)
    source.enqueue_pcm(speech)
    heard, _ = await _heard(source, 12)
    assert _matches(heard, np.frombuffer(speech, dtype="<i2").astype(np.float32) / 32768)


async def test_held_speech_waits_as_silence_and_goes_on_where_it_stopped() -> None:
    source = PacedSource()
    line = source.enqueue_pcm(tone(0.2))
    for _ in range(3):
        await source.recv_opus()
    source.hold()
    silent = {bytes((await source.recv_opus()).packet) for _ in range(4)}
    assert len(silent) == 1
    assert line.sent == 3
    source.release()
    for _ in range(7):
        await source.recv_opus()
    assert line.sent == 10
    assert not source.speaking


async def test_opus_goes_quiet_in_silence_and_speech_after_the_gap_decodes_whole() -> None:
    source = PacedSource()
    decoder = _decoder()
    source.enqueue_pcm(tone(0.06))
    await _heard(source, 3 + DTX_HANGOVER_FRAMES, decoder)  # speech, then the hangover
    assert source.speech_frames_sent == 3
    # quiet now: the next packet is a keep-alive, after a jump of the RTP timestamp
    keepalive = (await source.recv_opus()).packet
    gap = keepalive.pts // SAMPLES_PER_FRAME - (3 + DTX_HANGOVER_FRAMES)
    assert gap >= DTX_KEEPALIVE_S / FRAME_S
    assert not np.abs(decoder.decode(av.Packet(bytes(keepalive)))[0].to_ndarray()).any()
    # speech queued while it waits goes out at the next tick, whole
    waiting = asyncio.ensure_future(source.recv_opus())
    await asyncio.sleep(0.1)
    speech = tone(0.2, hz=500)
    source.enqueue_pcm(speech)
    first = (await waiting).packet
    assert first.pts > keepalive.pts + SAMPLES_PER_FRAME  # no silent packet in between
    samples = [f.to_ndarray().reshape(-1) for f in decoder.decode(av.Packet(bytes(first)))]
    rest, stamps = await _heard(source, 11, decoder)
    heard = np.concatenate([np.concatenate(samples).astype(np.float32) / 32768, rest])
    assert _matches(heard, np.frombuffer(speech, dtype="<i2").astype(np.float32) / 32768)
    assert stamps == [first.pts + (i + 1) * SAMPLES_PER_FRAME for i in range(11)]
    # the timeline counts every 20 ms; far fewer packets went out
    assert source.frames_sent * SAMPLES_PER_FRAME == stamps[-1] + SAMPLES_PER_FRAME
    assert source.packets_sent == 3 + DTX_HANGOVER_FRAMES + 1 + 12
    assert source.packets_sent < source.frames_sent


async def test_pcm_frames_keep_coming_through_silence() -> None:
    # a peer that did not negotiate Opus gets every 20 ms frame, as before
    source = PacedSource()
    stamps = [(await source.recv()).pts for _ in range(DTX_HANGOVER_FRAMES + 3)]
    assert stamps == [i * SAMPLES_PER_FRAME for i in range(DTX_HANGOVER_FRAMES + 3)]
