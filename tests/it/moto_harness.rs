//! The AWS test bed itself (see `moto/mod.rs` and `moto/launcher.py`), through
//! the AWS SDK, not through slipway: ECS services whose deployments progress like
//! real ECS (tasks start after a delay, a new task definition gets a new PRIMARY
//! deployment that replaces the old one, a desired count change scales the
//! PRIMARY one), failing tasks with the circuit breaker and its rollback, the
//! switch that makes new tasks fail, service tasks registered in their target
//! group, the ALB fixture's listener weights, S3 conditional writes, reset, and
//! the environment for child processes.
//!
//! Every test starts its own server, and skips with a note when moto is not
//! installed (except under CI, where that is an error).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::moto::Moto;
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, Compatibility, ContainerDefinition, DeploymentCircuitBreaker,
    DeploymentConfiguration, DeploymentRolloutState, DesiredStatus, LaunchType, LoadBalancer,
    NetworkConfiguration, NetworkMode, PortMapping, Service, TaskStopCode,
};
use aws_sdk_ecs::Client as Ecs;

const CLUSTER: &str = "lab";

fn start() -> Option<Moto> {
    let moto = Moto::start();
    if moto.is_none() {
        eprintln!("note: test skipped, moto is not installed on this machine");
    }
    moto
}

/// How a test service is created.
struct Spec<'a> {
    name: &'a str,
    task_definition: &'a str,
    desired: i32,
    subnets: &'a [String],
    circuit_breaker: Option<bool>,
    target_group: Option<&'a str>,
}

impl<'a> Spec<'a> {
    fn new(name: &'a str, task_definition: &'a str, desired: i32, subnets: &'a [String]) -> Self {
        Spec {
            name,
            task_definition,
            desired,
            subnets,
            circuit_breaker: None,
            target_group: None,
        }
    }
}

async fn create_cluster(ecs: &Ecs) {
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .expect("CreateCluster");
}

/// A Fargate task definition of family `family` with one container `web`
/// (port 8080) running `image`; its ARN.
async fn register(ecs: &Ecs, family: &str, image: &str) -> String {
    let out = ecs
        .register_task_definition()
        .family(family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image(image)
                .essential(true)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("task definition ARN")
        .to_string()
}

/// Creates the service; what CreateService answered. No security group is
/// given: ECS (and the launcher) use the VPC's default one.
async fn create_service(ecs: &Ecs, spec: &Spec<'_>) -> Service {
    let vpc = AwsVpcConfiguration::builder()
        .set_subnets(Some(spec.subnets.to_vec()))
        .build()
        .expect("awsvpc configuration");
    let mut request = ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name(spec.name)
        .task_definition(spec.task_definition)
        .desired_count(spec.desired)
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(vpc)
                .build(),
        );
    if let Some(rollback) = spec.circuit_breaker {
        request = request.deployment_configuration(
            DeploymentConfiguration::builder()
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(rollback)
                        .build(),
                )
                .build(),
        );
    }
    if let Some(target_group) = spec.target_group {
        request = request.load_balancers(
            LoadBalancer::builder()
                .target_group_arn(target_group)
                .container_name("web")
                .container_port(8080)
                .build(),
        );
    }
    let out = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateService {}: {e:?}", spec.name));
    out.service().expect("the created service").clone()
}

async fn describe(ecs: &Ecs, name: &str) -> Service {
    let out = ecs
        .describe_services()
        .cluster(CLUSTER)
        .services(name)
        .send()
        .await
        .expect("DescribeServices");
    out.services()
        .first()
        .unwrap_or_else(|| panic!("service {name} not found: {:?}", out.failures()))
        .clone()
}

/// Poll DescribeServices with backoff until `done` holds (at most 30 s).
async fn wait_until(
    ecs: &Ecs,
    name: &str,
    what: &str,
    mut done: impl FnMut(&Service) -> bool,
) -> Service {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pause = Duration::from_millis(50);
    loop {
        let service = describe(ecs, name).await;
        if done(&service) {
            return service;
        }
        if Instant::now() > deadline {
            panic!("service {name}: {what} did not happen within 30 s; last seen:\n{service:#?}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(300));
    }
}

/// The service runs one deployment only, COMPLETED at its desired count.
fn settled(service: &Service) -> bool {
    let deployments = service.deployments();
    deployments.len() == 1
        && deployments[0].rollout_state() == Some(&DeploymentRolloutState::Completed)
        && deployments[0].running_count() == service.desired_count()
        && service.running_count() == service.desired_count()
}

fn primary(service: &Service) -> &aws_sdk_ecs::types::Deployment {
    service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .expect("a PRIMARY deployment")
}

fn events(service: &Service) -> Vec<String> {
    service
        .events()
        .iter()
        .filter_map(|e| e.message().map(str::to_string))
        .collect()
}

/// The service's tasks with this desired status, described.
async fn tasks(ecs: &Ecs, name: &str, status: DesiredStatus) -> Vec<aws_sdk_ecs::types::Task> {
    let arns = ecs
        .list_tasks()
        .cluster(CLUSTER)
        .service_name(name)
        .desired_status(status)
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    ecs.describe_tasks()
        .cluster(CLUSTER)
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("DescribeTasks")
        .tasks()
        .to_vec()
}

/// The private IP ECS gave the task's network interface.
fn task_ip(task: &aws_sdk_ecs::types::Task) -> String {
    task.attachments()
        .iter()
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some("privateIPv4Address"))
        .and_then(|d| d.value())
        .expect("the task's private IP")
        .to_string()
}

#[tokio::test]
async fn a_new_service_starts_its_tasks_and_completes_its_deployment() {
    let Some(moto) = start() else { return };
    let network = moto.create_network();
    let ecs = moto.ecs().await;
    create_cluster(&ecs).await;
    let td = register(&ecs, "web", "nginx:1.0").await;

    let created = create_service(&ecs, &Spec::new("web", &td, 2, &network.subnets)).await;
    assert_eq!(
        created.task_definition(),
        Some(td.as_str()),
        "full ARN, as ECS"
    );
    assert_eq!(created.deployments().len(), 1);
    let first = &created.deployments()[0];
    assert_eq!(first.status(), Some("PRIMARY"));
    assert_eq!(
        first.rollout_state(),
        Some(&DeploymentRolloutState::InProgress)
    );
    assert_eq!(first.running_count(), 0, "tasks take a while to start");
    assert_eq!(first.pending_count(), 2);
    let breaker = created
        .deployment_configuration()
        .and_then(|c| c.deployment_circuit_breaker())
        .expect("the default deployment configuration");
    assert!(!breaker.enable() && !breaker.rollback());

    let done = wait_until(&ecs, "web", "the first deployment completing", settled).await;
    let deployment = primary(&done);
    assert_eq!(deployment.id(), first.id(), "the same deployment completed");
    assert_eq!(deployment.running_count(), 2);
    assert_eq!(deployment.pending_count(), 0);
    assert_eq!(done.running_count(), 2);
    assert_eq!(done.pending_count(), 0);
    let events = events(&done);
    assert_eq!(
        events[0], "(service web) has reached a steady state.",
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("(service web) has started 2 tasks: (task ")),
        "{events:#?}"
    );

    let running = tasks(&ecs, "web", DesiredStatus::Running).await;
    assert_eq!(running.len(), 2);
    for task in &running {
        assert_eq!(task.last_status(), Some("RUNNING"));
        assert_eq!(task.started_by(), deployment.id());
        assert_eq!(task.group(), Some("service:web"));
        assert_eq!(task.task_definition_arn(), Some(td.as_str()));
        assert!(task.started_at().is_some());
    }
    assert!(tasks(&ecs, "other", DesiredStatus::Running)
        .await
        .is_empty());
    assert!(
        tasks(&ecs, "web", DesiredStatus::Stopped).await.is_empty(),
        "nothing stopped"
    );

    let again = ecs
        .create_service()
        .cluster(CLUSTER)
        .service_name("web")
        .task_definition(&td)
        .desired_count(1)
        .send()
        .await;
    assert!(again.is_err(), "an ACTIVE service cannot be created again");
}

#[tokio::test]
async fn a_new_task_definition_gets_a_new_primary_deployment_and_scaling_does_not() {
    let Some(moto) = start() else { return };
    let network = moto.create_network();
    let ecs = moto.ecs().await;
    create_cluster(&ecs).await;
    let td1 = register(&ecs, "web", "nginx:1.0").await;
    let td2 = register(&ecs, "web", "nginx:1.1").await;
    create_service(&ecs, &Spec::new("web", &td1, 2, &network.subnets)).await;
    let before = wait_until(&ecs, "web", "the first deployment completing", settled).await;
    let old_id = primary(&before).id().unwrap().to_string();

    let out = ecs
        .update_service()
        .cluster(CLUSTER)
        .service("web")
        .task_definition(&td2)
        .send()
        .await
        .expect("UpdateService");
    let updated = out.service().unwrap();
    assert_eq!(updated.task_definition(), Some(td2.as_str()));
    let deployments = updated.deployments();
    assert_eq!(deployments.len(), 2, "{deployments:#?}");
    assert_eq!(deployments[0].status(), Some("PRIMARY"));
    assert_eq!(deployments[0].task_definition(), Some(td2.as_str()));
    assert_eq!(
        deployments[0].rollout_state(),
        Some(&DeploymentRolloutState::InProgress)
    );
    let new_id = deployments[0].id().unwrap().to_string();
    assert_ne!(new_id, old_id);
    assert_eq!(deployments[1].status(), Some("ACTIVE"));
    assert_eq!(deployments[1].id(), Some(old_id.as_str()));
    assert_eq!(deployments[1].task_definition(), Some(td1.as_str()));
    assert_eq!(
        deployments[1].running_count(),
        2,
        "old tasks serve meanwhile"
    );

    let after = wait_until(&ecs, "web", "the new deployment replacing the old", settled).await;
    assert_eq!(primary(&after).id(), Some(new_id.as_str()));
    assert_eq!(primary(&after).task_definition(), Some(td2.as_str()));
    let running = tasks(&ecs, "web", DesiredStatus::Running).await;
    assert_eq!(running.len(), 2);
    assert!(running
        .iter()
        .all(|t| t.task_definition_arn() == Some(td2.as_str())
            && t.started_by() == Some(new_id.as_str())));
    let stopped = tasks(&ecs, "web", DesiredStatus::Stopped).await;
    assert_eq!(stopped.len(), 2, "the old deployment's tasks");
    for task in &stopped {
        assert_eq!(task.started_by(), Some(old_id.as_str()));
        assert_eq!(task.last_status(), Some("STOPPED"));
        assert_eq!(
            task.stopped_reason(),
            Some(format!("Scaling activity initiated by (deployment {new_id})").as_str())
        );
    }
    let events = events(&after);
    assert!(
        events.contains(&format!(
            "(service web) (deployment {new_id}) deployment completed."
        )),
        "{events:#?}"
    );

    // A desired count change scales the PRIMARY deployment: no new deployment.
    let scaled = ecs
        .update_service()
        .cluster(CLUSTER)
        .service("web")
        .desired_count(3)
        .send()
        .await
        .expect("UpdateService desiredCount");
    let scaled = scaled.service().unwrap();
    assert_eq!(scaled.deployments().len(), 1);
    assert_eq!(primary(scaled).id(), Some(new_id.as_str()));
    assert_eq!(primary(scaled).desired_count(), 3);
    let three = wait_until(&ecs, "web", "scaling to 3", |s| {
        settled(s) && s.running_count() == 3
    })
    .await;
    assert_eq!(primary(&three).id(), Some(new_id.as_str()));
    assert_eq!(tasks(&ecs, "web", DesiredStatus::Running).await.len(), 3);
}

#[tokio::test]
async fn the_circuit_breaker_fails_a_deployment_of_failing_tasks() {
    let Some(moto) = start() else { return };
    let network = moto.create_network();
    let ecs = moto.ecs().await;
    create_cluster(&ecs).await;
    let good = register(&ecs, "web", "nginx:1.0").await;
    let bad = register(&ecs, "web", "nginx:1.1-fail").await;
    let mut spec = Spec::new("web", &good, 1, &network.subnets);
    spec.circuit_breaker = Some(false);
    create_service(&ecs, &spec).await;
    let before = wait_until(&ecs, "web", "the first deployment completing", settled).await;
    let old_id = primary(&before).id().unwrap().to_string();

    ecs.update_service()
        .cluster(CLUSTER)
        .service("web")
        .task_definition(&bad)
        .send()
        .await
        .expect("UpdateService");
    let failed = wait_until(&ecs, "web", "the circuit breaker tripping", |s| {
        primary(s).rollout_state() == Some(&DeploymentRolloutState::Failed)
    })
    .await;
    let deployment = primary(&failed);
    assert_eq!(deployment.task_definition(), Some(bad.as_str()));
    assert_eq!(
        deployment.failed_tasks(),
        3,
        "one task at a time, 3 failures trip it"
    );
    assert_eq!(deployment.running_count(), 0);
    assert_eq!(
        deployment.rollout_state_reason(),
        Some("ECS deployment circuit breaker: tasks failed to start.")
    );
    let old = &failed.deployments()[1];
    assert_eq!(old.id(), Some(old_id.as_str()));
    assert_eq!(old.status(), Some("ACTIVE"));
    assert_eq!(old.running_count(), 1, "the old task keeps serving");
    assert_eq!(failed.running_count(), 1);

    let stopped = tasks(&ecs, "web", DesiredStatus::Stopped).await;
    assert_eq!(stopped.len(), 3);
    for task in &stopped {
        assert_eq!(task.started_by(), deployment.id());
        assert_eq!(
            task.stopped_reason(),
            Some("Essential container in task exited")
        );
        assert_eq!(
            task.stop_code(),
            Some(&TaskStopCode::EssentialContainerExited)
        );
        assert_eq!(task.containers()[0].exit_code(), Some(1));
    }
    let events = events(&failed);
    let id = deployment.id().unwrap();
    assert!(
        events.contains(&format!(
            "(service web) (deployment {id}) deployment failed: tasks failed to start."
        )),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("Essential container in task exited")),
        "{events:#?}"
    );

    // A FAILED deployment launches nothing more.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = describe(&ecs, "web").await;
    assert_eq!(primary(&later).failed_tasks(), 3);
    assert_eq!(primary(&later).pending_count(), 0);
}

#[tokio::test]
async fn the_circuit_breaker_rolls_back_to_the_last_completed_deployment() {
    let Some(moto) = start() else { return };
    let network = moto.create_network();
    let ecs = moto.ecs().await;
    create_cluster(&ecs).await;
    let good = register(&ecs, "web", "nginx:1.0").await;
    let bad = register(&ecs, "web", "registry.example/nginx:1.1-fail").await;
    let mut spec = Spec::new("web", &good, 2, &network.subnets);
    spec.circuit_breaker = Some(true);
    create_service(&ecs, &spec).await;
    let before = wait_until(&ecs, "web", "the first deployment completing", settled).await;
    let old_id = primary(&before).id().unwrap().to_string();
    let old_tasks = tasks(&ecs, "web", DesiredStatus::Running).await;

    let out = ecs
        .update_service()
        .cluster(CLUSTER)
        .service("web")
        .task_definition(&bad)
        .send()
        .await
        .expect("UpdateService");
    let new_id = primary(out.service().unwrap()).id().unwrap().to_string();

    let after = wait_until(&ecs, "web", "the rollback completing", |s| {
        settled(s) && primary(s).id() == Some(old_id.as_str())
    })
    .await;
    assert_eq!(after.task_definition(), Some(good.as_str()), "rolled back");
    assert_eq!(primary(&after).task_definition(), Some(good.as_str()));
    let running = tasks(&ecs, "web", DesiredStatus::Running).await;
    let ids = |tasks: &[aws_sdk_ecs::types::Task]| -> Vec<String> {
        let mut ids: Vec<String> = tasks
            .iter()
            .map(|t| t.task_arn().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(&running),
        ids(&old_tasks),
        "the old tasks never stopped"
    );

    let failed: Vec<_> = tasks(&ecs, "web", DesiredStatus::Stopped)
        .await
        .into_iter()
        .filter(|t| t.started_by() == Some(new_id.as_str()))
        .collect();
    let (exited, stopped): (Vec<_>, Vec<_>) = failed
        .iter()
        .partition(|t| t.stopped_reason() == Some("Essential container in task exited"));
    assert_eq!(exited.len(), 3, "the threshold for 2 tasks: {failed:#?}");
    let reason = format!("Deployment {new_id} failed");
    assert!(
        stopped
            .iter()
            .all(|t| t.stopped_reason() == Some(reason.as_str())),
        "the rest was stopped when the deployment failed: {stopped:#?}"
    );

    let events = events(&after);
    let failed_at = events
        .iter()
        .position(|e| {
            e == &format!(
                "(service web) (deployment {new_id}) deployment failed: tasks failed to start."
            )
        })
        .unwrap_or_else(|| panic!("no failure event: {events:#?}"));
    let rollback_at = events
        .iter()
        .position(|e| e == &format!("(service web) rolling back to deployment {old_id}."))
        .unwrap_or_else(|| panic!("no rollback event: {events:#?}"));
    assert!(
        rollback_at < failed_at,
        "newest first: rollback after failure"
    );
    assert_eq!(events[0], "(service web) has reached a steady state.");
}

#[tokio::test]
async fn the_switch_fails_new_tasks_until_it_is_cleared() {
    let Some(moto) = start() else { return };
    let network = moto.create_network();
    let ecs = moto.ecs().await;
    create_cluster(&ecs).await;
    let v1 = register(&ecs, "web", "nginx:1.0").await;
    let v2 = register(&ecs, "web", "nginx:2.0").await;
    create_service(&ecs, &Spec::new("web", &v1, 1, &network.subnets)).await;
    wait_until(&ecs, "web", "the first deployment completing", settled).await;

    moto.fail_new_tasks("nginx:2");
    ecs.update_service()
        .cluster(CLUSTER)
        .service("web")
        .task_definition(&v2)
        .send()
        .await
        .expect("UpdateService");
    let failing = wait_until(&ecs, "web", "4 failed tasks", |s| {
        primary(s).failed_tasks() >= 4
    })
    .await;
    let deployment = primary(&failing);
    assert_eq!(
        deployment.rollout_state(),
        Some(&DeploymentRolloutState::InProgress),
        "without a circuit breaker ECS keeps trying"
    );
    assert_eq!(deployment.running_count(), 0);
    assert_eq!(failing.deployments()[1].running_count(), 1);

    moto.clear_failing_tasks();
    let done = wait_until(&ecs, "web", "the deployment completing", settled).await;
    let deployment = primary(&done);
    assert_eq!(deployment.task_definition(), Some(v2.as_str()));
    assert!(deployment.failed_tasks() >= 4, "failures stay counted");
    assert_eq!(done.running_count(), 1);
}

#[tokio::test]
async fn service_tasks_are_registered_in_their_target_group() {
    let Some(moto) = start() else { return };
    let alb = moto.create_alb_with_two_target_groups("app", 80).await;
    let ecs = moto.ecs().await;
    let elb = moto.elbv2().await;
    create_cluster(&ecs).await;
    let v1 = register(&ecs, "web", "nginx:1.0").await;
    let v2 = register(&ecs, "web", "nginx:1.1").await;
    let mut spec = Spec::new("web", &v1, 2, &alb.subnets);
    spec.target_group = Some(&alb.green_target_group_arn);
    create_service(&ecs, &spec).await;
    wait_until(&ecs, "web", "the first deployment completing", settled).await;

    let health = |group: String| {
        let elb = elb.clone();
        async move {
            let out = elb
                .describe_target_health()
                .target_group_arn(group)
                .send()
                .await
                .expect("DescribeTargetHealth");
            out.target_health_descriptions()
                .iter()
                .map(|d| {
                    let target = d.target().unwrap();
                    let state = d.target_health().and_then(|h| h.state()).unwrap();
                    (
                        target.id().unwrap().to_string(),
                        (target.port(), state.as_str().to_string()),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        }
    };
    let expected = |tasks: Vec<aws_sdk_ecs::types::Task>| -> BTreeMap<_, _> {
        tasks
            .iter()
            .map(|t| (task_ip(t), (Some(8080), "healthy".to_string())))
            .collect()
    };
    let running = tasks(&ecs, "web", DesiredStatus::Running).await;
    assert_eq!(
        health(alb.green_target_group_arn.clone()).await,
        expected(running)
    );
    assert!(health(alb.blue_target_group_arn.clone()).await.is_empty());

    ecs.update_service()
        .cluster(CLUSTER)
        .service("web")
        .task_definition(&v2)
        .send()
        .await
        .expect("UpdateService");
    wait_until(&ecs, "web", "the new deployment completing", |s| {
        settled(s) && s.task_definition() == Some(v2.as_str())
    })
    .await;
    let running = tasks(&ecs, "web", DesiredStatus::Running).await;
    let victim = running[0].clone();
    assert_eq!(
        health(alb.green_target_group_arn.clone()).await,
        expected(running),
        "only the new tasks are registered"
    );

    // A task stopped by hand leaves the target group and is replaced.
    ecs.stop_task()
        .cluster(CLUSTER)
        .task(victim.task_arn().unwrap())
        .reason("test")
        .send()
        .await
        .expect("StopTask");
    let targets = health(alb.green_target_group_arn.clone()).await;
    assert!(!targets.contains_key(&task_ip(&victim)), "{targets:?}");
    wait_until(&ecs, "web", "the replacement running", settled).await;
    let running = tasks(&ecs, "web", DesiredStatus::Running).await;
    assert!(running.iter().all(|t| t.task_arn() != victim.task_arn()));
    assert_eq!(
        health(alb.green_target_group_arn.clone()).await,
        expected(running)
    );
}

#[tokio::test]
async fn the_alb_fixture_shifts_listener_weights() {
    let Some(moto) = start() else { return };
    let alb = moto.create_alb_with_two_target_groups("shop", 8080).await;
    let (blue, green) = (
        alb.blue_target_group_arn.as_str(),
        alb.green_target_group_arn.as_str(),
    );
    assert_ne!(blue, green);
    assert_eq!(alb.subnets.len(), 2);
    let weights = |b: i32, g: i32| BTreeMap::from([(blue.to_string(), b), (green.to_string(), g)]);
    assert_eq!(
        moto.listener_weights(&alb.listener_arn).await,
        weights(100, 0)
    );

    moto.set_listener_weights(&alb.listener_arn, &[(blue, 90), (green, 10)])
        .await;
    assert_eq!(
        moto.listener_weights(&alb.listener_arn).await,
        weights(90, 10)
    );
    moto.set_listener_weights(&alb.listener_arn, &[(blue, 0), (green, 100)])
        .await;
    assert_eq!(
        moto.listener_weights(&alb.listener_arn).await,
        weights(0, 100)
    );

    let elb = moto.elbv2().await;
    let groups = elb
        .describe_target_groups()
        .load_balancer_arn(&alb.load_balancer_arn)
        .send()
        .await
        .expect("DescribeTargetGroups");
    let mut names: Vec<&str> = groups
        .target_groups()
        .iter()
        .map(|g| {
            assert_eq!(g.vpc_id(), Some(alb.vpc_id.as_str()));
            assert_eq!(g.port(), Some(8080));
            g.target_group_name().unwrap()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["shop-blue", "shop-green"]);
    let lbs = elb
        .describe_load_balancers()
        .load_balancer_arns(&alb.load_balancer_arn)
        .send()
        .await
        .expect("DescribeLoadBalancers");
    let lb = &lbs.load_balancers()[0];
    assert_eq!(lb.vpc_id(), Some(alb.vpc_id.as_str()));
    assert_eq!(lb.security_groups(), [alb.security_group.as_str()]);
}

#[tokio::test]
async fn s3_conditional_writes_work_through_the_sdk_config() {
    let Some(moto) = start() else { return };
    let s3 = moto.s3().await;
    s3.create_bucket()
        .bucket("state")
        .send()
        .await
        .expect("CreateBucket");
    let put = |body: &'static str| {
        s3.put_object()
            .bucket("state")
            .key("lab.json")
            .if_none_match("*")
            .body(body.as_bytes().to_vec().into())
            .send()
    };
    put("{}").await.expect("first write");
    let second = put("{}").await.expect_err("the object exists");
    assert_eq!(
        second.raw_response().map(|r| r.status().as_u16()),
        Some(412)
    );
}

#[tokio::test]
async fn reset_wipes_resources_and_the_failure_switch() {
    let Some(moto) = start() else { return };
    let ecs = moto.ecs().await;
    create_cluster(&ecs).await;
    moto.fail_new_tasks("");
    moto.reset();
    let clusters = ecs.list_clusters().send().await.expect("ListClusters");
    assert!(clusters.cluster_arns().is_empty(), "{clusters:?}");

    let network = moto.create_network();
    create_cluster(&ecs).await;
    let td = register(&ecs, "web", "nginx:1.0").await;
    create_service(&ecs, &Spec::new("web", &td, 1, &network.subnets)).await;
    let done = wait_until(&ecs, "web", "the deployment completing", settled).await;
    assert_eq!(primary(&done).failed_tasks(), 0, "the switch was cleared");
}

#[test]
fn the_environment_points_a_child_sdk_at_moto() {
    let Some(moto) = start() else { return };
    let env: BTreeMap<String, String> = moto.env().into_iter().collect();
    assert_eq!(env["AWS_ACCESS_KEY_ID"], "testing");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_EC2_METADATA_DISABLED"], "true");
    for file in ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"] {
        let path = std::path::Path::new(&env[file]);
        assert!(path.starts_with(moto.dir()), "{file} is the harness's");
        assert_eq!(std::fs::read_to_string(path).unwrap(), "");
    }
    // boto3 comes with moto: a child SDK that knows nothing but the
    // environment reaches this server.
    let mut command = std::process::Command::new(moto.python());
    command.args([
        "-c",
        "import boto3; c = boto3.client('ecs'); c.create_cluster(clusterName='child'); \
         print(c.list_clusters()['clusterArns'])",
    ]);
    moto.apply_env(&mut command).env("HOME", moto.dir());
    let out = command.output().expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "['arn:aws:ecs:us-east-1:123456789012:cluster/child']"
    );
    assert!(
        moto.log().contains("POST / HTTP/1.1"),
        "the request reached this server"
    );
}
