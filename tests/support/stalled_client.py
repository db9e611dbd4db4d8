"""A WebSocket client that stops reading on purpose, built on websockets' sans-I/O protocol.

It completes the handshake, then reads nothing until told to, so the server's socket
buffers fill exactly as they do for a client on a dead mobile link.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.uri import parse_uri


class StalledClient:
    def __init__(self, url: str) -> None:
        uri = parse_uri(url)
        self.protocol = ClientProtocol(uri, max_size=None)
        self.sock = socket.create_connection((uri.host, uri.port), timeout=10)
        self.sock.sendall(b"".join(self._handshake()))
        self.frames: list[Frame] = []
        while self.protocol.handshake_exc is None and not self._handshook():
            self._feed(self.sock.recv(4096))
        self.close_code: int | None = None

    def _handshake(self) -> list[bytes]:
        self.protocol.send_request(self.protocol.connect())
        return self.protocol.data_to_send()

    def _handshook(self) -> bool:
        return self.protocol.state.name == "OPEN"

    def _feed(self, data: bytes) -> None:
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self.frames.append(event)

    def read_all(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Read until the server closes; the JSON messages, and the close code is kept."""
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            self._feed(data)
            if not data or any(f.opcode is Opcode.CLOSE for f in self.frames):
                break
        messages = []
        for frame in self.frames:
            if frame.opcode is Opcode.TEXT:
                messages.append(json.loads(frame.data))
            elif frame.opcode is Opcode.CLOSE:
                self.close_code = Close.parse(frame.data).code
        return messages

    def close(self) -> None:
        self.sock.close()
