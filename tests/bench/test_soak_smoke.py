"""The soak benchmark runs end to end for a few seconds (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.uvicorn_process import ROOT


@pytest.mark.slow
def test_a_short_soak_prints_its_figures_and_leaves_nothing_open() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--minutes", "0.2", "--sample-s", "4", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    counts = report["counts"]
    assert counts["connects"] > 0
    assert counts["published"] > 0
    assert counts["interviews"] > 0
    assert counts["resumes"] > 0
    assert counts["resume_gaps"] == 0
    assert counts["errors"] == 0, counts["error_kinds"]
    assert report["samples"]
    assert report["connections_left"] == 0  # every socket the churn opened was closed
    assert "RSS growth:" in result.stdout
    assert "tasks: before" in result.stdout
