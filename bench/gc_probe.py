"""Garbage-collection pauses of a process under a benchmark, timed with ``gc.callbacks``.

    python -m bench.gc_probe OUT.json -m uvicorn backend.app.main:app --port ...

runs the module like ``python -m`` would, with every collection timed (its start on the
system-wide monotonic clock, so another process can compare it with its own window, its
generation and its length). On SIGUSR1 the process writes what it recorded to OUT.json
and goes on; on SIGUSR2 it runs one full collection and writes how long it took, and how
many objects the collector tracks by type (and how many are frozen), to OUT.json.full.
From then on, each young collection (generation 0) first counts the objects it is about
to walk by type: what was allocated since the last one and is still alive, the objects
that make young collections come; SIGUSR1 writes them to OUT.json.young.
``install()`` times the collections of a process that is already running (the
benchmark's subscriber workers).
"""

from __future__ import annotations

import collections
import gc
import json
import runpy
import signal
import sys
import time
from typing import Any

# (start on the monotonic clock, seconds, generation, CPU seconds of the thread, objects
# collected): a pause much longer than its CPU time is the process waiting for a core.
_pauses: list[tuple[float, float, int, float, int]] = []
_started = (0.0, 0.0)
# Types of the objects in generation 0 when its collections began (after SIGUSR2).
_young: collections.Counter[str] = collections.Counter()
_young_runs = [0]
_young_on = [False]


def _callback(phase: str, info: dict[str, Any]) -> None:
    global _started
    if phase == "start":
        if _young_on[0] and info["generation"] == 0:
            _young_runs[0] += 1
            _young.update(type(o).__qualname__ for o in gc.get_objects(generation=0))
        _started = (time.monotonic(), time.thread_time())
    else:
        wall, cpu = _started
        took, took_cpu = time.monotonic() - wall, time.thread_time() - cpu
        _pauses.append((wall, took, int(info["generation"]), took_cpu, int(info["collected"])))


def install() -> None:
    if _callback not in gc.callbacks:
        gc.callbacks.append(_callback)


Pause = tuple[float, float, int, float, int]


def pauses() -> list[Pause]:
    return list(_pauses)


def summary(records: list[Pause], start: float, end: float) -> dict[str, Any]:
    """Per generation: collections begun in [start, end], their total and longest pause,
    and the CPU time they took."""
    out: dict[str, Any] = {}
    for generation in (0, 1, 2):
        chosen = [r for r in records if r[2] == generation and start <= r[0] <= end]
        inside = [(r[1], r[3]) for r in chosen]
        out[f"gen{generation}"] = {
            "collected": sum(r[4] for r in chosen),
            "count": len(inside),
            "total_ms": 1000 * sum(s for s, _ in inside),
            "max_ms": 1000 * max((s for s, _ in inside), default=0.0),
            "cpu_ms": 1000 * sum(c for _, c in inside),
        }
    return out


def main() -> None:
    out, flag, module, *rest = sys.argv[1:]
    if flag != "-m":
        raise SystemExit("usage: python -m bench.gc_probe OUT.json -m MODULE [ARGS...]")

    def dump(*_: object) -> None:
        with open(out + ".young", "w") as f:
            json.dump({"collections": _young_runs[0], "types": _young.most_common(12)}, f)
        with open(out, "w") as f:
            json.dump(_pauses, f)

    def full(*_: object) -> None:
        """One full collection now, timed, beside what the collector tracks."""
        tracked = gc.get_objects()  # the frozen ones are not among them
        objects, frozen = len(tracked), gc.get_freeze_count()
        types = collections.Counter(type(o).__qualname__ for o in tracked).most_common(15)
        del tracked
        start = time.monotonic()
        gc.collect()
        took = time.monotonic() - start
        found = {"objects": objects, "frozen": frozen, "full_ms": 1000 * took, "types": types}
        with open(out + ".full", "w") as f:
            json.dump(found, f)
        _young_on[0] = True

    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGUSR2, full)
    install()
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
