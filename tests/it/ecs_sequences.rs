//! Random operation sequences on the ECS path, checked in the emulator.
//!
//! An account that is not empty: before slipway runs, moto holds the
//! deployment's service (`seq-dev-backend`, a task definition of its own,
//! 3 tasks, registered with the blue target group, all traffic on blue) and
//! a bystander service slipway has no business with. A seeded random
//! generator then picks operations one after another: apply a new version
//! (under a rolling, canary or approval-gated canary rollout, switched at
//! random), apply a version whose tasks fail, `kill -9` an apply (at one of
//! the recorder's crash points, or after a random time), approve or reject
//! a rollout waiting for approval, `slipway rollback`, and changes behind
//! slipway's back: the serving service's desired count set by hand, the
//! listener's weights set to 50/50, the serving service put under
//! Application Auto Scaling. After every operation the test reads moto
//! itself (services, task definitions, listener weights, scalable targets),
//! and state and `slipway plan`, and checks the rules below. At the end of
//! each sequence one more version is applied: it must converge.
//!
//! The rules (the ECS invariants of this project):
//! 8. Never destroy what you did not create: the bystander service runs as
//!    it did; the adopted service's own task definition is never
//!    deregistered; with no record in state, the adopted service still runs
//!    its own task definition.
//! 9. Capacity never drops: under autoscaling, no operation of slipway
//!    leaves the serving service with fewer tasks than it had before, or
//!    below the target's minimum; once an apply or rollback has ended in
//!    order (with no kill since), the target (with its policy and scheduled
//!    action) is on the serving service and nothing of it is suspended; a
//!    suspension a kill left behind is in state and `plan` shows it.
//! 10. Traffic tells the truth: the listener's weights equal the recorded
//!    ones, or `plan` shows the difference as a `listener_weights` change.
//! 2. State tells the truth (as far as ECS goes): a deployment recorded
//!    deployed or rolled back runs, in ECS, the task definition state
//!    records, on the service state records.
//! 7. Nothing left behind: once an apply or rollback has ended in order
//!    (with no kill since), the only active services of the deployment are
//!    the serving one and the new side of a canary state records as in
//!    flight; the state lock is free, or held by a killed process.
//! 11. The service keeps its identity: the service state records as
//!    serving is always the adopted one, `seq-dev-backend`, whatever ran;
//!    a CloudWatch alarm made on that name before slipway (as real
//!    accounts have them) watches, once settled, the active service state
//!    gives all the traffic.
//!
//! `SLIPWAY_SEQ_SEED=N` replays a sequence a failure printed;
//! `SLIPWAY_SEQ_SECONDS=S` runs sequences for S seconds (default 90).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use slipway::state::{Backend, DeploymentStatus, LocalBackend, State};

use crate::moto;
use crate::support::sequences::{run, OperationSequence, Rng};
use crate::support::text;

const CLUSTER: &str = "seq-dev";
const ADDRESS: &str = "deployment.backend-dev";
const SERVICE: &str = "seq-dev-backend";
const GREEN: &str = "seq-dev-backend-green";
const BYSTANDER: &str = "seq-dev-reports";
/// Tasks of the adopted service before slipway.
const LEGACY_TASKS: i32 = 3;
/// Operations per sequence (before the closing apply).
const STEPS_PER_SEQUENCE: usize = 14;
/// No slipway command may take longer than this.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// The rollout policies a sequence switches between (bodies of the rollout
/// block). The third waits for an approval after its first step.
const POLICIES: [&str; 4] = [
    "strategy   = \"rolling\"\n  on_failure = \"rollback\"",
    "strategy   = \"canary\"\n  steps      = [\"25%\", \"50%\", \"100%\"]\n  on_failure = \"rollback\"",
    "strategy   = \"canary\"\n  steps      = [\"50%\", \"100%\"]\n  on_failure = \"rollback\"\n\n  approval \"release-manager\" {\n    after_step = 1\n  }",
    "strategy   = \"canary\"\n  steps      = [\"25%\", \"100%\"]\n  on_failure = \"pause\"",
];

#[derive(Debug, Clone)]
enum Op {
    Apply(String),
    /// SIGKILL at the recorder's Nth crash point.
    KillAtCrashPoint(String, u32),
    KillAfter(String, u64),
    Approve,
    Reject,
    Rollback,
    CountByHand(i32),
    WeightsByHand,
    Autoscale,
    SwitchPolicy(usize),
}

/// What moto says about one service.
#[derive(Debug, Clone, PartialEq)]
struct Service {
    task_definition: String,
    desired: i32,
}

/// Everything the checks read from moto.
#[derive(Debug)]
struct Observed {
    /// Active services by name.
    services: BTreeMap<String, Service>,
    weights: BTreeMap<String, i32>,
    targets: BTreeMap<String, moto::ScalableTarget>,
    legacy_definition_active: bool,
    /// The `ServiceName` dimension of the alarm made before slipway.
    alarm_service: Option<String>,
}

/// The alarm made on the adopted service's name before slipway ran.
const ALARM: &str = "seq-dev-backend-cpu-high";

struct Sequence {
    seed: u64,
    rng: Rng,
    moto: moto::Moto,
    _dir: tempfile::TempDir,
    root: PathBuf,
    alb: moto::AlbFixture,
    runtime: tokio::runtime::Runtime,
    legacy_arn: String,
    bystander_arn: String,
    policy: usize,
    version: String,
    next_version: u32,
    autoscaled: bool,
    /// An apply was killed since the last apply or rollback that ended in
    /// order.
    unsettled: bool,
    ops: Vec<String>,
    last_log: String,
}

impl Sequence {
    fn start(seed: u64) -> Option<Sequence> {
        let moto = moto::Moto::start()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (alb, legacy_arn, bystander_arn) = runtime.block_on(async {
            moto.ecs()
                .await
                .create_cluster()
                .cluster_name(CLUSTER)
                .send()
                .await
                .expect("create cluster");
            let alb = moto
                .create_alb_with_two_target_groups("backend", 5000)
                .await;
            let legacy = moto
                .create_service_by_hand(
                    CLUSTER,
                    &alb,
                    ("legacy-backend", "registry.local/legacy:1"),
                    SERVICE,
                    LEGACY_TASKS,
                    Some(&alb.blue_target_group_arn),
                )
                .await;
            let bystander = moto
                .create_service_by_hand(
                    CLUSTER,
                    &alb,
                    ("reports", "registry.local/reports:7"),
                    BYSTANDER,
                    1,
                    None,
                )
                .await;
            aws_sdk_cloudwatch::Client::new(&moto.sdk_config().await)
                .put_metric_alarm()
                .alarm_name(ALARM)
                .namespace("AWS/ECS")
                .metric_name("CPUUtilization")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("ClusterName")
                        .value(CLUSTER)
                        .build(),
                )
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("ServiceName")
                        .value(SERVICE)
                        .build(),
                )
                .statistic(aws_sdk_cloudwatch::types::Statistic::Average)
                .period(60)
                .evaluation_periods(3)
                .threshold(80.0)
                .comparison_operator(
                    aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
                )
                .send()
                .await
                .expect("put the alarm");
            (alb, legacy, bystander)
        });
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("sequence");
        std::fs::create_dir_all(&root).unwrap();
        let mut rng = Rng(seed);
        let policy = rng.below(POLICIES.len());
        let sequence = Sequence {
            seed,
            rng,
            moto,
            _dir: dir,
            root,
            alb,
            runtime,
            legacy_arn,
            bystander_arn,
            policy,
            version: "1.0.0".into(),
            next_version: 1,
            autoscaled: false,
            unsettled: false,
            ops: Vec::new(),
            last_log: String::new(),
        };
        sequence.write_config();
        Some(sequence)
    }

    fn write_config(&self) {
        let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("modules/ecs-web-service");
        let alb = &self.alb;
        let config = format!(
            r#"
slipway {{
  backend "local" {{
    path = "state"
  }}
}}

variable "backend_version" {{
  type = string
}}

module "backend" {{
  source             = "{module}"
  name               = "backend"
  image              = "registry.local/seq-backend"
  version            = var.backend_version
  port               = 5000
  cpu                = 256
  memory             = 512
  health_check_path  = "/api/health"
  desired_count      = 2
  execution_role_arn = "arn:aws:iam::123456789012:role/seq-ecs-task-execution"
  task_role_arn      = "arn:aws:iam::123456789012:role/seq-backend-task"
  environment        = {{ PORT = "5000" }}
}}

environment "dev" {{
  variables = {{
    STAGE = "dev"
  }}

  ecs_cluster {{
    region          = "us-east-1"
    endpoint        = "{endpoint}"
    cluster         = "{CLUSTER}"
    subnets         = {subnets}
    security_groups = ["{security_group}"]
    wait_timeout    = "30s"
  }}
}}

rollout "backend" {{
  {policy}
}}

deployment "backend-dev" {{
  service     = module.backend.service.web
  environment = environment.dev
  rollout     = rollout.backend

  ecs {{
    service_name  = "{SERVICE}"
    desired_count = module.backend.desired_count
    listener_arn  = "{listener}"
    target_groups = ["{blue}", "{green}"]
  }}
}}
"#,
            module = module.display(),
            endpoint = self.moto.endpoint,
            subnets = serde_json::to_string(&alb.subnets).unwrap(),
            security_group = alb.security_group,
            policy = POLICIES[self.policy],
            listener = alb.listener_arn,
            blue = alb.blue_target_group_arn,
            green = alb.green_target_group_arn,
        );
        std::fs::write(self.root.join("main.hcl"), config).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
        command
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .env_remove("SLIPWAY_TEST_CRASH_AT");
        self.moto.apply_env(&mut command);
        command
    }

    /// Run a slipway command to its end (or kill it after `kill_after`).
    fn run(
        &mut self,
        mut command: Command,
        kill_after: Option<Duration>,
    ) -> Result<Output, String> {
        let mut child = command.spawn().map_err(|e| e.to_string())?;
        let started = Instant::now();
        if let Some(after) = kill_after {
            std::thread::sleep(after);
            let _ = child.kill();
        }
        loop {
            if child.try_wait().map_err(|e| e.to_string())?.is_some() {
                break;
            }
            if started.elapsed() > COMMAND_LIMIT {
                let _ = child.kill();
                let output = child.wait_with_output().map_err(|e| e.to_string())?;
                self.last_log = text(&output);
                return Err(format!("a slipway command ran past {COMMAND_LIMIT:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().map_err(|e| e.to_string())?;
        self.last_log = text(&output);
        if self.last_log.contains("error[") {
            return Err("slipway refused the test's configuration or arguments".into());
        }
        Ok(output)
    }

    fn version_vars(&self) -> Vec<String> {
        vec!["-var".into(), format!("backend_version={}", self.version)]
    }

    fn slipway(&mut self, args: &[&str], kill_after: Option<Duration>) -> Result<Output, String> {
        let vars = self.version_vars();
        let mut command = self.command(args);
        command.args(&vars);
        self.run(command, kill_after)
    }

    fn plan_json(&mut self) -> Result<(Option<i32>, serde_json::Value), String> {
        let output = self.slipway(&["plan", ".", "-json"], None)?;
        let json = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("plan -json did not print a plan ({e}): {}", text(&output)))?;
        Ok((output.status.code(), json))
    }

    fn state(&self) -> Option<State> {
        LocalBackend::new(self.root.join("state"))
            .read("dev")
            .expect("state reads")
    }

    fn observe(&self) -> Observed {
        self.runtime.block_on(async {
            let ecs = self.moto.ecs().await;
            let described = ecs
                .describe_services()
                .cluster(CLUSTER)
                .services(SERVICE)
                .services(GREEN)
                .services(BYSTANDER)
                .send()
                .await
                .expect("describe services");
            let services = described
                .services()
                .iter()
                .filter(|s| s.status() == Some("ACTIVE"))
                .map(|s| {
                    (
                        s.service_name().unwrap_or_default().to_string(),
                        Service {
                            task_definition: s.task_definition().unwrap_or_default().to_string(),
                            desired: s.desired_count(),
                        },
                    )
                })
                .collect();
            let legacy = ecs
                .describe_task_definition()
                .task_definition(&self.legacy_arn)
                .send()
                .await
                .expect("describe the legacy task definition");
            let legacy_definition_active = legacy
                .task_definition()
                .and_then(|t| t.status())
                .is_some_and(|s| s.as_str() == "ACTIVE");
            let mut targets = BTreeMap::new();
            for name in [SERVICE, GREEN] {
                if let Some(target) = self.moto.scalable_target(CLUSTER, name).await {
                    targets.insert(name.to_string(), target);
                }
            }
            let alarm_service = aws_sdk_cloudwatch::Client::new(&self.moto.sdk_config().await)
                .describe_alarms()
                .alarm_names(ALARM)
                .send()
                .await
                .expect("describe the alarm")
                .metric_alarms()
                .iter()
                .flat_map(|a| a.dimensions())
                .find(|d| d.name() == Some("ServiceName"))
                .and_then(|d| d.value())
                .map(str::to_string);
            Observed {
                services,
                weights: self.moto.listener_weights(&self.alb.listener_arn).await,
                targets,
                legacy_definition_active,
                alarm_service,
            }
        })
    }

    fn new_version(&mut self) -> String {
        self.next_version += 1;
        format!("1.{}.0", self.next_version)
    }

    fn waiting_approval(&self) -> bool {
        self.state()
            .and_then(|s| s.deployments.get(ADDRESS).cloned())
            .is_some_and(|d| d.waiting_approval().is_some())
    }

    fn releases(&self) -> usize {
        self.state()
            .and_then(|s| s.deployments.get(ADDRESS).cloned())
            .map_or(0, |d| d.releases.len())
    }

    fn choose(&mut self) -> Op {
        loop {
            let roll = self.rng.below(100);
            let op = match roll {
                0..=27 => Op::Apply(self.new_version()),
                28..=37 => {
                    let version = self.new_version();
                    Op::Apply(format!("{version}-fail"))
                }
                38..=49 => {
                    // Up to the promotion's: four traffic steps and the end.
                    let point = 1 + self.rng.below(15) as u32;
                    Op::KillAtCrashPoint(self.new_version(), point)
                }
                50..=57 => {
                    let after = 100 + self.rng.below(2400) as u64;
                    Op::KillAfter(self.new_version(), after)
                }
                58..=65 if self.waiting_approval() => {
                    if self.rng.chance(50) {
                        Op::Approve
                    } else {
                        Op::Reject
                    }
                }
                66..=72 if self.releases() >= 2 => Op::Rollback,
                73..=78 => Op::CountByHand(1 + self.rng.below(5) as i32),
                79..=83 => Op::WeightsByHand,
                84..=87 if !self.autoscaled => Op::Autoscale,
                88..=99 => Op::SwitchPolicy(self.rng.below(POLICIES.len())),
                _ => continue,
            };
            return op;
        }
    }

    /// The service that serves: state's, else the adopted one.
    fn serving(&self) -> String {
        self.state()
            .and_then(|s| s.deployments.get(ADDRESS).and_then(|d| d.ecs.clone()))
            .map_or_else(|| SERVICE.to_string(), |e| e.service_name)
    }

    fn step(&mut self, op: Op) -> Result<(), String> {
        self.ops.push(format!("{op:?}"));
        let before = self.observe();
        let serving_before = self.serving();
        let mut ended = true;
        let mut by_slipway = true;
        // An apply or rollback that ends in order restores any autoscaling
        // it (or a killed apply before it) suspended.
        let restores_scaling = matches!(op, Op::Apply(_) | Op::Rollback);
        match &op {
            Op::Apply(version) => {
                self.version = version.clone();
                self.slipway(&["apply", ".", "-auto-approve"], None)?;
            }
            Op::KillAtCrashPoint(version, point) => {
                self.version = version.clone();
                let vars = self.version_vars();
                let mut command = self.command(&["apply", ".", "-auto-approve"]);
                command
                    .args(&vars)
                    .env("SLIPWAY_TEST_CRASH_AT", point.to_string());
                let output = self.run(command, None)?;
                ended = output.status.code().is_some();
            }
            Op::KillAfter(version, millis) => {
                self.version = version.clone();
                let output = self.slipway(
                    &["apply", ".", "-auto-approve"],
                    Some(Duration::from_millis(*millis)),
                )?;
                ended = output.status.code().is_some();
            }
            Op::Approve => {
                let command = self.command(&["approve", "backend-dev", "."]);
                self.run(command, None)?;
            }
            Op::Reject => {
                self.slipway(&["reject", ADDRESS, "."], None)?;
            }
            Op::Rollback => {
                self.slipway(&["rollback", "backend-dev", ".", "-auto-approve"], None)?;
            }
            Op::CountByHand(count) => {
                by_slipway = false;
                let serving = self.serving();
                self.runtime
                    .block_on(self.moto.set_desired_count(CLUSTER, &serving, *count));
            }
            Op::WeightsByHand => {
                by_slipway = false;
                let (blue, green) = (
                    self.alb.blue_target_group_arn.clone(),
                    self.alb.green_target_group_arn.clone(),
                );
                self.runtime.block_on(
                    self.moto
                        .set_listener_weights(&self.alb.listener_arn, &[(&blue, 50), (&green, 50)]),
                );
            }
            Op::Autoscale => {
                by_slipway = false;
                let serving = self.serving();
                self.runtime.block_on(
                    self.moto
                        .put_service_under_autoscaling(CLUSTER, &serving, 2, 6),
                );
                self.autoscaled = true;
            }
            Op::SwitchPolicy(policy) => {
                by_slipway = false;
                self.policy = *policy;
                self.write_config();
            }
        }
        if !ended {
            self.unsettled = true;
        } else if restores_scaling {
            self.unsettled = false;
        }
        let settled = !self.unsettled;
        self.check(&before, &serving_before, settled, by_slipway)
    }

    /// The rules after an operation. `settled`: no apply was killed since
    /// the last apply or rollback that ended in order, so nothing may be
    /// left behind and no autoscaling may stay suspended; otherwise `plan`
    /// must show what was left.
    fn check(
        &mut self,
        before: &Observed,
        serving_before: &str,
        settled: bool,
        by_slipway: bool,
    ) -> Result<(), String> {
        let now = self.observe();
        let state = self.state();
        let record = state
            .as_ref()
            .and_then(|s| s.deployments.get(ADDRESS).cloned());
        let ecs = record.as_ref().and_then(|d| d.ecs.clone());
        let serving = ecs
            .as_ref()
            .map_or_else(|| SERVICE.to_string(), |e| e.service_name.clone());

        // 8. What slipway did not create.
        let bystander = now
            .services
            .get(BYSTANDER)
            .ok_or("the bystander service is gone")?;
        if bystander.task_definition != self.bystander_arn || bystander.desired != 1 {
            return Err(format!("the bystander service was changed: {bystander:?}"));
        }
        if !now.legacy_definition_active {
            return Err("the adopted service's own task definition was deregistered".into());
        }
        if ecs.is_none() {
            match now.services.get(SERVICE) {
                Some(service) if service.task_definition == self.legacy_arn => {}
                other => {
                    return Err(format!(
                        "state records no service, so {SERVICE} must still run its own task definition; ECS has {other:?}"
                    ))
                }
            }
        }

        // 2. State names what ECS runs.
        if let (Some(record), Some(ecs)) = (&record, &ecs) {
            let settled = matches!(
                record.status,
                DeploymentStatus::Deployed | DeploymentStatus::RolledBack
            ) && ecs.canary.is_none();
            if settled {
                let live = now.services.get(&ecs.service_name).ok_or_else(|| {
                    format!(
                        "state records {} as serving; ECS has no such active service",
                        ecs.service_name
                    )
                })?;
                if Some(&live.task_definition) != ecs.task_definition_arn.as_ref() {
                    return Err(format!(
                        "state records {} on {:?}; ECS runs {}",
                        ecs.service_name, ecs.task_definition_arn, live.task_definition
                    ));
                }
            }
            // Verified is about the recorded version: after a rollback, the
            // version gone back to keeps its verification.
            if record.verified
                && !matches!(
                    record.status,
                    DeploymentStatus::Deployed | DeploymentStatus::RolledBack
                )
            {
                return Err(format!("verified but {:?}", record.status));
            }
        }

        // 7. Nothing left behind.
        if settled {
            let mut expected = vec![serving.clone()];
            if let Some(canary) = ecs.as_ref().and_then(|e| e.canary.as_ref()) {
                expected.push(canary.service_name.clone());
            }
            expected.sort();
            let active: Vec<String> = now
                .services
                .keys()
                .filter(|name| *name == SERVICE || *name == GREEN)
                .cloned()
                .collect();
            if active != expected {
                return Err(format!(
                    "active services {active:?}, but state accounts for {expected:?}"
                ));
            }
            let lock = LocalBackend::new(self.root.join("state"))
                .current_lock("dev")
                .map_err(|e| e.to_string())?;
            // A lock a killed apply left is held by a process that is gone.
            if let Some(lock) = lock.filter(|l| Path::new(&format!("/proc/{}", l.pid)).exists()) {
                return Err(format!("the lock is held after slipway ended: {lock:?}"));
            }
        }

        // 11. The service keeps its identity.
        if serving != SERVICE {
            return Err(format!(
                "state records {serving} as serving; the service was {SERVICE} and must keep its name"
            ));
        }
        let settled_record = record.as_ref().is_some_and(|r| {
            matches!(
                r.status,
                DeploymentStatus::Deployed | DeploymentStatus::RolledBack
            )
        }) && ecs.as_ref().is_some_and(|e| e.canary.is_none());
        if settled && settled_record {
            let watched = now
                .alarm_service
                .clone()
                .ok_or("the alarm made before slipway is gone")?;
            // What the listener does is rule 10's: here, state gives the
            // watched service all the traffic.
            let group = ecs.as_ref().and_then(|e| e.target_group.clone());
            let all_traffic = ecs.as_ref().is_some_and(|e| {
                group
                    .as_ref()
                    .is_some_and(|g| e.weights.get(g).copied() == Some(100))
            });
            if watched != serving || !now.services.contains_key(&watched) || !all_traffic {
                return Err(format!(
                    "the alarm watches {watched}; state records {serving} serving, active services are {:?}, recorded weights {:?}",
                    now.services.keys().collect::<Vec<_>>(),
                    ecs.as_ref().map(|e| &e.weights)
                ));
            }
        }

        // 9. Capacity and autoscaling.
        let suspended_left = state
            .as_ref()
            .is_some_and(|s| s.scaling_suspended.contains_key(ADDRESS));
        if self.autoscaled {
            if settled && suspended_left {
                return Err(
                    "an apply ended in order but state says autoscaling is still suspended".into(),
                );
            }
            if settled && !suspended_left {
                let target = now.targets.get(&serving).ok_or_else(|| {
                    format!(
                        "no scalable target on the serving service {serving}: {:?}",
                        now.targets
                    )
                })?;
                if target.suspended != [false; 3] {
                    return Err(format!(
                        "autoscaling of {serving} is left suspended: {target:?}"
                    ));
                }
                if target.policies != ["cpu-60"] || target.scheduled_actions != ["nightly"] {
                    return Err(format!(
                        "the target of {serving} lost its policy or schedule: {target:?}"
                    ));
                }
                if now.targets.len() != 1 {
                    return Err(format!(
                        "targets on services that do not serve: {:?}",
                        now.targets
                    ));
                }
                let desired = now.services.get(&serving).map_or(0, |s| s.desired);
                // A count set by hand may be anything (autoscaling brings it
                // back); one slipway set is never below the minimum.
                let untouched = before.services.get(&serving).map(|s| s.desired) == Some(desired);
                if by_slipway && !untouched && desired < target.min {
                    return Err(format!(
                        "{serving} runs {desired} task(s), below the minimum {}",
                        target.min
                    ));
                }
                let had = before.services.get(serving_before).map_or(0, |s| s.desired);
                if by_slipway && desired < had {
                    return Err(format!(
                        "under autoscaling {serving} went down to {desired} task(s) from the {had} {serving_before} had"
                    ));
                }
            }
        }

        // 10 (and a suspension left behind): plan shows what differs.
        let recorded_weights = ecs.as_ref().map(|e| e.weights.clone()).unwrap_or_default();
        // A rollout killed while it brought the serving service to the new
        // version passes through all traffic on either side.
        let all_on = |group: &str| {
            now.weights
                .iter()
                .all(|(g, w)| *w == if g == group { 100 } else { 0 })
        };
        let promoting_point = ecs.as_ref().is_some_and(|e| {
            e.canary.as_ref().is_some_and(|c| {
                c.promoted
                    && (all_on(&c.target_group) || e.target_group.as_deref().is_some_and(all_on))
            })
        });
        let weights_differ = !recorded_weights.is_empty()
            && !promoting_point
            && recorded_weights.iter().any(|(group, weight)| {
                now.weights.get(group).copied().unwrap_or(0) != *weight as i32
            });
        if weights_differ || suspended_left {
            let (code, plan) = self.plan_json()?;
            let reasons: Vec<(String, String)> = plan["deployments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["address"] == ADDRESS)
                .flat_map(|d| d["reasons"].as_array().cloned().unwrap_or_default())
                .map(|r| {
                    (
                        r["kind"].as_str().unwrap_or_default().to_string(),
                        r["summary"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            if code != Some(2) {
                return Err(format!(
                    "plan shows no change (exit {code:?}) though ECS differs from state: {plan:#}"
                ));
            }
            if weights_differ && !reasons.iter().any(|(kind, _)| kind == "listener_weights") {
                return Err(format!(
                    "the listener has {:?}, state records {recorded_weights:?}, and plan does not say so: {reasons:?}",
                    now.weights
                ));
            }
            if suspended_left
                && !reasons
                    .iter()
                    .any(|(_, summary)| summary.contains("left suspended"))
            {
                return Err(format!(
                    "plan does not show the suspension left behind: {reasons:?}"
                ));
            }
        }
        Ok(())
    }

    /// A last version, approved if its rollout asks: the deployment must
    /// end deployed, on it, with nothing left to plan.
    fn converge(&mut self) -> Result<(), String> {
        self.moto.clear_failing_tasks();
        let version = self.new_version();
        self.step(Op::Apply(version.clone()))?;
        if self.waiting_approval() {
            self.step(Op::Approve)?;
            self.step(Op::Apply(version.clone()))?;
        }
        let record = self
            .state()
            .and_then(|s| s.deployments.get(ADDRESS).cloned())
            .ok_or("no record after the closing apply")?;
        if record.version != version || record.status != DeploymentStatus::Deployed {
            return Err(format!(
                "the closing apply of {version} ended {:?} on {}",
                record.status, record.version
            ));
        }
        let (code, plan) = self.plan_json()?;
        if code != Some(0) {
            return Err(format!(
                "a plan after the closing apply is not empty: {plan:#}"
            ));
        }
        Ok(())
    }

    fn fail(&self, error: &str) -> ! {
        panic!(
            "operation sequence failed: {error}\n\nreplay with SLIPWAY_SEQ_SEED={}\nrollout: {}\noperations:\n{}\n\nlast slipway output:\n{}",
            self.seed,
            POLICIES[self.policy],
            self.ops.join("\n"),
            self.last_log
        );
    }
}

/// Random operation sequences against moto, each checked after every
/// operation; see the module's documentation.
impl OperationSequence for Sequence {
    type Op = Op;

    fn start(seed: u64) -> Option<Self> {
        Sequence::start(seed)
    }

    fn first(&mut self) -> Op {
        Op::Apply(self.new_version())
    }

    fn choose(&mut self) -> Op {
        Sequence::choose(self)
    }

    fn step(&mut self, op: Op) -> Result<(), String> {
        Sequence::step(self, op)
    }

    fn converge(&mut self) -> Result<(), String> {
        Sequence::converge(self)
    }

    fn steps_taken(&self) -> usize {
        self.ops.len()
    }

    fn fail(&self, error: &str) -> ! {
        Sequence::fail(self, error)
    }
}

#[test]
fn random_operation_sequences_keep_the_ecs_invariants() {
    run::<Sequence>("ECS", 90, STEPS_PER_SEQUENCE);
}
