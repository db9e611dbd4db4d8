"""moto's @connections backend as a real HTTP server in the test process.

``ThreadedMotoServer`` listens on a free loopback port; the service (in this process or
a subprocess) is given ``endpoint`` (no stage path) as ``APIGW_MANAGEMENT_ENDPOINT``.
moto appends each posted message to the connection's ``data``; :meth:`messages` splits
that byte string back into the JSON messages, in the order they were posted.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer

from tests.support.ports import free_port

REGION = "us-east-1"


class MotoConnections:
    def __init__(self) -> None:
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def _backend(self) -> Any:
        return apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION]

    def raw(self, connection_id: str) -> bytes:
        # moto keys connections by the id as it appears in the URL path (percent-encoded).
        connection = self._backend().connections.get(quote(connection_id, safe=""))
        return b"" if connection is None else bytes(connection.data)

    def messages(self, connection_id: str) -> list[dict[str, Any]]:
        text = self.raw(connection_id).decode()
        decoder = json.JSONDecoder()
        found: list[dict[str, Any]] = []
        index = 0
        while index < len(text):
            message, index = decoder.raw_decode(text, index)
            found.append(message)
        return found

    def reset(self) -> None:
        self._backend().connections.clear()
