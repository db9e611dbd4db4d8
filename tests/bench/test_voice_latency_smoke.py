"""The voice benchmark runs end to end on a tiny configuration (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.uvicorn_process import ROOT


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_run_prints_every_target_and_the_baseline_ratio() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "bench.voice_latency", "--modes", "window,fake",
            "--turns", "2", "--barge-ins", "1", "--calls", "1", "--load-turns", "1",
            "--pause-answers", "2",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "== window:" in out, out
    assert "== fake:" in out, out
    for row in ("voice_to_voice_s", "llm_first_token_s", "greeting after connecting"):
        assert re.search(rf"{row}\s+\d+\.\d\s+\d+\.\d", out), out  # p50 and p95
    # the fake's fixed 0.3 s to first token shows up as such: the figures are the
    # service's own metrics
    assert re.search(r"llm_first_token_s\s+30\d\.\d", out), out
    assert re.search(r"barge-in: audio stopped after\s+\d+\.\d", out), out
    assert re.search(r"backchannels: \d+ interruptions from \d+ played", out), out
    assert re.search(r"thinking pauses: \d+ false cut-offs of 2 answers", out), out
    assert re.search(r"ratio \d\.\d\d", out), out
    assert "calls per core" in out
    assert re.search(r"smart-turn v3 decision .*p50 \d+ ms", out), out
