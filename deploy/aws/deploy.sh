#!/usr/bin/env bash
# Deploy or update the pipeline backend on AWS for one stage.
#
#   deploy/aws/deploy.sh dev|staging|prod
#
# BACKEND picks the shape (default elastic-ip):
#   ecs          everything on ECS (docs/deploy-ecs.md): network (or yours), secrets,
#                Redis, bucket, TURN, ALB, cluster, service + workers, alarms; with
#                ALB_SCHEME=internal (default) also the VPC link and API Gateway
#   elastic-ip   API Gateway in front of one EC2 instance (docs/deploy-api-gateway.md)
#   vpc-link     API Gateway in front of an internal ALB you already have
#
# Environment (ecs):
#   IMAGE_TAG (required)  tag in IMAGE_REPOSITORY (default <account>.dkr.ecr.<region>
#                         .amazonaws.com/pipeline-backend)
#   FRONTEND_URL (required) the frontend's origins, comma-separated
#   ALB_SCHEME            internal (API Gateway + VPC link) | internet-facing (needs
#                         DOMAIN and CERTIFICATE_ARN: HTTPS straight to the ALB)
#   DOMAIN                the public ALB's DNS name (a CNAME you point at it)
#   TURN_DOMAIN           a DNS name for the TURN Elastic IP (default: the IP itself);
#                         TURN_TLS=true once coturn has its certificate
#   VPC_ID, VPC_CIDR, PUBLIC_SUBNET_IDS, PRIVATE_SUBNET_IDS   an existing VPC (with NAT);
#                         unset: a VPC is created, NAT=true|false (default false)
#   sizes: SERVICE_CPU/_MEMORY/_MIN/_MAX, WORKER_CPU/_MEMORY/_MIN/_MAX, REDIS_NODE_TYPE,
#          REDIS_NODES, TURN_INSTANCE_TYPE, EC2_INSTANCE_TYPE (adds EC2 capacity)
#   OPENAI_API_KEY        stored in Secrets Manager (never a template parameter)
#   ALARM_EMAIL, DRAIN_SECONDS (900), SHUTDOWN_GRACE_S (20), RETENTION_DAYS (30)
# Environment (elastic-ip / vpc-link): APIGW_SHARED_SECRET, and
#   elastic-ip: INSTANCE_ID, SECURITY_GROUP_ID
#   vpc-link:   VPC_ID, SUBNET_IDS (comma-separated), ALB_ARN, ALB_LISTENER_PORT (8000)
#   SERVICE_ROLE_NAME     the service's IAM role, granted execute-api:ManageConnections
# Common: AWS_REGION (default: the CLI's), BACKEND_PORT (8000)
#
# Prints the URLs a frontend needs (NEXT_PUBLIC_API_URL, NEXT_PUBLIC_WS_URL, the
# interview base URL) or, for elastic-ip/vpc-link, the service's .env lines.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 2
}

[[ $# -eq 1 ]] || usage
STAGE=$1
case "$STAGE" in
  dev | staging | prod) ;;
  *) usage ;;
esac

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BACKEND=${BACKEND:-elastic-ip}
BACKEND_PORT=${BACKEND_PORT:-8000}
SERVICE_ROLE_NAME=${SERVICE_ROLE_NAME:-}

aws_() {
  if [[ -n "${AWS_REGION:-}" ]]; then
    aws --region "$AWS_REGION" "$@"
  else
    aws "$@"
  fi
}

output() { # stack, output key
  aws_ cloudformation describe-stacks --stack-name "$1" \
    --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue" --output text
}

deploy() { # stack, template, parameter overrides...
  local stack=$1 template=$2
  shift 2
  echo "deploy: $stack ($template)" >&2
  aws_ cloudformation deploy --stack-name "$stack" --template-file "$HERE/$template" \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --tags project=pipeline-backend "stage=$STAGE" \
    --parameter-overrides "$@"
}

secret_value() { # secret ARN
  aws_ secretsmanager get-secret-value --secret-id "$1" --query SecretString --output text
}

# Account-wide CloudWatch role for API Gateway logs, only when none is set.
apigateway_account() {
  local role_arn
  role_arn=$(aws_ apigateway get-account --query cloudwatchRoleArn --output text)
  if [[ -z "$role_arn" || "$role_arn" == "None" ]]; then
    aws_ cloudformation deploy --stack-name pipeline-backend-apigateway-account \
      --template-file "$HERE/apigateway-account.yaml" --capabilities CAPABILITY_IAM \
      --no-fail-on-empty-changeset
  fi
}

# Both APIs, their stage, logs and the @connections policy; then publish the routes
# (CloudFormation never redeploys an existing Deployment). Sets API_STACK.
api_gateway() { # backend host, port, VPC link id, gateway secret, service role name
  API_STACK="pipeline-backend-apigateway-$STAGE"
  deploy "$API_STACK" api-gateway.yaml \
    "Stage=$STAGE" "BackendHost=$1" "BackendPort=$2" "VpcLinkId=$3" \
    "GatewaySecret=$4" "ServiceRoleName=$5"
  local rest_id ws_id
  rest_id=$(output "$API_STACK" RestApiId)
  ws_id=$(output "$API_STACK" WebSocketApiId)
  aws_ apigateway create-deployment --rest-api-id "$rest_id" --stage-name "$STAGE" \
    --description "deploy.sh $(date -u +%FT%TZ)" >/dev/null
  aws_ apigatewayv2 create-deployment --api-id "$ws_id" --stage-name "$STAGE" \
    --description "deploy.sh $(date -u +%FT%TZ)" >/dev/null
}

# OPENAI_API_KEY into its own secret, through a private file rather than the command line.
openai_secret() { # prints the secret's ARN, or nothing without a key
  [[ -n "${OPENAI_API_KEY:-}" ]] || return 0
  local name="pipeline-backend/$STAGE/OPENAI_API_KEY" file arn
  file=$(mktemp)
  chmod 600 "$file"
  printf '%s' "$OPENAI_API_KEY" >"$file"
  if arn=$(aws_ secretsmanager describe-secret --secret-id "$name" --query ARN --output text 2>/dev/null); then
    aws_ secretsmanager put-secret-value --secret-id "$arn" --secret-string "file://$file" >/dev/null
  else
    arn=$(aws_ secretsmanager create-secret --name "$name" --secret-string "file://$file" \
      --description "OPENAI_API_KEY of pipeline-backend $STAGE" --query ARN --output text)
  fi
  rm -f "$file"
  echo "$arn"
}

deploy_ecs() {
  : "${IMAGE_TAG:?set IMAGE_TAG (the image tag to run)}"
  : "${FRONTEND_URL:?set FRONTEND_URL (the frontend origins, comma-separated)}"
  local scheme=${ALB_SCHEME:-internal} p="pipeline-backend"
  case "$scheme" in
    internal) ;;
    internet-facing)
      : "${DOMAIN:?set DOMAIN (the name you point at the ALB)}"
      : "${CERTIFICATE_ARN:?set CERTIFICATE_ARN (ACM certificate for DOMAIN)}"
      ;;
    *)
      echo "deploy: ALB_SCHEME must be internal or internet-facing, not $scheme" >&2
      exit 2
      ;;
  esac
  local account region repository
  account=$(aws_ sts get-caller-identity --query Account --output text)
  region=${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region)}}
  repository=${IMAGE_REPOSITORY:-$account.dkr.ecr.$region.amazonaws.com/pipeline-backend}

  # 1. Network: yours, or a new VPC.
  local vpc_id vpc_cidr public_subnets private_subnets task_subnets public_ip
  if [[ -n "${VPC_ID:-}" ]]; then
    : "${VPC_CIDR:?set VPC_CIDR}" "${PUBLIC_SUBNET_IDS:?set PUBLIC_SUBNET_IDS}"
    : "${PRIVATE_SUBNET_IDS:?set PRIVATE_SUBNET_IDS}"
    vpc_id=$VPC_ID vpc_cidr=$VPC_CIDR
    public_subnets=$PUBLIC_SUBNET_IDS private_subnets=$PRIVATE_SUBNET_IDS
    task_subnets=$PRIVATE_SUBNET_IDS public_ip=DISABLED
  else
    deploy "$p-network-$STAGE" network.yaml "CreateNatGateway=${NAT:-false}"
    vpc_id=$(output "$p-network-$STAGE" VpcId)
    vpc_cidr=$(output "$p-network-$STAGE" VpcCidr)
    public_subnets=$(output "$p-network-$STAGE" PublicSubnetIds)
    private_subnets=$(output "$p-network-$STAGE" PrivateSubnetIds)
    task_subnets=$(output "$p-network-$STAGE" TaskSubnetIds)
    public_ip=$(output "$p-network-$STAGE" TaskAssignPublicIp)
  fi

  # 2. Secrets, Redis, the bucket.
  deploy "$p-secrets-$STAGE" secrets.yaml "Stage=$STAGE"
  local secrets="$p-secrets-$STAGE" openai_arn
  openai_arn=$(openai_secret)
  deploy "$p-redis-$STAGE" redis.yaml "Stage=$STAGE" "VpcId=$vpc_id" \
    "SubnetIds=$private_subnets" "NodeType=${REDIS_NODE_TYPE:-cache.t4g.micro}" \
    "NodeCount=${REDIS_NODES:-1}"
  deploy "$p-bucket-$STAGE" bucket.yaml "Stage=$STAGE" "FrontendOrigins=$FRONTEND_URL" \
    "RetentionDays=${RETENTION_DAYS:-30}"

  # 3. TURN, with the repository's turnserver.conf.
  local turn_config
  turn_config=$(gzip -9c "$ROOT/docker/coturn/turnserver.conf" | base64 | tr -d '\n')
  deploy "$p-turn-$STAGE" turn.yaml "Stage=$STAGE" "VpcId=$vpc_id" \
    "SubnetId=${public_subnets%%,*}" "TurnSecretArn=$(output "$secrets" TurnSecretArn)" \
    "TurnConfig=$turn_config" "Realm=${TURN_DOMAIN:-turn.$STAGE.invalid}" \
    "InstanceType=${TURN_INSTANCE_TYPE:-t4g.small}"
  local turn_server=${TURN_DOMAIN:-$(output "$p-turn-$STAGE" PublicIp)}

  # 4. The ALB; behind API Gateway when internal.
  local alb="$p-alb-$STAGE" alb_subnets=$private_subnets
  [[ "$scheme" == internal ]] || alb_subnets=$public_subnets
  deploy "$alb" alb.yaml "Stage=$STAGE" "VpcId=$vpc_id" "VpcCidr=$vpc_cidr" \
    "SubnetIds=$alb_subnets" "Scheme=$scheme" "CertificateArn=${CERTIFICATE_ARN:-}" \
    "DeregistrationDelaySeconds=${DRAIN_SECONDS:-900}"
  local ws_api_id="" api_url ws_url
  if [[ "$scheme" == internal ]]; then
    apigateway_account
    local link="$p-vpc-link-$STAGE" port
    port=$(output "$alb" ListenerPort)
    deploy "$link" backend-vpc-link.yaml "VpcId=$vpc_id" "SubnetIds=$private_subnets" \
      "AlbArn=$(output "$alb" LoadBalancerArn)" "AlbListenerPort=$port"
    api_gateway "$(output "$link" BackendHost)" "$port" "$(output "$link" VpcLinkId)" \
      "$(secret_value "$(output "$secrets" ApigwSharedSecretArn)")" ""
    ws_api_id=$(output "$API_STACK" WebSocketApiId)
    api_url=$(output "$API_STACK" RestApiUrl)
    ws_url=$(output "$API_STACK" WebSocketUrl)
  else
    api_url="https://$DOMAIN"
    ws_url="wss://$DOMAIN/ws"
  fi

  # 5. Cluster, service and workers (a new IMAGE_TAG rolls them), alarms.
  local cluster="$p-cluster-$STAGE" services="$p-services-$STAGE"
  deploy "$cluster" ecs-cluster.yaml "Stage=$STAGE" \
    "Ec2InstanceType=${EC2_INSTANCE_TYPE:-}" "Ec2SubnetIds=$task_subnets"
  deploy "$services" ecs-services.yaml "Stage=$STAGE" \
    "ClusterName=$(output "$cluster" ClusterName)" \
    "CapacityProvider=$(output "$cluster" CapacityProvider)" \
    "Image=$repository:$IMAGE_TAG" "SubnetIds=$task_subnets" "AssignPublicIp=$public_ip" \
    "VpcCidr=$vpc_cidr" "TaskSecurityGroupId=$(output "$alb" TaskSecurityGroupId)" \
    "RedisClientSecurityGroupId=$(output "$p-redis-$STAGE" ClientSecurityGroupId)" \
    "TargetGroupArn=$(output "$alb" TargetGroupArn)" \
    "TargetGroupFullName=$(output "$alb" TargetGroupFullName)" \
    "LoadBalancerFullName=$(output "$alb" LoadBalancerFullName)" \
    "DeregistrationDelaySeconds=${DRAIN_SECONDS:-900}" \
    "ShutdownGraceSeconds=${SHUTDOWN_GRACE_S:-20}" \
    "RedisUrlSecretArn=$(output "$p-redis-$STAGE" RedisUrlSecretArn)" \
    "AuthJwtSecretArn=$(output "$secrets" AuthJwtSecretArn)" \
    "ApigwSharedSecretArn=$(output "$secrets" ApigwSharedSecretArn)" \
    "TurnSecretArn=$(output "$secrets" TurnSecretArn)" \
    "WebhookSecretArn=$(output "$secrets" WebhookSecretArn)" \
    "InternalSecretArn=$(output "$secrets" InternalSecretArn)" \
    "OpenAiSecretArn=$openai_arn" "BucketName=$(output "$p-bucket-$STAGE" BucketName)" \
    "TurnServer=$turn_server" "TurnTls=${TURN_TLS:-false}" "FrontendUrl=$FRONTEND_URL" \
    "WebSocketApiId=$ws_api_id" "ApiStage=$STAGE" \
    "ServiceCpu=${SERVICE_CPU:-1024}" "ServiceMemory=${SERVICE_MEMORY:-2048}" \
    "ServiceMinTasks=${SERVICE_MIN:-2}" "ServiceMaxTasks=${SERVICE_MAX:-6}" \
    "WorkerCpu=${WORKER_CPU:-1024}" "WorkerMemory=${WORKER_MEMORY:-2048}" \
    "WorkerMinTasks=${WORKER_MIN:-1}" "WorkerMaxTasks=${WORKER_MAX:-4}" \
    "LogRetentionDays=${RETENTION_DAYS:-30}"
  deploy "$p-monitoring-$STAGE" monitoring.yaml "Stage=$STAGE" \
    "ClusterName=$(output "$cluster" ClusterName)" \
    "LoadBalancerFullName=$(output "$alb" LoadBalancerFullName)" \
    "TargetGroupFullName=$(output "$alb" TargetGroupFullName)" \
    "RedisReplicationGroupId=$(output "$p-redis-$STAGE" ReplicationGroupId)" \
    "AlarmEmail=${ALARM_EMAIL:-}"

  echo "deploy: waiting for the service and the workers to be stable" >&2
  aws_ ecs wait services-stable --cluster "$(output "$cluster" ClusterName)" \
    --services "$(output "$services" ServiceName)" "$(output "$services" WorkerServiceName)"

  cat <<URLS
NEXT_PUBLIC_API_URL=$api_url
NEXT_PUBLIC_WS_URL=$ws_url
Interview base URL: $api_url/api/interview
TURN server:        $turn_server (3478 udp/tcp, 5349 tls)
Check:              curl $api_url/api/health
URLS
  if [[ "$scheme" == internet-facing ]]; then
    echo "Point $DOMAIN (CNAME) at $(output "$alb" LoadBalancerDns)." >&2
  fi
}

if [[ "$BACKEND" == ecs ]]; then
  deploy_ecs
  exit 0
fi

: "${APIGW_SHARED_SECRET:?set APIGW_SHARED_SECRET (e.g. openssl rand -hex 32) to the value the service uses}"

# 1. Account-wide CloudWatch role for API Gateway logs, only when none is set.
apigateway_account

# 2. The backend variant: where API Gateway sends requests.
backend_stack="pipeline-backend-$BACKEND-$STAGE"
vpc_link_id=""
case "$BACKEND" in
  elastic-ip)
    : "${INSTANCE_ID:?set INSTANCE_ID}" "${SECURITY_GROUP_ID:?set SECURITY_GROUP_ID}"
    deploy "$backend_stack" backend-elastic-ip.yaml \
      "InstanceId=$INSTANCE_ID" "SecurityGroupId=$SECURITY_GROUP_ID" "BackendPort=$BACKEND_PORT"
    ;;
  vpc-link)
    : "${VPC_ID:?set VPC_ID}" "${SUBNET_IDS:?set SUBNET_IDS}" "${ALB_ARN:?set ALB_ARN}"
    BACKEND_PORT=${ALB_LISTENER_PORT:-$BACKEND_PORT}
    deploy "$backend_stack" backend-vpc-link.yaml \
      "VpcId=$VPC_ID" "SubnetIds=$SUBNET_IDS" "AlbArn=$ALB_ARN" "AlbListenerPort=$BACKEND_PORT"
    vpc_link_id=$(output "$backend_stack" VpcLinkId)
    ;;
  *)
    echo "deploy: BACKEND must be ecs, elastic-ip or vpc-link, not $BACKEND" >&2
    exit 2
    ;;
esac

# 3. Both APIs, their stage, logs and the @connections policy, published.
api_gateway "$(output "$backend_stack" BackendHost)" "$BACKEND_PORT" "$vpc_link_id" \
  "$APIGW_SHARED_SECRET" "$SERVICE_ROLE_NAME"

rest_url=$(output "$API_STACK" RestApiUrl)
ws_url=$(output "$API_STACK" WebSocketUrl)
cat <<EOF
REST API:        $rest_url   (check: curl $rest_url/api/health)
WebSocket API:   $ws_url   (check: wscat -c "$ws_url?session_id=demo")
NEXT_PUBLIC_API_URL=$rest_url
NEXT_PUBLIC_WS_URL=$ws_url
Interview base URL: $rest_url/api/interview
Service .env:
  APIGW_MANAGEMENT_ENDPOINT=$(output "$API_STACK" ManagementEndpoint)
  APIGW_SHARED_SECRET=<the value you deployed with>
EOF
if [[ -z "$SERVICE_ROLE_NAME" ]]; then
  echo "Attach $(output "$API_STACK" ManageConnectionsPolicyArn) to the service's role." >&2
fi
