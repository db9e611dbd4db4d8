"""The service's ASGI app: FastAPI, with the status socket ahead of its HTTP stack.

A ``/ws`` connection is held for hours by thousands at once. Through FastAPI it passed
a dozen layers (the error, telemetry and body-limit middlewares, ours, the exception
wrappers, routing, Starlette's ``WebSocket``), each a coroutine kept alive for the
connection's life with its locals: kilobytes and dozens of objects the collector walks,
per connection, for nothing a WebSocket uses (docs/benchmarks.md, memory per connection).
So WebSocket scopes for ``/ws`` go straight to :func:`routers.ws.status_socket`;
everything else, WebSockets on other paths included, goes through FastAPI as before.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from backend.app.routers.ws import status_socket, status_socket_path


class ServiceApp(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            matched, session_id = status_socket_path(scope)
            if matched:
                await status_socket(scope, receive, send, session_id)
                return
        await super().__call__(scope, receive, send)
