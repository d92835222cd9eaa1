#!/usr/bin/env bash
# ECS apply benchmark: N services (default 20) updated v1 -> v2 in parallel
# against moto (tests/it/moto/launcher.py, behind a request counter), by
#   - slipway, rolling rollout            (apply -parallelism N)
#   - slipway, canary 10/25/50/100 %, bake 0s
#   - slipway, the same canary of services under Application Auto Scaling
#     (a scalable target, min 1 max 4, with a target-tracking policy, put on
#     each service after it was created)
#   - the AWS CLI v1: register-task-definition + update-service +
#     wait services-stable per service, N background jobs
# Each run of each case starts from POST /moto-api/reset, recreates the fixtures,
# creates the N services at v1 (timed separately), clears the request counts,
# then times the v1 -> v2 update and records the AWS calls it made.
#
#   RUNS=3 bash tests/bench/ecs_vs_awscli.sh
#
# Env: RUNS (3), N (20), SLIPWAY_TEST_ECS_TASK_DELAY (0.5), PYTHON (python3, must
# import moto 5.2.6 and boto3), AWS_CLI (an `aws` v1 binary; default: pip
# install awscli into a virtualenv in the temporary directory), SLIPWAY_BIN (measure
# this slipway binary instead of building one).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH="$ROOT/tests/bench/ecs"
RUNS=${RUNS:-3}
N=${N:-20}
PY=${PYTHON:-python3}
export SLIPWAY_TEST_ECS_TASK_DELAY=${SLIPWAY_TEST_ECS_TASK_DELAY:-0.5}
SLIPWAY="${SLIPWAY_BIN:-$ROOT/target/release/slipway}"

WORK=$(mktemp -d -t slipway-ecs-bench-XXXXXX)
MOTO_PID=
cleanup() {
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -n "${SLIPWAY_BIN:-}" ] || (cd "$ROOT" && cargo build --release --quiet)

# Static test credentials, no profile files, no instance metadata.
: > "$WORK/aws-config"; : > "$WORK/aws-credentials"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ROLE_ARN \
  AWS_WEB_IDENTITY_TOKEN_FILE AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI
export NO_COLOR=1

AWS=${AWS_CLI:-}
if [ -z "$AWS" ]; then
  echo "installing the AWS CLI v1 into a virtualenv..." >&2
  "$PY" -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install --quiet awscli
  AWS="$WORK/venv/bin/aws"
fi
echo "$("$AWS" --version 2>&1)" >&2

# Poll with exponential backoff (50 ms doubling to 1 s) until "$@" succeeds or
# $TIMEOUT seconds have passed.
poll() {
  local delay=0.05 deadline=$(( $(date +%s) + ${TIMEOUT:-30} ))
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep "$delay"
    delay=$(awk -v d="$delay" 'BEGIN { d *= 2; print (d > 1 ? 1 : d) }')
  done
}

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EP="http://127.0.0.1:$PORT"
export AWS_ENDPOINT_URL="$EP"
PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 "$PY" "$BENCH/moto_counting.py" --host 127.0.0.1 --port "$PORT" \
  > "$WORK/moto.log" 2>&1 &
MOTO_PID=$!
poll curl -fs -o /dev/null "$EP/slipway-test/ping" || { tail -30 "$WORK/moto.log"; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

fresh() {  # $1: directory for fixtures and configurations
  curl -fsS -X POST -o /dev/null "$EP/moto-api/reset"
  mkdir -p "$1"
  "$PY" "$BENCH/setup.py" "$EP" "$1" "$N"
}

slipway_apply() {  # dir version
  "$SLIPWAY" apply "$1" -auto-approve -parallelism "$N" -var "app_version=$2" > "$1/apply-$2.log" 2>&1 \
    || { echo "slipway apply $2 failed:" >&2; tail -40 "$1/apply-$2.log" >&2; exit 1; }
}

# Every service of cluster bench runs exactly one deployment, of image :$1.
check() {
  "$PY" - "$EP" "$1" "$N" <<'PY'
import sys, boto3
ep, version, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ecs = boto3.client("ecs", endpoint_url=ep, region_name="us-east-1")
arns = [a for page in ecs.get_paginator("list_services").paginate(cluster="bench") for a in page["serviceArns"]]
ok = 0
for i in range(0, len(arns), 10):
    for s in ecs.describe_services(cluster="bench", services=arns[i:i + 10])["services"]:
        if s["status"] != "ACTIVE" or len(s["deployments"]) != 1 or s["runningCount"] != s["desiredCount"]:
            continue
        td = ecs.describe_task_definition(taskDefinition=s["taskDefinition"])["taskDefinition"]
        ok += td["containerDefinitions"][0]["image"].endswith(":" + version)
if ok < n:
    sys.exit(f"only {ok} of {n} services are stable on :{version}")
PY
}

# Put every service of cluster bench under Application Auto Scaling ($1 = put),
# or check that the target of each serving service (which keeps its name
# through a canary; no temporary NAME-green is left) is there, unsuspended,
# with its policy ($1 = check).
autoscaling() {
  "$PY" - "$EP" "$1" "$N" <<'PY'
import sys, boto3
ep, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ecs = boto3.client("ecs", endpoint_url=ep, region_name="us-east-1")
aas = boto3.client("application-autoscaling", endpoint_url=ep, region_name="us-east-1")
arns = [a for page in ecs.get_paginator("list_services").paginate(cluster="bench") for a in page["serviceArns"]]
# moto lists deleted (INACTIVE) services too; ECS does not.
names = [s["serviceName"] for i in range(0, len(arns), 10)
         for s in ecs.describe_services(cluster="bench", services=arns[i:i + 10])["services"]
         if s["status"] == "ACTIVE"]
dimension = dict(ServiceNamespace="ecs", ScalableDimension="ecs:service:DesiredCount")
if what == "put":
    for name in names:
        rid = f"service/bench/{name}"
        aas.register_scalable_target(ResourceId=rid, MinCapacity=1, MaxCapacity=4, **dimension)
        aas.put_scaling_policy(PolicyName="cpu-60", ResourceId=rid, PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={"TargetValue": 60.0, "PredefinedMetricSpecification":
                {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}, **dimension)
else:
    ok = 0
    for name in names:
        rid = f"service/bench/{name}"
        targets = aas.describe_scalable_targets(ResourceIds=[rid], **dimension)["ScalableTargets"]
        policies = aas.describe_scaling_policies(ResourceId=rid, **dimension)["ScalingPolicies"]
        suspended = targets and any(targets[0].get("SuspendedState", {}).values())
        if name.endswith("-green"):
            sys.exit(f"the temporary service {name} is left after the canary")
        ok += bool(targets and not suspended and len(policies) == 1)
    if ok < n:
        sys.exit(f"only {ok} of {n} serving services have their scalable target, unsuspended, with its policy")
PY
}

aws_ecs() { "$AWS" --endpoint-url "$EP" --output text ecs "$@" > /dev/null; }

cli_register() {  # name version
  aws_ecs register-task-definition --family "$1-bench" --network-mode awsvpc \
    --requires-compatibilities FARGATE --cpu 256 --memory 512 \
    --execution-role-arn arn:aws:iam::123456789012:role/bench-ecs-task-execution \
    --task-role-arn arn:aws:iam::123456789012:role/bench-task \
    --container-definitions "[{\"name\":\"app\",\"image\":\"registry.local/bench:$2\",\"essential\":true,\"portMappings\":[{\"containerPort\":80}],\"environment\":[{\"name\":\"APP_ENV\",\"value\":\"bench\"}]}]"
}
cli_create() {  # name blue-target-group subnets security-group
  cli_register "$1" v1
  aws_ecs create-service --cluster bench --service-name "$1" --task-definition "$1-bench" \
    --desired-count 1 --launch-type FARGATE \
    --network-configuration "awsvpcConfiguration={subnets=[$3],securityGroups=[$4],assignPublicIp=DISABLED}" \
    --load-balancers "targetGroupArn=$2,containerName=app,containerPort=80"
  aws_ecs wait services-stable --cluster bench --services "$1"
}
cli_update() {  # name
  cli_register "$1" v2
  aws_ecs update-service --cluster bench --service "$1" --task-definition "$1-bench"
  aws_ecs wait services-stable --cluster bench --services "$1"
}
parallel() {  # function; one job per line of $DIR/services.txt (name blue subnets sg)
  local pids=() name blue subnets sg
  while read -r name blue subnets sg; do "$1" "$name" "$blue" "$subnets" "$sg" & pids+=($!); done < "$DIR/services.txt"
  for p in "${pids[@]}"; do wait "$p"; done
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
for run in $(seq 1 "$RUNS"); do
  for case in slipway-rolling slipway-canary slipway-canary-autoscaled awscli-rolling; do
    DIR="$WORK/$run-$case"
    fresh "$DIR"
    if [ "$case" = awscli-rolling ]; then
      "$PY" -c 'import json, sys; f = json.load(open(sys.argv[1]))
for s in f["services"]: print(s["name"], s["blue"], ",".join(f["subnets"]), f["security_group"])' \
        "$DIR/fixtures.json" > "$DIR/services.txt"
      t0=$(now); parallel cli_create; t1=$(now); check v1
      curl -fsS -X DELETE -o /dev/null "$EP/bench/counts"
      t2=$(now); parallel cli_update; t3=$(now)
    else
      conf="$DIR/${case#slipway-}"
      t0=$(now); slipway_apply "$conf" v1; t1=$(now); check v1
      [ "$case" != slipway-canary-autoscaled ] || autoscaling put
      curl -fsS -X DELETE -o /dev/null "$EP/bench/counts"
      t2=$(now); slipway_apply "$conf" v2; t3=$(now)
    fi
    curl -fsS "$EP/bench/counts" > "$DIR/counts.json"
    check v2
    [ "$case" != slipway-canary-autoscaled ] || autoscaling check
    printf '%s\t%s\t%s\t%s\t%s\n' "$case" "$run" "$(elapsed "$t0" "$t1")" "$(elapsed "$t2" "$t3")" "$DIR/counts.json" >> "$RESULTS"
    echo "run $run $case: create $(elapsed "$t0" "$t1") s, update $(elapsed "$t2" "$t3") s" >&2
  done
done

"$PY" - "$RESULTS" "$N" <<'PY'
import json, sys
from collections import defaultdict
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
n = int(sys.argv[2])
by = defaultdict(list)
for case, run, create, update, counts in rows:
    by[case].append((float(create), float(update), json.load(open(counts))))
print(f"\n| case | create v1 (s) mean | update v1->v2 (s) mean | min | max | AWS calls per deployment (update) |")
print("|---|---:|---:|---:|---:|---|")
for case, xs in by.items():
    ups = [u for _, u, _ in xs]
    total = defaultdict(int)
    for _, _, c in xs:
        for k, v in c.items():
            total[k] += v
    per = {k: v / len(xs) / n for k, v in sorted(total.items())}
    calls = ", ".join(f"{k} {v:g}" for k, v in per.items())
    print(f"| {case} | {sum(c for c, _, _ in xs) / len(xs):.2f} | {sum(ups) / len(ups):.2f} | {min(ups):.2f} | {max(ups):.2f} "
          f"| **{sum(per.values()):g}**: {calls} |")
PY
