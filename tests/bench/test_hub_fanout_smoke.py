"""The fan-out benchmark runs end to end on a tiny configuration (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import TEST_REDIS_URL
from tests.support.uvicorn_process import ROOT


@pytest.mark.slow
def test_quick_run_prints_its_table_for_every_target() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.hub_fanout", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BENCH_REDIS_URL": TEST_REDIS_URL},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert [row["target"] for row in rows] == [
        "hub-memory",
        "hub-redis",
        "raw-websockets",
        "python-socketio",
    ]
    for row in rows:
        assert row["connections"] == 10
        assert row["delivered"] == row["expected"] > 0, row  # every subscriber got every event
    assert "throughput hub-memory / raw-websockets" in result.stdout
