//! The plan of `slipway rollback`: which verified release one deployment goes
//! back to, and what that means for each of its targets. Pure: it reads the
//! deployment's state record and the hosts the configuration names now, and
//! decides; the executors in `apply` carry it out. It does not check that a
//! release is still on a host (apply asks every host before changing any).
//! A rollback that cannot be planned is a [`RollbackPlanError`].

use serde::Serialize;

use crate::state::{
    DeploymentState, DeploymentStatus, EcsState, HostStatus, PreviousRelease, VerifiedRelease,
};

/// What `slipway rollback DEPLOYMENT [-to VERSION]` will do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackPlan {
    pub address: String,
    /// The environment's state name.
    pub environment: String,
    /// The version state records now (the one being left).
    pub from_version: String,
    /// The verified release it goes back to.
    pub to: VerifiedRelease,
    /// A `slipway rollback` to the same release was interrupted: this one
    /// finishes it.
    pub resumes: bool,
    pub target: RollbackTarget,
}

/// The targets of a rollback.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RollbackTarget {
    /// VM hosts, each switched back to the release kept on it.
    Vm { hosts: Vec<HostRollback> },
    /// An ECS service, updated back to the release's task definition.
    Ecs {
        /// What state records the service runs now.
        now: Box<EcsState>,
        /// What it runs afterwards.
        to: Box<EcsState>,
    },
}

/// One VM host of a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostRollback {
    pub host: String,
    /// The pair state records on the host now (`None`: nothing).
    pub serves: Option<PreviousRelease>,
    pub action: HostRollbackAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostRollbackAction {
    /// Switch the host to the release it keeps (no transfer), restart, check.
    Switch,
    /// State records the host on the release already, settled: left alone.
    AlreadyThere,
}

impl RollbackPlan {
    /// The release pair a host is switched to.
    pub fn pair(&self) -> PreviousRelease {
        PreviousRelease {
            version: self.to.version.clone(),
            artifact_sha256: self.to.artifact_sha256.clone(),
            config_digest: self.to.config_digest.clone(),
        }
    }

    /// Hosts that change.
    pub fn hosts_to_switch(&self) -> Vec<&HostRollback> {
        match &self.target {
            RollbackTarget::Vm { hosts } => hosts
                .iter()
                .filter(|h| h.action == HostRollbackAction::Switch)
                .collect(),
            RollbackTarget::Ecs { .. } => Vec::new(),
        }
    }

    /// Whether the rollback changes nothing.
    pub fn is_empty(&self) -> bool {
        match &self.target {
            RollbackTarget::Vm { .. } => self.hosts_to_switch().is_empty() && !self.resumes,
            RollbackTarget::Ecs { now, to } => {
                now.task_definition_arn == to.task_definition_arn
                    && now.canary.is_none()
                    && now.weights == to.weights
            }
        }
    }

    /// The plan as lines for people, ending with a newline.
    pub fn render(&self) -> String {
        let mut text = format!(
            "slipway rollback {}: {} -> {} (environment {})\n",
            self.address, self.from_version, self.to.version, self.environment
        );
        text.push_str(&format!(
            "  {} was deployed and verified by apply {} at {}\n",
            self.to.version, self.to.apply_id, self.to.verified_at
        ));
        if self.resumes {
            text.push_str("  an interrupted rollback to this release is finished\n");
        }
        match &self.target {
            RollbackTarget::Vm { hosts } => {
                for host in hosts {
                    let serves = host
                        .serves
                        .as_ref()
                        .map_or("nothing".to_string(), |p| p.version.clone());
                    match host.action {
                        HostRollbackAction::Switch => text.push_str(&format!(
                            "  ~ {}: {serves} -> {} (the release kept on the host: nothing is transferred)\n",
                            host.host, self.to.version
                        )),
                        HostRollbackAction::AlreadyThere => text.push_str(&format!(
                            "    {}: already on {}\n",
                            host.host, self.to.version
                        )),
                    }
                }
            }
            RollbackTarget::Ecs { now, to } => {
                let short = |arn: &Option<String>| {
                    arn.as_deref()
                        // `family:revision`, as apply's messages say it.
                        .map_or("(unknown)", |arn| arn.rsplit('/').next().unwrap_or(arn))
                        .to_string()
                };
                text.push_str(&format!(
                    "  ~ service {}: task definition {} -> {}, {} task(s)\n",
                    to.service_name,
                    short(&now.task_definition_arn),
                    short(&to.task_definition_arn),
                    to.desired_count
                ));
                if let Some(canary) = &now.canary {
                    text.push_str(&format!(
                        "  - service {} (the new side of an unfinished rollout, {}% of traffic): all traffic back to {}, then removed\n",
                        canary.service_name, canary.percent, to.service_name
                    ));
                }
            }
        }
        text
    }
}

/// Why no rollback can be planned; `known` lists the verified releases
/// state records, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackPlanError {
    /// `-to VERSION` names no verified release.
    #[error("{address} has no verified release {version} in state; {}", releases_known(.known))]
    NoSuchRelease {
        address: String,
        version: String,
        known: Vec<String>,
    },
    /// An interrupted rollback went to a release state no longer lists.
    #[error(
        "{address}: the interrupted rollback went to {version}, which state no longer lists; {}",
        releases_known(.known)
    )]
    InterruptedTargetGone {
        address: String,
        version: String,
        known: Vec<String>,
    },
    /// No verified release before the one `version` state records now.
    #[error(
        "{address} has no verified release before {version} in state; {}",
        releases_known(.known)
    )]
    NoEarlierRelease {
        address: String,
        version: String,
        known: Vec<String>,
    },
    /// The release ran on VM hosts and the deployment is on ECS now, or
    /// the other way round.
    #[error(
        "{address}: release {version} was not deployed to the kind of target (VM or ECS) the deployment has now; deploy the version you want with apply"
    )]
    OtherTargetKind { address: String, version: String },
    /// State records none of the hosts the configuration names.
    #[error(
        "{address}: state records none of the hosts the configuration names; nothing to roll back"
    )]
    NoKnownHosts { address: String },
}

/// Plan the rollback of `address` (recorded in `saved`, environment
/// `environment`) to `to` (a version) or, without it, to the newest verified
/// release other than the one state records now and the one an earlier
/// rollback left. `hosts` are the hosts the configuration names now: a host
/// state does not know is left out (nothing of the deployment ran there).
pub fn plan_rollback(
    address: &str,
    environment: &str,
    saved: &DeploymentState,
    hosts: &[String],
    to: Option<&str>,
) -> Result<RollbackPlan, RollbackPlanError> {
    let known = || -> Vec<String> { saved.releases.iter().map(|r| r.version.clone()).collect() };
    let unfinished = saved.rolled_back_from.as_ref().filter(|record| {
        saved.status != DeploymentStatus::Deployed && saved.version == record.to_version
    });
    let release = match (to, unfinished) {
        (Some(version), _) => saved
            .releases
            .iter()
            .rev()
            .find(|r| r.version == version)
            .ok_or_else(|| RollbackPlanError::NoSuchRelease {
                address: address.to_string(),
                version: version.to_string(),
                known: known(),
            })?,
        (None, Some(record)) => saved
            .releases
            .iter()
            .rev()
            .find(|r| r.version == record.to_version)
            .ok_or_else(|| RollbackPlanError::InterruptedTargetGone {
                address: address.to_string(),
                version: record.to_version.clone(),
                known: known(),
            })?,
        (None, None) => {
            let left = saved.rolled_back_from.as_ref().map(|r| r.version.as_str());
            saved
                .releases
                .iter()
                .rev()
                .find(|r| r.version != saved.version && Some(r.version.as_str()) != left)
                .ok_or_else(|| RollbackPlanError::NoEarlierRelease {
                    address: address.to_string(),
                    version: saved.version.clone(),
                    known: known(),
                })?
        }
    };
    let target = match (&saved.ecs, &release.ecs) {
        // The service that serves now keeps serving, with the release's
        // task definition; an unfinished rollout's new side goes.
        (Some(now), Some(then)) => RollbackTarget::Ecs {
            now: Box::new(now.clone()),
            to: Box::new(EcsState {
                task_definition: then.task_definition.clone(),
                task_definition_arn: then.task_definition_arn.clone(),
                weights: match (&now.canary, &now.target_group) {
                    // All traffic to the serving side, none to the new one.
                    (Some(canary), Some(group)) => {
                        [(canary.target_group.clone(), 0), (group.clone(), 100)].into()
                    }
                    _ => now.weights.clone(),
                },
                canary: None,
                ..now.clone()
            }),
        },
        (Some(_), None) | (None, Some(_)) => {
            return Err(RollbackPlanError::OtherTargetKind {
                address: address.to_string(),
                version: release.version.clone(),
            })
        }
        (None, None) => {
            let pair = PreviousRelease {
                version: release.version.clone(),
                artifact_sha256: release.artifact_sha256.clone(),
                config_digest: release.config_digest.clone(),
            };
            let hosts = hosts
                .iter()
                .filter_map(|host| {
                    let record = saved.hosts.get(host)?;
                    let there = record.pair() == pair
                        && matches!(record.status, HostStatus::Deployed | HostStatus::RolledBack);
                    Some(HostRollback {
                        host: host.clone(),
                        serves: Some(record.pair()),
                        action: if there {
                            HostRollbackAction::AlreadyThere
                        } else {
                            HostRollbackAction::Switch
                        },
                    })
                })
                .collect::<Vec<_>>();
            if hosts.is_empty() {
                return Err(RollbackPlanError::NoKnownHosts {
                    address: address.to_string(),
                });
            }
            RollbackTarget::Vm { hosts }
        }
    };
    Ok(RollbackPlan {
        address: address.to_string(),
        environment: environment.to_string(),
        from_version: saved.version.clone(),
        to: release.clone(),
        resumes: unfinished.is_some() && to.is_none_or(|v| v == release.version),
        target,
    })
}

/// "verified releases in state: A, B" or why there are none.
fn releases_known(versions: &[String]) -> String {
    if versions.is_empty() {
        return "state records no verified release of it (slipway records one each time a rollout finishes and passes its gates); deploy the version you want with apply".to_string();
    }
    format!(
        "verified releases in state: {} (pass one with -to VERSION)",
        versions.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{HostState, RollbackRecord, RELEASES_KEPT};

    fn host(version: &str, status: HostStatus) -> HostState {
        HostState {
            version: version.into(),
            artifact_sha256: Some(format!("sha-{version}")),
            status,
            updated_at: "t".into(),
            config_digest: Some(crate::state::config_digest(
                &[("/etc/web".to_string(), format!("v={version}"))].into(),
                None,
            )),
            rollout: None,
            previous: None,
        }
    }

    /// A VM deployment on `version` (hosts a and b) that verified `releases`
    /// in that order.
    fn deployment(version: &str, releases: &[&str]) -> DeploymentState {
        let mut saved = DeploymentState {
            verified: true,
            ..DeploymentState::new("service.web", "", DeploymentStatus::Deployed, "t")
        };
        for release in releases {
            saved.version = release.to_string();
            saved.config_files = [("/etc/web".to_string(), format!("v={release}"))].into();
            for name in ["a", "b"] {
                saved
                    .hosts
                    .insert(name.into(), host(release, HostStatus::Deployed));
            }
            saved.remember_verified_release(&format!("apply-{release}"), "t");
        }
        saved.version = version.into();
        saved
    }

    fn configured() -> Vec<String> {
        vec!["a".into(), "b".into(), "new".into()]
    }

    #[test]
    fn the_default_target_is_the_newest_verified_release_before_the_current_one() {
        let saved = deployment("3.0.0", &["1.0.0", "2.0.0", "3.0.0"]);
        let plan = plan_rollback("deployment.web", "prod", &saved, &configured(), None).unwrap();
        assert_eq!(
            (plan.from_version.as_str(), plan.to.version.as_str()),
            ("3.0.0", "2.0.0")
        );
        // A host state does not know is left out; the others switch.
        let RollbackTarget::Vm { hosts } = &plan.target else {
            panic!()
        };
        let names: Vec<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(!plan.resumes && !plan.is_empty());
        let text = plan.render();
        assert!(text.contains("~ a: 3.0.0 -> 2.0.0"), "{text}");

        let older = plan_rollback(
            "deployment.web",
            "prod",
            &saved,
            &configured(),
            Some("1.0.0"),
        )
        .unwrap();
        assert_eq!(older.to.version, "1.0.0");
        assert_eq!(older.to.config_files["/etc/web"], "v=1.0.0");
    }

    #[test]
    fn a_failed_rollout_goes_back_to_the_last_verified_release_not_to_itself() {
        // 2.0.0 failed: never verified, so the newest release is 1.0.0.
        let mut saved = deployment("2.0.0", &["1.0.0"]);
        saved.status = DeploymentStatus::Failed;
        saved
            .hosts
            .insert("a".into(), host("2.0.0", HostStatus::Failed));
        let plan = plan_rollback("deployment.web", "prod", &saved, &configured(), None).unwrap();
        assert_eq!(plan.to.version, "1.0.0");
        let RollbackTarget::Vm { hosts } = &plan.target else {
            panic!()
        };
        assert_eq!(hosts[0].action, HostRollbackAction::Switch);
        assert_eq!(hosts[1].action, HostRollbackAction::AlreadyThere);
    }

    #[test]
    fn unknown_versions_and_empty_histories_are_refused_with_what_exists() {
        let saved = deployment("2.0.0", &["1.0.0", "2.0.0"]);
        let error = plan_rollback(
            "deployment.web",
            "prod",
            &saved,
            &configured(),
            Some("0.9.0"),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("no verified release 0.9.0"), "{error}");
        assert!(
            error.contains("verified releases in state: 1.0.0, 2.0.0"),
            "{error}"
        );
        let first = deployment("1.0.0", &["1.0.0"]);
        let error = plan_rollback("deployment.web", "prod", &first, &configured(), None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no verified release before 1.0.0"),
            "{error}"
        );
    }

    #[test]
    fn after_a_rollback_the_next_one_goes_further_back_and_an_interrupted_one_resumes() {
        let mut saved = deployment("2.0.0", &["1.0.0", "2.0.0", "3.0.0"]);
        saved.rolled_back_from = Some(RollbackRecord {
            version: "3.0.0".into(),
            to_version: "2.0.0".into(),
            by: "alice".into(),
            at: "t".into(),
            apply_id: "rb-1".into(),
        });
        // Finished: neither 2.0.0 (current) nor 3.0.0 (left).
        let further = plan_rollback("deployment.web", "prod", &saved, &configured(), None).unwrap();
        assert_eq!(further.to.version, "1.0.0");
        // Interrupted: the same target again.
        saved.status = DeploymentStatus::InProgress;
        let resumed = plan_rollback("deployment.web", "prod", &saved, &configured(), None).unwrap();
        assert_eq!(resumed.to.version, "2.0.0");
        assert!(resumed.resumes);
    }

    #[test]
    fn a_release_verified_again_moves_to_the_end_and_only_the_newest_are_kept() {
        let versions: Vec<String> = (0..RELEASES_KEPT + 3).map(|n| format!("1.{n}.0")).collect();
        let names: Vec<&str> = versions.iter().map(String::as_str).collect();
        let mut saved = deployment("x", &names);
        assert_eq!(saved.releases.len(), RELEASES_KEPT);
        assert_eq!(saved.releases[0].version, "1.3.0");
        saved.version = "1.5.0".into();
        saved.config_files = [("/etc/web".to_string(), "v=1.5.0".to_string())].into();
        for h in saved.hosts.values_mut() {
            *h = host("1.5.0", HostStatus::Deployed);
        }
        saved.remember_verified_release("again", "t2");
        assert_eq!(saved.releases.len(), RELEASES_KEPT);
        let last = saved.releases.last().unwrap();
        assert_eq!(
            (last.version.as_str(), last.apply_id.as_str()),
            ("1.5.0", "again")
        );
        assert_eq!(
            saved
                .releases
                .iter()
                .filter(|r| r.version == "1.5.0")
                .count(),
            1
        );
    }
}
