"""CPU of the paced outbound source: N sources started at random moments, each sending
20 ms frames in real time for a few seconds, with the frames on the process-wide grid
(as served) and, as the baseline in the same run, each source on its own clock.

    uv run python -m bench.paced_audio --sources 4 --seconds 4
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from unittest import mock

from interview_service import paced_audio
from interview_service.paced_audio import PacedSource


async def _cpu_per_source(sources: int, seconds: float) -> float:
    """% of a core per source."""
    rng = random.Random(1)
    offsets = [rng.random() * paced_audio.FRAME_S for _ in range(sources)]

    async def pump(source: PacedSource, offset: float) -> None:
        await asyncio.sleep(offset)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await source.recv()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(pump(PacedSource(), o) for o in offsets))
    return (time.process_time() - cpu) / (time.perf_counter() - wall) / sources * 100


async def _main(args: argparse.Namespace) -> None:
    for sources in args.sources:
        with mock.patch.object(paced_audio, "next_tick", lambda now: now):
            own = await _cpu_per_source(sources, args.seconds)
        grid = await _cpu_per_source(sources, args.seconds)
        print(
            f"{sources} sources: own clocks {own:.3f}% of a core each, shared grid "
            f"{grid:.3f}%: ratio {grid / own:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=4.0)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
