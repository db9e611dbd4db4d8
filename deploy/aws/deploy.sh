#!/usr/bin/env bash
# Deploy the pipeline backend's API Gateway front door for one stage.
#
#   deploy/aws/deploy.sh dev|staging|prod
#
# Environment:
#   AWS_REGION            region (default: the CLI's configured one)
#   APIGW_SHARED_SECRET   the service's shared secret (>= 32 URL-safe characters)
#   BACKEND               elastic-ip (default) or vpc-link
#   elastic-ip:  INSTANCE_ID, SECURITY_GROUP_ID
#   vpc-link:    VPC_ID, SUBNET_IDS (comma-separated), ALB_ARN, ALB_LISTENER_PORT (8000)
#   SERVICE_ROLE_NAME     IAM role of the service (EC2 instance role / ECS task role); it
#                         is granted execute-api:ManageConnections on the stage
#   BACKEND_PORT          default 8000
#
# Prints the URLs and the two lines to put in the service's .env.
set -euo pipefail

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

[[ $# -eq 1 ]] || usage
STAGE=$1
case "$STAGE" in
  dev | staging | prod) ;;
  *) usage ;;
esac

HERE=$(cd "$(dirname "$0")" && pwd)
BACKEND=${BACKEND:-elastic-ip}
BACKEND_PORT=${BACKEND_PORT:-8000}
SERVICE_ROLE_NAME=${SERVICE_ROLE_NAME:-}
: "${APIGW_SHARED_SECRET:?set APIGW_SHARED_SECRET (e.g. openssl rand -hex 32) to the value the service uses}"

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

# 1. Account-wide CloudWatch role for API Gateway logs, only when none is set.
role_arn=$(aws_ apigateway get-account --query cloudwatchRoleArn --output text)
if [[ -z "$role_arn" || "$role_arn" == "None" ]]; then
  aws_ cloudformation deploy --stack-name pipeline-backend-apigateway-account \
    --template-file "$HERE/apigateway-account.yaml" --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset
fi

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
    echo "deploy: BACKEND must be elastic-ip or vpc-link, not $BACKEND" >&2
    exit 2
    ;;
esac
backend_host=$(output "$backend_stack" BackendHost)

# 3. Both APIs, their stage, logs and the @connections policy.
api_stack="pipeline-backend-apigateway-$STAGE"
deploy "$api_stack" api-gateway.yaml \
  "Stage=$STAGE" "BackendHost=$backend_host" "BackendPort=$BACKEND_PORT" \
  "VpcLinkId=$vpc_link_id" "GatewaySecret=$APIGW_SHARED_SECRET" \
  "ServiceRoleName=$SERVICE_ROLE_NAME"

# 4. CloudFormation never redeploys an existing Deployment: publish the current routes.
rest_id=$(output "$api_stack" RestApiId)
ws_id=$(output "$api_stack" WebSocketApiId)
aws_ apigateway create-deployment --rest-api-id "$rest_id" --stage-name "$STAGE" \
  --description "deploy.sh $(date -u +%FT%TZ)" >/dev/null
aws_ apigatewayv2 create-deployment --api-id "$ws_id" --stage-name "$STAGE" \
  --description "deploy.sh $(date -u +%FT%TZ)" >/dev/null

rest_url=$(output "$api_stack" RestApiUrl)
ws_url=$(output "$api_stack" WebSocketUrl)
cat <<EOF
REST API:        $rest_url   (check: curl $rest_url/api/health)
WebSocket API:   $ws_url   (check: wscat -c "$ws_url?session_id=demo")
Service .env:
  APIGW_MANAGEMENT_ENDPOINT=$(output "$api_stack" ManagementEndpoint)
  APIGW_SHARED_SECRET=<the value you deployed with>
EOF
if [[ -z "$SERVICE_ROLE_NAME" ]]; then
  echo "Attach $(output "$api_stack" ManageConnectionsPolicyArn) to the service's role." >&2
fi
