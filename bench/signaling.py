"""Interview signaling benchmark: offer->answer latency, and CPU per concurrent call.

    uv run python -m bench.signaling                 # 30 interviews per mode, 4 concurrent calls
    uv run python -m bench.signaling -n 100 --calls 8 --steady 20
    uv run python -m bench.signaling --modes forward -n 100   # direct vs forwarded only

It re-runs itself inside a network namespace of its own (``unshare -n``) holding only
``lo`` and a veth pair (10.77.0.1 and 10.77.0.2) that connects only to itself, so
nothing leaves the machine. The service
runs as a real uvicorn process; the callers are aiortc peers in this process. Modes:

- ``host``: no TURN; the peers connect over host candidates on the veth pair;
- ``relay``: a local coturn, both peers relay-only (as on ECS behind an ALB);
- ``forward``: two service processes sharing a redis-server of the benchmark's own; each
  interview starts on the first (its owner) and its offer goes either straight to it
  (direct) or to the second, which forwards it (forwarded), alternating, host candidates.
  Printed: offer->answer p50/p95 of each and the ratio forwarded/direct.

Printed: offer->answer p50/p95 (the POST rtc/offer round trip, which includes the
server's candidate gathering), offer->connected p50/p95, and the service process's CPU
per concurrent call at steady state (each call: the client's microphone in, the
server's voice out, Opus both ways).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.netns import inside, reexec_in_namespace


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


async def _one_call(
    http: httpx.AsyncClient, relay: bool, keep: float | None
) -> tuple[float, float, Any, str]:
    from tests.support.rtc_client import RtcClient

    started = (await http.post("/api/interview/start", json={"user_id": "bench"})).json()
    interview = started["session_id"]
    client = RtcClient(started["ice_servers"], relay_only=relay, speak_s=keep or 3)
    offer = await client.offer()
    began = time.perf_counter()
    response = await http.post(
        f"/api/interview/{interview}/rtc/offer", json={"sdp": offer, "type": "offer"}
    )
    answered = time.perf_counter()
    response.raise_for_status()
    await client.accept(response.json()["sdp"])
    await asyncio.wait_for(client.connected.wait(), 20)
    connected = time.perf_counter()
    if keep is None:
        await http.post(f"/api/interview/{interview}/end")
        await client.close()
    return (answered - began) * 1000, (connected - began) * 1000, client, interview


async def _mode(name: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.uvicorn_process import ServiceProcess

    relay = name == "relay"
    # The greeter, not the interviewer: this measures signaling and media, not the models.
    service = ServiceProcess(
        {
            **env,
            "INTERVIEW_MAX_CONCURRENT": "200",
            "INTERVIEW_CONVERSATION": "greeter",
            "RATE_LIMITS_ENABLED": "false",  # hundreds of calls from one address
        }
    )
    service.start()
    assert service.process is not None
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as http:
            answers, connects = [], []
            for _ in range(args.warmup):
                await _one_call(http, relay, keep=None)
            for _ in range(args.n):
                answer_ms, connect_ms, _, _ = await _one_call(http, relay, keep=None)
                answers.append(answer_ms)
                connects.append(connect_ms)
            # steady state: K calls at once, media flowing both ways
            idle_before = _cpu_seconds(service.process.pid)
            await asyncio.sleep(args.steady / 2)
            idle_cpu = (_cpu_seconds(service.process.pid) - idle_before) / (args.steady / 2)
            talk_s = args.steady + 10
            calls = [await _one_call(http, relay, keep=talk_s) for _ in range(args.calls)]
            await asyncio.sleep(3)  # greetings synthesised, jitter buffers settled
            cpu_before, wall_before = _cpu_seconds(service.process.pid), time.perf_counter()
            await asyncio.sleep(args.steady)
            cpu = _cpu_seconds(service.process.pid) - cpu_before
            wall = time.perf_counter() - wall_before
            for _, _, client, interview in calls:
                await http.post(f"/api/interview/{interview}/end")
                await client.close()
    finally:
        service.terminate()
        service.wait(30)
    busy = cpu / wall
    return {
        "mode": name,
        "n": len(answers),
        "answer_p50": statistics.median(answers),
        "answer_p95": _percentile(answers, 0.95),
        "connect_p50": statistics.median(connects),
        "connect_p95": _percentile(connects, 0.95),
        "calls": args.calls,
        "cpu_idle_pct": idle_cpu * 100,
        "cpu_pct": busy * 100,
        "cpu_per_call_pct": (busy - idle_cpu) * 100 / args.calls,
    }


async def _offer_ms(owner: httpx.AsyncClient, via: httpx.AsyncClient, user: str) -> float:
    from tests.support.rtc_client import RtcClient

    started = (await owner.post("/api/interview/start", json={"user_id": user})).json()
    interview = started["session_id"]
    client = RtcClient(started["ice_servers"], speak_s=0)
    try:
        offer = await client.offer()
        began = time.perf_counter()
        response = await via.post(
            f"/api/interview/{interview}/rtc/offer", json={"sdp": offer, "type": "offer"}
        )
        elapsed = (time.perf_counter() - began) * 1000
        response.raise_for_status()
    finally:
        await client.close()
        await owner.post(f"/api/interview/{interview}/end")
    return elapsed


async def _forwarding(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.redis_server import RedisServer
    from tests.support.uvicorn_process import ServiceProcess

    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    redis_server = RedisServer(workdir)
    redis_server.start()
    common = {
        **env,
        "REDIS_URL": redis_server.url,
        "INTERNAL_SECRET": os.urandom(16).hex(),
        "INTERVIEW_MAX_CONCURRENT": "200",
        "INTERVIEW_CONVERSATION": "greeter",
        "RATE_LIMITS_ENABLED": "false",
        "PIPELINE_ENGINE": "off",
    }
    services = [ServiceProcess(dict(common)) for _ in range(2)]
    for service in services:
        service.env["INTERNAL_URL"] = service.base_url
    direct: list[float] = []
    forwarded: list[float] = []
    try:
        for service in services:
            service.start()
        owner_url, other_url = (s.base_url for s in services)
        async with (
            httpx.AsyncClient(base_url=owner_url, timeout=30) as owner,
            httpx.AsyncClient(base_url=other_url, timeout=30) as other,
        ):
            for index in range(args.warmup + args.n):
                pair = [(owner, direct), (other, forwarded)]
                if index % 2:
                    pair.reverse()  # neither kind always goes first
                for via, sink in pair:
                    ms = await _offer_ms(owner, via, f"bench-{index}")
                    if index >= args.warmup:
                        sink.append(ms)
    finally:
        for service in services:
            service.terminate()
            await asyncio.sleep(0.2)
            service.terminate()  # the second SIGTERM skips the interview drain
            service.wait(30)
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "n": len(direct),
        "direct_p50": statistics.median(direct),
        "direct_p95": _percentile(direct, 0.95),
        "forwarded_p50": statistics.median(forwarded),
        "forwarded_p95": _percentile(forwarded, 0.95),
    }


def _print_forwarding(row: dict[str, Any]) -> None:
    print(
        f"\noffer->answer, direct vs forwarded to the owner: {row['n']} of each "
        f"(after {row['warmup']} warm-up), host candidates, {os.cpu_count()} cores"
    )
    print(f"{'':10} {'p50':>10} {'p95':>10}")
    print(f"{'direct':10} {row['direct_p50']:7.1f} ms {row['direct_p95']:7.1f} ms")
    print(f"{'forwarded':10} {row['forwarded_p50']:7.1f} ms {row['forwarded_p95']:7.1f} ms")
    print(
        f"{'ratio':10} {row['forwarded_p50'] / row['direct_p50']:10.2f} "
        f"{row['forwarded_p95'] / row['direct_p95']:10.2f}"
    )
    print(
        f"{'added':10} {row['forwarded_p50'] - row['direct_p50']:7.1f} ms "
        f"{row['forwarded_p95'] - row['direct_p95']:7.1f} ms"
    )


async def _main(args: argparse.Namespace) -> None:
    from tests.support.coturn import Coturn

    rows = []
    modes = args.modes.split(",")
    if "host" in modes:
        # no public STUN either: the namespace has no route out
        rows.append(await _mode("host", {"STUN_URLS": ""}, args))
    if "relay" in modes:
        workdir = Path(tempfile.mkdtemp(prefix="bench-coturn-"))
        coturn = Coturn(workdir)
        coturn.start()
        try:
            env = {
                "TURN_SERVER": coturn.server,
                "TURN_SECRET": coturn.secret,
                "INTERVIEW_RELAY_ONLY": "true",
            }
            rows.append(await _mode("relay", env, args))
        finally:
            coturn.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    forwarding = None
    if "forward" in modes:
        forwarding = {**await _forwarding({"STUN_URLS": ""}, args), "warmup": args.warmup}
    if not rows and forwarding is not None:
        _print_forwarding(forwarding)
        return
    print(
        f"\n{args.n} interviews per mode (after {args.warmup} warm-up), "
        f"{args.calls} concurrent calls for {args.steady:g} s, {os.cpu_count()} cores"
    )
    print(
        f"{'mode':6} {'offer->answer p50':>18} {'p95':>8} {'offer->connected p50':>21} "
        f"{'p95':>8} {'CPU idle':>9} {'CPU busy':>9} {'CPU/call':>9}"
    )
    for row in rows:
        print(
            f"{row['mode']:6} {row['answer_p50']:15.1f} ms {row['answer_p95']:5.1f} ms "
            f"{row['connect_p50']:18.1f} ms {row['connect_p95']:5.1f} ms "
            f"{row['cpu_idle_pct']:8.1f}% {row['cpu_pct']:8.1f}% {row['cpu_per_call_pct']:8.1f}%"
        )
    print("CPU is the service process's user+system time over the steady window, % of one core")
    if forwarding is not None:
        _print_forwarding(forwarding)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=30, help="interviews per mode")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--calls", type=int, default=4, help="concurrent calls at steady state")
    parser.add_argument("--steady", type=float, default=10.0, help="steady window, seconds")
    parser.add_argument("--modes", default="host,relay,forward")
    args = parser.parse_args()
    if not inside():
        reexec_in_namespace("bench.signaling")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
