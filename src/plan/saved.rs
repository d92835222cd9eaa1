//! Saved plan files (`plan -out FILE`) and the staleness check apply uses.
//!
//! A saved plan is the plan JSON document. It records per environment the
//! state serial and lineage it was computed against and the configuration
//! digest; [`check_fresh`] compares those with the present. No I/O beyond the
//! file itself.

use std::path::Path;

use super::model::Plan;
use super::planner::States;

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read plan file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write plan file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a slipway plan: {detail}")]
    Invalid { path: String, detail: String },
}

pub fn write(path: &Path, plan: &Plan) -> Result<(), SavedPlanError> {
    let text = serde_json::to_string_pretty(plan).map_err(|e| SavedPlanError::Invalid {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, text + "\n")
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|source| SavedPlanError::Write {
            path: path.display().to_string(),
            source,
        })
}

pub fn read(path: &Path) -> Result<Plan, SavedPlanError> {
    let text = std::fs::read_to_string(path).map_err(|source| SavedPlanError::Read {
        path: path.display().to_string(),
        source,
    })?;
    super::document::parse(&text).map_err(|e| SavedPlanError::Invalid {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

/// Why a saved plan no longer applies; empty when it is fresh.
pub fn check_fresh(plan: &Plan, config_digest: &str, states: &States) -> Vec<String> {
    let mut problems = Vec::new();
    if plan.config_digest != config_digest {
        problems.push(
            "the configuration (or its input values) changed since the plan was made".to_string(),
        );
    }
    for basis in &plan.environments {
        let current = states.get(&basis.name).and_then(Option::as_ref);
        match (basis.state_serial, current) {
            (None, None) => {}
            (None, Some(state)) => problems.push(format!(
                "environment {}: the plan was made against empty state, but state now exists (serial {})",
                basis.name, state.serial
            )),
            (Some(serial), None) => problems.push(format!(
                "environment {}: the plan was made against state serial {serial}, but there is no state now",
                basis.name
            )),
            (Some(serial), Some(state)) => {
                if basis.state_lineage.as_deref() != Some(state.lineage.as_str()) {
                    problems.push(format!("environment {}: the state's lineage changed (it is a different state)", basis.name));
                } else if serial != state.serial {
                    problems.push(format!(
                        "environment {}: state changed since the plan (serial {serial} then, {} now)",
                        basis.name, state.serial
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::*;
    use crate::state::model::State;

    fn plan_against(serial: Option<u64>, lineage: Option<&str>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            slipway_version: "test".into(),
            config_digest: "abc".into(),
            environments: vec![EnvironmentBasis {
                name: "prod".into(),
                state_serial: serial,
                state_lineage: lineage.map(str::to_string),
            }],
            deployments: Vec::new(),
            schedule: Schedule::default(),
            outputs: Vec::new(),
            summary: Summary::default(),
            warnings: Vec::new(),
        }
    }

    fn state(serial: u64, lineage: &str) -> State {
        State {
            serial,
            lineage: lineage.into(),
            ..State::new("prod")
        }
    }

    #[test]
    fn fresh_when_nothing_changed() {
        let mut states = States::new();
        states.insert("prod".into(), Some(state(3, "L")));
        assert!(check_fresh(&plan_against(Some(3), Some("L")), "abc", &states).is_empty());
        let mut empty = States::new();
        empty.insert("prod".into(), None);
        assert!(check_fresh(&plan_against(None, None), "abc", &empty).is_empty());
    }

    #[test]
    fn stale_when_config_serial_lineage_or_existence_changed() {
        let mut states = States::new();
        states.insert("prod".into(), Some(state(4, "L")));
        assert_eq!(
            check_fresh(&plan_against(Some(3), Some("L")), "abc", &states).len(),
            1
        );
        assert_eq!(
            check_fresh(&plan_against(Some(4), Some("other")), "abc", &states).len(),
            1
        );
        assert_eq!(
            check_fresh(&plan_against(Some(4), Some("L")), "changed", &states).len(),
            1
        );
        let problems = check_fresh(&plan_against(None, None), "abc", &states);
        assert!(problems[0].contains("empty state"), "{problems:?}");
    }
}
