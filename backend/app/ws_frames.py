"""Server WebSocket text frames (RFC 6455 §5.2), encoded once and shared by every socket.

A status event goes to every member of its room as the same text. A server's frames are
not masked, so without per-message compression that text's frame is the same bytes on
every connection: :class:`FrameCache` encodes it at its first delivery and hands the
same ``bytes`` to the others, where uvicorn framed it again for each one.
"""

from __future__ import annotations

import struct

_TEXT_FIN = 0x81  # FIN + opcode 1 (text): always a whole message in one frame
_LENGTH_16 = struct.Struct("!BBH")
_LENGTH_64 = struct.Struct("!BBQ")


def text_frame(text: str) -> bytes:
    """One unmasked, unfragmented text frame carrying ``text``."""
    data = text.encode()
    size = len(data)
    if size < 126:
        return bytes((_TEXT_FIN, size)) + data
    if size < 65536:
        return _LENGTH_16.pack(_TEXT_FIN, 126, size) + data
    return _LENGTH_64.pack(_TEXT_FIN, 127, size) + data


class FrameCache:
    """The frames of the texts sent lately, by text.

    The hub hands every member the same ``str`` object for an event, whose hash Python
    keeps, so a hit costs one dict lookup. Bounded: when full it starts again empty
    (a frame encoded twice is the only price), which also drops the one-off replies
    (greetings, snapshots) that pass through without ever being reused.
    """

    __slots__ = ("_frames", "_max_entries")

    def __init__(self, max_entries: int = 1024) -> None:
        self._frames: dict[str, bytes] = {}
        self._max_entries = max_entries

    def frame(self, text: str) -> bytes:
        frame = self._frames.get(text)
        if frame is None:
            if len(self._frames) >= self._max_entries:
                self._frames.clear()
            frame = self._frames[text] = text_frame(text)
        return frame

    def __len__(self) -> int:
        return len(self._frames)
