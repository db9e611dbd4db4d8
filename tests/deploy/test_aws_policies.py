"""Our policy scan over deploy/aws passes, and each rule catches the mistake it is for."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from tests.deploy.aws_policy import RULES, Templates

AWS = Path(__file__).resolve().parents[2] / "deploy" / "aws"


def _templates() -> Templates:
    loaded = {}
    for path in sorted(AWS.glob("*.yaml")):
        template, matches = decode(str(path))
        assert not matches
        assert template is not None
        loaded[path.name] = dict(template)
    return loaded


@pytest.mark.parametrize("rule", sorted(RULES))
def test_templates_pass(rule: str) -> None:
    assert RULES[rule](_templates()) == []


def _resource(templates: Templates, file: str, name: str) -> dict[str, Any]:
    props: dict[str, Any] = templates[file]["Resources"][name]["Properties"]
    return props


def _container(templates: Templates, name: str) -> dict[str, Any]:
    task = _resource(templates, "ecs-services.yaml", "ServiceTaskDefinition")
    (container,) = [c for c in task["ContainerDefinitions"] if c["Name"] == name]
    found: dict[str, Any] = container  # the template's own node: mistakes edit it
    return found


def _public_bucket(t: Templates) -> None:
    _resource(t, "bucket.yaml", "Bucket")["PublicAccessBlockConfiguration"][
        "RestrictPublicBuckets"
    ] = False


def _secret_in_env(t: Templates) -> None:
    _container(t, "service")["Environment"].append(
        {"Name": "OPENAI_API_KEY", "Value": "sk-live-123"}
    )


def _secret_parameter(t: Templates) -> None:
    t["turn.yaml"]["Parameters"]["TurnSecret"] = {"Type": "String"}


def _unencrypted_redis(t: Templates) -> None:
    _resource(t, "redis.yaml", "Redis")["TransitEncryptionEnabled"] = False


def _unencrypted_turn_disk(t: Templates) -> None:
    del _resource(t, "turn.yaml", "Instance")["BlockDeviceMappings"]


def _eternal_logs(t: Templates) -> None:
    del _resource(t, "ecs-services.yaml", "WorkerLogs")["RetentionInDays"]


def _redis_open_to_world(t: Templates) -> None:
    _resource(t, "redis.yaml", "RedisSecurityGroup")["SecurityGroupIngress"].append(
        {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "CidrIp": "0.0.0.0/0"}
    )


def _task_port_open_to_world(t: Templates) -> None:
    _resource(t, "alb.yaml", "TaskSecurityGroup")["SecurityGroupIngress"].append(
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000, "CidrIpv6": "::/0"}
    )


def _any_bucket(t: Templates) -> None:
    role = _resource(t, "ecs-services.yaml", "WorkerTaskRole")
    role["Policies"][0]["PolicyDocument"]["Statement"][0]["Resource"] = "*"


def _wildcard_action(t: Templates) -> None:
    role = _resource(t, "turn.yaml", "Role")
    role["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] = "secretsmanager:*"


def _no_health_check(t: Templates) -> None:
    del _container(t, "service")["HealthCheck"]


MISTAKES: dict[str, tuple[str, Callable[[Templates], None]]] = {
    "public bucket": ("no_public_bucket", _public_bucket),
    "secret in env": ("no_plain_secrets_in_task_definitions", _secret_in_env),
    "secret parameter": ("no_secret_values_in_parameters", _secret_parameter),
    "plain-text redis": ("encryption_on", _unencrypted_redis),
    "unencrypted disk": ("encryption_on", _unencrypted_turn_disk),
    "eternal logs": ("logs_have_retention", _eternal_logs),
    "redis to world": ("world_ingress_only_where_allowed", _redis_open_to_world),
    "task to world": ("world_ingress_only_where_allowed", _task_port_open_to_world),
    "any bucket": ("least_privilege", _any_bucket),
    "wildcard action": ("least_privilege", _wildcard_action),
    "no health check": ("task_definitions_are_operable", _no_health_check),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_rule_catches(mistake: str) -> None:
    rule, introduce = MISTAKES[mistake]
    templates = copy.deepcopy(_templates())
    introduce(templates)
    assert RULES[rule](templates) != []
