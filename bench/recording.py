"""What recording a call costs: CPU per minute of call, memory over a long call, file size.

    uv run python -m bench.recording                  # a 10-minute call, then a 1-minute one
    uv run python -m bench.recording --minutes 30 --json

Feeds :class:`interview_service.recording.Recorder` both sides of a simulated call on a
simulated clock (so ten minutes take seconds): the candidate as aiortc's Opus decoder
hands frames over (48 kHz stereo s16, a 330 Hz tone with pauses), the interviewer as
the paced source sends them (48 kHz mono s16, 587 Hz with pauses). Frames are fed as
fast as the recorder's queue takes them, never dropped.

Prints: the event loop's share per frame (the tap: conversion and enqueue), the whole
process's CPU per minute of call (tap + the writer thread's mixing and Opus encoding)
and what that means in concurrent recorded calls per core, the RSS after the long call
and after a short one in the same process (bounded memory: the long one must not need
more), and the file's bytes per second.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from interview_service.recording import QUEUE_FRAMES, Recorder

FRAME = 960
RATE = 48_000


def _frame(samples: np.ndarray, layout: str, pts: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout=layout)
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, RATE)
    return frame


def _tone(hz: float, index: int, on: bool) -> np.ndarray:
    t = (np.arange(FRAME) + index * FRAME) / RATE
    level = 0.3 if on else 0.0
    return (level * 32767 * np.sin(2 * math.pi * hz * t)).astype(np.int16)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def record_call(seconds: float, workdir: Path) -> dict[str, Any]:
    clock = [0.0]
    path = workdir / f"call-{seconds:g}.ogg"
    recorder = Recorder(path, clock=lambda: clock[0])
    frames = int(seconds * 50)
    tap_s = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for index in range(frames):
        clock[0] = (index + 1) * FRAME / RATE
        candidate_on = (index // 250) % 2 == 1  # 5 s talking, 5 s listening
        mono = _tone(330.0, index, candidate_on)
        stereo = np.stack([mono, mono], axis=1).reshape(1, -1)
        inbound = _frame(stereo, "stereo", index * FRAME)
        outbound = _frame(
            _tone(587.0, index, not candidate_on).reshape(1, -1), "mono", index * FRAME
        )
        while recorder._queue.qsize() > QUEUE_FRAMES - 4:  # never drop: wait for the writer
            time.sleep(0.0005)
        began = time.perf_counter()
        recorder.inbound(inbound)
        recorder.outbound(outbound)
        tap_s += time.perf_counter() - began
    info = asyncio.run(recorder.close())
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    result = {
        "call_s": seconds,
        "recorded_s": info.duration_s,
        "dropped_frames": info.dropped_frames,
        "bytes": info.bytes,
        "bytes_per_s": round(info.bytes / seconds),
        "cpu_s": round(cpu, 3),
        "cpu_s_per_call_minute": round(cpu / seconds * 60, 3),
        "tap_us_per_frame": round(tap_s / (2 * frames) * 1e6, 1),
        "wall_s": round(wall, 2),
        "rss_mb_after": round(_rss_mb(), 1),
    }
    path.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    minutes = min(max(args.minutes, 0.1), 120.0)
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        warm = record_call(5.0, Path(tmp))  # codecs loaded, arenas sized
        long = record_call(minutes * 60, Path(tmp))
        short = record_call(60.0, Path(tmp))
    per_core = 60 / long["cpu_s_per_call_minute"] if long["cpu_s_per_call_minute"] else math.inf
    report = {"warm_rss_mb": warm["rss_mb_after"], "long": long, "short": short}
    print(
        f"recording a {minutes:g}-minute call: {long['recorded_s']} s recorded, "
        f"{long['dropped_frames']} frames dropped, {long['bytes_per_s']} bytes/s"
    )
    print(
        f"CPU: {long['cpu_s_per_call_minute']} s per minute of call "
        f"(~{per_core:.0f} recorded calls per core); the tap on the event loop: "
        f"{long['tap_us_per_frame']} us per frame"
    )
    print(
        f"RSS: {warm['rss_mb_after']} MB after a 5 s call, {long['rss_mb_after']} MB after the "
        f"{minutes:g}-minute one, {short['rss_mb_after']} MB after a 1-minute one"
    )
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
