"""Policy rules for the CloudFormation templates under deploy/aws, our own cfn-guard.

Each rule takes every template (file name -> decoded template) and returns violations
as "<file> <resource>: <what>". An empty list passes. The rules read the templates as
written, so they also cover resources moto cannot create.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Templates = dict[str, dict[str, Any]]
Rule = Callable[[Templates], list[str]]

WORLD = {"0.0.0.0/0", "::/0"}
# Where the world may connect: (file, resource, protocol, port or parameter name).
WORLD_OPEN = {
    ("alb.yaml", "AlbSecurityGroup", "tcp", 443),
    ("alb.yaml", "AlbSecurityGroup", "tcp", 80),
    ("turn.yaml", "SecurityGroup", "udp", 3478),
    ("turn.yaml", "SecurityGroup", "tcp", 3478),
    ("turn.yaml", "SecurityGroup", "tcp", 5349),
    ("turn.yaml", "SecurityGroup", "tcp", 443),
    ("turn.yaml", "SecurityGroup", "udp", "MinPort"),
    # Variant 1 of deploy-api-gateway.md: API Gateway has no fixed source addresses.
    ("backend-elastic-ip.yaml", "BackendIngress", "tcp", "BackendPort"),
}
SECRET_NAMES = (
    "AUTH_JWT_SECRET", "APIGW_SHARED_SECRET", "TURN_SECRET", "OPENAI_API_KEY",
    "WEBHOOK_SECRET", "REDIS_URL",
)  # fmt: skip
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "API_KEY", "PRIVATE_KEY")


def resources(templates: Templates, kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for file, template in templates.items():
        for name, resource in template.get("Resources", {}).items():
            if resource["Type"] == kind:
                yield file, name, resource.get("Properties", {})


def no_public_bucket(templates: Templates) -> list[str]:
    found = []
    for file, name, props in resources(templates, "AWS::S3::Bucket"):
        block = props.get("PublicAccessBlockConfiguration", {})
        for key in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                    "RestrictPublicBuckets"):  # fmt: skip
            if block.get(key) is not True:
                found.append(f"{file} {name}: {key} is not true")
        if str(props.get("AccessControl", "Private")).startswith("Public"):
            found.append(f"{file} {name}: a public canned ACL")
        if props.get("WebsiteConfiguration"):
            found.append(f"{file} {name}: website hosting")
    for file, name, props in resources(templates, "AWS::S3::BucketPolicy"):
        for statement in props["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow" and statement.get("Principal") in ("*", {"AWS": "*"}):
                found.append(f"{file} {name}: allows everyone")
    return found


def _containers(templates: Templates) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for file, name, props in resources(templates, "AWS::ECS::TaskDefinition"):
        for container in props.get("ContainerDefinitions", []):
            yield file, f"{name}/{container.get('Name')}", container


def _env_entries(entries: Any) -> Iterator[dict[str, Any]]:
    """Environment entries, including both branches of an Fn::If."""
    for entry in entries or []:
        if isinstance(entry, dict) and set(entry) == {"Fn::If"}:
            yield from _env_entries(entry["Fn::If"][1:])
        elif isinstance(entry, dict) and "Name" in entry:
            yield entry


def no_plain_secrets_in_task_definitions(templates: Templates) -> list[str]:
    found = []
    for file, name, container in _containers(templates):
        for entry in _env_entries(container.get("Environment")):
            variable = str(entry["Name"])
            if variable in SECRET_NAMES or any(w in variable for w in SECRET_WORDS):
                found.append(f"{file} {name}: {variable} in plain Environment")
        for entry in _env_entries(container.get("Secrets")):
            if not isinstance(entry.get("ValueFrom"), dict):
                found.append(f"{file} {name}: {entry['Name']} is not a reference to a secret")
    return found


def no_secret_values_in_parameters(templates: Templates) -> list[str]:
    """A parameter that carries a secret value itself must be NoEcho (ARNs are fine)."""
    found = []
    for file, template in templates.items():
        for name, parameter in template.get("Parameters", {}).items():
            secretish = any(w in name.upper() for w in ("SECRET", "PASSWORD", "TOKEN", "KEY"))
            if secretish and not name.endswith("Arn") and not parameter.get("NoEcho"):
                found.append(f"{file} {name}: secret parameter without NoEcho")
    return found


def encryption_on(templates: Templates) -> list[str]:
    found = []
    for file, name, props in resources(templates, "AWS::S3::Bucket"):
        if not props.get("BucketEncryption"):
            found.append(f"{file} {name}: no default encryption")
    for file, name, props in resources(templates, "AWS::ElastiCache::ReplicationGroup"):
        for key in ("AtRestEncryptionEnabled", "TransitEncryptionEnabled"):
            if props.get(key) is not True:
                found.append(f"{file} {name}: {key} is not true")
        if "AuthToken" not in props:
            found.append(f"{file} {name}: no AUTH token")
    for file, name, props in resources(templates, "AWS::EC2::Instance"):
        found += _unencrypted_volumes(file, name, props)
    for file, name, props in resources(templates, "AWS::EC2::LaunchTemplate"):
        found += _unencrypted_volumes(file, name, props.get("LaunchTemplateData", {}))
    for file, name, props in resources(templates, "AWS::SNS::Topic"):
        if "KmsMasterKeyId" not in props:
            found.append(f"{file} {name}: topic not encrypted")
    return found


def _unencrypted_volumes(file: str, name: str, props: dict[str, Any]) -> list[str]:
    mappings = props.get("BlockDeviceMappings", [])
    if not mappings:
        return [f"{file} {name}: root volume left to the AMI's (unencrypted) default"]
    return [
        f"{file} {name}: {m.get('DeviceName')} not encrypted"
        for m in mappings
        if m.get("Ebs", {}).get("Encrypted") is not True
    ]


def logs_have_retention(templates: Templates) -> list[str]:
    return [
        f"{file} {name}: keeps logs forever"
        for file, name, props in resources(templates, "AWS::Logs::LogGroup")
        if "RetentionInDays" not in props
    ]


def _ingress_rules(templates: Templates) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for file, name, props in resources(templates, "AWS::EC2::SecurityGroup"):
        rules = props.get("SecurityGroupIngress", [])
        if isinstance(rules, dict) and "Fn::If" in rules:  # both branches
            rules = [r for branch in rules["Fn::If"][1:] for r in branch]
        for rule in rules:
            yield file, name, rule
    for file, name, props in resources(templates, "AWS::EC2::SecurityGroupIngress"):
        yield file, name, props


def _port(value: Any) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    return value


def world_ingress_only_where_allowed(templates: Templates) -> list[str]:
    found = []
    for file, name, rule in _ingress_rules(templates):
        if any(isinstance(rule.get(k), str) and rule[k] in WORLD for k in ("CidrIp", "CidrIpv6")):
            key = (file, name, rule["IpProtocol"], _port(rule["FromPort"]))
            if key not in WORLD_OPEN:
                found.append(f"{file} {name}: {rule['IpProtocol']}/{key[3]} open to the world")
    return found


def _statements(templates: Templates) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for kind in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for file, name, props in resources(templates, kind):
            documents = [props["PolicyDocument"]] if "PolicyDocument" in props else []
            for policy in props.get("Policies", []):
                if isinstance(policy, dict) and "Fn::If" in policy:
                    policy = policy["Fn::If"][1]
                documents.append(policy["PolicyDocument"])
            for document in documents:
                for statement in document["Statement"]:
                    yield file, name, statement


def least_privilege(templates: Templates) -> list[str]:
    found = []
    for file, name, statement in _statements(templates):
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"]
        actions = actions if isinstance(actions, list) else [actions]
        resources_ = statement["Resource"]
        resources_ = resources_ if isinstance(resources_, list) else [resources_]
        if any(a == "*" or str(a).endswith(":*") for a in actions):
            found.append(f"{file} {name}: wildcard action {actions}")
        if "*" in resources_:
            found.append(f"{file} {name}: any resource for {actions}")
    return found


def task_definitions_are_operable(templates: Templates) -> list[str]:
    found = []
    for file, name, container in _containers(templates):
        if "LogConfiguration" not in container:
            found.append(f"{file} {name}: no log configuration")
        if container.get("Essential", True):
            if "HealthCheck" not in container:
                found.append(f"{file} {name}: essential container without a health check")
            if "StopTimeout" not in container:
                found.append(f"{file} {name}: no StopTimeout (ECS's 30 s default)")
    return found


RULES: dict[str, Rule] = {
    "no_public_bucket": no_public_bucket,
    "no_plain_secrets_in_task_definitions": no_plain_secrets_in_task_definitions,
    "no_secret_values_in_parameters": no_secret_values_in_parameters,
    "encryption_on": encryption_on,
    "logs_have_retention": logs_have_retention,
    "world_ingress_only_where_allowed": world_ingress_only_where_allowed,
    "least_privilege": least_privilege,
    "task_definitions_are_operable": task_definitions_are_operable,
}
