"""The S3 publisher against a moto server: uploads, presigned URLs, Range, idempotence."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app.settings import Settings
from backend.pipeline.s3_media import S3Media
from backend.pipeline.settings import PipelineSettings
from tests.pipeline.conftest import create, ffprobe, wait_for
from tests.support.moto_server import MotoServer

BUCKET = "videos"


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    server = MotoServer(cloudformation_novalue=False)
    server.start()
    server.client("s3").create_bucket(Bucket=BUCKET)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_settings(
    moto: MotoServer, make_pipeline_settings: Callable[..., PipelineSettings]
) -> Callable[..., PipelineSettings]:
    def build(**overrides: Any) -> PipelineSettings:
        return make_pipeline_settings(
            s3_bucket=BUCKET, s3_endpoint_url=moto.endpoint, s3_url_ttl_s=600, **overrides
        )

    return build


@pytest.mark.slow
async def test_videos_are_published_to_s3_with_presigned_urls_that_seek(
    start_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    s3_settings: Callable[..., PipelineSettings],
    moto: MotoServer,
    tmp_path: Path,
) -> None:
    running = await start_app(make_settings(), s3_settings())
    client: httpx.AsyncClient = running.client
    sid = (await create(client, duration_s=10, scenes=2, resolution="640x360"))["session_id"]
    view = await wait_for(client, sid)
    assert view["status"] == "completed", view
    outputs = view["outputs"]
    url = outputs["video_url"]
    assert url.startswith(moto.endpoint)
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=600" in url

    async with httpx.AsyncClient(timeout=30) as web:
        fetched = await web.get(url)
        assert fetched.status_code == 200
        key = f"videos/{sid}/" + url.split(f"/{sid}/", 1)[1].split("?", 1)[0]
        stored = moto.client("s3").get_object(Bucket=BUCKET, Key=key)
        assert fetched.content == stored["Body"].read()
        assert stored["ContentType"] == "video/mp4"
        ranged = await web.get(url, headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206
        assert ranged.content == fetched.content[100:200]
        captions = await web.get(outputs["captions_url"])
        assert captions.text.startswith("WEBVTT")
    video = tmp_path / "from-s3.mp4"
    video.write_bytes(fetched.content)
    assert abs(ffprobe(video).duration_s - outputs["duration_s"]) <= 0.5
    assert not list((tmp_path / "media").rglob("*")), "nothing written to the local media dir"
    assert (await client.get(f"/media/{sid}/x/video.mp4")).status_code == 404


async def test_publishing_twice_uploads_once_and_large_files_go_multipart(
    s3_settings: Callable[..., PipelineSettings], moto: MotoServer, tmp_path: Path
) -> None:
    media = S3Media.from_settings(s3_settings(s3_multipart_threshold_mb=5))
    big = tmp_path / "video.mp4"
    big.write_bytes(os.urandom(11 * 1024 * 1024))
    url = await media.publish("s1/key/video.mp4", big, "video/mp4")
    head = moto.client("s3").head_object(Bucket=BUCKET, Key="videos/s1/key/video.mp4")
    assert head["ETag"].strip('"').endswith("-3"), "three 5 MiB parts"
    time.sleep(1.1)  # LastModified has one-second resolution
    again = await media.publish("s1/key/video.mp4", big, "video/mp4")
    head_again = moto.client("s3").head_object(Bucket=BUCKET, Key="videos/s1/key/video.mp4")
    assert head_again["LastModified"] == head["LastModified"], "not uploaded a second time"
    assert again.split("?")[0] == url.split("?")[0]

    big.write_bytes(os.urandom(1024))  # different content under the same key: replaced
    await media.publish("s1/key/video.mp4", big, "video/mp4")
    assert (
        moto.client("s3").head_object(Bucket=BUCKET, Key="videos/s1/key/video.mp4")["ContentLength"]
        == 1024
    )
    await media.remove("s1/key")
    listed = moto.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="videos/s1/")
    assert listed.get("KeyCount", 0) == 0
