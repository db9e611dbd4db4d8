"""Rate limits on the API Gateway bridge: CONNECTs, and MESSAGE frames counted fleet-wide."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from backend.app.settings import Settings
from backend.core.auth import mint_token
from tests.conftest import JWT_SECRET, RunningApp
from tests.gateway.test_bridge import SECRET, Gateway
from tests.support.moto_apigw import REGION, MotoConnections


@pytest.fixture(params=["memory", "redis"])
def bridge_settings(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    moto_connections: MotoConnections,
    redis_url: str,
    redis_prefix: str,
) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        if request.param == "redis":
            overrides |= {"redis_url": redis_url, "redis_prefix": redis_prefix}
        return make_settings(
            apigw_shared_secret=SECRET,
            apigw_management_endpoint=moto_connections.endpoint,
            aws_region=REGION,
            auth_jwt_secret=JWT_SECRET,
            **overrides,
        )

    return build


async def test_frames_over_the_limit_are_answered_then_the_connection_deleted(
    start_app: Callable[[Settings], Any],
    bridge_settings: Callable[..., Settings],
    moto_connections: MotoConnections,
) -> None:
    settings = bridge_settings(rate_limit_ws_frame="3/minute", rate_limit_ws_frame_strikes=2)
    # Two processes: the frames of one connection count together wherever they land.
    apps: list[RunningApp] = [await start_app(settings)]
    if settings.redis_url:
        apps.append(await start_app(settings))
    gateways = [Gateway(app.client, app.services) for app in apps]
    connected = await gateways[0].connect("f1=", token=mint_token(JWT_SECRET, "alice"))
    assert connected.status_code == 200
    for n in range(5):
        response = await gateways[n % len(gateways)].send(
            "f1=", {"action": "ping", "request_id": n}
        )
        assert response.status_code == 200
    messages = moto_connections.messages("f1=")
    kinds = [(m["type"], m.get("code")) for m in messages]
    assert kinds == [("connected", None)] + [("pong", None)] * 3 + [("error", "rate_limited")] * 2
    # A third refusal within the minute: answered, then deleted (moto forgets it).
    await gateways[-1].send("f1=", {"action": "ping"})
    assert moto_connections.raw("f1=") == b""


async def test_connects_over_the_limit_are_refused_with_429(
    start_app: Callable[[Settings], Any], bridge_settings: Callable[..., Settings]
) -> None:
    app: RunningApp = await start_app(bridge_settings(rate_limit_ws_connect="2/minute"))
    gateway = Gateway(app.client, app.services)
    token = mint_token(JWT_SECRET, "alice")
    assert [(await gateway.connect(f"k{n}=", token=token)).status_code for n in range(3)] == [
        200,
        200,
        429,
    ]
    refused = await gateway.connect("k9=", token=token)
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
