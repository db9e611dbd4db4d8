"""The fan-out benchmark runs end to end on tiny configurations (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import TEST_REDIS_URL
from tests.support.uvicorn_process import ROOT


def _bench(*args: str) -> tuple[Any, str]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.hub_fanout", "--quick", "--json", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BENCH_REDIS_URL": TEST_REDIS_URL},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stdout


@pytest.mark.slow
def test_quick_run_prints_its_table_for_every_target() -> None:
    rows, stdout = _bench("--gc")
    assert [row["target"] for row in rows] == [
        "hub-memory",
        "hub-redis",
        "raw-websockets",
        "python-socketio",
    ]
    for row in rows:
        assert row["connections"] == 10
        assert row["delivered"] == row["expected"] > 0, row  # every subscriber got every event
    assert "p99 hub-redis / hub-memory" in stdout
    for row in rows:  # --gc: every server ran under bench.gc_probe and answered its signals
        assert row["gc_full"]["objects"] > 0, row["target"]
        assert row["gc_full"]["full_ms"] > 0, row["target"]
    assert "garbage collections while events were published" in stdout


@pytest.mark.slow
def test_quick_reconnect_storm_catches_every_client_up() -> None:
    out, stdout = _bench("--storm", "20", "--targets", "hub-memory,hub-redis,raw-websockets")
    storms = out["storm"]
    assert [row["target"] for row in storms] == ["hub-memory", "hub-redis", "raw-websockets"]
    for row in storms:
        # Each hub client resumed with last_seq: snapshot recovered, then the 20 it missed.
        assert row["failures"] == {}, row["target"]
        assert row["clients"] == row["caught_up"] == 20, row
    assert "reconnect storm" in stdout
