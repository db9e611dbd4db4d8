"""The candidate's Opus decoded at 16 kHz mono is what aiortc's decode + resample gave.

Speech is encoded as aiortc sends a microphone (its own Opus encoder: 48 kHz stereo,
20 ms packets), then decoded two ways: the old receive path (aiortc's decoder at 48 kHz
stereo, then the resampler the listener used) and :class:`OpusDecoder` at 16 kHz mono.
"""

from __future__ import annotations

import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder as AiortcOpusDecoder
from aiortc.codecs.opus import OpusEncoder as AiortcOpusEncoder
from aiortc.jitterbuffer import JitterFrame

from interview_service import opus_decoder
from interview_service.espeak import EspeakVoice
from interview_service.opus_decoder import OpusDecoder
from interview_service.opus_encoder import pcm_frame
from interview_service.voice.listener import Listener
from interview_service.voice.providers import VAD_RATE
from interview_service.voice.turn_taking import TurnDetector, TurnTakingConfig

FRAME = 960  # 20 ms at 48 kHz


async def _packets(text: str) -> list[tuple[bytes, int]]:
    pcm = await EspeakVoice().synthesize(text)
    pcm += bytes(-len(pcm) % (2 * FRAME))
    encoder = AiortcOpusEncoder()
    packets = []
    for index, offset in enumerate(range(0, len(pcm), 2 * FRAME)):
        frame = pcm_frame(pcm[offset : offset + 2 * FRAME])
        frame.pts = index * FRAME
        payloads, timestamp = encoder.encode(frame)
        packets += [(payload, timestamp) for payload in payloads]
    return packets


def _old_path(packets: list[tuple[bytes, int]]) -> np.ndarray:
    """aiortc's decode, then the listener's former resampler: 16 kHz mono float."""
    import av

    decoder = AiortcOpusDecoder()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=VAD_RATE)
    out = []
    for payload, timestamp in packets:
        for frame in decoder.decode(JitterFrame(payload, timestamp)):
            out += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    return np.concatenate(out)


def test_libopus_is_found() -> None:
    assert opus_decoder.available(), (
        "libopus was found neither next to PyAV nor on the system: calls fall back to "
        "aiortc's decode in its thread (see interview_service/opus_decoder.py)"
    )


async def test_speech_decodes_as_aiortcs_decode_and_resample_did() -> None:
    packets = await _packets("I have worked on distributed video pipelines for five years.")
    decoder = OpusDecoder(VAD_RATE)
    frames = [decoder.decode(payload, timestamp) for payload, timestamp in packets]
    assert all(f is not None for f in frames)
    for frame, (_, timestamp) in zip(frames, packets, strict=True):
        assert frame is not None
        assert (frame.sample_rate, frame.layout.name, frame.format.name) == (
            VAD_RATE,
            "mono",
            "flt",
        )
        assert frame.samples == 320  # 20 ms
        assert frame.pts == timestamp // 3
    ours = np.concatenate([f.to_ndarray().reshape(-1) for f in frames if f is not None])
    theirs = _old_path(packets)
    assert abs(len(ours) - len(theirs)) <= 64  # the resampler keeps a few samples back

    # the two differ by the resampler's delay (a few samples) and its filter: align, then
    # compare the speech's energy to the difference's
    size = min(len(ours), len(theirs)) - 64
    lags = range(-32, 33)
    errors = [
        np.mean((ours[32 + lag : 32 + lag + size - 32] - theirs[32 : 32 + size - 32]) ** 2)
        for lag in lags
    ]
    best = int(np.argmin(errors))
    signal = np.mean(theirs[32:size] ** 2)
    snr_db = 10 * np.log10(signal / errors[best])
    assert signal > 1e-4  # there is speech in it
    assert snr_db > 25, f"16 kHz decode differs from decode + resample: SNR {snr_db:.1f} dB"


async def test_the_listener_takes_decoded_frames_as_they_are() -> None:
    """16 kHz mono float frames are not resampled: the chunks Silero reads are the
    decoded samples themselves, in order."""
    packets = await _packets("Yes, I think so.")
    decoder = OpusDecoder(VAD_RATE)
    frames = [decoder.decode(payload, timestamp) for payload, timestamp in packets]
    decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in frames if f is not None])

    heard: list[np.ndarray] = []

    class _Vad:
        def probability(self, chunk: np.ndarray) -> float:
            heard.append(chunk.copy())
            return 0.0

    class _Voice:
        speaking = False

        def hold(self) -> None: ...

        def release(self) -> None: ...

    async def inbound():  # type: ignore[no-untyped-def]
        for frame in frames:
            yield frame

    listener = Listener(
        _Vad(),
        TurnDetector(TurnTakingConfig()),
        None,
        _Voice(),
        early_stt_s=0,  # type: ignore[arg-type]
    )
    await listener.listen(inbound())
    assert heard, "the listener read no chunk"
    together = np.concatenate(heard)
    assert np.array_equal(together, decoded[: len(together)])


def test_a_packet_libopus_refuses_is_dropped_and_the_stream_goes_on() -> None:
    decoder = OpusDecoder(VAD_RATE)
    assert decoder.decode(b"\xff\xff\xff", 0) is None  # a code-3 packet with no frames
    assert decoder.failed == 1
    silence = bytes([0xF8, 0xFF, 0xFE])  # one 20 ms CELT frame of digital silence
    frame = decoder.decode(silence, 960)
    assert frame is not None
    assert frame.samples == 320


def test_only_the_rates_libopus_decodes_at() -> None:
    with pytest.raises(ValueError, match="libopus decodes"):
        OpusDecoder(44_100)
