"""The pipeline benchmark runs end to end on small videos (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import TEST_REDIS_URL
from tests.support.uvicorn_process import ROOT


@pytest.mark.slow
@pytest.mark.redis
def test_quick_run_prints_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BENCH_REDIS_URL": TEST_REDIS_URL},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert [row["phase"] for row in rows] == ["embedded", "1 worker", "2 workers"]
    assert rows[0]["status"] == "completed"
    assert set(rows[0]["steps_s"]) == {
        "script_writer", "narrator", "illustrator", "editor", "publisher",
    }  # fmt: skip
    assert rows[0]["rest_samples"] > 0
    for row in rows[1:]:
        assert row["completed"] == row["videos"] == 2
    for label in ("event-loop lag", "REST GET /health", "throughput 2 workers / 1 worker"):
        assert label in result.stdout
