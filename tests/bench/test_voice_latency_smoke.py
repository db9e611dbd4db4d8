"""The voice benchmark runs end to end on a tiny configuration (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.uvicorn_process import ROOT


@pytest.mark.slow
def test_quick_fake_run_prints_every_stage_and_the_overhead() -> None:
    result = subprocess.run(
        [
            sys.executable, "-m", "bench.voice_latency", "--modes", "fake",
            "--turns", "2", "--calls", "1", "--load-turns", "1",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "== fake: 2 turns on one call" in out, out
    for row in ("stt_s", "llm_first_token_s", "tts_first_byte_s", "voice_to_voice_s"):
        assert re.search(rf"{row}\s+\d+\.\d\s+\d+\.\d", out), out  # p50 and p95
    # the fake's fixed 0.3 s to first token shows up as such: the figures are the
    # service's own metrics
    assert re.search(r"llm_first_token_s\s+30\d\.\d", out), out
    assert "overhead (measured)" in out
    assert "calls per core" in out
