"""The interview service's settings: TURN/STUN (docs/turn.md) and the limits of a call."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from interview_service.voice.settings import VoiceSettings


class InterviewSettings(VoiceSettings):
    # TURN/STUN for the interview's WebRTC calls (docs/turn.md)
    turn_server: str | None = None  # host or host:port of coturn
    turn_secret: SecretStr | None = None
    turn_ttl_s: int = Field(default=3600, ge=60)
    turn_tls: bool = False  # also list turns: on TURN_TLS_PORT and 443
    turn_tls_port: int = Field(default=5349, ge=1, le=65535)
    # What browsers get when no TURN is configured (the server peer never uses it).
    stun_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["stun:stun.l.google.com:19302"]
    )

    # Interviews (CONTRACT §3)
    interview_max_concurrent: int = Field(default=20, ge=1, le=10_000)
    interview_connect_timeout_s: float = Field(default=120.0, gt=0)
    interview_idle_timeout_s: float = Field(default=60.0, gt=0)
    interview_max_duration_s: float = Field(default=3600.0, gt=0)
    # Retention: records, transcripts, webhook outboxes and recordings (docs/interview.md).
    # A float so tests can ask for seconds; records keep this TTL in the store.
    interview_retention_days: float = Field(default=30.0, gt=0, le=3650)
    interview_retention_sweep_s: float = Field(default=3600.0, gt=0)
    interview_ice_gather_timeout_s: float = Field(default=5.0, gt=0, le=60)
    interview_relay_only: bool = False  # the server peer relays through TURN only (ECS)
    interview_heartbeat_s: float = Field(default=5.0, gt=0)
    interview_demo_page: bool = True  # GET /demo/interview, the browser test page
    interview_sdp_max_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # Follow-ups the interviewer may ask per question (a start's max_follow_ups overrides)
    interview_max_follow_ups: int = Field(default=1, ge=0, le=5)

    # Recordings (record: true): written while the call runs, stored after the end
    interview_recordings_dir: Path = Path("recordings")  # local store, not under /media
    # Where clients reach this service, for absolute recording URLs ("" : relative paths)
    interview_public_base_url: str = ""

    # Webhooks (webhook_url on /start)
    webhook_secret: SecretStr | None = None
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_backoff_s: float = Field(default=2.0, gt=0, le=3600)
    webhook_backoff_max_s: float = Field(default=600.0, gt=0, le=24 * 3600)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    webhook_allow_private: bool = False  # loopback/private targets (tests, on-premises)

    # More than one process (docs/interview.md "Running more than one process"): with
    # REDIS_URL each live call's owner is leased in Redis and signaling that lands on
    # another process is forwarded to it over internal HTTP, signed with INTERNAL_SECRET.
    internal_url: str | None = None  # how peers reach this process; derived when unset
    internal_secret: SecretStr | None = None
    internal_forward_timeout_s: float = Field(default=15.0, gt=0, le=120)
    interview_owner_ttl_s: float = Field(default=6.0, ge=1, le=300)
    # SIGTERM: refuse new interviews, let live calls finish for at most this long
    interview_drain_s: float = Field(default=30.0, ge=0, le=3600)

    @property
    def interview_retention_s(self) -> float:
        return self.interview_retention_days * 86400

    @field_validator("stun_urls", mode="before")
    @classmethod
    def _split_stun(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("turn_server")
    @classmethod
    def _turn_host(cls, server: str | None) -> str | None:
        if not server:
            return None
        if "://" in server or server.startswith(("turn:", "stun:", "turns:")):
            raise ValueError("give the host or host:port only, e.g. turn.example.com:3478")
        return server

    @field_validator("internal_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        if not url.startswith(("http://", "https://")) or url.count("/") > 3:
            raise ValueError("give scheme, host and port only, e.g. http://10.0.1.5:8000")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _relay_needs_turn(self) -> Self:
        if self.interview_relay_only and not self.turn_server:
            raise ValueError("INTERVIEW_RELAY_ONLY=true needs TURN_SERVER and TURN_SECRET")
        return self

    @model_validator(mode="after")
    def _turn_needs_secret(self) -> Self:
        if self.turn_server and not (self.turn_secret and self.turn_secret.get_secret_value()):
            raise ValueError("TURN_SECRET is required when TURN_SERVER is set")
        return self
