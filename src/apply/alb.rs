//! Taking VM hosts out of an ALB target group and putting them back, with
//! aws-sdk-elasticloadbalancingv2, around the stop/start of each host.
//!
//! Deregistering waits until the load balancer has drained the target;
//! registering waits until the target is healthy (or the target group is
//! not attached to a load balancer, where ALB reports `unused`). Both poll
//! with backoff and give up after [`WAIT_LIMIT`]. What goes wrong is an
//! [`AlbError`].
//!
//! Not here: anything on the host itself (the VM executor does that).

use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};

use crate::aws::{self, error_text};
use crate::config::LoadBalancer;
use crate::transport::ssh::{host_address, SshSetupError};

/// How long a target may take to drain or to become healthy.
const WAIT_LIMIT: Duration = Duration::from_secs(300);

/// Why a host could not leave or join a target group.
#[derive(Debug, thiserror::Error)]
pub enum AlbError {
    /// The host string has no address a target group can know it by.
    #[error(transparent)]
    Host(#[from] SshSetupError),
    /// An Elastic Load Balancing call failed: `call` names it
    /// ("deregistering from", "registering with", "reading target health
    /// of"), `message` is the SDK's.
    #[error("{call} {target_group}: {message}")]
    Aws {
        call: &'static str,
        target_group: String,
        message: String,
    },
    /// The target did not get drained or healthy (`wanted`) within
    /// [`WAIT_LIMIT`]; `state` is the last one seen.
    #[error(
        "target {target} of {target_group} was not {wanted} within {limit:?} (state: {state})"
    )]
    Timeout {
        target: String,
        target_group: String,
        wanted: &'static str,
        limit: Duration,
        state: String,
    },
}

/// One target group the hosts of a deployment belong to.
pub struct TargetGroup {
    client: aws_sdk_elasticloadbalancingv2::Client,
    arn: String,
    port: Option<i32>,
}

impl TargetGroup {
    pub async fn connect(settings: &LoadBalancer) -> TargetGroup {
        let sdk = aws::sdk_config(&aws::Target::new(
            settings.region.as_deref(),
            settings.endpoint.as_deref(),
        ))
        .await;
        TargetGroup {
            client: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            arn: settings.target_group_arn.clone(),
            port: settings.port.map(i32::from),
        }
    }

    fn target(&self, host: &str) -> Result<TargetDescription, AlbError> {
        let id = host_address(host)?;
        Ok(TargetDescription::builder()
            .id(id)
            .set_port(self.port)
            .build())
    }

    fn aws_error(&self, call: &'static str, message: String) -> AlbError {
        AlbError::Aws {
            call,
            target_group: self.arn.clone(),
            message,
        }
    }

    /// Take `host` out of the target group and wait until it is drained.
    pub async fn deregister(&self, host: &str) -> Result<(), AlbError> {
        let target = self.target(host)?;
        if self.state_of(&target).await?.is_none() {
            // Not a member (a first install, or it left earlier): nothing to drain.
            return Ok(());
        }
        self.client
            .deregister_targets()
            .target_group_arn(&self.arn)
            .targets(target.clone())
            .send()
            .await
            .map_err(|e| self.aws_error("deregistering from", error_text(&e)))?;
        self.wait_for(&target, "drained", |state| {
            !matches!(state, Some(TargetHealthStateEnum::Draining))
        })
        .await
    }

    /// Put `host` back and wait until the load balancer finds it healthy.
    pub async fn register(&self, host: &str) -> Result<(), AlbError> {
        let target = self.target(host)?;
        self.client
            .register_targets()
            .target_group_arn(&self.arn)
            .targets(target.clone())
            .send()
            .await
            .map_err(|e| self.aws_error("registering with", error_text(&e)))?;
        self.wait_for(&target, "healthy", |state| {
            matches!(
                state,
                Some(TargetHealthStateEnum::Healthy | TargetHealthStateEnum::Unused)
            )
        })
        .await
    }

    /// The target's health state; `None` when the group does not list it.
    async fn state_of(
        &self,
        target: &TargetDescription,
    ) -> Result<Option<Option<TargetHealthStateEnum>>, AlbError> {
        let health = self
            .client
            .describe_target_health()
            .target_group_arn(&self.arn)
            .send()
            .await
            .map_err(|e| self.aws_error("reading target health of", error_text(&e)))?;
        Ok(health
            .target_health_descriptions()
            .iter()
            .find(|d| {
                d.target().is_some_and(|t| {
                    t.id() == target.id() && (target.port().is_none() || t.port() == target.port())
                })
            })
            .map(|d| d.target_health().and_then(|h| h.state()).cloned()))
    }

    async fn wait_for(
        &self,
        target: &TargetDescription,
        what: &'static str,
        done: impl Fn(Option<&TargetHealthStateEnum>) -> bool,
    ) -> Result<(), AlbError> {
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut interval = Duration::from_millis(200);
        loop {
            let state = self.state_of(target).await?;
            let current = state.as_ref().and_then(|s| s.as_ref());
            // A target the group no longer lists is as drained as it gets.
            if (state.is_none() && what == "drained") || (state.is_some() && done(current)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(AlbError::Timeout {
                    target: target.id().unwrap_or_default().to_string(),
                    target_group: self.arn.clone(),
                    wanted: what,
                    limit: WAIT_LIMIT,
                    state: current.map_or("not registered", |s| s.as_str()).to_string(),
                });
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(Duration::from_secs(5));
        }
    }
}
