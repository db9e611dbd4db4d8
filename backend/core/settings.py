"""Service settings: one pydantic-settings class, read from the environment and `.env`.

Built by :func:`load_settings`, never at import time, so tests and the CLI can build
as many differently-configured apps as they like. An invalid value raises
:class:`SettingsError` whose message names the offending variable.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    environment: Environment = Environment.DEVELOPMENT
    version: str = "0.1.0"
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.AUTO

    # Comma-separated exact origins; never "*" because credentials are allowed.
    frontend_url: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Proxies whose X-Forwarded-* headers are trusted (uvicorn's forwarded_allow_ips).
    trusted_proxies: str = "127.0.0.1"

    redis_url: str | None = None
    redis_prefix: str = "pb:"
    redis_max_connections: int = Field(default=64, ge=4, le=10_000)

    auth_jwt_secret: SecretStr | None = None
    auth_jwks_url: str | None = None
    auth_audience: str | None = None
    auth_issuer: str | None = None
    auth_jwks_cache_s: float = Field(default=300.0, gt=0)
    auth_leeway_s: float = Field(default=30.0, ge=0)

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None  # any OpenAI-compatible server
    openai_stt_model: str = "gpt-4o-mini-transcribe"
    openai_llm_model: str = "gpt-4o-mini"
    openai_tts_model: str = "gpt-4o-mini-tts"
    openai_tts_voice: str = "alloy"
    openai_results_model: str | None = None  # rubric scoring; OPENAI_LLM_MODEL when unset

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
    interview_record_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    interview_ice_gather_timeout_s: float = Field(default=5.0, gt=0, le=60)
    interview_relay_only: bool = False  # the server peer relays through TURN only (ECS)
    interview_heartbeat_s: float = Field(default=5.0, gt=0)
    # The voice loop (docs/interview.md): "interviewer" listens and speaks; "greeter" only
    # greets and measures inbound audio (signaling checks without speech models).
    interview_conversation: Literal["interviewer", "greeter"] = "interviewer"
    interview_end_of_turn_silence_s: float = Field(default=1.4, ge=0.3, le=5)
    interview_barge_in_s: float = Field(default=0.5, ge=0.1, le=3)
    interview_provider_timeout_s: float = Field(default=15.0, gt=0, le=120)
    # After the silence window, an answer that reads unfinished gets this much longer
    # (the semantic end-of-turn check; 0 turns it off).
    interview_semantic_grace_s: float = Field(default=1.5, ge=0, le=10)
    interview_semantic_timeout_s: float = Field(default=1.0, gt=0, le=10)
    # A pause this long inside an answer starts STT on the speech so far, so little is
    # left to transcribe when the turn ends (0 turns it off).
    interview_early_stt_s: float = Field(default=0.6, ge=0, le=5)
    # Each provider separately: "auto" is OpenAI when OPENAI_API_KEY is set, else local.
    # "module:function" building the whole VoiceStack instead (other providers, benchmarks)
    interview_voice_stack: str | None = None
    stt_provider: Literal["auto", "openai", "local"] = "auto"
    llm_provider: Literal["auto", "openai", "local"] = "auto"
    tts_provider: Literal["auto", "openai", "local"] = "auto"
    stt_local_model: str | None = None  # a faster-whisper model directory or size name
    model_cache_dir: str = "~/.cache/pipeline-backend"
    interview_demo_page: bool = True  # GET /demo/interview, the browser test page
    interview_sdp_max_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)

    s3_bucket: str | None = None
    aws_region: str = "us-east-1"

    apigw_management_endpoint: str | None = None
    apigw_shared_secret: SecretStr | None = None
    apigw_post_concurrency: int = Field(default=16, ge=1, le=256)
    apigw_post_attempts: int = Field(default=5, ge=1, le=10)
    apigw_keepalive_s: float = Field(default=540.0, gt=0, lt=600)

    # Status hub (CONTRACT §2)
    hub_history_size: int = Field(default=1000, ge=10, le=100_000)
    hub_session_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    hub_queue_messages: int = Field(default=1000, ge=10)
    hub_queue_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    ws_max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    ws_ping_interval_s: float = Field(default=20.0, gt=0)
    ws_ping_timeout_s: float = Field(default=20.0, gt=0)

    # Rate limits (CONTRACT §6, docs/reliability.md): the limits library's notation
    # ("30/minute", several joined by ";"), a moving window each. Per principal (user or
    # key) and, the _PER_IP ones, per client address; frames per connection.
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

    @model_validator(mode="after")
    def _relay_needs_turn(self) -> Settings:
        if self.interview_relay_only and not self.turn_server:
            raise ValueError("INTERVIEW_RELAY_ONLY=true needs TURN_SERVER and TURN_SECRET")
        return self

    @model_validator(mode="after")
    def _openai_needs_key(self) -> Settings:
        has_key = self.openai_api_key is not None and self.openai_api_key.get_secret_value()
        for name in ("stt_provider", "llm_provider", "tts_provider"):
            if getattr(self, name) == "openai" and not has_key:
                raise ValueError(f"{name.upper()}=openai needs OPENAI_API_KEY")
        return self

    def provider(self, kind: Literal["stt", "llm", "tts"]) -> Literal["openai", "local"]:
        """Which provider serves ``kind``: its setting, or OpenAI when a key is set."""
        chosen = getattr(self, f"{kind}_provider")
        if chosen != "auto":
            return chosen  # type: ignore[no-any-return]
        has_key = self.openai_api_key is not None and self.openai_api_key.get_secret_value()
        return "openai" if has_key else "local"

    @model_validator(mode="after")
    def _turn_needs_secret(self) -> Settings:
        if self.turn_server and not (self.turn_secret and self.turn_secret.get_secret_value()):
            raise ValueError("TURN_SECRET is required when TURN_SERVER is set")
        return self

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

    @field_validator("apigw_shared_secret")
    @classmethod
    def _long_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is None or not secret.get_secret_value():
            return None
        if len(secret.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. openssl rand -hex 32)")
        return secret

    @model_validator(mode="after")
    def _bridge_needs_endpoint(self) -> Settings:
        if self.apigw_shared_secret is not None and not self.apigw_management_endpoint:
            raise ValueError(
                "APIGW_MANAGEMENT_ENDPOINT is required when APIGW_SHARED_SECRET enables the "
                "API Gateway bridge (https://<api-id>.execute-api.<region>.amazonaws.com/<stage>)"
            )
        return self

    @model_validator(mode="after")
    def _production_needs_auth(self) -> Settings:
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


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (and `.env`), with explicit overrides on top."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"] if part != "__root__")
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{field.upper()}: {message}" if field else message)
    return "invalid configuration: " + "; ".join(lines)
