"""Create the benchmark's AWS fixtures in moto and write slipway configurations.

  python3 setup.py ENDPOINT OUTDIR N

Creates cluster `bench`, one VPC (two subnets, a security group) and, per
service bench-01..bench-N, an ALB with an HTTP listener forwarding to two `ip`
target groups (blue weight 100, green 0). Writes OUTDIR/fixtures.json and the
configurations OUTDIR/rolling/main.hcl, OUTDIR/canary/main.hcl and
OUTDIR/canary-autoscaled/main.hcl.
"""
import json
import os
import sys

import boto3

endpoint, outdir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
module = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "modules", "ecs-web-service"))
kw = dict(endpoint_url=endpoint, region_name="us-east-1")
ecs, ec2, elb = boto3.client("ecs", **kw), boto3.client("ec2", **kw), boto3.client("elbv2", **kw)

ecs.create_cluster(clusterName="bench")
vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.7.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
           for i, z in enumerate("ab")]
sg = ec2.create_security_group(GroupName="bench", Description="bench", VpcId=vpc)["GroupId"]

services = []
for i in range(1, n + 1):
    name = f"bench-{i:02d}"
    lb = elb.create_load_balancer(Name=f"{name}-alb", Subnets=subnets, SecurityGroups=[sg],
                                  Scheme="internet-facing", Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    tgs = [elb.create_target_group(Name=f"{name}-{c}", Protocol="HTTP", Port=80, VpcId=vpc,
                                   TargetType="ip")["TargetGroups"][0]["TargetGroupArn"] for c in ("blue", "green")]
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": tgs[0], "Weight": 100}, {"TargetGroupArn": tgs[1], "Weight": 0}]}}])["Listeners"][0]["ListenerArn"]
    services.append({"name": name, "listener": listener, "blue": tgs[0], "green": tgs[1]})

with open(os.path.join(outdir, "fixtures.json"), "w") as f:
    json.dump({"subnets": subnets, "security_group": sg, "services": services}, f, indent=1)

ROLLOUTS = {
    "rolling": 'strategy   = "rolling"\n  on_failure = "rollback"',
    "canary": 'strategy   = "canary"\n  steps      = ["10%", "25%", "50%", "100%"]\n  bake       = "0s"\n  on_failure = "rollback"',
    # The same canary, for services the benchmark puts under Application
    # Auto Scaling after creating them.
    "canary-autoscaled": 'strategy   = "canary"\n  steps      = ["10%", "25%", "50%", "100%"]\n  bake       = "0s"\n  on_failure = "rollback"',
}
for kind, body in ROLLOUTS.items():
    parts = [f'''slipway {{
  backend "local" {{
    path = "state"
  }}
}}

variable "app_version" {{
  type = string
}}

environment "bench" {{
  variables = {{
    STAGE = "bench"
  }}

  ecs_cluster {{
    region          = "us-east-1"
    endpoint        = "{endpoint}"
    cluster         = "bench"
    subnets         = {json.dumps(subnets)}
    security_groups = ["{sg}"]
    wait_timeout    = "120s"
  }}
}}

rollout "bench" {{
  {body}
}}
''']
    for s in services:
        parts.append(f'''
module "{s["name"]}" {{
  source             = "{module}"
  name               = "{s["name"]}"
  image              = "registry.local/bench"
  version            = var.app_version
  port               = 80
  cpu                = 256
  memory             = 512
  health_check_path  = "/"
  desired_count      = 1
  execution_role_arn = "arn:aws:iam::123456789012:role/bench-ecs-task-execution"
  task_role_arn      = "arn:aws:iam::123456789012:role/bench-task"
}}

deployment "{s["name"]}" {{
  service     = module.{s["name"]}.service.web
  environment = environment.bench
  rollout     = rollout.bench

  ecs {{
    service_name  = "{s["name"]}"
    desired_count = module.{s["name"]}.desired_count
    listener_arn  = "{s["listener"]}"
    target_groups = ["{s["blue"]}", "{s["green"]}"]
  }}
}}
''')
    os.makedirs(os.path.join(outdir, kind), exist_ok=True)
    with open(os.path.join(outdir, kind, "main.hcl"), "w") as f:
        f.write("".join(parts))
