"""``POST /ws``: API Gateway's WebSocket events, as HTTP requests (CONTRACT 2.3).

The native WebSocket route shares the path; a POST is an HTTP request, so it lands
here. Answers: 200 accepts (CONNECT) or acknowledges; 401/403 refuse a CONNECT; 403
for a missing or wrong ``X-Gateway-Secret`` before anything else is looked at; 404 when
the bridge is not configured. Replies to the client never ride on these answers: they
go through ``@connections``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from backend.app.deps import StateDep, caller_ip
from backend.core.errors import NotFound
from backend.gateway.bridge import EventType, parse_event

router = APIRouter(tags=["api-gateway"])


@router.post("/ws", include_in_schema=False)
async def gateway_event(request: Request, state: StateDep) -> Response:
    bridge = state.gateway
    if bridge is None:
        raise NotFound(
            "the API Gateway bridge is off: set APIGW_SHARED_SECRET and "
            "APIGW_MANAGEMENT_ENDPOINT to turn it on",
            code="apigw_bridge_disabled",
        )
    bridge.secret.check(request.headers.get("x-gateway-secret"))
    connection_id, event = parse_event(
        request.headers.get("connectionid"), request.headers.get("eventtype")
    )
    if event is EventType.CONNECT:
        # Per-IP limits only when API Gateway passed the client's address on: its own
        # address is every client's peer address.
        forwarded = "x-forwarded-for" in request.headers
        ip = caller_ip(request, state) if forwarded else None
        await bridge.connect(connection_id, request.query_params, ip=ip)
    elif event is EventType.MESSAGE:
        max_frame = state.settings.ws_max_frame_bytes  # the same limit as native sockets
        frame, size = await _read_frame(request, max_frame)
        if frame is None:
            await bridge.oversized(connection_id, size, max_frame)
        else:
            await bridge.message(connection_id, frame)
    else:
        await bridge.disconnect(connection_id)
    return Response(status_code=200)


async def _read_frame(request: Request, max_frame: int) -> tuple[str | None, int]:
    """The client's frame, or None (and its size) when it is over the limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_frame:
        return None, int(declared)  # not read at all
    body = await request.body()
    if len(body) > max_frame:
        return None, len(body)
    return body.decode("utf-8", errors="replace"), len(body)
