"""Signaling for a call from the REST endpoints: its ICE servers, SDP offers and answers
(sizes and shapes checked), ICE restarts and trickled candidates, each for a call this
process holds, or a clear error saying why it does not."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from backend.core.auth import Principal
from backend.core.errors import Conflict, PayloadTooLarge, Unavailable
from interview_service.calls import Call
from interview_service.ice import CallIce
from interview_service.live_calls import LiveCalls
from interview_service.owners import Owners
from interview_service.peer import parse_candidate
from interview_service.records import InterviewRecord
from interview_service.sdp_shape import check_sdp
from interview_service.settings import InterviewSettings

Find = Callable[[Principal, str], Awaitable[InterviewRecord]]


class Signaling:
    def __init__(
        self,
        settings: InterviewSettings,
        calls: LiveCalls,
        find: Find,
        ice: CallIce,
        owners: Owners | None,
    ) -> None:
        self.settings = settings
        self._calls = calls
        self._find = find  # the record, when the caller may see it
        self._ice = ice
        self._owners = owners

    async def ice_server_list(self, principal: Principal, interview_id: str) -> dict[str, Any]:
        record = await self._find(principal, interview_id)
        return {
            "ice_servers": self._ice.browser_servers(record, time.time()),
            "ttl_s": self._ice.credential_ttl(record),
        }

    async def live_call(self, principal: Principal, interview_id: str) -> Call:
        record = await self._find(principal, interview_id)
        call = self._calls.get(interview_id)
        if call is None:
            if record.final:
                raise Conflict(
                    f"interview is {record.status.value}", code=f"interview_{record.status}"
                )
            if self._owners is not None and await self._owners.owner(interview_id) is None:
                raise Unavailable(
                    "the process that held this call is gone; the interview is about to be "
                    "marked failed: start a new one",
                    code="interview_owner_lost",
                    retry_after_s=max(1, int(self.settings.interview_owner_ttl_s)),
                )
            raise Unavailable(
                "this interview's call is held by another process and this one cannot "
                "forward to it (set INTERNAL_SECRET on every process)",
                code="interview_elsewhere",
            )
        return call

    def check_size(self, sdp: str) -> None:
        if len(sdp.encode()) > self.settings.interview_sdp_max_bytes:
            raise PayloadTooLarge(
                f"SDP over {self.settings.interview_sdp_max_bytes} bytes", code="sdp_too_large"
            )

    async def offer(self, principal: Principal, interview_id: str, sdp: str) -> str:
        self.check_size(sdp)
        call = await self.live_call(principal, interview_id)
        check_sdp(sdp, "offer")  # its shape, before the call's peer is replaced
        return await call.accept_offer(sdp)

    async def restart(self, principal: Principal, interview_id: str) -> str:
        call = await self.live_call(principal, interview_id)
        return await call.make_offer()

    async def answer(self, principal: Principal, interview_id: str, sdp: str) -> None:
        self.check_size(sdp)
        call = await self.live_call(principal, interview_id)
        await call.accept_answer(sdp)  # its shape is checked once an offer is known pending

    async def candidates(
        self, principal: Principal, interview_id: str, raw: list[Mapping[str, Any]]
    ) -> None:
        parsed = [parse_candidate(item) for item in raw]  # all or nothing: 400 before any is used
        call = await self.live_call(principal, interview_id)
        await call.add_candidates(parsed)
