//! `plan -refresh`: read what hosts really run (their release markers) and
//! fold it into the saved state before planning, so drift shows in the plan.
//!
//! Reading is the only side effect, and it happens in [`observe`]; folding the
//! observations into state and plan ([`fold_into_states`], [`add_drift_reasons`])
//! is pure.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Config;
use crate::plan::{Plan, Reason, ReasonKind, States};
use crate::state::HostStatus;
use crate::transport::local::LocalTransport;
use crate::transport::ssh::{SshOptions, SshTransport};
use crate::transport::Transport;
use crate::vm::steps::{self, HostContext, ReleaseMarker};

/// What one host said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostObservation {
    /// The release marker's version (`None`: nothing installed by slipway).
    Running(Option<String>),
    /// The host could not be reached or read.
    Unreachable(String),
}

/// Observations by deployment address, then host.
pub type Observations = BTreeMap<String, BTreeMap<String, HostObservation>>;

/// Read the release marker of every host of every VM deployment that state
/// tracks.
pub async fn observe(config: &Config, states: &States) -> Observations {
    let mut observations = Observations::new();
    let starts = tokio::sync::Semaphore::new(8);
    for deployment in config.deployments.values() {
        let (Some(vm), Some(environment)) =
            (&deployment.service.vm, config.environment_of(deployment))
        else {
            continue;
        };
        let Some(hosts) = &environment.vm_hosts else {
            continue;
        };
        let state_name = crate::plan::planner::environment_state_name(&deployment.environment);
        let Some(saved) = states
            .get(&state_name)
            .and_then(Option::as_ref)
            .and_then(|s| s.deployments.get(&deployment.address))
        else {
            continue;
        };
        let ssh = if hosts.transport == "ssh" {
            SshOptions::from_config(hosts, &config.root).ok()
        } else {
            None
        };
        let mut seen = BTreeMap::new();
        for host in saved.hosts.keys() {
            let transport = match &ssh {
                Some(options) => SshTransport::connect(host, options, &starts)
                    .await
                    .map(Transport::Ssh)
                    .map_err(|e| e.to_string()),
                None => {
                    let root = hosts
                        .root
                        .clone()
                        .unwrap_or_else(|| super::vm::DEFAULT_LOCAL_ROOT.to_string());
                    LocalTransport::new(host, config.root.join(root).join(host))
                        .map(Transport::Local)
                        .map_err(|e| e.to_string())
                }
            };
            let observation = match transport {
                Err(error) => HostObservation::Unreachable(error),
                Ok(transport) => {
                    let ctx = HostContext {
                        host: host.clone(),
                        host_index: 0,
                        host_root: transport.root(),
                        environment: environment.name.clone(),
                        deployment: deployment.name.clone(),
                        version: deployment.service.version.clone(),
                        apply_id: String::new(),
                        sudo: hosts.sudo,
                    };
                    let step = steps::read_release_marker(vm, &ctx);
                    let observed = match transport.run(&step.script, Duration::from_secs(30)).await
                    {
                        Ok(output) if output.success() => {
                            match ReleaseMarker::parse(&output.stdout) {
                                Ok(marker) => HostObservation::Running(marker.map(|m| m.version)),
                                Err(error) => HostObservation::Unreachable(format!(
                                    "unreadable release marker: {error}"
                                )),
                            }
                        }
                        Ok(output) => HostObservation::Unreachable(output.tail()),
                        Err(error) => HostObservation::Unreachable(error.to_string()),
                    };
                    transport.close().await;
                    observed
                }
            };
            seen.insert(host.clone(), observation);
        }
        observations.insert(deployment.address.clone(), seen);
    }
    observations
}

/// Make state say what the hosts say: a host on another version than state
/// records is recorded with that version (so the plan schedules it again); an
/// unreachable host is recorded as failed.
pub fn fold_into_states(states: &mut States, observations: &Observations) {
    for state in states.values_mut().flatten() {
        for (address, deployment) in state.deployments.iter_mut() {
            let Some(seen) = observations.get(address) else {
                continue;
            };
            for (host, record) in deployment.hosts.iter_mut() {
                match seen.get(host) {
                    Some(HostObservation::Running(Some(version))) if *version != record.version => {
                        record.version = version.clone();
                    }
                    Some(HostObservation::Running(None)) => {
                        record.status = HostStatus::Pending;
                    }
                    Some(HostObservation::Unreachable(_)) => record.status = HostStatus::Failed,
                    _ => {}
                }
            }
        }
    }
}

/// Add a `drift` reason to each deployment whose hosts differ from what state
/// recorded (`recorded` is the state before folding).
pub fn add_drift_reasons(plan: &mut Plan, recorded: &States, observations: &Observations) {
    for change in &mut plan.deployments {
        let Some(seen) = observations.get(&change.address) else {
            continue;
        };
        let saved = recorded
            .values()
            .flatten()
            .find_map(|s| s.deployments.get(&change.address));
        for (host, observation) in seen {
            let expected = saved
                .and_then(|d| d.hosts.get(host))
                .map(|h| h.version.as_str())
                .unwrap_or("");
            let summary = match observation {
                HostObservation::Running(Some(version)) if version != expected => {
                    format!("drift: {host} runs {version}, state recorded {expected}")
                }
                HostObservation::Running(None) => format!(
                    "drift: {host} has no release installed by slipway, state recorded {expected}"
                ),
                HostObservation::Unreachable(error) => {
                    format!("drift: {host} is unreachable ({error})")
                }
                _ => continue,
            };
            change.reasons.push(Reason {
                kind: ReasonKind::Drift,
                summary,
                diff: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{DeploymentState, DeploymentStatus, HostState, State};

    fn states() -> States {
        let mut state = State::new("prod");
        let hosts = ["a", "b", "c"]
            .iter()
            .map(|h| {
                (
                    h.to_string(),
                    HostState {
                        version: "2".into(),
                        artifact_sha256: None,
                        status: HostStatus::Deployed,
                        updated_at: "t".into(),
                    },
                )
            })
            .collect();
        state.deployments.insert(
            "deployment.web".into(),
            DeploymentState {
                service: "service.web".into(),
                version: "2".into(),
                artifact_sha256: None,
                rollout: None,
                rollout_digest: None,
                status: DeploymentStatus::Deployed,
                verified: true,
                config_files: Default::default(),
                systemd_unit: None,
                hosts,
                ecs: None,
                updated_at: "t".into(),
            },
        );
        BTreeMap::from([("prod".to_string(), Some(state))])
    }

    #[test]
    fn observations_fold_into_state() {
        let mut states = states();
        let observations = Observations::from([(
            "deployment.web".to_string(),
            BTreeMap::from([
                ("a".to_string(), HostObservation::Running(Some("2".into()))),
                ("b".to_string(), HostObservation::Running(Some("1".into()))),
                (
                    "c".to_string(),
                    HostObservation::Unreachable("refused".into()),
                ),
            ]),
        )]);
        fold_into_states(&mut states, &observations);
        let hosts = &states["prod"].as_ref().unwrap().deployments["deployment.web"].hosts;
        assert_eq!(hosts["a"].version, "2");
        assert_eq!(hosts["b"].version, "1");
        assert_eq!(hosts["c"].status, HostStatus::Failed);
    }
}
