"""Voice-loop benchmark: per-stage latency of the interviewer, and calls per core.

    uv run python -m bench.voice_latency                   # both modes, defaults below
    uv run python -m bench.voice_latency --modes fake --turns 12 --calls 6

A scripted candidate (an aiortc peer in this process) speaks answers synthesised with
espeak-ng (two sentences with a 0.9 s thinking pause: one turn) into the service (a
real uvicorn process) and waits for each reply. It re-runs itself in a network
namespace of its own (:mod:`bench.netns`). Modes:

- ``fake``: STT, the interviewer and TTS are fixed-latency fakes
  (``tests.support.voice_fakes``, ``--stt/--llm/--tts`` seconds); VAD, resampling, turn
  detection, Opus and pacing are the production ones. What voice-to-voice takes beyond
  the silence window and the fakes' fixed times is the server's own overhead.
- ``local``: the whole local stack (Silero VAD, faster-whisper base int8, the scripted
  interviewer, espeak-ng).
- ``local-late``: the same with early STT off (``INTERVIEW_EARLY_STT_S=0``): the
  baseline for what starting STT at pauses saves. With both modes in one run, the
  ratio of their voice-to-voice medians is printed.

Printed, per mode: per-stage p50/p95 from the service's own per-turn metrics
(``/results``), the server's overhead, voice-to-voice as the candidate hears it, and the
service process's CPU per concurrent call while every call is talking, as calls per core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import httpx
import numpy as np

from bench.netns import inside, reexec_in_namespace

# Each answer is two sentences with a 0.9 s thinking pause between them (one turn).
ANSWERS = [
    ("I have worked on video pipelines for five years.", "Mostly on rendering and encoding."),
    ("The hardest part was keeping the render queue fair.", "One customer sent thousands."),
    ("I would start by measuring where the time goes.", "Then fix the slowest stage first."),
    ("We moved the encoders onto spot instances.", "That cut the monthly bill by a third."),
]
PAUSE_S = 0.9
DUMP = os.environ.get("BENCH_DUMP") == "1"  # print every call's transcript and turns
QUESTIONS = [f"Question number {i}, tell me more about your work." for i in range(1, 40)]
STAGES = (
    "end_of_utterance_s",
    "stt_s",
    "semantic_check_s",
    "llm_first_token_s",
    "tts_first_byte_s",
    "voice_to_voice_s",
)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _last_voiced_s(pcm: bytes) -> float:
    """Where the speech in s16 48 kHz PCM ends (espeak-ng pads a little silence)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    frames = samples[: len(samples) // 960 * 960].reshape(-1, 960)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 0.01)
    return (int(loud[-1]) + 1) * 0.02 if loud.size else 0.0


async def _until(predicate: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the interviewer did not answer in time")
        await asyncio.sleep(0.005)


async def _interview(
    http: httpx.AsyncClient, answers: list[bytes], turns: int, heard: list[float]
) -> str:
    """One call: greeting, then ``turns`` answers, each waiting for the whole reply."""
    from tests.support.rtc_client import RtcClient

    started = (
        await http.post(
            "/api/interview/start",
            json={"user_id": "bench", "role": "pipeline engineer", "questions": QUESTIONS},
        )
    ).json()
    interview = started["session_id"]
    client = RtcClient(started["ice_servers"], speak_s=0)
    try:
        await client.call(http, interview)
        await asyncio.wait_for(client.connected.wait(), 20)
        await _until(lambda: client.transcript("interviewer"), 60)
        for turn in range(turns):
            pcm = answers[turn % len(answers)]
            lines = len(client.transcript("interviewer"))
            segment = client.microphone.enqueue_pcm(pcm)
            voiced_frames = round(_last_voiced_s(pcm) / 0.02)
            # when its last voiced frame really went out (pacing may slip under load)
            await _until(lambda s=segment, v=voiced_frames: s.sent >= v, 60)
            voice_ended = time.time()
            await _until(lambda n=lines: len(client.transcript("interviewer")) > n, 60)
            onset = next((t for t in client.onsets if t > voice_ended), None)
            if onset is not None:
                heard.append(onset - voice_ended)
            await asyncio.sleep(0.3)
        await http.post(f"/api/interview/{interview}/end")
    finally:
        await client.close()
    return str(interview)


async def _mode(name: str, args: argparse.Namespace, answers: list[bytes]) -> dict[str, Any]:
    from tests.support.uvicorn_process import ServiceProcess

    env = {
        "STUN_URLS": "",
        "INTERVIEW_CONVERSATION": "interviewer",
        "INTERVIEW_MAX_CONCURRENT": "100",
        "INTERVIEW_END_OF_TURN_SILENCE_S": str(args.silence),
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "RATE_LIMITS_ENABLED": "false",  # many calls from one address
    }
    if name == "local-late":  # the baseline: STT only once the turn has ended
        env["INTERVIEW_EARLY_STT_S"] = "0"
    if name == "fake":
        env["INTERVIEW_VOICE_STACK"] = "tests.support.voice_fakes:fixed_latency_stack"
        env["FAKE_VOICE_LATENCIES"] = f"stt={args.stt},llm={args.llm},tts={args.tts}"
    service = ServiceProcess(env)
    service.start()
    assert service.process is not None
    pid = service.process.pid
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=120) as http:
            # warm-up: loads the models and pays every first-call cost
            await _interview(http, answers, 1, [])
            heard: list[float] = []
            ids = [await _interview(http, answers, args.turns, heard)]
            calls = args.calls if name == "fake" else args.local_calls
            load_heard: list[float] = []
            idle_before = _cpu_seconds(pid)
            await asyncio.sleep(2)
            idle = (_cpu_seconds(pid) - idle_before) / 2
            cpu_before, wall_before = _cpu_seconds(pid), time.perf_counter()
            load_ids = await asyncio.gather(
                *(_interview(http, answers, args.load_turns, load_heard) for _ in range(calls))
            )
            busy = (_cpu_seconds(pid) - cpu_before) / (time.perf_counter() - wall_before)
            single = [await _per_turn(http, i) for i in ids]
            loaded = [await _per_turn(http, i) for i in load_ids]
    finally:
        service.terminate()
        service.wait(30)
    per_call = max(busy - idle, 1e-9) / calls
    return {
        "mode": name,
        "single": [t for turns in single for t in turns],
        "loaded": [t for turns in loaded for t in turns],
        "heard": heard,
        "load_heard": load_heard,
        "calls": calls,
        "cpu_per_call_pct": per_call * 100,
        "calls_per_core": 1 / per_call,
    }


async def _per_turn(http: httpx.AsyncClient, interview: str) -> list[dict[str, Any]]:
    results = (await http.get(f"/api/interview/{interview}/results")).json()
    if DUMP:
        for line in results["transcript"]:
            cut = " (interrupted)" if line["interrupted"] else ""
            print(f"    {line['start']:.2f}-{line['end']:.2f} {line['role']}: {line['text']}{cut}")
        print(f"    media {results['metrics'].get('frames_in')} in")
        for turn in results["metrics"]["per_turn"]:
            print(f"    {turn}")
    return [t for t in results["metrics"]["per_turn"] if not t.get("interrupted")]


def _overhead(turn: dict[str, Any], silence: float) -> tuple[float, float]:
    """(beyond the measured stages, beyond the configured window and the stages)."""
    stages = sum(float(turn.get(s, 0.0)) for s in STAGES[1:5])
    v2v = float(turn["voice_to_voice_s"])
    return v2v - float(turn["end_of_utterance_s"]) - stages, v2v - silence - stages


def _line(what: str, values: list[float]) -> None:
    if values:
        print(f"  {'':9} {what:22} {statistics.median(values):8.1f} {_pct(values, 0.95):8.1f}")


def _report(row: dict[str, Any], args: argparse.Namespace) -> None:
    print(f"\n== {row['mode']}: {len(row['single'])} turns on one call", end="")
    if row["mode"] == "fake":
        print(f" (fakes: stt {args.stt} s, llm {args.llm} s, tts {args.tts} s)", end="")
    print(f"; silence window {args.silence} s")
    for label, turns in (("one call", row["single"]), (f"{row['calls']} calls", row["loaded"])):
        print(f"  {label:9} {'stage':22} {'p50 ms':>8} {'p95 ms':>8}")
        for stage in STAGES:
            _line(stage, [float(t[stage]) * 1000 for t in turns if stage in t])
        over = [_overhead(t, args.silence) for t in turns if "voice_to_voice_s" in t]
        _line("overhead (measured)", [o[0] * 1000 for o in over])
        _line("overhead (configured)", [o[1] * 1000 for o in over])
        heard = row["heard"] if label == "one call" else row["load_heard"]
        _line("heard by the candidate", [h * 1000 for h in heard])
    print(
        f"  CPU while {row['calls']} calls talk: {row['cpu_per_call_pct']:.1f}% of a core per call"
        f" -> about {row['calls_per_core']:.1f} calls per core"
    )


async def _main(args: argparse.Namespace) -> None:
    from interview_service.espeak import EspeakVoice

    voice = EspeakVoice()
    pause = bytes(int(48_000 * PAUSE_S) * 2)
    answers = [
        await voice.synthesize(first) + pause + await voice.synthesize(second)
        for first, second in ANSWERS
    ]
    rows = [await _mode(mode, args, answers) for mode in args.modes.split(",")]
    print(f"\n{os.cpu_count()} cores; the candidate's peers share them with the service")
    for row in rows:
        _report(row, args)
    by_mode = {row["mode"]: row for row in rows}
    if "local" in by_mode and "local-late" in by_mode:
        early, late = (
            statistics.median(float(t["voice_to_voice_s"]) for t in by_mode[m]["single"])
            for m in ("local", "local-late")
        )
        print(
            f"\nvoice-to-voice p50, one call: early STT {early * 1000:.0f} ms, "
            f"late {late * 1000:.0f} ms, ratio early/late {early / late:.2f}"
        )
    print(
        "\noverhead (measured): voice-to-voice minus the measured end-of-utterance delay, STT,"
        "\n  semantic check, LLM first token and TTS first byte: the server's own time."
        "\noverhead (configured): the same against the configured silence window (adds when"
        "\n  the end is noticed: 32 ms VAD chunks completing on 20 ms frames). heard by the"
        "\n  candidate: its last voiced frame sent to the first loud frame it heard (adds Opus,"
        "\n  the network and both receivers' jitter buffers)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="fake,local")
    parser.add_argument("--turns", type=int, default=8, help="turns on the single call")
    parser.add_argument("--calls", type=int, default=4, help="concurrent calls, fake mode")
    parser.add_argument("--local-calls", type=int, default=2, help="concurrent calls, local")
    parser.add_argument("--load-turns", type=int, default=3, help="turns per concurrent call")
    parser.add_argument("--silence", type=float, default=1.4, help="end-of-turn silence, s")
    parser.add_argument("--stt", type=float, default=0.2)
    parser.add_argument("--llm", type=float, default=0.3)
    parser.add_argument("--tts", type=float, default=0.1)
    args = parser.parse_args()
    if not inside():
        reexec_in_namespace("bench.voice_latency")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
