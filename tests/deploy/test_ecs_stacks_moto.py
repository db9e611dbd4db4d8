"""The ECS deployment's stacks create, in deploy.sh's order, against a moto server.

Each template goes in unchanged except for the resource types moto's CloudFormation does
not implement: tests.support.cfn_subset removes those and stands a placeholder ARN in
for references to them, and test_moto_leaves_out_exactly_the_documented_types pins the
list (docs/deploy-ecs.md repeats it). Everything else is created, then read back through
the services' own APIs (ECS, ELBv2, EC2, S3, IAM, SSM) and checked for what matters in
production: secrets injected from Secrets Manager, the drain timings, the readiness
health check, the bucket's guards, the TURN ports, least-privilege roles.
"""

from __future__ import annotations

import ast
import base64
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from backend.app.settings import Settings
from tests.support.cfn_subset import PLACEHOLDER, supported_subset
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AWS = ROOT / "deploy" / "aws"
STAGE = "prod"
FRONTEND = "https://app.example.com"

# What moto 5 cannot create, and so what this test cannot prove by deployment (cfn-lint
# and test_aws_policies.py still check these resources' properties).
UNSUPPORTED = {
    "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::VpcLink",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGatewayV2::Integration",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Stage",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::EC2::EIPAssociation",
    "AWS::ECS::CapacityProvider",
    "AWS::ECS::ClusterCapacityProviderAssociations",
    "AWS::ElastiCache::ParameterGroup",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::SubnetGroup",
    "AWS::Logs::MetricFilter",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SecretsManager::Secret",
}

# Resources of a type moto implements that it still cannot create as written.
MOTO_CANNOT = {
    # moto's CloudFormation creates every ElasticLoadBalancingV2::LoadBalancer as an
    # application load balancer (it ignores Type: network), then refuses the NLB's TCP
    # listener; the VPC link's NLB and its listener are therefore left out.
    "backend-vpc-link.yaml": ("Nlb", "NlbListener"),
}


@dataclass
class Deployment:
    moto: MotoServer
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    created: dict[str, dict[str, str]] = field(default_factory=dict)  # stack -> id -> type
    dropped: dict[str, dict[str, str]] = field(default_factory=dict)
    declared_outputs: dict[str, set[str]] = field(default_factory=dict)

    def deploy(self, stack: str, template_name: str, **parameters: str) -> dict[str, str]:
        template, matches = decode(str(AWS / template_name))
        assert not matches
        assert template is not None
        subset, dropped = supported_subset(dict(template), MOTO_CANNOT.get(template_name, ()))
        cfn = self.moto.client("cloudformation")
        cfn.create_stack(
            StackName=stack,
            TemplateBody=json.dumps(subset),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        cfn.get_waiter("stack_create_complete").wait(
            StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        assert described["StackStatus"] == "CREATE_COMPLETE", described
        resources = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
        self.created[stack] = {
            r["LogicalResourceId"]: r["ResourceType"] for r in resources if r["LogicalResourceId"]
        }
        self.dropped[stack] = dropped
        self.outputs[stack] = {
            o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])
        }
        self.declared_outputs[stack] = set(template.get("Outputs", {}))
        return self.outputs[stack]


def _turn_config() -> str:
    conf = (ROOT / "docker/coturn/turnserver.conf").read_bytes()
    return base64.b64encode(gzip.compress(conf, 9)).decode()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    log = (tmp_path_factory.mktemp("moto") / "server.log").open("wb")
    moto = MotoServer(log)
    moto.start()
    try:
        yield _deploy_everything(Deployment(moto))
    finally:
        moto.stop()
        log.close()


def _deploy_everything(d: Deployment) -> Deployment:
    """deploy.sh's order for BACKEND=ecs with the internal ALB behind API Gateway."""
    net = d.deploy("network", "network.yaml", CreateNatGateway="true")
    private = net["PrivateSubnetIds"]
    secrets = d.deploy("secrets", "secrets.yaml", Stage=STAGE)
    redis = d.deploy(
        "redis", "redis.yaml", Stage=STAGE, VpcId=net["VpcId"], SubnetIds=private, NodeCount="2"
    )
    bucket = d.deploy("bucket", "bucket.yaml", Stage=STAGE, FrontendOrigins=FRONTEND)
    turn = d.deploy(
        "turn",
        "turn.yaml",
        Stage=STAGE,
        VpcId=net["VpcId"],
        SubnetId=net["PublicSubnetIds"].split(",")[0],
        TurnSecretArn=secrets["TurnSecretArn"],
        TurnConfig=_turn_config(),
        Realm="turn.example.com",
    )
    alb = d.deploy(
        "alb", "alb.yaml", Stage=STAGE, VpcId=net["VpcId"], VpcCidr=net["VpcCidr"],
        SubnetIds=private,
    )  # fmt: skip
    link = d.deploy(
        "vpc-link", "backend-vpc-link.yaml", VpcId=net["VpcId"], SubnetIds=private,
        AlbArn=alb["LoadBalancerArn"], AlbListenerPort=alb["ListenerPort"],
    )  # fmt: skip
    api = d.deploy(
        "api", "api-gateway.yaml", Stage=STAGE, BackendHost=link["BackendHost"],
        VpcLinkId=link["VpcLinkId"], GatewaySecret="x" * 48,
    )  # fmt: skip
    cluster = d.deploy("cluster", "ecs-cluster.yaml", Stage=STAGE)
    services = d.deploy(
        "services",
        "ecs-services.yaml",
        Stage=STAGE,
        ClusterName=cluster["ClusterName"],
        CapacityProvider=cluster["CapacityProvider"],
        Image="123456789012.dkr.ecr.us-east-1.amazonaws.com/pipeline-backend:1.0.0",
        SubnetIds=net["TaskSubnetIds"],
        AssignPublicIp=net["TaskAssignPublicIp"],
        VpcCidr=net["VpcCidr"],
        TaskSecurityGroupId=alb["TaskSecurityGroupId"],
        RedisClientSecurityGroupId=redis["ClientSecurityGroupId"],
        TargetGroupArn=alb["TargetGroupArn"],
        TargetGroupFullName=alb["TargetGroupFullName"],
        LoadBalancerFullName=alb["LoadBalancerFullName"],
        RedisUrlSecretArn=redis["RedisUrlSecretArn"],
        AuthJwtSecretArn=secrets["AuthJwtSecretArn"],
        ApigwSharedSecretArn=secrets["ApigwSharedSecretArn"],
        TurnSecretArn=secrets["TurnSecretArn"],
        WebhookSecretArn=secrets["WebhookSecretArn"],
        InternalSecretArn=secrets["InternalSecretArn"],
        OpenAiSecretArn="arn:aws:secretsmanager:us-east-1:123456789012:secret:openai-AbCdEf",
        BucketName=bucket["BucketName"],
        TurnServer=turn["PublicIp"],
        FrontendUrl=FRONTEND,
        WebSocketApiId=api["WebSocketApiId"],
        ApiStage=STAGE,
    )
    d.deploy(
        "monitoring",
        "monitoring.yaml",
        Stage=STAGE,
        ClusterName=cluster["ClusterName"],
        ServiceName=services["ServiceName"],
        WorkerServiceName=services["WorkerServiceName"],
        LoadBalancerFullName=alb["LoadBalancerFullName"],
        TargetGroupFullName=alb["TargetGroupFullName"],
        RedisReplicationGroupId=redis["ReplicationGroupId"],
        AlarmEmail="ops@example.com",
    )
    _deploy_public_variant(d, net, secrets, redis, bucket, turn)
    return d


def _deploy_public_variant(
    d: Deployment, net: dict[str, str], secrets: dict[str, str], redis: dict[str, str],
    bucket: dict[str, str], turn: dict[str, str],
) -> None:  # fmt: skip
    """The other ALB shape: internet-facing HTTPS, no API Gateway, no OpenAI key."""
    # The operator's certificate, as docs/deploy-ecs.md has them request it first.
    certificate = d.moto.client("acm").request_certificate(DomainName="api.example.com")
    alb = d.deploy(
        "public-alb", "alb.yaml", Stage="dev", VpcId=net["VpcId"], VpcCidr=net["VpcCidr"],
        SubnetIds=net["PublicSubnetIds"], Scheme="internet-facing",
        CertificateArn=certificate["CertificateArn"],
    )  # fmt: skip
    cluster = d.deploy("public-cluster", "ecs-cluster.yaml", Stage="dev")
    d.deploy(
        "public-services",
        "ecs-services.yaml",
        Stage="dev",
        ClusterName=cluster["ClusterName"],
        Image="123456789012.dkr.ecr.us-east-1.amazonaws.com/pipeline-backend:1.0.0",
        SubnetIds=net["TaskSubnetIds"],
        VpcCidr=net["VpcCidr"],
        TaskSecurityGroupId=alb["TaskSecurityGroupId"],
        RedisClientSecurityGroupId=redis["ClientSecurityGroupId"],
        TargetGroupArn=alb["TargetGroupArn"],
        TargetGroupFullName=alb["TargetGroupFullName"],
        LoadBalancerFullName=alb["LoadBalancerFullName"],
        RedisUrlSecretArn=redis["RedisUrlSecretArn"],
        AuthJwtSecretArn=secrets["AuthJwtSecretArn"],
        ApigwSharedSecretArn=secrets["ApigwSharedSecretArn"],
        TurnSecretArn=secrets["TurnSecretArn"],
        WebhookSecretArn=secrets["WebhookSecretArn"],
        InternalSecretArn=secrets["InternalSecretArn"],
        BucketName=bucket["BucketName"],
        TurnServer=turn["PublicIp"],
        FrontendUrl=FRONTEND,
    )


def test_every_stack_creates_every_supported_resource(deployment: Deployment) -> None:
    assert list(deployment.created) == [
        "network", "secrets", "redis", "bucket", "turn", "alb", "vpc-link", "api",
        "cluster", "services", "monitoring", "public-alb", "public-cluster", "public-services",
    ]  # fmt: skip
    for stack, created in deployment.created.items():
        template, _ = decode(str(AWS / _template_of(stack)))
        assert template is not None
        conditional = {name for name, r in template["Resources"].items() if "Condition" in r}
        expected = set(template["Resources"]) - set(deployment.dropped[stack])
        # Resources whose condition is false (EC2 capacity, a public listener) are absent
        # on AWS too; every other supported resource must exist.
        assert expected - conditional <= set(created), stack
        assert set(created) <= expected, stack


def test_every_output_is_produced(deployment: Deployment) -> None:
    for stack, declared in deployment.declared_outputs.items():
        assert set(deployment.outputs[stack]) == declared, stack


def test_moto_leaves_out_exactly_the_documented_types(deployment: Deployment) -> None:
    left_out = {
        kind
        for stack, dropped in deployment.dropped.items()
        for name, kind in dropped.items()
        if name not in MOTO_CANNOT.get(_template_of(stack), ())
    }
    assert left_out == UNSUPPORTED
    doc = (ROOT / "docs/deploy-ecs.md").read_text()
    for kind in UNSUPPORTED:
        assert f"`{kind}`" in doc, f"docs/deploy-ecs.md should list {kind}"


def _template_of(stack: str) -> str:
    return {
        "network": "network.yaml", "secrets": "secrets.yaml", "redis": "redis.yaml",
        "bucket": "bucket.yaml", "turn": "turn.yaml", "alb": "alb.yaml",
        "vpc-link": "backend-vpc-link.yaml", "api": "api-gateway.yaml",
        "cluster": "ecs-cluster.yaml", "services": "ecs-services.yaml",
        "monitoring": "monitoring.yaml", "public-alb": "alb.yaml",
        "public-cluster": "ecs-cluster.yaml", "public-services": "ecs-services.yaml",
    }[stack]  # fmt: skip


def _task_definition(d: Deployment, key: str) -> dict[str, Any]:
    arn = d.outputs["services"][key]
    response = d.moto.client("ecs").describe_task_definition(taskDefinition=arn)
    return dict(response["taskDefinition"])


SERVICE_SECRETS = {
    "REDIS_URL", "AUTH_JWT_SECRET", "TURN_SECRET", "WEBHOOK_SECRET", "APIGW_SHARED_SECRET",
    "OPENAI_API_KEY", "INTERNAL_SECRET",
}  # fmt: skip


def _container(task: dict[str, Any], name: str) -> dict[str, Any]:
    (container,) = [c for c in task["containerDefinitions"] if c["name"] == name]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def test_service_secrets_come_from_secrets_manager_only(deployment: Deployment) -> None:
    task = _task_definition(deployment, "ServiceTaskDefinitionArn")
    service = _container(task, "service")
    secrets = {s["name"]: s["valueFrom"] for s in service["secrets"]}
    assert set(secrets) == SERVICE_SECRETS
    generated = deployment.outputs["secrets"]
    assert secrets["AUTH_JWT_SECRET"] == generated["AuthJwtSecretArn"]
    assert secrets["APIGW_SHARED_SECRET"] == generated["ApigwSharedSecretArn"]
    assert secrets["TURN_SECRET"] == generated["TurnSecretArn"]
    assert secrets["WEBHOOK_SECRET"] == generated["WebhookSecretArn"]
    assert secrets["INTERNAL_SECRET"] == generated["InternalSecretArn"]
    assert secrets["REDIS_URL"] == deployment.outputs["redis"]["RedisUrlSecretArn"]
    for container in task["containerDefinitions"]:
        assert not SERVICE_SECRETS & set(_env(container)), container["name"]


def _settings_of(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """What ECS hands the container (environment + resolved secrets), read by the
    service's own settings, as the process does at start."""
    for name, value in _env(container).items():
        monkeypatch.setenv(name, value)
    for secret in container["secrets"]:
        value = (
            "rediss://:token@redis.internal:6379/0" if secret["name"] == "REDIS_URL" else ("s" * 48)
        )
        monkeypatch.setenv(secret["name"], value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_task_definitions_configure_a_service_that_starts(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _container(_task_definition(deployment, "ServiceTaskDefinitionArn"), "service")
    settings = _settings_of(service, monkeypatch)
    assert settings.is_production
    assert settings.auth_configured
    assert settings.interview_relay_only
    assert settings.internal_secret is not None  # any task forwards to a call's owner
    assert settings.interview_drain_s > 0
    assert settings.turn_server == deployment.outputs["turn"]["PublicIp"]
    assert settings.s3_bucket == deployment.outputs["bucket"]["BucketName"]
    assert settings.frontend_url == [FRONTEND]
    assert settings.apigw_management_endpoint is not None
    assert settings.apigw_management_endpoint.endswith(f"/{STAGE}")


def test_stop_timeout_covers_the_drain_and_calls_fit_the_deregistration_delay(
    deployment: Deployment,
) -> None:
    service = _container(_task_definition(deployment, "ServiceTaskDefinitionArn"), "service")
    worker = _container(_task_definition(deployment, "WorkerTaskDefinitionArn"), "worker")
    env = _env(service)
    grace = int(env["SHUTDOWN_GRACE_S"])
    # SIGTERM: the interview drain, then uvicorn's grace, then a margin before SIGKILL
    assert service["stopTimeout"] >= float(env["INTERVIEW_DRAIN_S"]) + grace + 10
    assert worker["stopTimeout"] >= int(_env(worker)["SHUTDOWN_GRACE_S"]) + 10
    assert service["stopTimeout"] <= 120  # Fargate's ceiling
    # A call never outlives the drain: the ALB keeps a leaving task for this long.
    alb = _stack_parameters(deployment, "alb")
    assert float(env["INTERVIEW_MAX_DURATION_S"]) <= int(alb["DeregistrationDelaySeconds"])


def test_containers_have_health_checks_and_logs(deployment: Deployment) -> None:
    logs = deployment.moto.client("logs")
    groups = {
        g["logGroupName"]: g
        for g in logs.describe_log_groups(logGroupNamePrefix="/pipeline-backend/")["logGroups"]
    }
    for key, name in (
        ("ServiceTaskDefinitionArn", "service"),
        ("WorkerTaskDefinitionArn", "worker"),
    ):
        container = _container(_task_definition(deployment, key), name)
        assert container["essential"]
        assert container["healthCheck"]["command"][0] == "CMD"
        options = container["logConfiguration"]["options"]
        assert container["logConfiguration"]["logDriver"] == "awslogs"
        assert options["awslogs-group"] in groups
        assert groups[options["awslogs-group"]]["retentionInDays"] > 0
    service = _container(_task_definition(deployment, "ServiceTaskDefinitionArn"), "service")
    assert "http://127.0.0.1:8000/health" in " ".join(service["healthCheck"]["command"])


def test_worker_runs_the_worker_command_with_only_its_secrets(deployment: Deployment) -> None:
    worker = _container(_task_definition(deployment, "WorkerTaskDefinitionArn"), "worker")
    assert worker["command"] == ["pipeline-backend", "worker"]
    assert {s["name"] for s in worker["secrets"]} == {
        "REDIS_URL", "AUTH_JWT_SECRET", "OPENAI_API_KEY",
    }  # fmt: skip
    assert "portMappings" not in worker or worker["portMappings"] == []


def test_metrics_sidecar_scrapes_the_service(deployment: Deployment) -> None:
    sidecar = _container(_task_definition(deployment, "ServiceTaskDefinitionArn"), "metrics")
    assert not sidecar["essential"]  # the service never stops because its scraper did
    env = _env(sidecar)
    assert '"127.0.0.1:8000"' in env["PROMETHEUS_CONFIG_CONTENT"]
    agent = json.loads(env["CW_CONFIG_CONTENT"])
    prometheus = agent["logs"]["metrics_collected"]["prometheus"]
    assert prometheus["prometheus_config_path"] == "env:PROMETHEUS_CONFIG_CONTENT"
    emf = prometheus["emf_processor"]
    assert emf["metric_namespace"] == "PipelineBackend"
    selected = " ".join(s for d in emf["metric_declaration"] for s in d["metric_selectors"])
    for metric in (
        "hub_listener_reconnects_total",
        "interview_calls_finished_total",
        "hub_connections",
    ):
        assert f"^{metric}$" in selected


def test_services_run_their_task_definitions(deployment: Deployment) -> None:
    ecs = deployment.moto.client("ecs")
    described = ecs.describe_services(
        cluster=deployment.outputs["cluster"]["ClusterName"], services=["service", "worker"]
    )["services"]
    by_name = {s["serviceName"]: s for s in described}
    outputs = deployment.outputs["services"]
    assert by_name["service"]["taskDefinition"] == outputs["ServiceTaskDefinitionArn"]
    assert by_name["worker"]["taskDefinition"] == outputs["WorkerTaskDefinitionArn"]
    assert by_name["service"]["desiredCount"] == 2
    assert by_name["worker"]["desiredCount"] == 1


def test_target_group_checks_readiness(deployment: Deployment) -> None:
    elb = deployment.moto.client("elbv2")
    (group,) = elb.describe_target_groups(
        TargetGroupArns=[deployment.outputs["alb"]["TargetGroupArn"]]
    )["TargetGroups"]
    assert group["HealthCheckPath"] == "/health/ready"
    assert group["Matcher"] == {"HttpCode": "200"}
    assert (group["TargetType"], group["Protocol"], group["Port"]) == ("ip", "HTTP", 8000)


def test_metrics_are_not_served_through_the_load_balancer(deployment: Deployment) -> None:
    elb = deployment.moto.client("elbv2")
    (listener,) = elb.describe_listeners(
        LoadBalancerArn=deployment.outputs["alb"]["LoadBalancerArn"]
    )["Listeners"]
    assert listener["Port"] == 8000
    rules = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    (metrics,) = [r for r in rules if not r["IsDefault"]]
    assert metrics["Conditions"][0]["PathPatternConfig"]["Values"] == ["/metrics", "/metrics/*"]
    assert metrics["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "404"


def _ingress(deployment: Deployment, group_id: str) -> list[dict[str, Any]]:
    ec2 = deployment.moto.client("ec2")
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return list(group["IpPermissions"])


def test_security_groups_admit_only_their_callers(deployment: Deployment) -> None:
    alb = deployment.outputs["alb"]
    (task_rule,) = _ingress(deployment, alb["TaskSecurityGroupId"])
    assert task_rule["FromPort"] == task_rule["ToPort"] == 8000
    assert task_rule["IpRanges"] == []
    # the ALB's group, and the tasks' own: interview signaling forwarded between tasks
    sources = {pair["GroupId"] for pair in task_rule["UserIdGroupPairs"]}
    assert len(sources) == 2
    assert alb["TaskSecurityGroupId"] in sources
    redis_client = deployment.outputs["redis"]["ClientSecurityGroupId"]
    assert _ingress(deployment, redis_client) == []


def test_turn_security_group_opens_the_turn_ports(deployment: Deployment) -> None:
    rules = _ingress(deployment, deployment.outputs["turn"]["SecurityGroupId"])
    opened = {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules}
    assert opened == {
        ("udp", 3478, 3478), ("tcp", 3478, 3478), ("tcp", 5349, 5349), ("tcp", 443, 443),
        ("udp", 49160, 49200),
    }  # fmt: skip


def test_turn_instance_runs_the_shipped_turnserver_conf(deployment: Deployment) -> None:
    ssm = deployment.moto.client("ssm")
    value = ssm.get_parameter(Name=f"/pipeline-backend/{STAGE}/turnserver.conf.gz.b64")
    shipped = (ROOT / "docker/coturn/turnserver.conf").read_bytes()
    assert gzip.decompress(base64.b64decode(value["Parameter"]["Value"])) == shipped
    ec2 = deployment.moto.client("ec2")
    attribute = ec2.describe_instance_attribute(
        InstanceId=deployment.outputs["turn"]["InstanceId"], Attribute="userData"
    )
    user_data = base64.b64decode(attribute["UserData"]["Value"]).decode()
    assert f"external-ip={deployment.outputs['turn']['PublicIp']}/$private" in user_data
    assert "coturn/coturn:4.6.2-r8 -c /etc/coturn/turnserver.conf" in user_data
    assert "static-auth-secret=$secret" in user_data  # read at start, never in the template


def _role_policies(deployment: Deployment, role_arn_or_name: str) -> list[dict[str, Any]]:
    iam = deployment.moto.client("iam")
    name = role_arn_or_name.rsplit("/", 1)[-1]
    documents = []
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        documents.append(_document(document))
    return documents


def _document(document: Any) -> dict[str, Any]:
    if isinstance(document, dict):
        return document
    try:
        return dict(json.loads(document))
    except json.JSONDecodeError:
        # moto keeps a role's inline policy from CloudFormation as the dict it parsed and
        # answers its Python repr.
        return dict(ast.literal_eval(document))


def test_service_task_role_is_least_privilege(deployment: Deployment) -> None:
    documents = _role_policies(deployment, deployment.outputs["services"]["ServiceTaskRoleArn"])
    statements = [s for d in documents for s in d["Statement"]]
    bucket = deployment.outputs["bucket"]["BucketName"]
    for statement in statements:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        assert "*" not in resources
        assert not any(a.endswith(":*") or a == "*" for a in _actions(statement))
    by_action = {a: s for s in statements for a in _actions(s)}
    # Only under S3_PREFIX, which the task definition sets to the same prefix.
    assert by_action["s3:PutObject"]["Resource"] == f"arn:aws:s3:::{bucket}/videos/*"
    assert by_action["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": "videos/*"}}
    service = _container(_task_definition(deployment, "ServiceTaskDefinitionArn"), "service")
    assert _env(service)["S3_PREFIX"] == "videos/"
    manage = by_action["execute-api:ManageConnections"]["Resource"]
    assert manage.endswith(f"/{STAGE}/*/@connections/*")


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return list(actions) if isinstance(actions, list) else [actions]


def test_dashboard_is_valid_and_alarms_notify_a_topic(deployment: Deployment) -> None:
    cloudwatch = deployment.moto.client("cloudwatch")
    body = cloudwatch.get_dashboard(DashboardName=f"pipeline-backend-{STAGE}")["DashboardBody"]
    titles = {w["properties"]["title"] for w in json.loads(body)["widgets"]}
    assert {"Requests and 5xx (ALB)", "Hub", "Interviews", "Pipeline jobs", "Redis"} <= titles
    sns = deployment.moto.client("sns")
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert deployment.outputs["monitoring"]["AlarmTopicArn"] in topics


def _stack_parameters(deployment: Deployment, stack: str) -> dict[str, str]:
    cfn = deployment.moto.client("cloudformation")
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def test_placeholders_only_stand_in_for_left_out_resources(deployment: Deployment) -> None:
    for stack, outputs in deployment.outputs.items():
        for key, value in outputs.items():
            if PLACEHOLDER in value:
                name = value.split(PLACEHOLDER, 1)[1].split(".", 1)[0]
                assert name in deployment.dropped[stack], (stack, key, value)


def test_public_variant_has_no_gateway_bridge_and_still_starts(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = deployment.outputs["public-services"]["ServiceTaskDefinitionArn"]
    task = deployment.moto.client("ecs").describe_task_definition(taskDefinition=arn)
    service = _container(task["taskDefinition"], "service")
    assert {s["name"] for s in service["secrets"]} == {
        "REDIS_URL", "AUTH_JWT_SECRET", "TURN_SECRET", "WEBHOOK_SECRET", "INTERNAL_SECRET",
    }  # fmt: skip
    assert "APIGW_MANAGEMENT_ENDPOINT" not in _env(service)
    settings = _settings_of(service, monkeypatch)
    assert settings.apigw_shared_secret is None
    assert settings.openai_api_key is None
    ingress = _ingress(deployment, _stack_resource(deployment, "public-alb", "AlbSecurityGroup"))
    assert {(r["FromPort"], r["IpRanges"][0]["CidrIp"]) for r in ingress} == {
        (443, "0.0.0.0/0"), (80, "0.0.0.0/0"),
    }  # fmt: skip


def _stack_resource(deployment: Deployment, stack: str, logical_id: str) -> str:
    cfn = deployment.moto.client("cloudformation")
    resource = cfn.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
    return str(resource["StackResourceDetail"]["PhysicalResourceId"])
