"""Two service processes behind HAProxy, round robin and no affinity, sharing a Redis.

Any request of a call may land on either process: the one that does not hold the call
forwards signaling to the one that does (its lease is in Redis). Runs in a loopback-only
namespace (tests/interview/test_load_balancer_netns.py): a real coturn relays the media,
a private redis-server holds the leases, HAProxy (Debian's ``haproxy``) balances every
request and health-checks ``/health/ready``. Callers: aiortc peers and headless Chromium.
The processes are shared by the module's tests; a test that stops one gets it back
(a new process on the same port) before the next test starts.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCSessionDescription

from tests.support.chromium import Chromium
from tests.support.coturn import Coturn
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.rtc_client import RtcClient
from tests.support.uvicorn_process import ServiceProcess

INTERNAL_SECRET = "lb-test-internal-secret-0123456789"
OWNER_TTL_S = 2

HAPROXY_CONFIG = """
global
    maxconn 256
defaults
    mode http
    # A refused connect (a process just SIGKILLed, before the next check marks it down)
    # is retried on the other server: the request never reached the dead one.
    retries 3
    option redispatch 1
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend interviews
    bind 127.0.0.1:{port}
    default_backend services
backend services
    balance roundrobin
    option httpchk GET /health/ready
    http-check expect status 200
    default-server inter 250ms fall 1 rise 2
{servers}
"""


class HaProxy:
    def __init__(self, workdir: Path, backends: list[int]) -> None:
        binary = shutil.which("haproxy")
        if binary is None:
            raise RuntimeError("haproxy is not installed: apt-get install haproxy (scripts/test)")
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        servers = "\n".join(
            f"    server s{index} 127.0.0.1:{port} check" for index, port in enumerate(backends)
        )
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(HAPROXY_CONFIG.format(port=self.port, servers=servers))
        self.log = workdir / "haproxy.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [binary, "-db", "-f", str(self.config)], stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


class Cluster:
    def __init__(self, workdir: Path, coturn: Coturn) -> None:
        self.redis = RedisServer(workdir)
        self.redis.start()
        env = {
            "REDIS_URL": self.redis.url,
            "INTERNAL_SECRET": INTERNAL_SECRET,
            "INTERVIEW_OWNER_TTL_S": str(OWNER_TTL_S),
            "INTERVIEW_DRAIN_S": "60",
            "TURN_SERVER": coturn.server,
            "TURN_SECRET": coturn.secret,
            "INTERVIEW_RELAY_ONLY": "true",
            "INTERVIEW_CONVERSATION": "greeter",  # signaling and media, not the models
            "RATE_LIMITS_ENABLED": "false",
            "PIPELINE_ENGINE": "off",
        }
        self.services = [ServiceProcess(dict(env), grace_s=5) for _ in range(2)]
        for service in self.services:
            service.env["INTERNAL_URL"] = service.base_url
        self.lb: HaProxy | None = None

    def start(self, workdir: Path) -> None:
        self.lb = HaProxy(workdir / "haproxy", [s.port for s in self.services])
        self.revive()

    def revive(self) -> None:
        """Start every process that is not running, then wait until HAProxy
        sends requests to both again."""
        stopped = [s for s in self.services if s.process is None or s.process.poll() is not None]
        marks = {  # a restarted process starts a new log
            id(s): 0 if s in stopped else self.requests(s, "/health/ready") for s in self.services
        }
        for service in stopped:  # one at a time: two imports at once starve a small machine
            service.start()
        deadline = time.monotonic() + 15
        while True:  # HAProxy's checks see both up (rise 2): both serve from now on
            checked = [self.requests(s, "/health/ready") - marks[id(s)] for s in self.services]
            if all(count >= 2 for count in checked):
                return
            assert self.lb is not None
            assert time.monotonic() < deadline, self.lb.log.read_text()
            time.sleep(0.2)

    @property
    def url(self) -> str:
        assert self.lb is not None
        return self.lb.url

    @staticmethod
    def requests(service: ServiceProcess, fragment: str) -> int:
        """How many requests whose path holds ``fragment`` this process served."""
        count = 0
        for line in service.logs().splitlines():
            if fragment in line and '"path"' in line:
                with_path = json.loads(line)
                count += fragment in str(with_path.get("path", ""))
        return count

    def stop(self) -> None:
        if self.lb is not None:
            self.lb.stop()
        for service in self.services:
            # a second SIGTERM skips what is left of the drain (calls a test left live)
            service.terminate()
            time.sleep(0.2)
            service.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def running_cluster(tmp_path_factory: pytest.TempPathFactory, coturn: Coturn) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    running = Cluster(workdir, coturn)
    try:
        running.start(workdir)
        yield running
    finally:
        running.stop()


@pytest.fixture
def cluster(running_cluster: Cluster) -> Cluster:
    running_cluster.revive()  # a process an earlier test stopped comes back
    return running_cluster


@pytest.fixture
async def lb(cluster: Cluster) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster.url, timeout=30) as http:
        yield http


def _split_candidates(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """The offer without its candidates, and the candidates to trickle (mid 0)."""
    lines, candidates = [], []
    mid = None
    index = -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
        if line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        if line.startswith("a=candidate:"):
            candidates.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": index})
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n", candidates


async def _status(http: httpx.AsyncClient, interview: str) -> dict[str, Any]:
    response = await http.get(f"/api/interview/{interview}/status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _until_status(
    http: httpx.AsyncClient, interview: str, wanted: set[str], timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = await _status(http, interview)
        if status["status"] in wanted:
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.2)


async def _trickled_call(http: httpx.AsyncClient, interview: str, ice: list[Any]) -> RtcClient:
    """An aiortc caller whose candidates all come through rtc/ice-candidate."""
    caller = RtcClient(ice, relay_only=True, speak_s=0)
    bare, candidates = _split_candidates(await caller.offer())
    assert candidates, "the caller gathered no relay candidate"
    answer = await http.post(
        f"/api/interview/{interview}/rtc/offer", json={"sdp": bare, "type": "offer"}
    )
    assert answer.status_code == 200, answer.text
    await caller.accept(answer.json()["sdp"])
    for candidate in candidates:  # one request each: they spread over both processes
        response = await http.post(f"/api/interview/{interview}/rtc/ice-candidate", json=candidate)
        assert response.status_code == 204, response.text
    done = await http.post(
        f"/api/interview/{interview}/rtc/ice-candidate", json={"candidate": None}
    )
    assert done.status_code == 204, done.text
    await asyncio.wait_for(caller.connected.wait(), 20)
    return caller


async def _start(http: httpx.AsyncClient, user: str) -> dict[str, Any]:
    response = await http.post("/api/interview/start", json={"user_id": user})
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


async def test_a_whole_call_with_every_request_on_either_process(
    cluster: Cluster, lb: httpx.AsyncClient
) -> None:
    started = await _start(lb, "cand-lb")
    interview, ice = started["session_id"], started["ice_servers"]
    callers = [await _trickled_call(lb, interview, ice)]
    try:
        await _until_status(lb, interview, {"active"}, 15)
        # renegotiation, browser side: a fresh offer gets a new peer connection
        callers.append(await _trickled_call(lb, interview, ice))
        # ICE restart, server side: the owner offers, the caller answers
        restart = await lb.post(f"/api/interview/{interview}/rtc/restart")
        assert restart.status_code == 200, restart.text
        third = RtcClient(ice, relay_only=True, speak_s=0)
        callers.append(third)
        await third.pc.setRemoteDescription(RTCSessionDescription(restart.json()["sdp"], "offer"))
        await third.pc.setLocalDescription(await third.pc.createAnswer())
        answered = await lb.post(
            f"/api/interview/{interview}/rtc/answer",
            json={"sdp": third.pc.localDescription.sdp, "type": "answer"},
        )
        assert answered.status_code == 204, answered.text
        await asyncio.wait_for(third.connected.wait(), 20)
        # a client transcript line, wherever it lands, reaches the owner's record
        line = await lb.post(
            f"/api/interview/{interview}/transcript",
            json={"role": "candidate", "text": "hello from the caller"},
        )
        assert line.status_code == 201, line.text
        # the greeting plays over the last connection
        deadline = time.monotonic() + 15
        while third.loud_frames_heard < 25:
            assert time.monotonic() < deadline, "the greeting never arrived"
            await asyncio.sleep(0.1)
        ended = await lb.post(f"/api/interview/{interview}/end")
        assert ended.status_code == 200, ended.text
        assert ended.json()["status"] == "ended"
        assert ended.json()["end_reason"] == "ended_by_client"
    finally:
        for caller in callers:
            await caller.close()
    # results from either process (twice: round robin), the same final record
    for _ in range(2):
        results = (await lb.get(f"/api/interview/{interview}/results")).json()
        assert results["status"] == "ended"
        texts = [line["text"] for line in results["transcript"]]
        assert "hello from the caller" in texts
        assert any(line["role"] == "interviewer" for line in results["transcript"])
    # both processes served signaling of this one call, and one forwarded it
    served = [Cluster.requests(s, f"/api/interview/{interview}/rtc/") for s in cluster.services]
    assert all(count > 0 for count in served), served
    forwarded = [await _forwarded(s) for s in cluster.services]
    assert sum(forwarded) >= 3, forwarded
    # after its end, signaling is refused the same way on both processes
    for _ in range(2):
        late = await lb.post(f"/api/interview/{interview}/rtc/restart")
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "interview_ended"


async def _forwarded(service: ServiceProcess) -> float:
    async with httpx.AsyncClient(base_url=service.base_url) as direct:
        text = (await direct.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith('interview_requests_forwarded_total{outcome="answered"}'):
            total += float(line.split()[-1])
    return total


async def test_a_forged_forwarded_request_is_refused(cluster: Cluster) -> None:
    owner = cluster.services[0]
    async with httpx.AsyncClient(base_url=owner.base_url) as direct:
        started = (await direct.post("/api/interview/start", json={"user_id": "c"})).json()
        forged = await direct.post(
            f"/api/interview/{started['session_id']}/end",
            headers={"X-Interview-Forwarded": f"someone 10.0.0.1 {int(time.time())} {'0' * 64}"},
        )
        assert forged.status_code == 403
        assert forged.json()["error"]["code"] == "forward_refused"
        assert (await _status(direct, started["session_id"]))["status"] == "created"
        await direct.post(f"/api/interview/{started['session_id']}/end")


def _owner_of(cluster: Cluster, interview: str) -> ServiceProcess:
    for service in cluster.services:
        for line in service.logs().splitlines():
            if "interview_started" in line and interview in line:
                return service
    raise AssertionError(f"no process started {interview}")


async def test_sigterm_drains_the_call_and_new_interviews_go_to_the_other(
    cluster: Cluster, lb: httpx.AsyncClient
) -> None:
    started = await _start(lb, "cand-drain")
    interview = started["session_id"]
    caller = await _trickled_call(lb, interview, started["ice_servers"])
    try:
        await _until_status(lb, interview, {"active"}, 15)
        owner = _owner_of(cluster, interview)
        other = next(s for s in cluster.services if s is not owner)
        owner.terminate()  # SIGTERM mid-call
        async with httpx.AsyncClient(base_url=owner.base_url) as direct:
            deadline = time.monotonic() + 5
            while (await direct.get("/health/ready")).status_code != 503:
                assert time.monotonic() < deadline, "readiness never turned 503"
                await asyncio.sleep(0.1)
            ready = (await direct.get("/health/ready")).json()
            assert ready["checks"]["interviews"]["status"] == "down"
            # /start on the draining process itself is handed to the other one
            handed = await direct.post("/api/interview/start", json={"user_id": "c-direct"})
            assert handed.status_code == 201, handed.text
            assert _owner_of(cluster, handed.json()["session_id"]) is other
            await direct.post(f"/api/interview/{handed.json()['session_id']}/end")
        # new interviews through the load balancer all go to the other process
        for index in range(4):
            fresh = await _start(lb, f"cand-new-{index}")
            assert _owner_of(cluster, fresh["session_id"]) is other
            await lb.post(f"/api/interview/{fresh['session_id']}/end")
        # the call goes on: still active, media still flowing, signaling still forwarded
        await asyncio.sleep(1.0)
        assert owner.process is not None
        assert owner.process.poll() is None
        heard = caller.frames_heard
        await asyncio.sleep(1.0)
        assert caller.frames_heard > heard
        assert (await _status(lb, interview))["status"] == "active"
        line = await lb.post(
            f"/api/interview/{interview}/transcript", json={"role": "candidate", "text": "still"}
        )
        assert line.status_code == 201, line.text
        ended = await lb.post(f"/api/interview/{interview}/end")
        assert ended.json()["end_reason"] == "ended_by_client"
    finally:
        await caller.close()
    # its last call over, the drained process exits by itself
    assert owner.wait(20) in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
    results = (await lb.get(f"/api/interview/{interview}/results")).json()
    assert results["status"] == "ended"
    assert "still" in [line["text"] for line in results["transcript"]]


async def test_a_killed_process_has_its_interviews_marked_failed(
    cluster: Cluster, lb: httpx.AsyncClient
) -> None:
    started = await _start(lb, "cand-kill")
    interview = started["session_id"]
    caller = await _trickled_call(lb, interview, started["ice_servers"])
    try:
        await _until_status(lb, interview, {"active"}, 15)
        owner = _owner_of(cluster, interview)
        other = next(s for s in cluster.services if s is not owner)
        assert owner.process is not None
        owner.process.kill()  # SIGKILL: no drain, no goodbye
        owner.process.wait(5)
        killed_at = time.monotonic()
        status = await _until_status(lb, interview, {"failed"}, 4 * OWNER_TTL_S + 5)
        assert status["end_reason"] == "owner_lost"
        assert time.monotonic() - killed_at < 4 * OWNER_TTL_S + 5
        # signaling for it is refused as failed, and a new /start works through the LB
        late = await lb.post(f"/api/interview/{interview}/rtc/restart")
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "interview_failed"
        for index in range(2):
            fresh = await _start(lb, f"cand-after-{index}")
            assert _owner_of(cluster, fresh["session_id"]) is other
            await lb.post(f"/api/interview/{fresh['session_id']}/end")
    finally:
        await caller.close()


@pytest.fixture
def candidate_voice(tmp_path: Path) -> Path:
    wav = tmp_path / "answer.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(wav), "I have five years of experience with Python services."],
        check=True,
        timeout=30,
    )
    return wav


async def test_the_demo_page_in_chromium_through_the_load_balancer(
    cluster: Cluster, lb: httpx.AsyncClient, candidate_voice: Path, tmp_path: Path
) -> None:
    browser = Chromium(tmp_path / "chromium", fake_audio=candidate_voice)
    try:
        await browser.open(f"{cluster.url}/demo/interview?autostart=1&user_id=chromium&relay=1")
        demo = await _demo(browser, "demo['state'] == 'active' or demo['errors']", 30)
        assert not demo["errors"], demo["errors"]
        demo = await _demo(browser, "demo['audioEnergy'] > 0.01 and demo['audioPackets'] > 50", 20)
        assert demo["candidatesSent"] > 0  # trickled through the load balancer
        interview = demo["sessionId"]
        await browser.evaluate("document.getElementById('end').click()")
        demo = await _demo(browser, "demo['results'] is not None", 15)
        assert demo["final"]["status"] == "ended"
        assert demo["results"]["transcript"][0]["role"] == "interviewer"
    finally:
        await browser.close()
    served = [Cluster.requests(s, f"/api/interview/{interview}/") for s in cluster.services]
    assert all(count > 0 for count in served), served


async def _demo(browser: Chromium, condition: str, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        state = await browser.evaluate("JSON.stringify(window.interviewDemo)")
        demo = None if state is None else json.loads(state)
        if demo is not None and eval(condition, {}, {"demo": demo}):  # noqa: S307 - test-local
            return demo
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}: {demo}\n{browser.log_tail()}")
        await asyncio.sleep(0.25)
