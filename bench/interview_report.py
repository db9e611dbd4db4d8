"""How long the HTML report of a long interview takes to render (no timing is asserted).

    uv run python -m bench.interview_report [--lines 720] [--repeat 50]

A one-hour interview is about 720 transcript lines (a line every 5 s) and up to 10
scored criteria. The service renders off the event loop; this says how much CPU a page
costs and how large it is.
"""

from __future__ import annotations

import argparse
import statistics
import time

from backend.core.clock import iso
from interview_service.report import render_report

SENTENCE = "I moved the render queue to Redis streams & cut the p95 <by half>. "


def results(lines: int) -> dict[str, object]:
    return {
        "session_id": "bench",
        "status": "ended",
        "summary": "A summary of a few sentences. " * 5,
        "scores": [
            {"criterion": f"criterion {n}", "score": 3, "max": 5, "evidence": [SENTENCE] * 3}
            for n in range(10)
        ],
        "unscored": [],
        "transcript": [
            {
                "role": "candidate" if n % 2 else "interviewer",
                "text": SENTENCE * 3,
                "start": iso(1.8e9 + 5 * n),
                "end": iso(1.8e9 + 5 * n + 4),
                "interrupted": n % 7 == 0,
            }
            for n in range(lines)
        ],
        "metrics": {"duration_s": lines * 5.0, "turns": lines // 2},
        "plan": {"role": "platform engineer"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=720)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    data = results(args.lines)
    timings = []
    page = ""
    for _ in range(max(1, args.repeat)):
        began = time.perf_counter()
        page = render_report(data)
        timings.append(time.perf_counter() - began)
    timings.sort()
    print(f"report of {args.lines} lines and 10 scores: {len(page) / 1024:.0f} KiB")
    print(
        f"render p50 {statistics.median(timings) * 1000:.1f} ms, "
        f"p95 {timings[int(len(timings) * 0.95) - 1] * 1000:.1f} ms ({args.repeat} runs)"
    )


if __name__ == "__main__":
    main()
