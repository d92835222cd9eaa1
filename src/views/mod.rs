//! Renderings of a [`Plan`] for the people and programs that read it.
//!
//! One plan value, three views:
//!
//! - [`human`]: Terraform-like text for a terminal, optionally coloured;
//! - [`markdown`]: a pull-request comment that stays under GitHub's size limit;
//! - [`json`]: the versioned machine-readable document (see `docs/plan-json.md`),
//!   together with the parser that reads it back.
//!
//! [`outputs`] renders the outputs alone, for `slipway output`.
//!
//! The views only format; every decision they show was made by the planner.

pub mod human;
pub mod json;
pub mod markdown;
pub mod outputs;

#[cfg(test)]
mod test_fixture;

use crate::plan::model::{
    Action, Plan, RolloutEnd, ScheduledDeployment, ScheduledStrategy, StepKind, Summary,
};

/// Which view [`render`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewFormat {
    /// Terminal text; `color` adds ANSI colour codes.
    Human { color: bool },
    /// A pull-request comment.
    Markdown,
    /// The plan JSON document.
    Json,
}

/// Renders `plan` in the requested format. The result ends with a newline.
pub fn render(plan: &Plan, format: ViewFormat) -> String {
    match format {
        ViewFormat::Human { color } => human::render(plan, color),
        ViewFormat::Markdown => markdown::render(plan),
        ViewFormat::Json => json::render(plan),
    }
}

/// The closing sentence of a plan without changes.
const NO_CHANGES_LINE: &str = "No changes. Deployments match the configuration and state.";

/// How many hosts of a batch are named before the rest are counted.
const HOSTS_NAMED_PER_STEP: usize = 5;

/// `Plan: 1 to create, 2 to update, 1 to destroy.`, or the no-changes sentence.
fn summary_sentence(summary: &Summary) -> String {
    if summary.has_changes() {
        summary.line()
    } else {
        NO_CHANGES_LINE.to_string()
    }
}

/// The predicate of a deployment header: `deployment.x will be updated`.
fn action_outcome(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated",
        Action::Destroy => "will be destroyed",
        Action::NoOp => "is unchanged",
    }
}

/// What one step does, e.g. `hosts web-1 (1 host)` or `shift 10% of traffic`.
fn describe_step_kind(kind: &StepKind) -> String {
    match kind {
        StepKind::HostBatch { hosts } => {
            let named: Vec<&str> = hosts
                .iter()
                .take(HOSTS_NAMED_PER_STEP)
                .map(String::as_str)
                .collect();
            let unnamed = hosts.len() - named.len();
            let mut listed = named.join(", ");
            if unnamed > 0 {
                listed.push_str(&format!(" and {unnamed} more"));
            }
            format!("hosts {listed} ({})", count_noun(hosts.len(), "host"))
        }
        StepKind::TrafficShift { percent } => format!("shift {percent}% of traffic"),
        StepKind::ServiceUpdate { desired_count } => format!(
            "update the service to {}",
            count_noun(*desired_count as usize, "task")
        ),
        StepKind::Remove => "remove".to_string(),
    }
}

/// What a rollout does after its last step, as one line.
fn describe_rollout_end(end: &RolloutEnd) -> String {
    match end {
        RolloutEnd::UpdateInPlace { service, temporary } => format!(
            "then: {service} is updated to the new version in place while {temporary} carries all traffic, takes all traffic back (keeping its name, autoscaling target and alarms), and {temporary} is removed"
        ),
    }
}

/// The rollback sentence without the `on failure, ` it may start with, for
/// showing after the failure policy: `on failure (rollback): switch every …`.
/// What a failure elsewhere means for `deployment` (in a wave after the
/// first when `later_wave`): the deployments it waits for, or that it runs
/// whatever another one does. `None` for a plan that does not record it.
fn dependency_words(deployment: &ScheduledDeployment, later_wave: bool) -> Option<String> {
    match deployment.after.as_deref()? {
        [] if later_wave => {
            Some("waits for no other deployment: runs even if another one fails".to_string())
        }
        [] => None,
        after => Some(format!(
            "waits for {}: not started if one of them fails",
            after.join(", ")
        )),
    }
}

fn failure_consequence(rollback: &str) -> &str {
    rollback.strip_prefix("on failure, ").unwrap_or(rollback)
}

/// `1 host`, `3 hosts`.
fn count_noun(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// A rollout strategy as prose (`blue/green` for `blue_green`), or `None`
/// for `remove`, which only repeats that the deployment is destroyed.
fn strategy_words(strategy: ScheduledStrategy) -> Option<&'static str> {
    match strategy {
        ScheduledStrategy::Remove => None,
        ScheduledStrategy::AllAtOnce => Some("all at once"),
        ScheduledStrategy::Rolling => Some("rolling"),
        ScheduledStrategy::Canary => Some("canary"),
        ScheduledStrategy::BlueGreen => Some("blue/green"),
    }
}

#[cfg(test)]
mod tests {
    use super::{render, ViewFormat};
    use crate::views::test_fixture::representative_plan;

    #[test]
    fn render_dispatches_to_each_view() {
        let plan = representative_plan();
        assert_eq!(
            render(&plan, ViewFormat::Human { color: false }),
            super::human::render(&plan, false)
        );
        assert_eq!(
            render(&plan, ViewFormat::Markdown),
            super::markdown::render(&plan)
        );
        assert_eq!(render(&plan, ViewFormat::Json), super::json::render(&plan));
    }
}
