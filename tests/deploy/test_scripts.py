"""The README's scripts (serve, test, cli) are what a newcomer runs first: keep them lint-clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.mark.parametrize("name", ["serve", "test", "cli", "bootstrap.sh"])
def test_script_is_shellcheck_clean(name: str) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "scripts/test installs shellcheck"
    result = subprocess.run(
        [shellcheck, "-x", f"scripts/{name}"],
        cwd=SCRIPTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_cli_script_runs_the_cli_from_any_directory(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPTS / "cli"), "token", "--sub", "alice", "--secret", "x" * 32],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2  # a JWT: header.payload.signature
