"""The CloudFormation templates under deploy/aws lint clean and say what CONTRACT 2.3 says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
AWS = ROOT / "deploy" / "aws"
TEMPLATES = sorted(AWS.glob("*.yaml"))


def _template(name: str) -> dict[str, Any]:
    template, matches = decode(str(AWS / name))
    assert not matches, matches
    assert template is not None
    return dict(template)


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def test_there_are_templates_for_both_backend_variants() -> None:
    names = {path.name for path in TEMPLATES}
    assert {"api-gateway.yaml", "backend-elastic-ip.yaml", "backend-vpc-link.yaml"} <= names


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_passes(path: Path) -> None:
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1", "us-east-2"]))
    assert [str(m) for m in matches] == []


def test_rest_api_proxies_every_api_path() -> None:
    template = _template("api-gateway.yaml")
    resources = _resources(template, "AWS::ApiGateway::Resource")
    assert {r["PathPart"] for r in resources.values()} == {"api", "{proxy+}"}
    (method,) = _resources(template, "AWS::ApiGateway::Method").values()
    assert method["HttpMethod"] == "ANY"
    integration = method["Integration"]
    assert integration["Type"] == "HTTP_PROXY"
    assert integration["Uri"] == {"Fn::Sub": "http://${BackendHost}:${BackendPort}/api/{proxy}"}
    assert integration["RequestParameters"] == {
        "integration.request.path.proxy": "method.request.path.proxy"
    }


def test_websocket_routes_post_to_ws_with_the_contract_mappings() -> None:
    template = _template("api-gateway.yaml")
    (api,) = _resources(template, "AWS::ApiGatewayV2::Api").values()
    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body.action"
    routes = {r["RouteKey"]: r for r in _resources(template, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    assert set(routes["$connect"]["RequestParameters"]) == {
        f"route.request.querystring.{name}"
        for name in ("session_id", "last_seq", "epoch", "token", "api_key")
    }
    integrations = _resources(template, "AWS::ApiGatewayV2::Integration")
    for name, integration in integrations.items():
        assert integration["IntegrationType"] == "HTTP_PROXY", name
        assert integration["IntegrationMethod"] == "POST", name
        assert integration["IntegrationUri"] == {
            "Fn::Sub": "http://${BackendHost}:${BackendPort}/ws"
        }
        mapped = integration["RequestParameters"]
        assert mapped["integration.request.header.connectionId"] == "context.connectionId"
        assert mapped["integration.request.header.eventType"] == "context.eventType"
        assert mapped["integration.request.header.X-Gateway-Secret"] == {
            "Fn::Sub": "'${GatewaySecret}'"
        }
    connect = integrations["ConnectIntegration"]["RequestParameters"]
    for name in ("session_id", "last_seq", "epoch", "token", "api_key"):
        assert connect[f"integration.request.querystring.{name}"] == (
            f"route.request.querystring.{name}"
        )
    assert connect["integration.request.header.X-Forwarded-For"] == "context.identity.sourceIp"


def test_stages_carry_the_seed_throttle_limits_and_access_logs() -> None:
    template = _template("api-gateway.yaml")
    limits = {
        stage: (values["RateLimit"], values["BurstLimit"])
        for stage, values in template["Mappings"]["StageSettings"].items()
    }
    assert limits == {"dev": (1000, 500), "staging": (2000, 1000), "prod": (5000, 2000)}
    (ws_stage,) = _resources(template, "AWS::ApiGatewayV2::Stage").values()
    (rest_stage,) = _resources(template, "AWS::ApiGateway::Stage").values()
    assert "DestinationArn" in ws_stage["AccessLogSettings"]
    assert "DestinationArn" in rest_stage["AccessLogSetting"]


def test_service_role_may_manage_connections() -> None:
    template = _template("api-gateway.yaml")
    (policy,) = _resources(template, "AWS::IAM::ManagedPolicy").values()
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:ManageConnections"
    assert any("POST/@connections/*" in str(arn) for arn in statement["Resource"])


def test_deploy_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "scripts/test installs shellcheck"
    result = subprocess.run(
        [shellcheck, str(AWS / "deploy.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_deploy_script_refuses_an_unknown_stage() -> None:
    result = subprocess.run(
        ["bash", str(AWS / "deploy.sh"), "qa"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "dev|staging|prod" in result.stdout
