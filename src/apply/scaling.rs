//! Application Auto Scaling around an ECS rollout: read the scalable target
//! on a service's desired count, suspend its scaling while a rollout runs,
//! restore it afterwards, and move it (with its scaling policies and
//! scheduled actions) to the other service when a canary or blue/green ends
//! with the new side serving.
//!
//! It decides no counts (`plan::capacity` does, and the ECS executor applies
//! them) and writes no state: the executor records a suspension in state
//! before it is made (`State::scaling_suspended`), so a killed apply's is
//! restored by the next one. A call that fails is a [`ScalingError`].

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace, SuspendedState};
use aws_sdk_applicationautoscaling::Client;

use crate::aws::error_text;
use crate::plan::ScalingTarget;
use crate::state::{ScalingSuspension, SuspendedScaling};

/// An Application Auto Scaling call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ScalingError {
    /// A call on one scalable target (`resource`, `service/CLUSTER/SERVICE`):
    /// `call` names it ("reading the autoscaling target of", "reading the
    /// scaling policies of", ...), `message` is the SDK's.
    #[error("{call} {resource}: {message}")]
    Aws {
        call: &'static str,
        resource: String,
        message: String,
    },
    /// Copying one scaling policy or scheduled action (`kind`) named `name`
    /// to the target on `to`.
    #[error("copying {kind} {name} to {to}: {message}")]
    Copy {
        kind: &'static str,
        name: String,
        to: String,
        message: String,
    },
}

fn aws_error(call: &'static str, resource: &str, message: String) -> ScalingError {
    ScalingError::Aws {
        call,
        resource: resource.to_string(),
        message,
    }
}

/// The resource id of an ECS service's scalable target,
/// `service/CLUSTER/SERVICE`, from a cluster name or ARN.
pub fn resource_id(cluster: &str, service: &str) -> String {
    let cluster_name = cluster.rsplit('/').next().unwrap_or(cluster);
    format!("service/{cluster_name}/{service}")
}

/// The target registered on `resource_id`'s desired count and what it has
/// suspended; `None` when autoscaling does not govern the service.
pub async fn read_target(
    client: &Client,
    resource_id: &str,
) -> Result<Option<(ScalingTarget, SuspendedScaling)>, ScalingError> {
    let found = client
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_ids(resource_id)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                "reading the autoscaling target of",
                resource_id,
                error_text(&e),
            )
        })?;
    Ok(found
        .scalable_targets()
        .iter()
        .find(|t| t.resource_id() == resource_id)
        .map(|target| {
            let suspended = target.suspended_state();
            (
                ScalingTarget {
                    min: target.min_capacity().max(0) as u32,
                    max: target.max_capacity().max(0) as u32,
                },
                SuspendedScaling {
                    dynamic_scaling_in: suspended
                        .and_then(SuspendedState::dynamic_scaling_in_suspended)
                        .unwrap_or(false),
                    dynamic_scaling_out: suspended
                        .and_then(SuspendedState::dynamic_scaling_out_suspended)
                        .unwrap_or(false),
                    scheduled_scaling: suspended
                        .and_then(SuspendedState::scheduled_scaling_suspended)
                        .unwrap_or(false),
                },
            )
        }))
}

fn suspended_state(suspended: SuspendedScaling) -> SuspendedState {
    SuspendedState::builder()
        .dynamic_scaling_in_suspended(suspended.dynamic_scaling_in)
        .dynamic_scaling_out_suspended(suspended.dynamic_scaling_out)
        .scheduled_scaling_suspended(suspended.scheduled_scaling)
        .build()
}

/// Register (or update) the target on `resource_id` with these bounds and
/// this suspended state.
async fn register(
    client: &Client,
    resource_id: &str,
    min: u32,
    max: u32,
    suspended: SuspendedScaling,
) -> Result<(), ScalingError> {
    client
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(resource_id)
        .min_capacity(min as i32)
        .max_capacity(max as i32)
        .suspended_state(suspended_state(suspended))
        .send()
        .await
        .map_err(|e| {
            aws_error(
                "setting the autoscaling target of",
                resource_id,
                error_text(&e),
            )
        })?;
    Ok(())
}

/// Suspend every kind of scaling of the recorded target (its bounds kept).
pub async fn suspend(client: &Client, suspension: &ScalingSuspension) -> Result<(), ScalingError> {
    register(
        client,
        &suspension.resource_id,
        suspension.min_capacity,
        suspension.max_capacity,
        SuspendedScaling::ALL,
    )
    .await
}

/// Put the target back as it was before the rollout, on `serving` (the
/// resource id of the service that serves now). When that is another
/// service than the suspended one, the target moves there: it is
/// registered on `serving`, the old one's scaling policies and scheduled
/// actions are copied to it, and the old target is deregistered. Each part
/// is idempotent, so a move cut off by a kill is finished by running it
/// again.
pub async fn restore(
    client: &Client,
    suspension: &ScalingSuspension,
    serving: &str,
) -> Result<(), ScalingError> {
    let from = suspension.resource_id.as_str();
    let (min, max) = (suspension.min_capacity, suspension.max_capacity);
    if serving == from {
        return register(client, from, min, max, suspension.before).await;
    }
    register(client, serving, min, max, SuspendedScaling::ALL).await?;
    copy_policies(client, from, serving).await?;
    copy_scheduled_actions(client, from, serving).await?;
    register(client, serving, min, max, suspension.before).await?;
    if read_target(client, from).await?.is_some() {
        client
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(from)
            .send()
            .await
            .map_err(|e| aws_error("removing the autoscaling target of", from, error_text(&e)))?;
    }
    Ok(())
}

async fn copy_policies(client: &Client, from: &str, to: &str) -> Result<(), ScalingError> {
    let policies = client
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(from)
        .send()
        .await
        .map_err(|e| aws_error("reading the scaling policies of", from, error_text(&e)))?;
    for policy in policies.scaling_policies() {
        client
            .put_scaling_policy()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(to)
            .policy_name(policy.policy_name())
            .policy_type(policy.policy_type().clone())
            .set_step_scaling_policy_configuration(
                policy.step_scaling_policy_configuration().cloned(),
            )
            .set_target_tracking_scaling_policy_configuration(
                policy
                    .target_tracking_scaling_policy_configuration()
                    .cloned(),
            )
            .set_predictive_scaling_policy_configuration(
                policy.predictive_scaling_policy_configuration().cloned(),
            )
            .send()
            .await
            .map_err(|e| ScalingError::Copy {
                kind: "scaling policy",
                name: policy.policy_name().to_string(),
                to: to.to_string(),
                message: error_text(&e),
            })?;
    }
    Ok(())
}

async fn copy_scheduled_actions(client: &Client, from: &str, to: &str) -> Result<(), ScalingError> {
    let actions = client
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(from)
        .send()
        .await
        .map_err(|e| aws_error("reading the scheduled actions of", from, error_text(&e)))?;
    for action in actions.scheduled_actions() {
        client
            .put_scheduled_action()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(to)
            .scheduled_action_name(action.scheduled_action_name())
            .schedule(action.schedule())
            .set_timezone(action.timezone().map(str::to_string))
            .set_start_time(action.start_time().cloned())
            .set_end_time(action.end_time().cloned())
            .set_scalable_target_action(action.scalable_target_action().cloned())
            .send()
            .await
            .map_err(|e| ScalingError::Copy {
                kind: "scheduled action",
                name: action.scheduled_action_name().to_string(),
                to: to.to_string(),
                message: error_text(&e),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_id_names_the_cluster_by_name_even_from_an_arn() {
        assert_eq!(
            resource_id("workshop-dev", "api"),
            "service/workshop-dev/api"
        );
        assert_eq!(
            resource_id(
                "arn:aws:ecs:us-east-1:123456789012:cluster/workshop-dev",
                "api"
            ),
            "service/workshop-dev/api"
        );
    }
}
