//! ECS and ALB requests and judgements as data: pure functions that the ECS
//! executor (`crate::apply::ecs`) sends and acts on.
//!
//! - the task definition's containers as SDK values ([`ContainerError`]: a
//!   part the SDK's builder refuses), and back from a live
//!   task definition to the JSON shape plan and state use
//!   ([`crate::plan::render::task_definition`]), so "does the latest revision
//!   already match?" and drift are one comparison of JSON values;
//! - the names of the two services a canary or blue/green rollout alternates
//!   between, the listener weights of each traffic step, and what live
//!   weights say about a step a killed apply left uncertain
//!   ([`judge_interrupted_shift`]);
//! - whether a service's deployment has finished, is still going or failed,
//!   judged from a [`ServiceSnapshot`] (what `DescribeServices` said).
//!
//! Not here: any AWS call, waiting, or state.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ecs::types::{
    ContainerDefinition, HealthCheck, KeyValuePair, LogConfiguration, LogDriver, PortMapping,
    Secret, TransportProtocol,
};

use crate::config::{DurationText, EcsSpec};

/// A container of the task definition that RegisterTaskDefinition cannot
/// take: a part of it the SDK's builder refused.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The secret `name` of `container`.
    #[error("container {container}: secret {name}: {source}")]
    Secret {
        container: String,
        name: String,
        source: aws_sdk_ecs::error::BuildError,
    },
    /// The health check of `container`.
    #[error("container {container}: health_check: {source}")]
    HealthCheck {
        container: String,
        source: aws_sdk_ecs::error::BuildError,
    },
    /// The log configuration of `container`.
    #[error("container {container}: log: {source}")]
    Log {
        container: String,
        source: aws_sdk_ecs::error::BuildError,
    },
}

/// The containers of `spec` as RegisterTaskDefinition wants them.
pub fn container_definitions(spec: &EcsSpec) -> Result<Vec<ContainerDefinition>, ContainerError> {
    let seconds = |duration: &Option<DurationText>| -> Option<i32> {
        duration.as_ref().map(|d| d.get().as_secs() as i32)
    };
    spec.containers
        .iter()
        .map(|c| {
            let mut container = ContainerDefinition::builder()
                .name(&c.name)
                .image(&c.image)
                .essential(c.essential.unwrap_or(true))
                .set_cpu(c.cpu.map(|v| v as i32))
                .set_memory(c.memory.map(|v| v as i32));
            if let Some(port) = c.port {
                container = container.port_mappings(
                    PortMapping::builder()
                        .container_port(i32::from(port))
                        .protocol(TransportProtocol::Tcp)
                        .build(),
                );
            }
            if !c.command.is_empty() {
                container = container.set_command(Some(c.command.clone()));
            }
            for (name, value) in &c.environment {
                container =
                    container.environment(KeyValuePair::builder().name(name).value(value).build());
            }
            for (name, arn) in &c.secrets {
                let secret = Secret::builder()
                    .name(name)
                    .value_from(arn)
                    .build()
                    .map_err(|source| ContainerError::Secret {
                        container: c.name.clone(),
                        name: name.clone(),
                        source,
                    })?;
                container = container.secrets(secret);
            }
            if let Some(log) = &c.log {
                let options: HashMap<String, String> = log
                    .options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let log = LogConfiguration::builder()
                    .log_driver(LogDriver::from(log.driver.as_str()))
                    .set_options((!options.is_empty()).then_some(options))
                    .build()
                    .map_err(|source| ContainerError::Log {
                        container: c.name.clone(),
                        source,
                    })?;
                container = container.log_configuration(log);
            }
            if let Some(health) = &c.health_check {
                let check = HealthCheck::builder()
                    .set_command(Some(health.command.clone()))
                    .set_interval(seconds(&health.interval))
                    .set_timeout(seconds(&health.timeout))
                    .set_retries(health.retries.map(|r| r as i32))
                    .build()
                    .map_err(|source| ContainerError::HealthCheck {
                        container: c.name.clone(),
                        source,
                    })?;
                container = container.health_check(check);
            }
            Ok(container.build())
        })
        .collect()
}

/// The task-level fields of a task definition, as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFields {
    pub family: String,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub network_mode: Option<String>,
    pub requires_compatibilities: Vec<String>,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
}

/// A task definition (fields and SDK containers) in the JSON shape of
/// [`crate::plan::render::task_definition`], for comparing a live revision
/// with the configured one. Fields slipway does not set are left out, and
/// defaults ECS fills in (a `cpu` of 0, empty lists) read as unset.
pub fn definition_json(
    fields: &TaskFields,
    containers: &[ContainerDefinition],
) -> serde_json::Value {
    let containers: Vec<serde_json::Value> = containers
        .iter()
        .map(|c| {
            let mut container = serde_json::json!({
                "name": c.name().unwrap_or_default(),
                "image": c.image().unwrap_or_default(),
                "essential": c.essential().unwrap_or(true),
            });
            let object = container.as_object_mut().expect("json object literal");
            if let Some(port) = c.port_mappings().first().and_then(|p| p.container_port()) {
                object.insert(
                    "portMappings".into(),
                    serde_json::json!([{ "containerPort": port, "protocol": "tcp" }]),
                );
            }
            if c.cpu() != 0 {
                object.insert("cpu".into(), c.cpu().into());
            }
            if let Some(memory) = c.memory() {
                object.insert("memory".into(), memory.into());
            }
            if !c.command().is_empty() {
                object.insert("command".into(), serde_json::json!(c.command()));
            }
            let environment: BTreeMap<&str, &str> = c
                .environment()
                .iter()
                .map(|kv| (kv.name().unwrap_or_default(), kv.value().unwrap_or_default()))
                .collect();
            if !environment.is_empty() {
                object.insert(
                    "environment".into(),
                    environment
                        .iter()
                        .map(|(k, v)| serde_json::json!({ "name": k, "value": v }))
                        .collect(),
                );
            }
            let secrets: BTreeMap<&str, &str> = c
                .secrets()
                .iter()
                .map(|s| (s.name(), s.value_from()))
                .collect();
            if !secrets.is_empty() {
                object.insert(
                    "secrets".into(),
                    secrets
                        .iter()
                        .map(|(k, v)| serde_json::json!({ "name": k, "valueFrom": v }))
                        .collect(),
                );
            }
            if let Some(log) = c.log_configuration() {
                let options: BTreeMap<String, String> = log
                    .options()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                object.insert(
                    "logConfiguration".into(),
                    serde_json::json!({ "logDriver": log.log_driver().as_str(), "options": options }),
                );
            }
            if let Some(health) = c.health_check() {
                object.insert(
                    "healthCheck".into(),
                    serde_json::json!({
                        "command": health.command(),
                        "interval": health.interval(),
                        "timeout": health.timeout(),
                        "retries": health.retries(),
                    }),
                );
            }
            container
        })
        .collect();
    let mut definition = serde_json::json!({
        "family": fields.family,
        "cpu": fields.cpu,
        "memory": fields.memory,
        "networkMode": fields.network_mode,
        "requiresCompatibilities": fields.requires_compatibilities,
        "containerDefinitions": containers,
    });
    let object = definition.as_object_mut().expect("json object literal");
    if let Some(arn) = &fields.execution_role_arn {
        object.insert("executionRoleArn".into(), arn.clone().into());
    }
    if let Some(arn) = &fields.task_role_arn {
        object.insert("taskRoleArn".into(), arn.clone().into());
    }
    definition
}

/// The fields of [`TaskFields`] as the configuration sets them.
pub fn task_fields(spec: &EcsSpec) -> TaskFields {
    TaskFields {
        family: spec.family.clone(),
        cpu: Some(spec.cpu.to_string()),
        memory: Some(spec.memory.to_string()),
        network_mode: Some(spec.network_mode.to_string()),
        requires_compatibilities: vec![spec.launch_type.to_string()],
        execution_role_arn: spec.execution_role_arn.clone(),
        task_role_arn: spec.task_role_arn.clone(),
    }
}

/// The container and port the load balancer sends traffic to: the first
/// container with a port.
pub fn load_balanced_container(spec: &EcsSpec) -> Option<(String, u16)> {
    spec.containers
        .iter()
        .find_map(|c| c.port.map(|port| (c.name.clone(), port)))
}

pub use crate::plan::planner::{canary_service_name, slot_service_name};

/// Listener weights that send `percent` of the traffic to `new` and the rest
/// to `old`.
pub fn step_weights(old: &str, new: &str, percent: u32) -> BTreeMap<String, u32> {
    let percent = percent.min(100);
    BTreeMap::from([(old.to_string(), 100 - percent), (new.to_string(), percent)])
}

/// Whether the listener's live weights (target group ARN → weight, as
/// `DescribeListeners` gives them) are `expected`: every expected group has
/// its weight, and any other group gets nothing.
pub fn weights_match(live: &BTreeMap<String, i32>, expected: &BTreeMap<String, u32>) -> bool {
    let expected_has = expected
        .iter()
        .all(|(group, weight)| live.get(group).copied().unwrap_or(0) == *weight as i32);
    let others_get_nothing = live
        .iter()
        .filter(|(group, _)| !expected.contains_key(*group))
        .all(|(_, weight)| *weight == 0);
    expected_has && others_get_nothing
}

/// Whether the listener sends all its traffic to `group`.
pub fn serves_only(live: &BTreeMap<String, i32>, group: &str) -> bool {
    live.get(group).is_some_and(|w| *w > 0)
        && live
            .iter()
            .filter(|(g, _)| *g != group)
            .all(|(_, w)| *w == 0)
}

/// What the listener shows about a traffic step that a killed apply started
/// and never recorded as finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptedShift {
    /// The listener has the weights the step set: the shift happened and
    /// only its record is missing.
    Done,
    /// The listener still has the weights state recorded before the step
    /// (or state recorded none): the step is to be run again.
    NotDone,
    /// Neither: the listener was changed some other way.
    Drifted,
}

/// Judge an interrupted traffic step from the listener's `live` weights,
/// the weights state `recorded` before the step, and those the step
/// `intended` to set.
pub fn judge_interrupted_shift(
    live: &BTreeMap<String, i32>,
    recorded: &BTreeMap<String, u32>,
    intended: &BTreeMap<String, u32>,
) -> InterruptedShift {
    if weights_match(live, intended) {
        InterruptedShift::Done
    } else if recorded.is_empty() || weights_match(live, recorded) {
        InterruptedShift::NotDone
    } else {
        InterruptedShift::Drifted
    }
}

/// What `DescribeServices` said about one service, reduced to what judging a
/// deployment needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSnapshot {
    /// `ACTIVE`, `DRAINING` or `INACTIVE`; `MISSING` when ECS does not know it.
    pub status: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub deployments: Vec<DeploymentSnapshot>,
    /// Newest first, as ECS lists them.
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentSnapshot {
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub failed_tasks: i32,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED` where ECS reports it.
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
}

/// Where a service deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Still going; the text says what it waits for.
    Waiting(String),
    /// Only the expected task definition runs, at the desired count.
    Stable,
    /// It cannot succeed; the text says why, with ECS's own events.
    Failed(String),
}

/// Failed tasks that make slipway give up on a deployment, as ECS's
/// deployment circuit breaker counts them: half the desired count, at least
/// 3 and at most 200.
pub fn failed_task_threshold(desired: i32) -> i32 {
    ((desired + 1) / 2).clamp(3, 200)
}

/// Judge whether the service runs `task_definition` at `desired` tasks and
/// nothing else.
pub fn judge(snapshot: &ServiceSnapshot, task_definition: &str, desired: i32) -> Verdict {
    let explain = |why: String| -> String {
        let events: Vec<&str> = snapshot.events.iter().take(3).map(String::as_str).collect();
        if events.is_empty() {
            why
        } else {
            format!("{why}; latest ECS events: {}", events.join(" | "))
        }
    };
    if snapshot.status != "ACTIVE" {
        return Verdict::Failed(explain(format!(
            "the service is {}",
            snapshot.status.to_lowercase()
        )));
    }
    let Some(primary) = snapshot.deployments.iter().find(|d| d.status == "PRIMARY") else {
        return Verdict::Waiting("no primary deployment yet".into());
    };
    if primary.task_definition != task_definition {
        let ours = snapshot
            .deployments
            .iter()
            .find(|d| d.task_definition == task_definition);
        return match ours {
            Some(ours) if ours.rollout_state.as_deref() != Some("FAILED") => {
                Verdict::Waiting("the new deployment is not primary yet".into())
            }
            _ => Verdict::Failed(explain(format!(
                "ECS rolled the service back to {}",
                short_arn(&primary.task_definition)
            ))),
        };
    }
    if primary.rollout_state.as_deref() == Some("FAILED") {
        let reason = primary
            .rollout_state_reason
            .clone()
            .unwrap_or_else(|| "the deployment failed".into());
        return Verdict::Failed(explain(reason));
    }
    if primary.failed_tasks >= failed_task_threshold(desired) {
        return Verdict::Failed(explain(format!(
            "{} task(s) of the new deployment failed to start",
            primary.failed_tasks
        )));
    }
    if snapshot.deployments.len() > 1 {
        return Verdict::Waiting(format!(
            "{} of {desired} new task(s) running, {} older deployment(s) draining",
            primary.running_count,
            snapshot.deployments.len() - 1
        ));
    }
    if primary.running_count < desired || snapshot.running_count < desired {
        return Verdict::Waiting(format!(
            "{} of {desired} task(s) running",
            primary.running_count
        ));
    }
    if primary.rollout_state.as_deref() == Some("IN_PROGRESS") {
        return Verdict::Waiting("the deployment is still in progress".into());
    }
    Verdict::Stable
}

/// `family:revision` of a task definition ARN, for messages.
pub fn short_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Container, ContainerHealth, LogConfig};

    fn spec() -> EcsSpec {
        EcsSpec {
            family: "workshop-backend".into(),
            cpu: 256,
            memory: 512,
            launch_type: crate::config::LaunchType::Fargate,
            network_mode: crate::config::NetworkMode::Awsvpc,
            execution_role_arn: Some("arn:aws:iam::1:role/exec".into()),
            task_role_arn: None,
            health_check_path: None,
            containers: vec![Container {
                name: "web".into(),
                image: "registry/backend:1.2.0".into(),
                port: Some(5000),
                cpu: None,
                memory: Some(256),
                essential: None,
                command: vec!["gunicorn".into(), "app:app".into()],
                environment: BTreeMap::from([
                    ("PORT".into(), "5000".into()),
                    ("APP_ENV".into(), "dev".into()),
                ]),
                secrets: BTreeMap::from([(
                    "DATABASE_URL".into(),
                    "arn:aws:secretsmanager:us-east-1:1:secret:db".into(),
                )]),
                log: Some(LogConfig {
                    driver: "awslogs".into(),
                    options: BTreeMap::from([("awslogs-group".into(), "/ecs/backend".into())]),
                }),
                health_check: Some(ContainerHealth {
                    command: vec!["CMD-SHELL".into(), "curl -f localhost:5000/".into()],
                    interval: Some(DurationText::parse("1m").unwrap()),
                    timeout: Some(DurationText::parse("5s").unwrap()),
                    retries: Some(3),
                }),
            }],
        }
    }

    fn live(weights: &[(&str, i32)]) -> BTreeMap<String, i32> {
        weights.iter().map(|(g, w)| (g.to_string(), *w)).collect()
    }

    #[test]
    fn an_interrupted_shift_is_done_when_the_listener_has_its_weights() {
        let recorded = step_weights("blue", "green", 10);
        let intended = step_weights("blue", "green", 25);
        assert_eq!(
            judge_interrupted_shift(&live(&[("blue", 75), ("green", 25)]), &recorded, &intended),
            InterruptedShift::Done
        );
        assert_eq!(
            judge_interrupted_shift(&live(&[("blue", 90), ("green", 10)]), &recorded, &intended),
            InterruptedShift::NotDone
        );
        assert_eq!(
            judge_interrupted_shift(&live(&[("blue", 50), ("green", 50)]), &recorded, &intended),
            InterruptedShift::Drifted
        );
        // A third target group that receives traffic is a change by someone else.
        assert_eq!(
            judge_interrupted_shift(
                &live(&[("blue", 75), ("green", 25), ("other", 5)]),
                &recorded,
                &intended
            ),
            InterruptedShift::Drifted
        );
        // Nothing recorded before the step: only the step's own weights count.
        assert_eq!(
            judge_interrupted_shift(&live(&[("blue", 100)]), &BTreeMap::new(), &intended),
            InterruptedShift::NotDone
        );
    }

    #[test]
    fn the_last_step_and_a_rollback_are_judged_like_any_other() {
        let recorded = step_weights("blue", "green", 50);
        let last = step_weights("blue", "green", 100);
        assert_eq!(
            judge_interrupted_shift(&live(&[("blue", 0), ("green", 100)]), &recorded, &last),
            InterruptedShift::Done
        );
        let back = step_weights("green", "blue", 100);
        assert_eq!(
            judge_interrupted_shift(&live(&[("blue", 100), ("green", 0)]), &recorded, &back),
            InterruptedShift::Done
        );
    }

    #[test]
    fn a_listener_serves_only_a_group_when_every_other_gets_nothing() {
        assert!(serves_only(&live(&[("blue", 100), ("green", 0)]), "blue"));
        assert!(
            serves_only(&live(&[("blue", 1)]), "blue"),
            "a plain forward"
        );
        assert!(!serves_only(&live(&[("blue", 90), ("green", 10)]), "blue"));
        assert!(!serves_only(&live(&[("blue", 0), ("green", 100)]), "blue"));
        assert!(!serves_only(&live(&[]), "blue"));
    }

    #[test]
    fn the_registered_containers_read_back_as_the_planned_definition() {
        let spec = spec();
        let containers = container_definitions(&spec).expect("valid containers");
        assert_eq!(
            definition_json(&task_fields(&spec), &containers),
            crate::plan::render::task_definition(&spec)
        );
    }

    #[test]
    fn a_changed_image_reads_back_as_a_different_definition() {
        let spec = spec();
        let mut changed = spec.clone();
        changed.containers[0].image = "registry/backend:1.3.0".into();
        let containers = container_definitions(&changed).expect("valid containers");
        assert_ne!(
            definition_json(&task_fields(&changed), &containers),
            crate::plan::render::task_definition(&spec)
        );
    }

    #[test]
    fn secrets_are_sent_as_references_only() {
        let containers = container_definitions(&spec()).expect("valid containers");
        let secret = &containers[0].secrets()[0];
        assert_eq!(
            (secret.name(), secret.value_from()),
            (
                "DATABASE_URL",
                "arn:aws:secretsmanager:us-east-1:1:secret:db"
            )
        );
    }

    #[test]
    fn slots_alternate_between_two_service_names() {
        assert_eq!(slot_service_name("web", 0), "web");
        assert_eq!(slot_service_name("web", 1), "web-green");
    }

    #[test]
    fn the_canary_is_named_beside_the_serving_service_never_as_it() {
        assert_eq!(canary_service_name("web", "web"), "web-green");
        assert_eq!(canary_service_name("web", "web-green"), "web");
    }

    #[test]
    fn step_weights_split_the_traffic() {
        let weights = step_weights("blue", "green", 25);
        assert_eq!(weights["blue"], 75);
        assert_eq!(weights["green"], 25);
        assert_eq!(step_weights("blue", "green", 150)["blue"], 0);
    }

    fn deployment(status: &str, td: &str, running: i32, failed: i32) -> DeploymentSnapshot {
        DeploymentSnapshot {
            id: format!("ecs-svc/{td}"),
            status: status.into(),
            task_definition: td.into(),
            desired_count: 2,
            running_count: running,
            failed_tasks: failed,
            rollout_state: Some("IN_PROGRESS".into()),
            rollout_state_reason: None,
        }
    }

    fn service(deployments: Vec<DeploymentSnapshot>, running: i32) -> ServiceSnapshot {
        ServiceSnapshot {
            status: "ACTIVE".into(),
            desired_count: 2,
            running_count: running,
            deployments,
            events: vec!["(service web) has started 1 tasks".into()],
        }
    }

    #[test]
    fn a_deployment_is_stable_only_when_alone_complete_and_at_the_desired_count() {
        let mut done = deployment("PRIMARY", "td:2", 2, 0);
        done.rollout_state = Some("COMPLETED".into());
        assert_eq!(
            judge(&service(vec![done.clone()], 2), "td:2", 2),
            Verdict::Stable
        );

        let draining = service(vec![done.clone(), deployment("ACTIVE", "td:1", 2, 0)], 4);
        assert!(matches!(judge(&draining, "td:2", 2), Verdict::Waiting(_)));

        let starting = service(vec![deployment("PRIMARY", "td:2", 1, 0)], 1);
        assert!(matches!(judge(&starting, "td:2", 2), Verdict::Waiting(_)));
    }

    #[test]
    fn failed_tasks_beyond_the_threshold_fail_with_the_events() {
        let failing = service(vec![deployment("PRIMARY", "td:2", 0, 3)], 0);
        let Verdict::Failed(why) = judge(&failing, "td:2", 2) else {
            panic!("must fail");
        };
        assert!(
            why.contains("3 task(s)") && why.contains("has started 1 tasks"),
            "{why}"
        );
        assert_eq!(failed_task_threshold(1), 3);
        assert_eq!(failed_task_threshold(20), 10);
        assert_eq!(failed_task_threshold(1000), 200);
    }

    #[test]
    fn a_circuit_breaker_rollback_is_a_failure() {
        let mut failed = deployment("ACTIVE", "td:2", 0, 4);
        failed.rollout_state = Some("FAILED".into());
        let restored = deployment("PRIMARY", "td:1", 2, 0);
        let Verdict::Failed(why) = judge(&service(vec![restored, failed], 2), "td:2", 2) else {
            panic!("must fail");
        };
        assert!(why.contains("rolled the service back to td:1"), "{why}");
    }

    #[test]
    fn a_missing_service_fails() {
        let missing = ServiceSnapshot {
            status: "MISSING".into(),
            ..ServiceSnapshot::default()
        };
        assert!(matches!(judge(&missing, "td:2", 1), Verdict::Failed(_)));
    }
}
