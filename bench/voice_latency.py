"""Voice-loop benchmark: every target of the interviewer's turn-taking, in one run.

    uv run python -m bench.voice_latency                        # all modes, defaults below
    uv run python -m bench.voice_latency --modes window,fake --turns 6 --calls 4

A scripted candidate (an aiortc peer in this process) speaks espeak-ng speech into the
service (a real uvicorn process) over WebRTC and measures what it hears. It re-runs
itself in a network namespace of its own (:mod:`bench.netns`). Modes:

- ``window``: the first iteration's policy as the baseline, in the same run: a fixed
  1.4 s silence ends the turn (``INTERVIEW_TURN_MODEL=window``), no reply is prepared
  early. Providers are the fixed-latency fakes below.
- ``fake``: today's policy (smart-turn v3 and the early transcript, preemptive
  generation) with fixed-latency fakes (``tests.support.voice_fakes``: STT ``--stt``,
  LLM first token ``--llm``, TTS first byte ``--tts`` seconds). VAD, resampling, Opus,
  pacing and the end-of-turn model are the production ones.
- ``local``: the whole local stack (Silero VAD, faster-whisper, smart-turn v3, the
  scripted interviewer, espeak-ng).

Per mode it prints: the greeting's delay after the call connects; voice-to-voice p50/p95
(the service's own metric, and as the candidate hears it); barge-in stop latency as the
candidate hears it (from the first voiced frame of a real interruption it sent to the
last loud frame it heard); interruptions caused by the backchannel set; false cut-offs
over the thinking-pause set (where the STT is real, or the policy ignores words: not in
``fake``, whose STT returns the same sentence whatever it hears); and the service's CPU
per concurrent call. Then the ratio of ``fake`` to ``window`` voice-to-voice p50, and
the smart-turn model's decision time on this machine.
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

# One sentence each, no pause: the end of the turn is what is measured.
ANSWERS = [
    "I have worked on video pipelines for five years, mostly on rendering and encoding.",
    "The hardest part was keeping the render queue fair, one customer sent thousands.",
    "I would start by measuring where the time goes, then fix the slowest stage first.",
    "We moved the encoders onto spot instances, which cut the monthly bill by a third.",
]
INTERRUPTION = "Sorry to interrupt, but could you say that question again please?"
DUMP = os.environ.get("BENCH_DUMP") == "1"  # print every call's transcript and turns
# long questions: the interviewer talks long enough to be talked over
QUESTIONS = [
    f"Question number {i}. Tell me about the largest system you have designed, how many "
    "people used it, what broke first, how you found out, and what you changed afterwards."
    for i in range(1, 40)
]
STAGES = (
    "end_of_utterance_s",
    "stt_s",
    "end_of_turn_judge_s",
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


def _voiced_span(pcm: bytes) -> tuple[float, float]:
    """Where the speech in s16 48 kHz PCM starts and ends (espeak-ng pads silence)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    frames = samples[: len(samples) // 960 * 960].reshape(-1, 960)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 0.01)
    return (int(loud[0]) * 0.02, (int(loud[-1]) + 1) * 0.02) if loud.size else (0.0, 0.0)


async def _until(predicate: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the interviewer did not answer in time")
        await asyncio.sleep(0.005)


class Candidate:
    """One call, seen from the candidate's side."""

    def __init__(self, http: httpx.AsyncClient, audio: dict[str, Any]) -> None:
        self.http = http
        self.audio = audio
        self.interview = ""
        self.client: Any = None
        self.greeting_s: float | None = None
        self.heard: list[float] = []  # voice-to-voice as the candidate hears it
        self.stops: list[float] = []  # barge-in stop latency as the candidate hears it
        self.backchannel_interruptions = 0
        self.backchannels_played = 0
        self.cut_offs = 0
        self.pauses_played = 0

    async def __aenter__(self) -> Candidate:
        from tests.support.rtc_client import RtcClient

        body = {"user_id": "bench", "role": "pipeline engineer", "questions": QUESTIONS}
        started = (await self.http.post("/api/interview/start", json=body)).json()
        self.interview = started["session_id"]
        self.client = RtcClient(started["ice_servers"], speak_s=0)
        await self.client.call(self.http, self.interview)
        await asyncio.wait_for(self.client.connected.wait(), 20)
        connected = time.time()
        await _until(lambda: self.client.onsets, 30)
        self.greeting_s = self.client.onsets[0] - connected
        await _until(lambda: self._replies() >= 1, 60)  # the whole greeting, then speak
        await self._quiet()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.post(f"/api/interview/{self.interview}/end")
        await self.client.close()

    def _lines(self, role: str) -> int:
        return len(self.client.transcript(role))

    def _replies(self) -> int:
        """The interviewer's lines said to the end."""
        return sum(1 for item in self.client.transcript("interviewer") if not item["interrupted"])

    async def _quiet(self, for_s: float = 0.4) -> None:
        """Until the interviewer has been silent for ``for_s``."""
        await _until(lambda: time.time() - self.client.last_loud_at > for_s, 60)

    async def _say(self, pcm: bytes) -> float:
        """Speak; returns when (wall clock) its last voiced frame went out."""
        segment = self.client.microphone.enqueue_pcm(pcm)
        _, end = _voiced_span(pcm)
        await _until(lambda: segment.sent >= round(end / 0.02), 60)
        return time.time()

    async def answer(self, pcm: bytes) -> None:
        """An answer; then the whole reply."""
        lines = self._lines("interviewer")
        voice_ended = await self._say(pcm)
        await _until(lambda: self._lines("interviewer") > lines, 60)
        onset = next((t for t in self.client.onsets if t > voice_ended), None)
        if onset is not None:
            self.heard.append(onset - voice_ended)
        await self._quiet()

    async def interrupt(self, answer: bytes) -> None:
        """Answer, then talk over the reply 0.6 s into it: how soon does it stop?"""
        onsets = len(self.client.onsets)
        replies = self._replies()
        await self._say(answer)
        await _until(lambda: len(self.client.onsets) > onsets, 60)
        await asyncio.sleep(0.6)
        pcm = self.audio["interruption"]
        start, _ = _voiced_span(pcm)
        segment = self.client.microphone.enqueue_pcm(pcm)
        await _until(lambda: segment.first_sent_at is not None, 10)
        spoke_at = segment.first_sent_at + start
        await asyncio.sleep(1.5)  # well past any stop
        if self.client.last_loud_at > spoke_at:
            self.stops.append(self.client.last_loud_at - spoke_at)
        await _until(lambda: "barge_in" in self.client.event_types(), 10)
        # the interruption is the candidate's turn: the interviewer answers it in full
        await _until(lambda: self._replies() > replies, 60)
        await self._quiet()

    async def backchannel(self, answer: bytes) -> None:
        """Answer, then say every backchannel of the set over the reply."""
        barge_ins = self.client.event_types().count("barge_in")
        onsets = len(self.client.onsets)
        lines = self._lines("interviewer")
        await self._say(answer)
        await _until(lambda: len(self.client.onsets) > onsets, 60)
        await asyncio.sleep(0.3)
        for pcm in self.audio["backchannels"]:
            if self._lines("interviewer") > lines:
                break  # the reply is over: the rest would not be over it
            await self._say(pcm + bytes(int(48_000 * 0.5) * 2))
            self.backchannels_played += 1
        await _until(lambda: self._lines("interviewer") > lines, 60)
        self.backchannel_interruptions += self.client.event_types().count("barge_in") - barge_ins
        await self._quiet()

    async def thinking_pauses(self, count: int) -> None:
        """Each answer of the pause set: one reply after it, or it was cut at its pause."""
        for pcm in self.audio["pauses"][:count]:
            said = self._lines("candidate")
            await self.answer(pcm)
            await asyncio.sleep(0.3)
            self.pauses_played += 1
            if self._lines("candidate") - said != 1 or "barge_in" in self.client.event_types():
                self.cut_offs += 1
                await asyncio.sleep(2.0)  # the rest of the answer, and its reply
                await self._quiet(1.0)
            self.client.events[:] = [e for e in self.client.events if e.get("type") != "barge_in"]


async def _mode(name: str, args: argparse.Namespace, audio: dict[str, Any]) -> dict[str, Any]:
    from tests.support.uvicorn_process import ServiceProcess

    env = {
        "STUN_URLS": "",
        "INTERVIEW_CONVERSATION": "interviewer",
        "INTERVIEW_MAX_CONCURRENT": "100",
        "INTERVIEW_WARM_MODELS": "true",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "RATE_LIMITS_ENABLED": "false",  # many calls from one address
    }
    if name == "window":  # the baseline: the first iteration's fixed silence window
        env["INTERVIEW_TURN_MODEL"] = "window"
        env["INTERVIEW_END_OF_TURN_SILENCE_S"] = str(args.silence)
        env["INTERVIEW_PREEMPTIVE_GENERATION"] = "false"
    if name in ("window", "fake"):
        env["INTERVIEW_VOICE_STACK"] = "tests.support.voice_fakes:fixed_latency_stack"
        env["FAKE_VOICE_LATENCIES"] = f"stt={args.stt},llm={args.llm},tts={args.tts}"
    service = ServiceProcess(env)
    service.start()
    assert service.process is not None
    pid = service.process.pid
    answers = audio["answers"]
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=120) as http:
            await asyncio.sleep(3 if name == "local" else 1)  # the models warm at startup
            async with Candidate(http, audio) as one:
                for turn in range(args.turns):
                    await one.answer(answers[turn % len(answers)])
                for turn in range(args.barge_ins):
                    await one.interrupt(answers[turn % len(answers)])
                await one.backchannel(answers[0])
                if name != "fake":
                    await one.thinking_pauses(args.pause_answers)
            single = await _per_turn(http, one.interview)
            calls = args.calls if name != "local" else args.local_calls
            idle_before = _cpu_seconds(pid)
            await asyncio.sleep(2)
            idle = (_cpu_seconds(pid) - idle_before) / 2
            cpu_before, wall_before = _cpu_seconds(pid), time.perf_counter()
            await asyncio.gather(*(_talk(http, audio, args.load_turns) for _ in range(calls)))
            busy = (_cpu_seconds(pid) - cpu_before) / (time.perf_counter() - wall_before)
    finally:
        service.terminate()
        service.wait(30)
    per_call = max(busy - idle, 1e-9) / calls
    return {
        "mode": name,
        "single": single,
        "one": one,
        "calls": calls,
        "cpu_per_call_pct": per_call * 100,
        "calls_per_core": 1 / per_call,
    }


async def _talk(http: httpx.AsyncClient, audio: dict[str, Any], turns: int) -> None:
    async with Candidate(http, audio) as candidate:
        for turn in range(turns):
            await candidate.answer(audio["answers"][turn % len(audio["answers"])])


async def _per_turn(http: httpx.AsyncClient, interview: str) -> list[dict[str, Any]]:
    results = (await http.get(f"/api/interview/{interview}/results")).json()
    if DUMP:
        for line in results["transcript"]:
            cut = " (interrupted)" if line["interrupted"] else ""
            print(f"    {line['role']}: {line['text']}{cut}")
        for turn in results["metrics"]["per_turn"]:
            print(f"    {turn}")
    return [t for t in results["metrics"]["per_turn"] if not t.get("interrupted")]


def _line(what: str, values: list[float]) -> None:
    if values:
        p50, p95 = statistics.median(values), _pct(values, 0.95)
        print(f"  {what:34} {p50:8.1f} {p95:8.1f}   (n={len(values)})")


def _report(row: dict[str, Any], args: argparse.Namespace) -> None:
    one: Candidate = row["one"]
    print(f"\n== {row['mode']}: {len(row['single'])} answered turns on one call", end="")
    if row["mode"] != "local":
        print(f" (fakes: stt {args.stt} s, llm {args.llm} s, tts {args.tts} s)", end="")
    print()
    print(f"  {'what':34} {'p50 ms':>8} {'p95 ms':>8}")
    if one.greeting_s is not None:
        _line("greeting after connecting", [one.greeting_s * 1000])
    for stage in STAGES:
        values = [float(t[stage]) * 1000 for t in row["single"] if t.get(stage) is not None]
        _line(stage, values)
    _line("voice-to-voice heard by candidate", [h * 1000 for h in one.heard])
    _line("barge-in: audio stopped after", [s * 1000 for s in one.stops])
    print(
        f"  backchannels: {one.backchannel_interruptions} interruptions"
        f" from {one.backchannels_played} played over a reply"
    )
    if one.pauses_played:
        print(f"  thinking pauses: {one.cut_offs} false cut-offs of {one.pauses_played} answers")
    print(
        f"  CPU while {row['calls']} calls talk: {row['cpu_per_call_pct']:.1f}% of a core per call"
        f" -> about {row['calls_per_core']:.1f} calls per core"
    )


async def _webrtc_floor(args: argparse.Namespace, audio: dict[str, Any]) -> float:
    """CPU per call of the call alone (the greeter: Opus, RTP, SRTP, ICE, the data
    channel, no voice loop) while each candidate speaks for 12 s: % of a core."""
    from tests.support.rtc_client import RtcClient
    from tests.support.uvicorn_process import ServiceProcess

    env = {"STUN_URLS": "", "INTERVIEW_CONVERSATION": "greeter", "RATE_LIMITS_ENABLED": "false"}
    service = ServiceProcess({**env, "LOG_LEVEL": "WARNING", "INTERVIEW_MAX_CONCURRENT": "100"})
    service.start()
    assert service.process is not None
    clients = []
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=60) as http:
            for _ in range(args.calls):
                started = (await http.post("/api/interview/start", json={"user_id": "b"})).json()
                client = RtcClient(started["ice_servers"], speak_s=0)
                clients.append(client)
                await client.call(http, started["session_id"])
                await asyncio.wait_for(client.connected.wait(), 20)
            await asyncio.sleep(2)
            for client in clients:
                for pcm in audio["answers"][:2]:
                    client.microphone.enqueue_pcm(pcm + bytes(96_000))
            before, began = _cpu_seconds(service.process.pid), time.perf_counter()
            await asyncio.sleep(12)
            busy = (_cpu_seconds(service.process.pid) - before) / (time.perf_counter() - began)
    finally:
        for client in clients:
            await client.close()
        # measured: the greeter's calls do not end on their own, and SIGTERM's drain waits
        # for them; stop() kills what outlives its grace
        service.stop()
    return busy / args.calls * 100


def _decision_time() -> tuple[float, float]:
    """The smart-turn model on 8 s of speech, one thread: (p50, p95) in ms."""
    from interview_service.voice.smart_turn import SmartTurn

    model = SmartTurn()
    speech = (np.random.default_rng(1).standard_normal(8 * 16_000) * 0.1).astype(np.float32)
    model.complete_probability(speech)
    times = []
    for _ in range(30):
        began = time.perf_counter()
        model.complete_probability(speech)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), _pct(times, 0.95)


async def _main(args: argparse.Namespace) -> None:
    from interview_service.espeak import EspeakVoice
    from tests.support.voice_sets import backchannels, thinking_pause_answers

    voice = EspeakVoice()
    audio = {
        "answers": [await voice.synthesize(text) for text in ANSWERS],
        "interruption": await voice.synthesize(INTERRUPTION),
        "backchannels": await backchannels(voice),
        "pauses": await thinking_pause_answers(voice),
    }
    rows = [await _mode(mode, args, audio) for mode in args.modes.split(",")]
    floor = await _webrtc_floor(args, audio)
    load = os.getloadavg()[0]
    print(f"\n{os.cpu_count()} cores, load average {load:.1f}; the candidate shares them")
    for row in rows:
        _report(row, args)
    by_mode = {row["mode"]: row for row in rows}
    if "fake" in by_mode and "window" in by_mode:
        new, old = (
            statistics.median(float(t["voice_to_voice_s"]) for t in by_mode[m]["single"])
            for m in ("fake", "window")
        )
        print(
            f"\nvoice-to-voice p50 with the fakes: {new * 1000:.0f} ms, the 1.4 s window "
            f"{old * 1000:.0f} ms: ratio {new / old:.2f}"
        )
    print(
        f"the call alone (greeter: Opus, RTP, SRTP, ICE, data channel, no voice loop), "
        f"{args.calls} calls: {floor:.1f}% of a core per call"
    )
    p50, p95 = _decision_time()
    print(f"smart-turn v3 decision (8 s of audio, one thread): p50 {p50:.0f} ms, p95 {p95:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modes", default="window,fake,local")
    parser.add_argument("--turns", type=int, default=8, help="answered turns on the one call")
    parser.add_argument("--barge-ins", type=int, default=4, help="interruptions on it")
    parser.add_argument("--pause-answers", type=int, default=10, help="of the pause set")
    parser.add_argument("--calls", type=int, default=4, help="concurrent calls, fake modes")
    parser.add_argument("--local-calls", type=int, default=2, help="concurrent calls, local")
    parser.add_argument("--load-turns", type=int, default=3, help="turns per concurrent call")
    parser.add_argument("--silence", type=float, default=1.4, help="the baseline's window, s")
    parser.add_argument("--stt", type=float, default=0.2)
    parser.add_argument("--llm", type=float, default=0.3)
    parser.add_argument("--tts", type=float, default=0.1)
    args = parser.parse_args()
    if not inside():
        reexec_in_namespace("bench.voice_latency")
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
