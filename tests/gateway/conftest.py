from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moto_apigw import REGION, MotoConnections


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials: boto3 signs requests; moto accepts any signature."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def moto_connections(aws_credentials: None) -> Iterator[MotoConnections]:
    server = MotoConnections()
    server.start()
    try:
        yield server
    finally:
        server.reset()
        server.stop()
