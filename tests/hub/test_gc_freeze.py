"""HUB_GC_FREEZE: the startup heap leaves the collector's sight once per process.

Each case runs in a fresh interpreter: the freeze is once per process, and the test
process's own heap must not be frozen by it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.support.uvicorn_process import ROOT

PROGRAM = """
import asyncio, gc, json
from backend.core.health import HealthChecks
from backend.core.metrics import Metrics
from backend.core.storage import open_store
from backend.hub.factory import open_hub
from backend.hub.settings import HubSettings

async def start(settings):
    store = open_store(None, prefix="")
    async with open_hub(settings, store, Metrics("t", "test"), HealthChecks()):
        return gc.get_freeze_count()

settings = HubSettings()
first = asyncio.run(start(settings))
kept = [[i] for i in range(20_000)]  # alive and tracked, made after the first start
second = asyncio.run(start(settings))
print(json.dumps({"setting": settings.hub_gc_freeze, "first": first, "second": second,
                  "thresholds": list(gc.get_threshold())}))
"""


def _run(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "ENVIRONMENT": "test", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_first_hub_freezes_the_startup_heap_and_later_ones_do_not() -> None:
    result = _run({})
    assert result["setting"] is True
    assert result["first"] > 10_000, result
    # The 20,000 lists made after the first start stay collectable: no second freeze
    # (the frozen count may only fall, as frozen objects of the first start die).
    assert result["second"] <= result["first"], result


def test_hub_gc_freeze_false_leaves_the_collector_alone() -> None:
    result = _run({"HUB_GC_FREEZE": "false"})
    assert result == {"setting": False, "first": 0, "second": 0, "thresholds": [700, 10, 10]}


def test_hub_gc_thresholds_reach_the_collector() -> None:
    result = _run({"HUB_GC_THRESHOLDS": "[700,10,100]"})
    assert result["thresholds"] == [700, 10, 100]
