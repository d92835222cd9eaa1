//! Taking VM hosts out of an ALB target group and putting them back, with
//! aws-sdk-elasticloadbalancingv2, around the stop/start of each host.
//!
//! Deregistering waits until the load balancer has drained the target;
//! registering waits until the target is healthy (or the target group is
//! not attached to a load balancer, where ALB reports `unused`). Both poll
//! with backoff and give up after [`WAIT_LIMIT`].
//!
//! Not here: anything on the host itself (the VM executor does that).

use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::{TargetDescription, TargetHealthStateEnum};

use crate::aws::{self, error_text};
use crate::config::LoadBalancer;
use crate::transport::ssh::host_address;

/// How long a target may take to drain or to become healthy.
const WAIT_LIMIT: Duration = Duration::from_secs(300);

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

    fn target(&self, host: &str) -> Result<TargetDescription, String> {
        let id = host_address(host)?;
        Ok(TargetDescription::builder()
            .id(id)
            .set_port(self.port)
            .build())
    }

    /// Take `host` out of the target group and wait until it is drained.
    pub async fn deregister(&self, host: &str) -> Result<(), String> {
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
            .map_err(|e| format!("deregistering from {}: {}", self.arn, error_text(&e)))?;
        self.wait_for(&target, "drained", |state| {
            !matches!(state, Some(TargetHealthStateEnum::Draining))
        })
        .await
    }

    /// Put `host` back and wait until the load balancer finds it healthy.
    pub async fn register(&self, host: &str) -> Result<(), String> {
        let target = self.target(host)?;
        self.client
            .register_targets()
            .target_group_arn(&self.arn)
            .targets(target.clone())
            .send()
            .await
            .map_err(|e| format!("registering with {}: {}", self.arn, error_text(&e)))?;
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
    ) -> Result<Option<Option<TargetHealthStateEnum>>, String> {
        let health = self
            .client
            .describe_target_health()
            .target_group_arn(&self.arn)
            .send()
            .await
            .map_err(|e| format!("reading target health of {}: {}", self.arn, error_text(&e)))?;
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
        what: &str,
        done: impl Fn(Option<&TargetHealthStateEnum>) -> bool,
    ) -> Result<(), String> {
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
                return Err(format!(
                    "target {} of {} was not {what} within {WAIT_LIMIT:?} (state: {})",
                    target.id().unwrap_or_default(),
                    self.arn,
                    current.map_or("not registered", |s| s.as_str())
                ));
            }
            tokio::time::sleep(interval).await;
            interval = (interval * 3 / 2).min(Duration::from_secs(5));
        }
    }
}
