"""The systemd units are ones systemd itself accepts (systemd-analyze verify)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.uvicorn_process import ROOT

UNIT = ROOT / "deploy/systemd/pipeline-backend.service"
WORKER_UNIT = ROOT / "deploy/systemd/pipeline-backend-worker.service"


def _unit_text() -> str:
    return UNIT.read_text()


def test_unit_runs_the_venv_uvicorn_from_opt_pipeline() -> None:
    text = _unit_text()
    assert "WorkingDirectory=/opt/pipeline\n" in text
    assert "EnvironmentFile=/opt/pipeline/backend/.env\n" in text
    assert "ExecStart=/opt/pipeline/.venv/bin/uvicorn backend.app.main:app" in text
    assert "Restart=on-failure\n" in text
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes"):
        assert hardening in text


def test_stop_timeout_covers_the_grace_period() -> None:
    values = dict(
        line.split("=", 1)
        for line in _unit_text().splitlines()
        if line.startswith(("TimeoutStopSec=", "Environment=SHUTDOWN_GRACE_S"))
    )
    grace = int(values["Environment"].split("=")[1])
    assert int(values["TimeoutStopSec"]) > grace + 5


def _verify(unit_text: str, tmp_path: Path) -> list[str]:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is installed by scripts/test (package systemd)"
    # Point the unit at this checkout's venv, so verify can check the executable exists.
    venv = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
    assert (venv / "uvicorn").exists()
    assert (venv / "pipeline-backend").exists()
    unit = tmp_path / "pipeline-backend.service"
    unit.write_text(
        unit_text.replace("/opt/pipeline/.venv/bin/", f"{venv}/")
        .replace("User=pipeline\n", "")
        .replace("Group=pipeline\n", "")
    )
    result = subprocess.run(
        [tool, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    # systemd-analyze exits 0 on unknown keys; what it prints is the verdict.
    return [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "EnvironmentFile" not in line
    ]


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    assert _verify(_unit_text(), tmp_path) == []


def test_systemd_analyze_verify_would_catch_a_typo(tmp_path: Path) -> None:
    broken = _unit_text().replace("NoNewPrivileges=yes", "NoNewPrivilegs=yes")
    assert any("NoNewPrivilegs" in line for line in _verify(broken, tmp_path))


def test_systemd_analyze_verify_accepts_the_worker_unit(tmp_path: Path) -> None:
    assert _verify(WORKER_UNIT.read_text(), tmp_path) == []


def test_worker_unit_runs_the_cli_worker_with_the_services_media_directory() -> None:
    worker, service = WORKER_UNIT.read_text(), _unit_text()
    assert "ExecStart=/opt/pipeline/.venv/bin/pipeline-backend worker\n" in worker
    assert "EnvironmentFile=/opt/pipeline/backend/.env\n" in worker
    for shared in (
        "StateDirectory=pipeline-backend\n",
        "Environment=MEDIA_DIR=/var/lib/pipeline-backend/media\n",
        "Environment=PIPELINE_WORK_DIR=/var/lib/pipeline-backend/work\n",
    ):
        assert shared in worker
        assert shared in service
    assert "KillSignal=SIGTERM\n" in worker
