"""Settings: one pydantic-settings class per package, read from the environment and `.env`.

This module holds the base every package's class extends (:class:`CoreSettings`:
environment, logging, Redis, auth), the rate limits' class, and :func:`build_settings`,
the factory: settings are built by it, never at import time, so tests and the CLI can
build as many differently-configured apps as they like. An invalid value raises
:class:`SettingsError` whose message names the offending variable. The web app composes
every package's class into one (``backend/app/settings.py``); env var names are the
field names, upper-cased, whichever class holds them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class SettingsError(Exception):
    """A configuration value is invalid; the message names the variable."""


class CoreSettings(BaseSettings):
    """What every package reads: the environment, logging, Redis and auth."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    environment: Environment = Environment.DEVELOPMENT
    version: str = "0.1.0"
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.AUTO

    redis_url: str | None = None
    redis_prefix: str = "pb:"
    redis_max_connections: int = Field(default=64, ge=4, le=10_000)

    auth_jwt_secret: SecretStr | None = None
    auth_jwks_url: str | None = None
    auth_audience: str | None = None
    auth_issuer: str | None = None
    auth_jwks_cache_s: float = Field(default=300.0, gt=0)
    auth_leeway_s: float = Field(default=30.0, ge=0)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        level = level.upper()
        if level not in {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}:
            raise ValueError("must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG")
        return level

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        if url in (None, ""):
            return None
        assert url is not None
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return url

    @model_validator(mode="after")
    def _production_needs_auth(self) -> Self:
        if self.environment is Environment.PRODUCTION and not self.auth_configured:
            raise ValueError("ENVIRONMENT=production requires AUTH_JWT_SECRET or AUTH_JWKS_URL")
        return self

    @property
    def auth_configured(self) -> bool:
        return bool(self.auth_jwt_secret and self.auth_jwt_secret.get_secret_value()) or bool(
            self.auth_jwks_url
        )

    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION


class RateLimitSettings(CoreSettings):
    """Rate limits (CONTRACT §6, docs/reliability.md): the limits library's notation
    ("30/minute", several joined by ";"), a moving window each. Per principal (user or
    key) and, the _PER_IP ones, per client address; frames per connection."""

    rate_limits_enabled: bool = True
    rate_limit_session_create: str = "30/minute"
    rate_limit_session_create_per_ip: str = "120/minute"
    rate_limit_event_publish: str = "100/second"  # agents and services only publish
    rate_limit_event_publish_per_ip: str = "500/second"
    rate_limit_interview_start: str = "10/minute"
    rate_limit_interview_start_per_ip: str = "60/minute"
    rate_limit_signaling: str = "300/minute"
    rate_limit_signaling_per_ip: str = "1200/minute"
    rate_limit_ws_connect: str = "60/minute"
    rate_limit_ws_connect_per_ip: str = "300/minute"
    rate_limit_ws_frame: str = "20/second"
    # Refused frames within a minute before the connection is closed with 1008.
    rate_limit_ws_frame_strikes: int = Field(default=20, ge=1, le=10_000)

    @field_validator(
        "rate_limit_session_create",
        "rate_limit_session_create_per_ip",
        "rate_limit_event_publish",
        "rate_limit_event_publish_per_ip",
        "rate_limit_interview_start",
        "rate_limit_interview_start_per_ip",
        "rate_limit_signaling",
        "rate_limit_signaling_per_ip",
        "rate_limit_ws_connect",
        "rate_limit_ws_connect_per_ip",
        "rate_limit_ws_frame",
    )
    @classmethod
    def _rate_limit(cls, spec: str) -> str:
        from limits import parse_many

        try:
            items = parse_many(spec)
        except ValueError:
            items = []
        if not items or any(item.amount < 1 for item in items):
            raise ValueError(
                f"{spec!r} is not a rate limit: write e.g. 30/minute or 5/second;100/hour "
                "(RATE_LIMITS_ENABLED=false turns them all off)"
            )
        return spec


S = TypeVar("S", bound=BaseSettings)


def build_settings(cls: type[S], **overrides: Any) -> S:
    """The factory: ``cls`` from the environment (and `.env`), explicit overrides on top."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"] if part != "__root__")
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{field.upper()}: {message}" if field else message)
    return "invalid configuration: " + "; ".join(lines)
