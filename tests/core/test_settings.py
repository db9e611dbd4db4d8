"""Configuration (CONTRACT §4): invalid values stop the process with the variable named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.app.settings import load_settings
from backend.core.settings import SettingsError
from tests.support.uvicorn_process import ROOT


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"REDIS_URL": "http://cache:6379"}, "REDIS_URL"),
        ({"FRONTEND_URL": "*"}, "FRONTEND_URL"),
        ({"ENVIRONMENT": "prod-ish"}, "ENVIRONMENT"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_production_without_auth_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="AUTH_JWT_SECRET or AUTH_JWKS_URL"):
        load_settings()
    monkeypatch.setenv("AUTH_JWT_SECRET", "a-production-secret-of-some-length")
    assert load_settings().is_production


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "PORT=9001\nFRONTEND_URL=https://a.example, https://b.example/\n"
    )
    settings = load_settings()
    assert settings.port == 9001
    assert settings.frontend_url == ["https://a.example", "https://b.example"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "REDIS_"))}
    return subprocess.run(
        args,
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_uvicorn_refuses_to_start_in_production_without_auth() -> None:
    result = _run(
        [sys.executable, "-m", "uvicorn", "backend.app.main:app", "--port", "0"],
        {"ENVIRONMENT": "production"},
    )
    assert result.returncode != 0
    assert "AUTH_JWT_SECRET or AUTH_JWKS_URL" in result.stderr + result.stdout


@pytest.mark.slow
def test_cli_refuses_a_bad_setting_with_its_name() -> None:
    result = _run([sys.executable, "-m", "backend.app.cli", "serve"], {"PORT": "eighty"})
    assert result.returncode == 2
    assert "PORT" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_mints_a_token_the_service_accepts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import jwt

    from backend.app.cli import main

    monkeypatch.setenv("AUTH_JWT_SECRET", "cli-secret-cli-secret-cli-secret!")
    assert main(["token", "--sub", "agent-7", "--role", "agent", "--ttl", "120"]) == 0
    token = capsys.readouterr().out.strip()
    claims = jwt.decode(token, "cli-secret-cli-secret-cli-secret!", algorithms=["HS256"])
    assert claims["sub"] == "agent-7"
    assert claims["role"] == "agent"
    assert 100 < claims["exp"] - claims["iat"] <= 120
