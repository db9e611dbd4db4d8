"""Native WebSockets for the status hub: ``/ws?session_id=S`` and ``/ws/S`` (CONTRACT §2.1).

A plain ASGI endpoint that ``backend/app/asgi.py`` calls before the HTTP stack: a
connection lives for hours, and each layer it passed would keep a coroutine alive for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from backend.app.deps import caller_ip, get_app_state, websocket_principal
from backend.app.middleware import request_id
from backend.app.ws_protocol import SEND_TEXTS
from backend.core.auth import Principal
from backend.core.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)
from backend.core.rate_limits import (
    FrameVerdict,
    FrameWindow,
    LimitName,
    RateLimited,
    RateLimiter,
)
from backend.hub import protocol
from backend.hub.connection import (
    CLOSE_FORBIDDEN,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    Connection,
)
from backend.hub.events import valid_session_id
from backend.hub.frames import Messaging
from backend.hub.hub import Hub
from backend.hub.seq import seq_from_query

log = structlog.get_logger(__name__)
# A stalled client takes the close frame only once it reads again; uvicorn's keep-alive
# ping (WS_PING_INTERVAL_S + WS_PING_TIMEOUT_S) drops one that never does before this.
CLOSE_TIMEOUT_S = 60.0
CLOSE_POLICY = 1008  # over a rate limit


class WebSocketTransport:
    """The connection's ASGI ``send``, with nothing between: no Starlette ``WebSocket``."""

    kind = "websocket"
    __slots__ = ("_send", "closed")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.closed = False

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def send_texts(self, texts: list[str]) -> None:
        # ASGI carries one message per send; the batch saves the queue hops around them.
        send = self._send
        for text in texts:
            await send({"type": "websocket.send", "text": text})

    def write_now(self, text: str) -> bool:
        return False  # ASGI has no synchronous send: every event takes the queue

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):  # the client may be gone already
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._send({"type": "websocket.close", "code": code, "reason": reason})


class FramesTransport(WebSocketTransport):
    """Under the service's uvicorn protocol (``ws_protocol.py``): a batch is one ASGI
    message, written with one ``transport.write`` from frames encoded once per event;
    and a live event the hub can write at once goes straight to the socket."""

    __slots__ = ("_write_now",)

    def __init__(self, send: Send, write_now: Callable[[str], bool]) -> None:
        super().__init__(send)
        self._write_now = write_now

    def write_now(self, text: str) -> bool:
        return self._write_now(text)

    async def send_text(self, text: str) -> None:
        await self._send({"type": SEND_TEXTS, "texts": [text]})

    async def send_texts(self, texts: list[str]) -> None:
        await self._send({"type": SEND_TEXTS, "texts": texts})


def websocket_transport(scope: Scope, send: Send) -> WebSocketTransport:
    """The fast path where the server offers it; any other server as ASGI has it."""
    extension = (scope.get("extensions") or {}).get(SEND_TEXTS)
    if extension is not None:
        return FramesTransport(send, extension["write_now"])
    return WebSocketTransport(send)


def status_socket_path(scope: Scope) -> tuple[bool, str | None]:
    """Whether a WebSocket scope is the status socket's, and the session in its path."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if path == "/ws":
        return True, None
    if path.startswith("/ws/") and "/" not in path[4:] and len(path) > 4:
        return True, path[4:]
    return False, None


async def status_socket(
    scope: Scope, receive: Receive, send: Send, path_session: str | None
) -> None:
    """``/ws`` as a plain ASGI app, called straight from the app's entry (``asgi.py``).

    A connection is held for hours by thousands at once: every layer of the HTTP stack
    it passed (middlewares, exception wrappers, routing, Starlette's ``WebSocket``) kept
    a coroutine and its locals alive for its whole life (docs/benchmarks.md).
    """
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id(scope))
    if (await receive())["type"] != "websocket.connect":
        return
    handshake = await _admit(HTTPConnection(scope), send, path_session)
    if handshake is not None:
        await _serve(receive, *handshake)


async def _admit(
    connection: HTTPConnection, send: Send, path_session: str | None
) -> tuple[Hub, Principal, WebSocketTransport, str | None, _Resume, _Reader] | None:
    """Accept, then authenticate and check the session: None once closed with the reason."""
    state = await get_app_state(connection)
    params = connection.query_params
    session_id = path_session or params.get("session_id") or None
    await send({"type": "websocket.accept"})
    transport = websocket_transport(connection.scope, send)
    # A bad resume point is bad input like any other: an error reply, then a fresh
    # snapshot (recovered: false), and the connection stays.
    try:
        resume = _Resume(seq_from_query(params.get("last_seq")), _epoch(params.get("epoch")))
    except InvalidInput as exc:
        resume = _Resume(None, None, exc)
    try:
        principal = await websocket_principal(connection, state)
        await state.limiter.check(
            LimitName.WS_CONNECT, principal=principal, ip=caller_ip(connection, state)
        )
        if session_id is not None:
            valid_session_id(session_id)
            await state.hub.check_access(principal, session_id)
    except RateLimited as exc:
        await transport.close(CLOSE_POLICY, f"rate_limited: retry in {exc.retry_after_s} s")
        return None
    except Unauthorized as exc:
        await transport.close(CLOSE_UNAUTHORIZED, exc.message[:120])
        return None
    except (Forbidden, NotFound) as exc:
        await transport.close(CLOSE_FORBIDDEN, exc.message[:120])
        return None
    except Unavailable as exc:
        await transport.close(CLOSE_TRY_AGAIN, exc.message[:120])
        return None
    except DomainError as exc:
        await transport.close(1008, exc.message[:120])
        return None
    reader = _Reader(state.settings.ws_max_frame_bytes, state.limiter, state.messaging)
    return state.hub, principal, transport, session_id, resume, reader


@dataclass(frozen=True, slots=True)
class _Resume:
    last_seq: int | None
    epoch: str | None
    bad: InvalidInput | None = None


async def _serve(
    receive: Receive,
    hub: Hub,
    principal: Principal,
    transport: WebSocketTransport,
    session_id: str | None,
    resume: _Resume,
    reader: _Reader,
) -> None:
    """Greet, then read in this task; the connection's writer runs only while it sends.

    A connection that fails (too slow, a send or a history read failed, shutdown)
    interrupts the read here: nothing else would wake a client that sends nothing.
    """
    conn = hub.open(principal, transport)
    structlog.contextvars.bind_contextvars(connection_id=conn.id, session_id=session_id)
    interrupt = _Interrupt()
    conn.on_fail = interrupt
    try:
        await hub.greet(conn, session_id, resume.last_seq, resume.epoch)
        if resume.bad is not None:
            conn.offer(protocol.dumps(protocol.error(resume.bad.code, resume.bad.message)))
        await reader.run(receive, hub, conn)
    except asyncio.CancelledError:
        if not interrupt.swallow():
            raise
    except Exception as exc:  # the greeting's store work failed: tell the client to resume
        log.warning("ws_greeting_failed", error=repr(exc)[:300])
        conn.fail_after(exc)
    finally:
        interrupt.armed = False  # no await since the body ended: no interrupt is pending
        try:
            await hub.disconnect(conn)  # stops the writer first
        except Exception as exc:  # the close frame below must still go out
            log.warning("ws_cleanup_failed", error=repr(exc)[:300])
        if conn.close_code is not None:
            await transport.close(conn.close_code, conn.close_reason)
        log.info("ws_closed", close_code=conn.close_code)


class _Interrupt:
    """``Connection.on_fail``: cancels the read of the task that serves the connection."""

    __slots__ = ("armed", "fired", "task")

    def __init__(self) -> None:
        self.task = asyncio.current_task()
        self.armed = True
        self.fired = False

    def __call__(self) -> None:
        # Failed by the serving task itself (its reader): it returns on its own.
        if self.armed and self.task is not None and self.task is not asyncio.current_task():
            self.fired = True
            self.task.cancel()

    def swallow(self) -> bool:
        """True when the cancellation was this interrupt's alone."""
        return self.fired and self.task is not None and self.task.uncancel() == 0


class _Reader:
    """A connection's reader: size limit, frame rate limit, then the protocol core."""

    __slots__ = ("limiter", "max_frame", "messaging")

    def __init__(self, max_frame: int, limiter: RateLimiter, messaging: Messaging) -> None:
        self.max_frame = max_frame
        self.messaging = messaging
        self.limiter = limiter

    async def run(self, receive: Receive, hub: Hub, conn: Connection) -> None:
        window: FrameWindow | None = None  # made at the first frame: most clients send none
        while conn.close_code is None:  # failed while handling a frame: its owner closes
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > self.max_frame:
                conn.fail(CLOSE_TOO_BIG, f"frames are at most {self.max_frame} bytes")
                return
            if window is None:
                window = self.limiter.frame_window()
            verdict = window.hit()
            if verdict is FrameVerdict.ACCEPT:
                await hub.handle_frame(conn, data, self.messaging)
                continue
            self.limiter.count_frame_refusal()
            conn.offer(protocol.dumps(RATE_LIMITED_FRAME))
            if verdict is FrameVerdict.CLOSE:
                conn.fail(CLOSE_POLICY, "rate_limited: too many frames")
                return


RATE_LIMITED_FRAME = protocol.error(
    "rate_limited", "too many frames: slow down (RATE_LIMIT_WS_FRAME)"
)


def _epoch(raw: str | None) -> str | None:
    if raw is not None and len(raw) > protocol.MAX_EPOCH_CHARS:
        raise InvalidInput("epoch is the string a snapshot gave", code="invalid_epoch")
    return raw or None
