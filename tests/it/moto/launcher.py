"""A moto server whose ECS services deploy like real ECS, for slipway's tests.

Usage: python3 launcher.py --host 127.0.0.1 --port PORT

Written against moto 5.2.6 (PyPI `moto[server]==5.2.6`, pinned in `tests/setup.sh`); it
patches moto's ECS backend classes, so it refuses other minor versions.

Why: moto's ECS keeps the API shapes but nothing ever happens. A service has one
deployment forever, `update-service` only swaps the task definition in place,
`runningCount` is whatever MOTO_ECS_SERVICE_RUNNING says (0 by default), no task
is started for a service, and create-service without `securityGroups` fails
with a 500. A deployment tool waits on exactly those things, so this launcher
patches moto's ECS model (moto/ecs/models.py) before it starts moto's own server
application (the same one `python -m moto.server` runs):

- create-service and update-service with a new task definition, a new network
  configuration or forceNewDeployment start a new deployment (`ecs-svc/N`) that
  becomes PRIMARY (IN_PROGRESS); the older ones become ACTIVE. A desired count
  change alone scales the PRIMARY deployment, as real ECS does (no new one).
  The service's `taskDefinition` is always the full ARN, as in real ECS.
- The PRIMARY deployment launches tasks (real moto Task objects, `startedBy` the
  deployment id, `group` `service:NAME`) that stay PENDING for
  SLIPWAY_TEST_ECS_TASK_DELAY seconds (default 0.5), then become RUNNING. Time is
  evaluated lazily: every ECS call first plays the simulation forward to "now",
  so no thread drives it.
- When the PRIMARY deployment runs `desiredCount` tasks, the tasks of older
  deployments are stopped, those deployments disappear, the rollout becomes
  COMPLETED and the events say so. Service/deployment running and pending counts
  are the real counts of tasks. RUNNING tasks of a service with `loadBalancers`
  are registered (by private IP, awsvpc only) in its target groups, and
  deregistered when they stop.
- Failing tasks: a task fails when one of its task definition's container images
  has a tag containing SLIPWAY_TEST_ECS_FAIL_MARKER (default `fail`, e.g.
  `app:1.2-fail`), or when the image contains the substring set with
  `POST /slipway-test/fail-new-tasks {"image_substring": "..."}` (null or
  DELETE clears it; so does `POST /moto-api/reset`). At its due time such a
  task stops (`stopCode` EssentialContainerExited, `stoppedReason` "Essential
  container in task exited", exit code 1), the deployment's `failedTasks` grows,
  an event names it, and the scheduler launches a replacement. With
  `deploymentConfiguration.deploymentCircuitBreaker.enable`, the deployment
  turns FAILED after max(3, min(200, ceil(desired/2))) failed tasks, its
  remaining tasks are stopped ("Deployment ID failed") and it launches no more;
  with `rollback` the most recent COMPLETED deployment becomes PRIMARY again
  (IN_PROGRESS for one task delay, keeping the FAILED one visible as ACTIVE,
  then COMPLETED) and the service's task definition goes back to it.
- create-service keeps `deploymentConfiguration` (moto drops it), defaulting it
  like ECS; without `securityGroups` the VPC's default security group is used;
  an awsvpc task definition without a network configuration is refused with
  ECS's message; creating a service whose name is ACTIVE is refused; updating
  a deleted one is refused (ServiceNotActiveException). Services with a
  CODE_DEPLOY or EXTERNAL deployment controller keep moto's behaviour.
- `POST /slipway-test/refuse-updates {"service": "NAME"}` makes every
  update-service of that service fail with a ClientException (as a
  permissions or throttling failure would), until it is cleared (null, DELETE,
  or `POST /moto-api/reset`): for the failure after a rollback began.
- `POST /slipway-test/refuse-s3-writes {"key_prefix": "PREFIX"}` makes every
  PutObject of a key under PREFIX fail with 403 AccessDenied (a role that lost
  s3:PutObject in the middle of an apply), until it is cleared (null, DELETE,
  or `POST /moto-api/reset`). Deletes still work.
- list-tasks honours `serviceName` and lists only desiredStatus RUNNING tasks
  unless told otherwise, as ECS does.
- Two moto bugs that break the Rust SDK or awsvpc tasks: containers of a task
  now carry `cpu`/`memory` as strings (the API shape; numbers made the SDK
  refuse every DescribeTasks answer), and an ENI in a VPC without DNS
  hostnames gets `private_dns_name` None instead of an AttributeError.
- `GET /slipway-test/ping` answers when the server is up.

S3 (patch_s3): a conditional write (PutObject with If-None-Match or If-Match,
DeleteObject with If-Match) is atomic, as in S3. moto checks the condition and
then writes, two steps that two threads of its server can interleave, so two
creates of one lock object could both succeed; under the lock tests of
tests/state_s3.rs that happened.

Application Auto Scaling (patch_application_autoscaling), two moto bugs that
hide what real accounts do:
- DescribeScalingPolicies matched a policy's resource id as a substring of the
  one asked for, so `service/C/api-green` also listed `service/C/api`'s
  policies; it matches exactly, as AWS does.
- DeregisterScalableTarget left the target's scaling policies and scheduled
  actions behind; AWS deletes them with the target.

Other services (ELBv2, EC2, ...) are moto's, unchanged.
"""

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
from datetime import timedelta

PINNED = "5.2.6"
LOCK = threading.RLock()  # moto's server is threaded; the simulation is not
FAIL = {"image_substring": None}  # the global switch for failing new tasks
REFUSE_UPDATES = {"service": None}  # update-service of this service name is refused
REFUSE_S3_WRITES = {"key_prefix": None}  # PutObject under this key prefix is refused


def task_delay():
    return float(os.environ.get("SLIPWAY_TEST_ECS_TASK_DELAY", "0.5"))


def fail_marker():
    return os.environ.get("SLIPWAY_TEST_ECS_FAIL_MARKER", "fail")


def patch_s3():
    """Conditional writes of S3 objects one at a time (see the module doc)."""
    from moto.s3.responses import S3Response

    writes = threading.Lock()

    def atomic(method):
        def locked(self, *args, **kwargs):
            with writes:
                return method(self, *args, **kwargs)

        return locked

    def refusing(method):
        def refused_or_written(self, *args, **kwargs):
            prefix = REFUSE_S3_WRITES["key_prefix"]
            if prefix is not None and self.parse_key_name().startswith(prefix):
                body = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                    "<Message>Access Denied</Message></Error>"
                )
                return 403, {"Content-Type": "application/xml"}, body
            return method(self, *args, **kwargs)

        return refused_or_written

    S3Response.put_object = refusing(atomic(S3Response.put_object))
    S3Response.delete_object = atomic(S3Response.delete_object)


def patch_application_autoscaling():
    """Exact resource ids and deregistration as in AWS (see the module doc)."""
    from moto.applicationautoscaling.models import ApplicationAutoscalingBackend

    describe_policies = ApplicationAutoscalingBackend.describe_scaling_policies

    def describe_scaling_policies(self, service_namespace, resource_id, scalable_dimension,
                                  max_results, next_token):
        next_page, policies = describe_policies(
            self, service_namespace, resource_id, scalable_dimension, max_results, next_token)
        if resource_id:
            policies = [p for p in policies if p.resource_id == resource_id]
        return next_page, policies

    deregister = ApplicationAutoscalingBackend.deregister_scalable_target

    def deregister_scalable_target(self, namespace, r_id, dimension):
        deregister(self, namespace, r_id, dimension)
        for key, policy in list(self.policies.items()):
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == (
                    namespace, r_id, dimension):
                policy.delete_alarms(self.account_id, self.region_name)
                del self.policies[key]
        self.scheduled_actions = [
            a for a in self.scheduled_actions
            if (a.service_namespace, a.resource_id, a.scalable_dimension) != (namespace, r_id, dimension)
        ]

    ApplicationAutoscalingBackend.describe_scaling_policies = describe_scaling_policies
    ApplicationAutoscalingBackend.deregister_scalable_target = deregister_scalable_target


def patch_ecs():
    from moto.core.utils import camelcase_to_underscores, utcnow
    from moto.ecs import models as m
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.elbv2.models import elbv2_backends
    from moto.moto_api._internal import mock_random

    backend_cls = m.EC2ContainerServiceBackend

    # A task's containers carry `cpu` and `memory` as the numbers of the task
    # definition, but ECS's Container shape has strings there: strict SDKs (Rust)
    # refuse the whole DescribeTasks answer.
    original_container_init = m.Container.__init__

    def container_init(self, task_def):
        original_container_init(self, task_def)
        self.cpu = None if self.cpu is None else str(self.cpu)
        self.memory = None if self.memory is None else str(self.memory)

    m.Container.__init__ = container_init
    # moto's awsvpc tasks read `private_dns_name`, which an ENI only has in a VPC
    # with DNS hostnames enabled (not the default for CreateVpc).
    NetworkInterface.private_dns_name = None
    request = threading.local()  # create-service parameters moto does not pass on

    class ServiceTask(m.Task):
        """A task of a service: its status is set by the simulation only (moto's
        tasks drift towards STOPPED each time they are described)."""

        __module__ = "moto.ecs.models"  # moto's model registry keys models by module

        def __init__(self, *args, **kwargs):
            self._sim_status = "PENDING"
            super().__init__(*args, **kwargs)

        @property
        def last_status(self):
            return self._sim_status

        @last_status.setter
        def last_status(self, value):
            if value == "STOPPED":  # by the scheduler or by StopTask
                if self._sim_status == "RUNNING":
                    set_targets(self._backend, self._sim_service, self, register=False)
                self._sim_due = None
            self._sim_status = value

        def advance(self):
            pass

    def sim(service):
        if not hasattr(service, "_sim"):
            service._sim = {"meta": {}, "tasks": [], "steady": False, "wake": []}
        return service._sim

    def event(service, t, message):
        service.events.insert(
            0,
            {"id": str(mock_random.uuid4()), "createdAt": t, "message": f"(service {service.name}) {message}"},
        )
        del service.events[100:]

    def task_ip(task):
        for attachment in task.attachments:
            for detail in attachment["details"]:
                if detail["name"] == "privateIPv4Address":
                    return detail["value"]
        return None

    def set_targets(backend, service, task, register):
        ip = task_ip(task)
        elbv2 = elbv2_backends[backend.account_id][backend.region_name]
        for lb in service.load_balancers or []:
            group = elbv2.target_groups.get(lb.get("targetGroupArn"))
            if ip is None or group is None:
                continue
            if register:
                group.register([{"Id": ip, "Port": lb.get("containerPort")}])
            elif ip in group.targets:
                group.deregister([{"Id": ip}])

    def launch(backend, service, dep, count, t):
        cluster = backend._get_cluster(service.cluster_name)
        td = backend.describe_task_definition(dep["taskDefinition"])
        images = [c.get("image") or "" for c in td.container_definitions]
        switch, marker = FAIL["image_substring"], fail_marker()
        fails = any(
            (marker and marker in image.rsplit("/", 1)[-1].partition(":")[2])
            or (switch is not None and switch in image)
            for image in images
        )
        started = []
        for _ in range(count):
            task = ServiceTask(
                cluster, td, None, None, backend=backend, group=f"service:{service.name}",
                launch_type=service.launch_type or "", started_by=dep["id"],
                networking_configuration=service.network_configuration or None,
                platform_version=service.platform_version,
            )
            task.created_at, task._sim_service = t, service
            task.desired_status = "RUNNING"
            task._sim_due = t + timedelta(seconds=task_delay())
            task._sim_fails = fails
            backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
            sim(service)["tasks"].append(task)
            started.append(task)
        event(service, t, f"has started {count} tasks: " + " ".join(f"(task {x.id})" for x in started) + ".")

    def stop(backend, service, tasks, t, reason, code="ServiceSchedulerInitiated", exit_code=0):
        for task in tasks:
            task.last_status = task.desired_status = "STOPPED"
            task.stopped_reason, task.stop_code = reason, code
            task.stopping_at = task.stopped_at = t
            for container in task.containers:
                container.last_status, container.exitCode, container.reason = "STOPPED", exit_code, reason

    def stop_tasks(backend, service, tasks, t, reason):
        """Stop tasks as the scheduler does, with the event ECS writes."""
        if tasks:
            stop(backend, service, tasks, t, reason)
            event(service, t, f"has stopped {len(tasks)} running tasks: " + " ".join(f"(task {x.id})" for x in tasks) + ".")

    def live(service, dep):
        return [x for x in sim(service)["tasks"] if x.started_by == dep["id"] and x.desired_status == "RUNNING"]

    def schedule(backend, service, t):
        """Act as ECS's service scheduler at time t, after any change."""
        st, deps = sim(service), service.deployments
        if not deps:
            return
        primary = deps[0]
        meta = st["meta"].get(primary["id"], {})
        threshold = max(3, min(200, math.ceil(primary["desiredCount"] / 2)))
        if primary["rolloutState"] == "IN_PROGRESS" and meta.get("enable") and primary["failedTasks"] >= threshold:
            primary["rolloutState"] = "FAILED"
            primary["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
            event(service, t, f"(deployment {primary['id']}) deployment failed: tasks failed to start.")
            stop_tasks(backend, service, live(service, primary), t, f"Deployment {primary['id']} failed")
            target = next((d for d in deps[1:] if d["rolloutState"] == "COMPLETED"), None)
            if meta.get("rollback") and target is not None:
                primary["status"], target["status"] = "ACTIVE", "PRIMARY"
                target["rolloutState"] = "IN_PROGRESS"
                target["rolloutStateReason"] = f"ECS deployment circuit breaker: rolling back to deploymentId {target['id']}."
                target["desiredCount"] = service.desired_count
                deps.remove(target)
                deps.insert(0, target)
                service.task_definition = target["taskDefinition"]
                # Keep the failed deployment visible for a while, as ECS does.
                st["meta"].setdefault(target["id"], {})["not_before"] = t + timedelta(seconds=task_delay())
                st["wake"].append(t + timedelta(seconds=task_delay()))
                st["steady"] = False
                event(service, t, f"rolling back to deployment {target['id']}.")
                return schedule(backend, service, t)
        if service.status != "ACTIVE":
            for dep in deps:
                stop(backend, service, live(service, dep), t, "Service deleted")
        elif primary["rolloutState"] != "FAILED":
            tasks = live(service, primary)
            missing = primary["desiredCount"] - len(tasks)
            if missing > 0:
                launch(backend, service, primary, missing, t)
            elif missing < 0:
                extra = sorted(tasks, key=lambda x: x.last_status == "RUNNING")[:-missing]
                stop_tasks(backend, service, extra, t, f"Scaling activity initiated by (deployment {primary['id']})")
        tasks = live(service, primary)
        running = [x for x in tasks if x.last_status == "RUNNING"]
        settled = len(running) == len(tasks) == primary["desiredCount"] and t >= meta.get("not_before", t)
        if service.status == "ACTIVE" and primary["rolloutState"] != "FAILED" and settled:
            for dep in deps[1:]:
                stop_tasks(backend, service, live(service, dep), t, f"Scaling activity initiated by (deployment {primary['id']})")
            del deps[1:]
            if primary["rolloutState"] == "IN_PROGRESS":
                primary["rolloutState"] = "COMPLETED"
                primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
                event(service, t, f"(deployment {primary['id']}) deployment completed.")
            if not st["steady"]:
                st["steady"] = True
                event(service, t, "has reached a steady state.")
        service.running_count = service.pending_count = 0
        for dep in deps:
            tasks = live(service, dep)
            dep["runningCount"] = sum(x.last_status == "RUNNING" for x in tasks)
            dep["pendingCount"] = len(tasks) - dep["runningCount"]
            dep["updatedAt"] = t
            service.running_count += dep["runningCount"]
            service.pending_count += dep["pendingCount"]

    def play(backend, service, now):
        """Play the service forward to `now`: due tasks start or fail, in order."""
        st = sim(service)
        while True:
            due = [(x._sim_due, x) for x in st["tasks"] if x._sim_due is not None and x._sim_due <= now]
            due += [(w, None) for w in st["wake"] if w <= now]
            if not due:
                return
            t, task = min(due, key=lambda e: e[0])
            if task is None:
                st["wake"].remove(t)
                schedule(backend, service, t)
                continue
            dep = next((d for d in service.deployments if d["id"] == task.started_by), None)
            if task._sim_fails:
                reason = "Essential container in task exited"
                stop(backend, service, [task], t, reason, code="EssentialContainerExited", exit_code=1)
                if dep is not None:
                    dep["failedTasks"] += 1
                event(service, t, f"has stopped 1 running tasks: (task {task.id}). Reason: {reason}")
            else:
                task.last_status, task.started_at, task._sim_due = "RUNNING", t, None
                task.pull_started_at = task.pull_stopped_at = task.connectivity_at = t
                for container in task.containers:
                    container.last_status = "RUNNING"
                set_targets(backend, service, task, register=True)
            schedule(backend, service, t)

    def sync(backend):
        now = utcnow()
        for service in list(backend.services.values()):
            if service.deployment_controller.get("type", "ECS") == "ECS" and hasattr(service, "_sim"):
                play(backend, service, now)
        return now

    def start_deployment(backend, service, t):
        for dep in service.deployments:
            dep["status"] = "ACTIVE"
        dep_id = f"ecs-svc/{mock_random.randint(10**18, 10**19 - 1)}"
        service.deployments.insert(0, {
            "id": dep_id, "status": "PRIMARY", "taskDefinition": service.task_definition,
            "desiredCount": service.desired_count, "pendingCount": 0, "runningCount": 0,
            "failedTasks": 0, "createdAt": t, "updatedAt": t, "launchType": service.launch_type,
            "platformVersion": service.platform_version,
            "platformFamily": "Linux" if service.launch_type == "FARGATE" else None,
            "networkConfiguration": service.network_configuration or None,
            "rolloutState": "IN_PROGRESS", "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
        })
        breaker = (service.deployment_configuration or {}).get("deploymentCircuitBreaker") or {}
        sim(service)["meta"][dep_id] = {"enable": bool(breaker.get("enable")), "rollback": bool(breaker.get("rollback"))}
        sim(service)["steady"] = False
        schedule(backend, service, t)

    def default_security_group(backend, network_configuration):
        vpc = (network_configuration or {}).get("awsvpcConfiguration")
        if vpc is None or vpc.get("securityGroups") or not vpc.get("subnets"):
            return
        ec2 = m.ec2_backends[backend.account_id][backend.region_name]
        subnet = ec2.get_subnet(vpc["subnets"][0])
        group = ec2.get_default_security_group(subnet.vpc_id)
        vpc["securityGroups"] = [group.id] if group else []

    def default_deployment_configuration(given):
        conf = {"deploymentCircuitBreaker": {"enable": False, "rollback": False},
                "maximumPercent": 200, "minimumHealthyPercent": 100}
        conf.update(given or {})
        return conf

    original_create = backend_cls.create_service

    def create_service(self, cluster_str, service_name, desired_count, task_definition_str=None, *args, **kwargs):
        with LOCK:
            now = sync(self)
            cluster = self._get_cluster(cluster_str)
            existing = self.services.get(f"{cluster.name}:{service_name}")
            if existing is not None and existing.status == "ACTIVE":
                raise m.InvalidParameterException("Creation of service was not idempotent.")
            td = self.describe_task_definition(task_definition_str) if task_definition_str else None
            net = kwargs.get("network_configuration")
            if td is not None and td.network_mode == "awsvpc" and not net:
                raise m.InvalidParameterException(
                    "Network Configuration must be provided when networkMode 'awsvpc' is specified.")
            default_security_group(self, net)
            service = original_create(self, cluster_str, service_name, desired_count, task_definition_str, *args, **kwargs)
            for key, value in (getattr(request, "params", None) or {}).items():
                setattr(service, camelcase_to_underscores(key), value)
            service.deployment_configuration = default_deployment_configuration(
                getattr(service, "deployment_configuration", None))
            if service.deployment_controller.get("type", "ECS") != "ECS":
                return service
            service.task_definition = td.arn if td else None
            service.deployments, service.events = [], []
            try:
                start_deployment(self, service, now)
            except Exception:
                self.services.pop(f"{cluster.name}:{service_name}", None)  # no half-made service
                raise
            return service

    original_update = backend_cls.update_service

    def update_service(self, props):
        with LOCK:
            now = sync(self)
            props = dict(props)
            service = self._get_service(props.get("cluster", "default"), props["service"].split("/")[-1])
            if REFUSE_UPDATES["service"] is not None and service.name == REFUSE_UPDATES["service"]:
                from moto.core.exceptions import JsonRESTError
                raise JsonRESTError("ClientException", f"update-service of {service.name} refused by the test")
            if service.deployment_controller.get("type", "ECS") != "ECS" or not hasattr(service, "_sim"):
                return original_update(self, props)  # CODE_DEPLOY / EXTERNAL: moto's own
            if service.status != "ACTIVE":
                raise m.ECSException("ServiceNotActiveException", "Service was not ACTIVE.")
            del props["service"]
            props.pop("cluster", None)
            td_str, force = props.pop("task_definition", None), props.pop("force_new_deployment", False)
            default_security_group(self, props.get("network_configuration"))
            new = bool(force)
            if td_str:
                arn = self.describe_task_definition(td_str).arn
                new |= arn != service.task_definition
                service.task_definition = arn
            if props.get("network_configuration") is not None:
                new |= props["network_configuration"] != service.network_configuration
            if props.get("deployment_configuration") is not None:
                props["deployment_configuration"] = default_deployment_configuration(props["deployment_configuration"])
            for key, value in props.items():
                if value is not None:
                    setattr(service, key, value)
            if new:
                start_deployment(self, service, now)
            elif service.deployments and props.get("desired_count") is not None:
                service.deployments[0]["desiredCount"] = service.desired_count
                sim(service)["steady"] = False
                schedule(self, service, now)
            return service

    def synced(method, after=False):
        def wrapper(self, *args, **kwargs):
            with LOCK:
                now = sync(self)
                result = method(self, *args, **kwargs)
                if after:
                    for service in self.services.values():
                        if hasattr(service, "_sim"):
                            schedule(self, service, now)
                return result
        return wrapper

    original_list_tasks = backend_cls.list_tasks

    def list_tasks(self, cluster_str=None, container_instance=None, family=None, started_by=None,
                   service_name=None, desiredStatus=None):
        tasks = original_list_tasks(self, cluster_str, container_instance, family, started_by, None,
                                    desiredStatus or "RUNNING")
        if service_name:
            tasks = [x for x in tasks if x.group == f"service:{service_name.split('/')[-1]}"]
        return tasks

    backend_cls.create_service = create_service
    backend_cls.update_service = update_service
    backend_cls.list_tasks = synced(list_tasks)
    for name in ("describe_services", "describe_tasks", "list_services"):
        setattr(backend_cls, name, synced(getattr(backend_cls, name)))
    for name in ("stop_task", "delete_service"):
        setattr(backend_cls, name, synced(getattr(backend_cls, name), after=True))

    original_create_response = EC2ContainerServiceResponse.create_service

    def create_service_response(self):
        keys = ("deploymentConfiguration", "healthCheckGracePeriodSeconds", "enableExecuteCommand",
                "enableECSManagedTags", "placementConstraints", "placementStrategy", "capacityProviderStrategy")
        request.params = {k: self._get_param(k) for k in keys if self._get_param(k) is not None}
        try:
            return original_create_response(self)
        finally:
            request.params = None

    EC2ContainerServiceResponse.create_service = create_service_response


def test_endpoints(app):
    """WSGI middleware: /slipway-test/* is answered here, the rest by moto."""

    def respond(start_response, status, body):
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def switch(environ, start_response, table, key):
        """Set a test switch: POST {key: value} sets it (null clears it), DELETE clears it."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "DELETE":
            value = None
        elif method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                value = json.loads(environ["wsgi.input"].read(length) or b"{}").get(key)
            except (ValueError, AttributeError):
                return respond(start_response, "400 Bad Request", {"error": f'expected {{"{key}": "..."}}'})
        else:
            return respond(start_response, "405 Method Not Allowed", {"error": "POST or DELETE"})
        with LOCK:
            table[key] = value
        return respond(start_response, "200 OK", table)

    def wsgi(environ, start_response):
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/moto-api/reset" and method == "POST":
            with LOCK:
                FAIL["image_substring"] = None
                REFUSE_UPDATES["service"] = None
                REFUSE_S3_WRITES["key_prefix"] = None
        if path == "/slipway-test/refuse-s3-writes":
            return switch(environ, start_response, REFUSE_S3_WRITES, "key_prefix")
        if path == "/slipway-test/refuse-updates":
            return switch(environ, start_response, REFUSE_UPDATES, "service")
        if path == "/slipway-test/ping":
            import moto
            return respond(start_response, "200 OK", {"moto": moto.__version__, "launcher": "slipway"})
        if path == "/slipway-test/fail-new-tasks":
            return switch(environ, start_response, FAIL, "image_substring")
        if path.startswith("/slipway-test/"):
            return respond(start_response, "404 Not Found", {"error": f"no such test endpoint: {path}"})
        return app(environ, start_response)

    return wsgi


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()

    import moto

    if not moto.__version__.startswith(PINNED.rsplit(".", 1)[0] + "."):
        sys.exit(f"launcher.py patches moto {PINNED}'s ECS model; found moto {moto.__version__} "
                 f"(pip install 'moto[server]=={PINNED}')")
    os.environ.setdefault("MOTO_PORT", str(args.port))
    patch_ecs()
    patch_s3()
    patch_application_autoscaling()

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # The tests kill this server when they end; should they be killed first, it
    # goes away with them rather than linger.
    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, test_endpoints(app), threaded=True)


if __name__ == "__main__":
    main()
