"""The web app's settings, and the one composed class a process of the app runs with.

:class:`AppSettings` is the app's own (host, port, CORS, proxies, WebSocket limits);
:class:`Settings` composes it with every package's class, so each package is handed the
object it knows (``HubSettings``, ``InterviewSettings``...) and the env var names stay
those of CONTRACT §4 and docs/configuration.md. Built by :func:`load_settings`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from backend.core.settings import CoreSettings, RateLimitSettings, build_settings
from backend.gateway.settings import GatewaySettings
from backend.hub.settings import HubSettings
from interview_service.settings import InterviewSettings


class AppSettings(CoreSettings):
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)

    # Comma-separated exact origins; never "*" because credentials are allowed.
    frontend_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Proxies whose X-Forwarded-* headers are trusted (uvicorn's forwarded_allow_ips).
    trusted_proxies: str = "127.0.0.1"

    s3_bucket: str | None = None

    ws_max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    ws_ping_interval_s: float = Field(default=20.0, gt=0)
    ws_ping_timeout_s: float = Field(default=20.0, gt=0)
    # Off: the status events are small, and a deflate context costs each connection
    # tens of KiB for as long as it is open (uvicorn negotiates it whenever a browser asks).
    ws_per_message_deflate: bool = False

    shutdown_grace_s: float = Field(default=20.0, gt=0, le=600)
    ready_check_timeout_s: float = Field(default=2.0, gt=0, le=30)

    @field_validator("frontend_url", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("frontend_url")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*" or "://" not in origin:
                raise ValueError(
                    f"{origin!r} is not an origin; list exact origins such as https://app.example.com"
                )
        return origins


class Settings(AppSettings, HubSettings, GatewaySettings, InterviewSettings, RateLimitSettings):
    """Every package's settings, as one process of the app reads them."""


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (and `.env`), with explicit overrides on top."""
    return build_settings(Settings, **overrides)
