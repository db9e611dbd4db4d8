"""The pipeline's settings: PIPELINE_*, MEDIA_DIR and S3_*, from the environment and `.env`.

Built by :func:`load_pipeline_settings`, never at import; invalid values raise
:class:`backend.core.settings.SettingsError` naming the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.core.settings import SettingsError


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # "auto": inside the service without REDIS_URL, on `pipeline-backend worker`s with it.
    # "off": the service only records sessions; agents elsewhere report through the hub.
    pipeline_engine: Literal["auto", "embedded", "off"] = "auto"
    media_dir: Path = Path("media")  # published files, served at /media without S3_BUCKET
    pipeline_work_dir: Path = Path("pipeline-work")  # step outputs while a run is unfinished
    pipeline_public_base_url: str = ""  # prefix for /media URLs ("" = relative)
    pipeline_fps: int = Field(default=24, ge=1, le=60)
    pipeline_x264_preset: str = "veryfast"
    pipeline_max_active_per_user: int = Field(default=3, ge=1, le=1000)
    pipeline_concurrency: int = Field(default=2, ge=1, le=64)  # runs at once per process
    pipeline_step_attempts: int = Field(default=3, ge=1, le=10)  # transient errors
    pipeline_retry_base_s: float = Field(default=0.5, gt=0, le=60)
    # A worker killed mid-run: its job goes to another worker after this long without
    # an acknowledgement; a live run's lease (extended every third of its TTL) keeps a
    # redelivered job from running twice. Keep the lease shorter than the idle timeout.
    pipeline_job_idle_timeout_s: float = Field(default=30.0, ge=1, le=3600)
    pipeline_lease_ttl_s: float = Field(default=15.0, ge=0.5, le=600)
    pipeline_espeak_binary: str = "espeak-ng"
    pipeline_provider: Literal["auto", "openai", "local"] = "auto"
    pipeline_openai_script_model: str = "gpt-4o-mini"
    pipeline_openai_tts_model: str = "gpt-4o-mini-tts"
    pipeline_openai_image_model: str = "gpt-image-1"
    pipeline_openai_voice: str = "alloy"  # when the request names no OpenAI voice
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None

    s3_bucket: str | None = None
    s3_prefix: str = "videos/"
    s3_endpoint_url: str | None = None  # MinIO, moto, LocalStack
    s3_url_ttl_s: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    s3_multipart_threshold_mb: int = Field(default=16, ge=5, le=5000)
    aws_region: str = "us-east-1"

    @property
    def uses_openai(self) -> bool:
        if self.pipeline_provider != "auto":
            return self.pipeline_provider == "openai"
        return bool(self.openai_api_key and self.openai_api_key.get_secret_value())


def load_pipeline_settings(**overrides: Any) -> PipelineSettings:
    try:
        settings = PipelineSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
    key = settings.openai_api_key
    if settings.pipeline_lease_ttl_s >= settings.pipeline_job_idle_timeout_s:
        raise SettingsError(
            "invalid configuration: PIPELINE_LEASE_TTL_S must be shorter than "
            "PIPELINE_JOB_IDLE_TIMEOUT_S (a dead worker's lease must expire first)"
        )
    if settings.pipeline_provider == "openai" and not (key and key.get_secret_value()):
        raise SettingsError("invalid configuration: PIPELINE_PROVIDER=openai needs OPENAI_API_KEY")
    return settings
