//! Helpers shared by the integration tests: the examples, loading their
//! configuration, and saved states built from a configuration ("as if
//! everything had been applied").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use slipway::config::{Config, Deployment, InputSources};
use slipway::plan::planner::{
    desired_config_files, desired_count, desired_systemd_unit, desired_task_definition,
    environment_state_name, rollout_digest,
};
use slipway::plan::States;
use slipway::state::{
    DeploymentState, DeploymentStatus, EcsState, HistoryEntry, HistoryOperation, HistoryResult,
    HostState, HostStatus, State, STATE_VERSION,
};

/// Time recorded in every fixture state, so fixtures do not change between runs.
pub const FIXTURE_TIME: &str = "2024-05-02T09:30:00Z";

/// The example database password of `examples/vm-myapp/vars/example.vars.hcl`.
pub const EXAMPLE_DB_PASSWORD: &str = "example-not-a-real-password";

/// The artifact digest of `examples/vm-myapp/vars/example.vars.hcl` (version 2.4.1).
pub const SHA_2_4_1: &str = "084c5d48f50950785ca7c133bfc521d377a3fb36348b7e0275662db2d94a16d6";

/// A made-up artifact digest for myapp 2.4.0, the release before the example's.
pub const SHA_2_4_0: &str = "5e0f3a9c1b7d24680ace13579bdf02468ace13579bdf02468ace13579bdf0246";

/// The package root: examples, modules and the tests' fixtures live below it.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn example_dir(name: &str) -> PathBuf {
    root().join("examples").join(name)
}

pub fn vm_myapp_var_file() -> PathBuf {
    example_dir("vm-myapp").join("vars/example.vars.hcl")
}

/// Directory of the saved-state fixtures of one case.
pub fn state_fixture_dir(case: &str) -> PathBuf {
    root().join("tests/fixtures/states").join(case)
}

/// Load a configuration with `-var` flags and var files (no `SLIPWAY_VAR_*`),
/// failing the test with the rendered diagnostics when it is invalid.
pub fn load_config(dir: &Path, vars: &[&str], var_files: &[PathBuf]) -> Config {
    let loaded = slipway::config::load(
        dir,
        &InputSources {
            vars: vars.iter().map(|v| v.to_string()).collect(),
            var_files: var_files.to_vec(),
            environment: Vec::new(),
        },
    );
    match loaded.config {
        Some(config) => config,
        None => panic!(
            "{} does not load:\n{}",
            dir.display(),
            slipway::diagnostics::render(&loaded.sources, &loaded.diagnostics, false)
        ),
    }
}

/// The example `quickstart` (its defaults: version 1.0.0).
pub fn quickstart(vars: &[&str]) -> Config {
    load_config(&example_dir("quickstart"), vars, &[])
}

/// The example `vm-myapp` with its example var file, plus `vars`.
pub fn vm_myapp(vars: &[&str]) -> Config {
    load_config(&example_dir("vm-myapp"), vars, &[vm_myapp_var_file()])
}

/// `vm-myapp` as it was configured for release 2.4.0.
pub fn vm_myapp_2_4_0() -> Config {
    let sha = format!("artifact_sha256={SHA_2_4_0}");
    vm_myapp(&["version=2.4.0", &sha])
}

/// The example `ecs-workshop` with both services at `version`.
pub fn ecs_workshop(backend: &str, frontend: &str) -> Config {
    let backend = format!("backend_version={backend}");
    let frontend = format!("frontend_version={frontend}");
    load_config(&example_dir("ecs-workshop"), &[&backend, &frontend], &[])
}

/// A deterministic lineage for an environment's fixture state.
pub fn fixture_lineage(environment: &str) -> String {
    let mut number: u64 = 0;
    for byte in environment.bytes() {
        number = number.wrapping_mul(31).wrapping_add(u64::from(byte));
    }
    format!("0f1c5e7a-0000-4000-8000-{:012x}", number & 0xffff_ffff_ffff)
}

/// What state records for `deployment` after a successful, verified apply of
/// its configuration as `config` has it.
pub fn applied_deployment(config: &Config, deployment: &Deployment) -> DeploymentState {
    let environment = config
        .environment_of(deployment)
        .expect("every deployment has an environment");
    let version = deployment.service.version.clone();
    let sha = deployment
        .service
        .artifact
        .as_ref()
        .and_then(|a| a.sha256.clone());
    let is_ecs = deployment.service.vm.is_none() || environment.vm_hosts.is_none();
    let hosts = if is_ecs {
        BTreeMap::new()
    } else {
        environment
            .vm_hosts
            .iter()
            .flat_map(|v| v.hosts.iter())
            .map(|host| {
                (
                    host.clone(),
                    HostState {
                        version: version.clone(),
                        artifact_sha256: sha.clone(),
                        status: HostStatus::Deployed,
                        updated_at: FIXTURE_TIME.to_string(),
                        previous: None,
                        config_digest: None,
                        rollout: None,
                    },
                )
            })
            .collect()
    };
    let ecs = match (deployment.ecs_settings(environment), is_ecs) {
        (Some(cluster), true) => {
            let task_definition = desired_task_definition(config, deployment)
                .expect("an ECS service has a task definition");
            let family = deployment
                .service
                .ecs
                .as_ref()
                .map_or("task", |e| e.family.as_str());
            let mut weights = BTreeMap::new();
            if let [blue, green] = cluster.target_groups.as_slice() {
                weights.insert(blue.clone(), 100);
                weights.insert(green.clone(), 0);
            }
            Some(EcsState {
                cluster: cluster.cluster.clone(),
                service_name: cluster.service_name.clone().unwrap_or_default(),
                task_definition,
                task_definition_arn: Some(format!(
                    "arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:7"
                )),
                desired_count: desired_count(deployment, environment),
                target_group: cluster.target_groups.first().cloned(),
                weights,
                canary: None,
            })
        }
        _ => None,
    };
    DeploymentState {
        service: deployment.service.address.clone(),
        version,
        artifact_sha256: sha,
        rollout: deployment.rollout.clone(),
        rollout_digest: Some(rollout_digest(config.rollout_of(deployment))),
        rollout_id: None,
        status: DeploymentStatus::Deployed,
        verified: true,
        config_files: desired_config_files(config, deployment),
        // As a state written before digests were kept (digests are salted at
        // random, and fixtures must be reproducible); rotation is tested
        // end to end (secret_taint).
        sensitive_digests: Default::default(),
        systemd_unit: desired_systemd_unit(config, deployment),
        hosts,
        ecs,
        approvals: Vec::new(),
        gates: Vec::new(),
        releases: Vec::new(),
        rolled_back_from: None,
        updated_at: FIXTURE_TIME.to_string(),
    }
}

/// The state of `environment` (a state name, e.g. `dev`) as if every
/// deployment of `config` there had been applied and verified.
pub fn applied_state(config: &Config, environment: &str) -> State {
    let mut state = State {
        version: STATE_VERSION,
        serial: 3,
        lineage: fixture_lineage(environment),
        environment: environment.to_string(),
        deployments: BTreeMap::new(),
        history: Vec::new(),
        journal: Vec::new(),
        scaling_suspended: BTreeMap::new(),
    };
    for deployment in config.deployments.values() {
        if environment_state_name(&deployment.environment) == environment {
            state.deployments.insert(
                deployment.address.clone(),
                applied_deployment(config, deployment),
            );
        }
    }
    state.history.push(HistoryEntry {
        apply_id: format!("apply-{environment}-1"),
        operation: HistoryOperation::Apply,
        who: "ci".to_string(),
        started_at: FIXTURE_TIME.to_string(),
        finished_at: Some(FIXTURE_TIME.to_string()),
        plan_digest: None,
        versions: state
            .deployments
            .iter()
            .map(|(address, d)| (address.clone(), d.version.clone()))
            .collect(),
        result: HistoryResult::Succeeded,
        approvals: Vec::new(),
    });
    state
}

/// The environments (state names) `config` uses, in order.
pub fn environment_names(config: &Config) -> Vec<String> {
    slipway::plan::planner::environments_needed(config)
        .into_iter()
        .collect()
}

/// Read every `<env>.json` of a directory as the states a plan is computed against.
pub fn read_state_dir(dir: &Path) -> States {
    let mut states = States::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("readable fixture");
        let state: State = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a state: {e}", path.display()));
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(state.environment, name, "{}", path.display());
        states.insert(name, Some(state));
    }
    states
}

/// The JSON text of a state file as the local backend writes it.
pub fn state_json(state: &State) -> String {
    let mut text = serde_json::to_string_pretty(state).expect("a state serializes");
    text.push('\n');
    text
}
