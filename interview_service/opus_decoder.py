"""The candidate's voice decoded straight at the rate the listener wants, mono.

aiortc decodes every inbound Opus packet at 48 kHz stereo in a thread of its own and
hands each frame back to the event loop (a loop wake-up per 20 ms packet), after which
the listener resampled it to Silero's 16 kHz mono. libopus itself decodes any Opus
stream at 8, 12, 16, 24 or 48 kHz, mono or stereo, whatever the sender encoded (RFC 6716
§4.1: the decoder's output rate is its own choice), and at 16 kHz mono that costs less
than the 48 kHz stereo decode alone. So :class:`OpusDecoder` decodes on the event loop,
tens of microseconds per packet, straight into the frame it hands on.

PyAV's ``libopus`` decoder always outputs 48 kHz, so libopus's own API is called through
``ctypes``: ``opus_decoder_create``, ``opus_decoder_get_nb_samples``, ``opus_decode_float``,
``opus_decoder_ctl``, ``opus_decoder_destroy``: its stable C ABI. The library is the one
PyAV's wheel ships for its own Opus codec (found next to PyAV), else the system's.
Where neither is found :func:`available` is False and the peer leaves decoding to
aiortc. The gain is set so the listener hears the level it always heard
(:data:`DOWNMIX_GAIN_Q8`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fractions
import functools
from pathlib import Path

import av
import structlog

log = structlog.get_logger(__name__)

RATES = (8_000, 12_000, 16_000, 24_000, 48_000)  # what libopus decodes to
MAX_PACKET_S = 0.12  # the longest Opus packet: 120 ms
OPUS_CLOCK = 48_000  # the RTP clock of Opus, whatever its rate (RFC 7587)
OPUS_SET_GAIN_REQUEST = 4034  # opus_defines.h
# +3.01 dB (in 1/256 dB): the level the listener has always heard. aiortc decoded to
# stereo (a mono stream as two equal channels) and the resampler's downmix summed them
# at 1/sqrt(2) each, so the listener's thresholds were tuned on speech sqrt(2) louder
# than libopus's own mono output.
DOWNMIX_GAIN_Q8 = 771


def _candidates() -> list[str]:
    """Where libopus may be: the copy bundled with PyAV's wheel first, then the system's."""
    package = Path(av.__file__).resolve().parent
    bundled = [
        *sorted(package.parent.glob("av.libs/libopus*")),  # Linux wheels (auditwheel)
        *sorted(package.glob(".dylibs/libopus*")),  # macOS wheels (delocate)
    ]
    system = ctypes.util.find_library("opus")
    return [str(path) for path in bundled] + ([system] if system else [])


@functools.cache
def _libopus() -> ctypes.CDLL | None:
    for candidate in _candidates():
        try:
            lib = ctypes.CDLL(candidate)
            create, decode, destroy = (
                lib.opus_decoder_create,
                lib.opus_decode_float,
                lib.opus_decoder_destroy,
            )
        except (OSError, AttributeError):
            continue
        create.restype = ctypes.c_void_p
        create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        decode.restype = ctypes.c_int
        decode.argtypes = [
            ctypes.c_void_p,  # decoder
            ctypes.c_char_p,  # packet
            ctypes.c_int32,  # its length
            ctypes.c_void_p,  # float output
            ctypes.c_int,  # room for samples per channel
            ctypes.c_int,  # decode_fec
        ]
        destroy.restype = None
        destroy.argtypes = [ctypes.c_void_p]
        samples = lib.opus_decoder_get_nb_samples
        samples.restype = ctypes.c_int
        samples.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32]
        lib.opus_decoder_ctl.restype = ctypes.c_int  # variadic: its arguments are ints
        return lib
    return None


def available() -> bool:
    """Whether libopus was found (else the peer keeps aiortc's decoding)."""
    return _libopus() is not None


class OpusDecoder:
    """One inbound stream's decoder: packets in their order (after the jitter buffer)."""

    def __init__(self, rate: int) -> None:
        lib = _libopus()
        if lib is None:
            raise RuntimeError("libopus was not found (neither PyAV's copy nor the system's)")
        if rate not in RATES:
            raise ValueError(f"libopus decodes at {RATES}, not {rate}")
        error = ctypes.c_int()
        state = lib.opus_decoder_create(rate, 1, ctypes.byref(error))
        if not state or error.value != 0:
            raise RuntimeError(f"opus_decoder_create failed ({error.value})")
        gain_set = lib.opus_decoder_ctl(
            ctypes.c_void_p(state),
            ctypes.c_int(OPUS_SET_GAIN_REQUEST),
            ctypes.c_int(DOWNMIX_GAIN_Q8),
        )
        if gain_set != 0:
            lib.opus_decoder_destroy(state)
            raise RuntimeError(f"OPUS_SET_GAIN failed ({gain_set})")
        self._lib = lib
        self._state: int | None = state
        self.rate = rate
        self._time_base = fractions.Fraction(1, rate)
        self._room = round(rate * MAX_PACKET_S)
        self.failed = 0  # packets libopus refused

    def decode(self, packet: bytes, timestamp: int) -> av.AudioFrame | None:
        """One packet as a float mono frame at :attr:`rate`; None if libopus refused it.

        ``timestamp`` is the packet's RTP timestamp (48 kHz clock); the frame's ``pts``
        counts samples at :attr:`rate`, as aiortc's frames count them at theirs.
        """
        if self._state is None:  # the call closed; aiortc may still hand a late packet
            return None
        count = self._lib.opus_decoder_get_nb_samples(self._state, packet, len(packet))
        frame = None
        if 0 < count <= self._room:
            # straight into the frame's own buffer: no copy
            frame = av.AudioFrame(format="flt", layout="mono", samples=count)
            count = self._lib.opus_decode_float(
                self._state, packet, len(packet), frame.planes[0].buffer_ptr, count, 0
            )
        if frame is None or count <= 0:
            self.failed += 1
            if self.failed == 1:
                log.warning("opus_decode_failed", error=count, bytes=len(packet))
            return None
        frame.sample_rate = self.rate
        frame.time_base = self._time_base
        frame.pts = timestamp * self.rate // OPUS_CLOCK
        return frame

    def close(self) -> None:
        if self._state is not None:
            self._lib.opus_decoder_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()
