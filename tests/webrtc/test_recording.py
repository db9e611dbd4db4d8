"""Recording with consent, over a real aiortc call relayed by coturn (see conftest.py).

The caller speaks a 330 Hz tone; the greeter speaks its greeting. The recording must be
stereo Opus/Ogg with the candidate on the left and the interviewer on the right, about
as long as the call, stored locally or in S3 (moto), and never made without the flag.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from backend.app.settings import Settings
from backend.pipeline.settings import PipelineSettings
from tests.support.coturn import Coturn
from tests.support.moto_server import MotoServer
from tests.support.rtc_client import RtcClient, until

CANDIDATE_HZ = 330.0
BUCKET = "outputs"


def _settings(coturn: Coturn, make_settings: Callable[..., Settings], root: Path) -> Settings:
    return make_settings(
        turn_server=coturn.server,
        turn_secret=coturn.secret,
        interview_relay_only=True,
        interview_conversation="greeter",
        interview_recordings_dir=root,
    )


async def _talk(client: httpx.AsyncClient, *, record: bool) -> tuple[str, float]:
    """A call where both sides speak; (interview id, seconds it was connected)."""
    started = (
        await client.post("/api/interview/start", json={"user_id": "cand-1", "record": record})
    ).json()
    caller = RtcClient(started["ice_servers"], relay_only=True, speak_s=2.0)
    try:
        await caller.call(client, started["session_id"])
        await asyncio.wait_for(caller.connected.wait(), 15)
        connected = time.monotonic()
        await until(lambda: caller.loud_frames_heard >= 25, 15, "the interviewer's voice")
        await until(lambda: time.monotonic() - connected >= 3.0, 10, "three seconds of call")
        ended = await client.post(f"/api/interview/{started['session_id']}/end")
        assert ended.json()["status"] == "ended"
        return str(started["session_id"]), time.monotonic() - connected
    finally:
        await caller.close()


async def _stored(client: httpx.AsyncClient, interview: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        results: dict[str, Any] = (await client.get(f"/api/interview/{interview}/results")).json()
        if results.get("recording_url"):
            return results
        assert time.monotonic() < deadline, f"no recording: {results.get('recording')}"
        await asyncio.sleep(0.1)


def _channels(ogg: bytes) -> tuple[np.ndarray, int]:
    """The decoded recording as float (2, samples) in -1..1, and its sample rate."""
    with av.open(io.BytesIO(ogg)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        assert stream.channels == 2
        parts = [frame.to_ndarray() for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    samples = np.concatenate(parts, axis=1)
    if samples.shape[0] == 1:  # packed: interleaved left/right
        samples = samples.reshape(-1, 2).T
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples / 32768.0
    return samples.astype(np.float32), rate


def _loud_seconds(channel: np.ndarray, rate: int) -> float:
    block = rate // 50
    blocks = channel[: channel.size // block * block].reshape(-1, block)
    return float((np.sqrt((blocks**2).mean(axis=1)) > 0.02).sum() / 50)


def _peak_hz(channel: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(channel))
    return float(np.fft.rfftfreq(channel.size, 1 / rate)[int(spectrum.argmax())])


def _tone_share(channel: np.ndarray, rate: int, hz: float) -> float:
    """The fraction of the channel's energy within 10 Hz of ``hz``."""
    power = np.abs(np.fft.rfft(channel)) ** 2
    near = np.abs(np.fft.rfftfreq(channel.size, 1 / rate) - hz) < 10
    return float(power[near].sum() / power.sum())


def _check_both_sides(ogg: bytes, call_s: float, tmp_path: Path) -> None:
    file = tmp_path / "downloaded.ogg"
    file.write_bytes(ogg)
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,channels:format=duration",
         "-of", "default=nw=1", str(file)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "codec_name=opus" in probed, probed
    assert "channels=2" in probed, probed
    duration = float(probed.split("duration=")[1].split()[0])
    assert abs(duration - call_s) < 1.5, (duration, call_s)

    (left, right), rate = _channels(ogg)
    assert _loud_seconds(left, rate) >= 1.0  # the caller's 2 s tone, on the left
    assert _loud_seconds(right, rate) >= 0.5  # the greeting, on the right
    assert abs(_peak_hz(left, rate) - CANDIDATE_HZ) < 10
    assert _tone_share(left, rate, CANDIDATE_HZ) > 0.5
    # not the caller's voice: the greeting's harmonics may peak near 330 Hz (one did at
    # 339 Hz), but they hold a few % of its energy there (espeak-ng: <= 5.3 %)
    assert _tone_share(right, rate, CANDIDATE_HZ) < 0.25


async def test_a_consented_call_is_recorded_with_both_sides(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    root = tmp_path / "recordings"
    app = await start_app(_settings(coturn, make_settings, root))
    interview, call_s = await _talk(app.client, record=True)
    results = await _stored(app.client, interview)
    assert results["recording_url"] == f"/api/interview/{interview}/recording"
    assert results["recording"]["layout"].startswith("stereo")

    download = await app.client.get(results["recording_url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "audio/ogg"
    assert download.content[:4] == b"OggS"
    _check_both_sides(download.content, call_s, tmp_path)
    assert (root / interview / "recording.ogg").read_bytes() == download.content
    assert not (Path(tempfile.gettempdir()) / f"interview-{interview}.ogg").exists()

    deleted = await app.client.delete(f"/api/interview/{interview}")
    assert deleted.status_code == 204
    assert not (root / interview).exists()
    assert (await app.client.get(results["recording_url"])).status_code == 404


async def test_without_the_flag_nothing_is_recorded(
    coturn: Coturn,
    start_app: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    root = tmp_path / "recordings"
    app = await start_app(_settings(coturn, make_settings, root))
    spooled_before = set(Path(tempfile.gettempdir()).glob("interview-*.ogg"))
    interview, _ = await _talk(app.client, record=False)
    await asyncio.sleep(1.0)  # as long as a recording takes to be kept
    results = (await app.client.get(f"/api/interview/{interview}/results")).json()
    assert results["status"] == "ended"
    assert "recording_url" not in results
    assert not root.exists() or list(root.rglob("*")) == []
    assert set(Path(tempfile.gettempdir()).glob("interview-*.ogg")) <= spooled_before
    assert not (Path(tempfile.gettempdir()) / f"interview-{interview}.ogg").exists()
    missing = await app.client.get(f"/api/interview/{interview}/recording")
    assert missing.status_code == 404


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


async def test_with_s3_the_recording_is_an_object_behind_a_presigned_url(
    coturn: Coturn,
    moto: MotoServer,
    start_app: Callable[..., Any],
    make_settings: Callable[..., Settings],
    make_pipeline_settings: Callable[..., PipelineSettings],
    tmp_path: Path,
) -> None:
    pipeline = make_pipeline_settings(
        s3_bucket=BUCKET, s3_endpoint_url=moto.endpoint, s3_prefix="videos/"
    )
    app = await start_app(_settings(coturn, make_settings, tmp_path / "unused"), pipeline)
    interview, call_s = await _talk(app.client, record=True)
    results = await _stored(app.client, interview)
    url = results["recording_url"]
    assert url.startswith(moto.endpoint)
    assert "Signature=" in url
    async with httpx.AsyncClient() as outside:  # no credentials: the URL is the capability
        fetched = await outside.get(url)
    assert fetched.status_code == 200
    _check_both_sides(fetched.content, call_s, tmp_path)
    s3 = moto.client("s3")
    key = f"videos/interviews/{interview}/recording.ogg"
    assert s3.head_object(Bucket=BUCKET, Key=key)["ContentType"] == "audio/ogg"
    redirect = await app.client.get(f"/api/interview/{interview}/recording")
    assert redirect.status_code == 307

    assert (await app.client.delete(f"/api/interview/{interview}")).status_code == 204
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"videos/interviews/{interview}")
    assert listed.get("KeyCount", 0) == 0
    assert not (tmp_path / "unused").exists()
