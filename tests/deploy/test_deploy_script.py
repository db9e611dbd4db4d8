"""deploy.sh BACKEND=ecs wires the stacks together in order, with a stand-in `aws` CLI.

The stand-in records every call and answers `describe-stacks` with `<OutputKey>@<stack>`,
so the tests can follow each stack's outputs into the next stack's parameters, and check
every parameter name against the template it is passed to (CloudFormation refuses an
unknown one; a forgotten required one fails the deploy).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
AWS = ROOT / "deploy" / "aws"
OPENAI_KEY = "sk-test-not-a-real-key-0123456789"

FAKE_AWS = r"""
import json, os, re, sys
args = sys.argv[1:]
if args[:1] == ["--region"]:
    args = args[2:]
record = {"args": args}
for i, arg in enumerate(args):
    if arg.startswith("file://"):
        record["file"] = open(arg[len("file://"):]).read()
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(json.dumps(record) + "\n")
command = args[:2]
def option(name):
    return args[args.index(name) + 1]
if command == ["sts", "get-caller-identity"]:
    print("123456789012")
elif command == ["configure", "get"]:
    print("us-east-1")
elif command == ["cloudformation", "describe-stacks"]:
    key = re.search(r"OutputKey=='(\w+)'", option("--query")).group(1)
    stack = option("--stack-name")
    value = {"ListenerPort": "8000", "ServiceName": "service",
             "WorkerServiceName": "worker", "TaskAssignPublicIp": "ENABLED"}.get(key)
    if value is None and key.endswith("SubnetIds"):
        value = f"a-{key}@{stack},b-{key}@{stack}"
    print(value or f"{key}@{stack}")
elif command == ["secretsmanager", "get-secret-value"]:
    print("secret-of-" + option("--secret-id"))
elif command == ["secretsmanager", "describe-secret"]:
    sys.exit(255)
elif command == ["secretsmanager", "create-secret"]:
    print("arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-AbCdEf")
elif command == ["apigateway", "get-account"]:
    print("None")
"""


def _run(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "aws"
    fake.write_text(f"#!{sys.executable}\n{FAKE_AWS}")
    fake.chmod(0o755)
    log = tmp_path / "aws.log"
    log.write_text("")
    (tmp_path / "tmp").mkdir(exist_ok=True)
    environment = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path / "tmp"),
        "FAKE_AWS_LOG": str(log),
        "AWS_REGION": "us-east-1",
        **env,
    }
    result = subprocess.run(
        ["bash", str(AWS / "deploy.sh"), "prod"],
        capture_output=True, text=True, env=environment, timeout=60, check=False,
    )  # fmt: skip
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return result, calls


def _deploys(calls: list[Any]) -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for call in calls:
        args = call["args"]
        if args[:2] != ["cloudformation", "deploy"]:
            continue
        stack = args[args.index("--stack-name") + 1]
        template = Path(args[args.index("--template-file") + 1]).name
        overrides = (
            args[args.index("--parameter-overrides") + 1 :]
            if ("--parameter-overrides" in args)
            else []
        )
        found.append((stack, template, dict(o.split("=", 1) for o in overrides)))
    return found


ECS = {"BACKEND": "ecs", "IMAGE_TAG": "1.2.3", "FRONTEND_URL": "https://app.example.com"}
PUBLIC = {
    **ECS, "ALB_SCHEME": "internet-facing", "DOMAIN": "api.example.com",
    "CERTIFICATE_ARN": "arn:aws:acm:us-east-1:123456789012:certificate/x",
}  # fmt: skip
Run = tuple[subprocess.CompletedProcess[str], list[Any]]


@pytest.fixture(scope="module")
def internal_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("internal"), **ECS)


@pytest.fixture(scope="module")
def public_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _run(tmp_path_factory.mktemp("public"), **PUBLIC)


def test_ecs_deploys_every_stack_in_order(internal_run: Run) -> None:
    result, calls = internal_run
    assert result.returncode == 0, result.stderr
    assert [template for _, template, _ in _deploys(calls)] == [
        "network.yaml", "secrets.yaml", "redis.yaml", "bucket.yaml", "turn.yaml", "alb.yaml",
        "apigateway-account.yaml", "backend-vpc-link.yaml", "api-gateway.yaml",
        "ecs-cluster.yaml", "ecs-services.yaml", "monitoring.yaml",
    ]  # fmt: skip


@pytest.mark.parametrize("variant", ["internal_run", "public_run"])
def test_every_parameter_is_one_the_template_declares(
    variant: str, request: pytest.FixtureRequest
) -> None:
    result, calls = request.getfixturevalue(variant)
    assert result.returncode == 0, result.stderr
    for stack, template_name, parameters in _deploys(calls):
        template, _ = decode(str(AWS / template_name))
        assert template is not None
        declared = template.get("Parameters", {})
        assert set(parameters) <= set(declared), stack
        required = {name for name, p in declared.items() if "Default" not in p}
        assert required <= set(parameters), (stack, required - set(parameters))


def test_outputs_flow_into_the_next_stacks(internal_run: Run) -> None:
    result, calls = internal_run
    assert result.returncode == 0, result.stderr
    stacks = {template: parameters for _, template, parameters in _deploys(calls)}
    alb = "pipeline-backend-alb-prod"
    assert stacks["backend-vpc-link.yaml"]["AlbArn"] == f"LoadBalancerArn@{alb}"
    assert stacks["api-gateway.yaml"]["BackendHost"] == (
        "BackendHost@pipeline-backend-vpc-link-prod"
    )
    # The gateway's secret is the one the service gets, read from Secrets Manager.
    assert stacks["api-gateway.yaml"]["GatewaySecret"] == (
        "secret-of-ApigwSharedSecretArn@pipeline-backend-secrets-prod"
    )
    services = stacks["ecs-services.yaml"]
    assert services["Image"] == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/pipeline-backend:1.2.3"
    )
    assert services["TargetGroupArn"] == f"TargetGroupArn@{alb}"
    assert services["WebSocketApiId"] == "WebSocketApiId@pipeline-backend-apigateway-prod"
    assert (
        services["DeregistrationDelaySeconds"] == stacks["alb.yaml"]["DeregistrationDelaySeconds"]
    )
    assert stacks["turn.yaml"]["TurnSecretArn"] == services["TurnSecretArn"]
    wait = [c["args"] for c in calls if c["args"][:3] == ["ecs", "wait", "services-stable"]]
    assert wait == [[
        "ecs", "wait", "services-stable", "--cluster", "ClusterName@pipeline-backend-cluster-prod",
        "--services", "service", "worker",
    ]]  # fmt: skip


def test_prints_the_frontend_urls(internal_run: Run) -> None:
    result, _ = internal_run
    api = "RestApiUrl@pipeline-backend-apigateway-prod"
    assert f"NEXT_PUBLIC_API_URL={api}\n" in result.stdout
    assert "NEXT_PUBLIC_WS_URL=WebSocketUrl@pipeline-backend-apigateway-prod\n" in result.stdout
    assert f"Interview base URL: {api}/api/interview\n" in result.stdout


def test_public_alb_skips_api_gateway_and_serves_the_domain(public_run: Run) -> None:
    result, calls = public_run
    assert result.returncode == 0, result.stderr
    templates = [template for _, template, _ in _deploys(calls)]
    assert "api-gateway.yaml" not in templates
    assert "backend-vpc-link.yaml" not in templates
    assert "NEXT_PUBLIC_API_URL=https://api.example.com\n" in result.stdout
    assert "NEXT_PUBLIC_WS_URL=wss://api.example.com/ws\n" in result.stdout


def test_openai_key_goes_to_secrets_manager_through_a_file(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, **ECS, OPENAI_API_KEY=OPENAI_KEY)
    assert result.returncode == 0, result.stderr
    assert all(OPENAI_KEY not in " ".join(c["args"]) for c in calls)
    (create,) = [c for c in calls if c["args"][:2] == ["secretsmanager", "create-secret"]]
    assert create["file"] == OPENAI_KEY
    services = dict(_deploys(calls)[-2][2])
    assert services["OpenAiSecretArn"].startswith("arn:aws:secretsmanager:")
    assert not list((tmp_path / "tmp").iterdir())  # the key's file is gone


def test_missing_image_tag_stops_before_any_aws_call(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, BACKEND="ecs", FRONTEND_URL="https://app.example.com")
    assert result.returncode != 0
    assert "IMAGE_TAG" in result.stderr
    assert calls == []
