"""Published files in S3 (S3_BUCKET), handed out as presigned GET URLs (S3_URL_TTL_S).

boto3 is synchronous: every call goes through ``asyncio.to_thread`` here, its only user.
Uploads switch to multipart above S3_MULTIPART_THRESHOLD_MB. Idempotent: an object
already there with the same size and SHA-256 (kept in its metadata) is not sent again,
so a retried publish uploads nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import structlog
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from backend.pipeline.errors import StepFailed, TransientStepError
from backend.pipeline.settings import PipelineSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = structlog.get_logger(__name__)
_TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "503"}


class S3Media:
    name = "S3"

    def __init__(
        self, client: S3Client, bucket: str, *, prefix: str, ttl_s: int, threshold_bytes: int
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._transfer = TransferConfig(
            multipart_threshold=threshold_bytes, multipart_chunksize=threshold_bytes
        )

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> S3Media:
        assert settings.s3_bucket
        client = boto3.client(
            "s3",
            region_name=settings.aws_region,
            endpoint_url=settings.s3_endpoint_url,
            config=Config(
                signature_version="s3v4", retries={"max_attempts": 4, "mode": "standard"}
            ),
        )
        return cls(
            client,
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            ttl_s=settings.s3_url_ttl_s,
            threshold_bytes=settings.s3_multipart_threshold_mb * 1024 * 1024,
        )

    async def publish(self, key: str, source: Path, content_type: str) -> str:
        return await asyncio.to_thread(self._publish, self._prefix + key, source, content_type)

    def _publish(self, key: str, source: Path, content_type: str) -> str:
        digest = _sha256(source)
        size = source.stat().st_size
        with _mapped_errors(key):
            if not self._already_there(key, size, digest):
                self._client.upload_file(
                    str(source),
                    self._bucket,
                    key,
                    ExtraArgs={"ContentType": content_type, "Metadata": {"sha256": digest}},
                    Config=self._transfer,
                )
                log.info("s3_uploaded", key=key, bytes=size)
            return self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self._bucket, "Key": key},
                ExpiresIn=self._ttl_s,
            )

    def _already_there(self, key: str, size: int, digest: str) -> bool:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return head["ContentLength"] == size and head.get("Metadata", {}).get("sha256") == digest

    async def link(self, key: str) -> str:
        """A presigned GET URL of an object already published (S3_URL_TTL_S)."""
        return await asyncio.to_thread(
            self._client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self._bucket, "Key": self._prefix + key},
            ExpiresIn=self._ttl_s,
        )

    async def remove(self, prefix: str) -> None:
        await asyncio.to_thread(self._remove, self._prefix + prefix)

    def _remove(self, prefix: str) -> None:
        with _mapped_errors(prefix):
            listed = self._client.list_objects_v2(Bucket=self._bucket, Prefix=prefix + "/")
            keys: list[Any] = [{"Key": item["Key"]} for item in listed.get("Contents", [])]
            if keys:
                self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": keys})


@contextlib.contextmanager
def _mapped_errors(key: str) -> Iterator[None]:
    """boto3's failures as step errors: throttling and 5xx are worth another try."""
    try:
        yield
    except EndpointConnectionError as exc:
        raise TransientStepError(f"S3 is unreachable: {exc}") from exc
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _TRANSIENT_CODES or status >= 500:
            raise TransientStepError(f"S3 answered {code or status}") from exc
        raise StepFailed(f"S3 refused {key}: {code or status}") from exc
    except BotoCoreError as exc:
        raise TransientStepError(f"S3 call failed: {exc}") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
