"""The API Gateway bridge's settings: APIGW_* and the AWS region (docs/deploy-api-gateway.md)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from backend.core.settings import CoreSettings


class GatewaySettings(CoreSettings):
    aws_region: str = "us-east-1"
    apigw_management_endpoint: str | None = None
    apigw_shared_secret: SecretStr | None = None
    apigw_post_concurrency: int = Field(default=16, ge=1, le=256)
    apigw_post_attempts: int = Field(default=5, ge=1, le=10)
    apigw_keepalive_s: float = Field(default=540.0, gt=0, lt=600)

    @field_validator("apigw_shared_secret")
    @classmethod
    def _long_secret(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is None or not secret.get_secret_value():
            return None
        if len(secret.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (e.g. openssl rand -hex 32)")
        return secret

    @model_validator(mode="after")
    def _bridge_needs_endpoint(self) -> Self:
        if self.apigw_shared_secret is not None and not self.apigw_management_endpoint:
            raise ValueError(
                "APIGW_MANAGEMENT_ENDPOINT is required when APIGW_SHARED_SECRET enables the "
                "API Gateway bridge (https://<api-id>.execute-api.<region>.amazonaws.com/<stage>)"
            )
        return self
