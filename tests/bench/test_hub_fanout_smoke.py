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


@pytest.mark.slow
def test_quick_repeat_summarises_every_round_of_every_target() -> None:
    out, stdout = _bench("--repeat", "2", "--targets", "hub-memory,hub-redis,python-socketio")
    names = ["hub-memory", "hub-redis", "python-socketio"]
    # Round 2 runs the same targets in an order rotated by one: the last one first.
    assert [(row["round"], row["target"]) for row in out["rows"]] == [
        *((1, name) for name in names),
        *((2, name) for name in ["python-socketio", "hub-memory", "hub-redis"]),
    ]
    for row in out["rows"]:
        assert row["delivered"] == row["expected"] > 0, row
    summary = out["summary"]
    assert summary["rounds"] == 2
    assert list(summary["targets"]) == names
    for name, figures in summary["targets"].items():
        assert figures["rounds"] == [1, 2], name
        assert len(figures["p99_ms"]) == 2, name
        assert figures["p99_ms_min"] <= figures["p99_ms_median"] <= figures["p99_ms_max"], name
        assert figures["lost"] == 0, name
    assert [(r["base"], r["limit"], r["rounds_compared"]) for r in summary["ratios"]] == [
        ("hub-memory", 1.5, 2),
        ("python-socketio", 1.0, 2),
    ]
    assert "over 2 rounds" in stdout
    assert "p99 hub-redis / hub-memory (target <= 1.5x)" in stdout
    assert "p99 hub-redis / python-socketio (target <= 1x)" in stdout
    assert stdout.count("== round ") == 2
