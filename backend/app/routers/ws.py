"""Native WebSockets for the status hub: ``/ws?session_id=S`` and ``/ws/S`` (CONTRACT §2.1)."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from fastapi import APIRouter, WebSocket
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketState

from backend.app.deps import caller_ip, get_app_state, websocket_principal
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
    CLOSE_UNAUTHORIZED,
    Connection,
)
from backend.hub.events import valid_session_id
from backend.hub.frames import Messaging
from backend.hub.hub import Hub
from backend.hub.seq import seq_from_query

router = APIRouter(tags=["status hub"])
log = structlog.get_logger(__name__)
# A stalled client takes the close frame only once it reads again; uvicorn's keep-alive
# ping (WS_PING_INTERVAL_S + WS_PING_TIMEOUT_S) drops one that never does before this.
CLOSE_TIMEOUT_S = 60.0
CLOSE_TRY_AGAIN = 1013  # a dependency is down: reconnect with backoff
CLOSE_POLICY = 1008  # over a rate limit
CLOSE_INTERNAL = 1011  # the server failed this connection: resume with last_seq


class WebSocketTransport:
    kind = "websocket"
    __slots__ = ("_ws",)

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def send_text(self, text: str) -> None:
        await self._ws.send({"type": "websocket.send", "text": text})

    async def send_texts(self, texts: list[str]) -> None:
        # ASGI carries one message per send; the batch saves the queue hops around them.
        send = self._ws.send
        for text in texts:
            await send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        if self._ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self._ws.close(code, reason)


async def status_socket(websocket: WebSocket) -> None:
    state = await get_app_state(websocket)
    hub: Hub = state.hub
    params = websocket.query_params
    session_id = websocket.path_params.get("session_id") or params.get("session_id") or None
    await websocket.accept()
    transport = WebSocketTransport(websocket)
    # A bad resume point is bad input like any other: an error reply, then a fresh
    # snapshot (recovered: false), and the connection stays.
    bad_resume: InvalidInput | None = None
    try:
        last_seq, epoch = seq_from_query(params.get("last_seq")), _epoch(params.get("epoch"))
    except InvalidInput as exc:
        last_seq, epoch, bad_resume = None, None, exc
    try:
        principal = await websocket_principal(websocket, state)
        await state.limiter.check(
            LimitName.WS_CONNECT, principal=principal, ip=caller_ip(websocket, state)
        )
        if session_id is not None:
            valid_session_id(session_id)
            await hub.check_access(principal, session_id)
    except RateLimited as exc:
        await transport.close(CLOSE_POLICY, f"rate_limited: retry in {exc.retry_after_s} s")
        return
    except Unauthorized as exc:
        await transport.close(CLOSE_UNAUTHORIZED, exc.message[:120])
        return
    except (Forbidden, NotFound) as exc:
        await transport.close(CLOSE_FORBIDDEN, exc.message[:120])
        return
    except Unavailable as exc:
        await transport.close(CLOSE_TRY_AGAIN, exc.message[:120])
        return
    except DomainError as exc:
        await transport.close(1008, exc.message[:120])
        return
    await _serve(
        websocket,
        hub,
        principal,
        transport,
        session_id,
        last_seq,
        epoch,
        _Reader(state.settings.ws_max_frame_bytes, state.limiter, state.messaging),
        bad_resume,
    )


async def _serve(
    websocket: WebSocket,
    hub: Hub,
    principal: Principal,
    transport: WebSocketTransport,
    session_id: str | None,
    last_seq: int | None,
    epoch: str | None,
    reader: _Reader,
    bad_resume: InvalidInput | None = None,
) -> None:
    conn = hub.open(principal, transport)
    structlog.contextvars.bind_contextvars(connection_id=conn.id, session_id=session_id)
    tasks = [
        asyncio.create_task(reader.run(websocket, hub, conn), name=f"ws-read-{conn.id}"),
        # The writer also ends when the connection fails (too slow, too big, shutdown).
        asyncio.create_task(hub.pump(conn), name=f"ws-write-{conn.id}"),
    ]
    try:
        await hub.greet(conn, session_id, last_seq, epoch)
        if bad_resume is not None:
            conn.offer(protocol.dumps(protocol.error(bad_resume.code, bad_resume.message)))
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                log.warning("ws_task_failed", task=task.get_name(), error=repr(failure)[:300])
                _fail(conn, failure)
    except Exception as exc:  # the greeting's store work failed: tell the client to resume
        log.warning("ws_greeting_failed", error=repr(exc)[:300])
        _fail(conn, exc)
    finally:
        for task in tasks:  # owned here: cancelled and awaited
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await hub.disconnect(conn)
        except Exception as exc:  # the close frame below must still go out
            log.warning("ws_cleanup_failed", error=repr(exc)[:300])
        if conn.close_code is not None:
            await transport.close(conn.close_code, conn.close_reason)
        log.info("ws_closed", close_code=conn.close_code)


# Plain Starlette routes: FastAPI's WebSocket route would solve (empty) dependencies and
# keep their exit stacks for the connection's whole life, ~9 KiB per connection, for
# nothing this endpoint uses (docs/benchmarks.md, memory per connection).
router.routes += [
    WebSocketRoute("/ws", status_socket, name="status_socket"),
    WebSocketRoute("/ws/{session_id}", status_socket, name="status_socket_session"),
]


class _Reader:
    """A connection's reader: size limit, frame rate limit, then the protocol core."""

    __slots__ = ("limiter", "max_frame", "messaging")

    def __init__(self, max_frame: int, limiter: RateLimiter, messaging: Messaging) -> None:
        self.max_frame = max_frame
        self.messaging = messaging
        self.limiter = limiter

    async def run(self, websocket: WebSocket, hub: Hub, conn: Connection) -> None:
        window: FrameWindow | None = None  # made at the first frame: most clients send none
        while True:
            message = await websocket.receive()
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


def _fail(conn: Connection, failure: BaseException) -> None:
    """Close with a frame the client can act on; the reason never carries backend text."""
    if isinstance(failure, Unavailable):
        conn.fail(CLOSE_TRY_AGAIN, "the event store is unavailable; resume with last_seq")
    else:
        conn.fail(CLOSE_INTERNAL, "internal error; resume with last_seq")


def _epoch(raw: str | None) -> str | None:
    if raw is not None and len(raw) > protocol.MAX_EPOCH_CHARS:
        raise InvalidInput("epoch is the string a snapshot gave", code="invalid_epoch")
    return raw or None
