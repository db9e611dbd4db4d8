"""The ICE servers of each call: the browser's, with TURN credentials that outlive the
whole call, and the server peer's options."""

from __future__ import annotations

import time
from typing import Any

from interview_service.peer import PeerOptions
from interview_service.records import InterviewRecord
from interview_service.settings import InterviewSettings
from interview_service.turn_credentials import TurnServerSettings, ice_servers, server_ice_servers

CREDENTIAL_MARGIN_S = 300  # TURN credentials outlive the longest possible call by this


class CallIce:
    def __init__(self, settings: InterviewSettings) -> None:
        self.settings = settings
        self.turn = (
            TurnServerSettings.parse(
                settings.turn_server,
                settings.turn_secret.get_secret_value(),
                tls=settings.turn_tls,
                tls_port=settings.turn_tls_port,
            )
            if settings.turn_server and settings.turn_secret
            else None
        )

    def credential_ttl(self, record: InterviewRecord) -> int:
        whole_call = self.settings.interview_connect_timeout_s + record.max_duration_s
        return int(max(self.settings.turn_ttl_s, whole_call + CREDENTIAL_MARGIN_S))

    def browser_servers(self, record: InterviewRecord, now: float) -> list[dict[str, Any]]:
        return ice_servers(
            self.turn,
            record.user_id,
            ttl_s=self.credential_ttl(record),
            now=now,
            stun_urls=self.settings.stun_urls,
        )

    def peer_options(self, record: InterviewRecord) -> PeerOptions:
        servers = server_ice_servers(
            self.turn, f"server-{record.id}", ttl_s=self.credential_ttl(record), now=time.time()
        )
        return PeerOptions(
            ice_servers=servers,
            relay_only=self.settings.interview_relay_only,
            gather_timeout_s=self.settings.interview_ice_gather_timeout_s,
        )
