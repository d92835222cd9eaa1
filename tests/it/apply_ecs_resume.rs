//! Crash safety and resume of an ECS canary through the real binary and the
//! real AWS SDK, against a moto server started by the test harness
//! (tests/it/moto): an apply of a four-step canary (10, 25, 50, 100 %) killed
//! with SIGKILL at each of its crash points (chosen by count through the
//! test-only `SLIPWAY_TEST_CRASH_AT`, never by time) leaves a state that
//! `plan` reads truthfully and that `apply` finishes: every weight shift
//! made once, then the serving service (same name, same target group) on
//! the new version with all traffic, the temporary service gone. An apply
//! killed while rolling back a failing canary has its rollback finished by
//! the next apply.
//!
//! Crash points of the canary apply (three per journal entry: started; work
//! done but not recorded; recorded): one traffic entry per step, then the
//! `promote` entry (the serving service updated in place, traffic back, the
//! temporary service removed), so fifteen. Every case starts from its own
//! moto server.

use crate::moto;
use crate::support::{json_lines, latest_results, text, traffic_shifts};
use serde_json::Value;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use slipway::state::{Backend, DeploymentStatus, LocalBackend, State};

const CLUSTER: &str = "resume-dev";
const ADDRESS: &str = "deployment.backend-dev";
const BLUE_SERVICE: &str = "resume-dev-backend";
const GREEN_SERVICE: &str = "resume-dev-backend-green";
const STEPS: [u32; 4] = [10, 25, 50, 100];
/// Three crash points per traffic step.
const TRAFFIC_CRASH_POINTS: usize = 3 * STEPS.len();
/// And three for the promotion at the end.
const CRASH_POINTS: usize = TRAFFIC_CRASH_POINTS + 3;

const CANARY: &str =
    "strategy   = \"canary\"\n  steps      = [\"10%\", \"25%\", \"50%\", \"100%\"]\n  on_failure = \"rollback\"";

/// One moto server with a cluster and an ALB (blue and green target groups),
/// and a configuration deploying the backend of the ECS workshop to it.
struct Canary {
    moto: moto::Moto,
    _dir: tempfile::TempDir,
    root: PathBuf,
    alb: moto::AlbFixture,
    runtime: tokio::runtime::Runtime,
}

impl Canary {
    fn start() -> Option<Canary> {
        let moto = moto::Moto::start()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let alb = runtime.block_on(async {
            moto.ecs()
                .await
                .create_cluster()
                .cluster_name(CLUSTER)
                .send()
                .await
                .expect("create cluster");
            moto.create_alb_with_two_target_groups("backend", 5000)
                .await
        });
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("resume");
        std::fs::create_dir_all(&root).unwrap();
        let canary = Canary {
            moto,
            _dir: dir,
            root,
            alb,
            runtime,
        };
        canary.write_config();
        Some(canary)
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
  image              = "registry.local/workshop-backend"
  version            = var.backend_version
  port               = 5000
  cpu                = 256
  memory             = 512
  health_check_path  = "/api/health"
  desired_count      = 1
  execution_role_arn = "arn:aws:iam::123456789012:role/workshop-ecs-task-execution"
  task_role_arn      = "arn:aws:iam::123456789012:role/workshop-backend-task"
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
    desired_count   = 1
    subnets         = {subnets}
    security_groups = ["{security_group}"]
    wait_timeout    = "60s"
  }}
}}

rollout "backend" {{
  {CANARY}
}}

deployment "backend-dev" {{
  service     = module.backend.service.web
  environment = environment.dev
  rollout     = rollout.backend

  ecs {{
    service_name  = "{BLUE_SERVICE}"
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
            listener = alb.listener_arn,
            blue = alb.blue_target_group_arn,
            green = alb.green_target_group_arn,
        );
        std::fs::write(self.root.join("main.hcl"), config).unwrap();
    }

    fn command(&self, args: &[&str], version: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
        command
            .args(args)
            .args(["-var", &format!("backend_version={version}")])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .env_remove("SLIPWAY_TEST_CRASH_AT");
        self.moto.apply_env(&mut command);
        command
    }

    fn apply(&self, version: &str) -> Output {
        self.command(&["apply", ".", "-auto-approve"], version)
            .output()
            .unwrap()
    }

    /// `apply -json` (killed with SIGKILL at crash point `crash_at`, if
    /// any): its output and its lines.
    fn apply_json(&self, version: &str, crash_at: Option<usize>) -> (Output, Vec<Value>) {
        let mut command = self.command(&["apply", ".", "-json", "-auto-approve"], version);
        if let Some(point) = crash_at {
            command.env("SLIPWAY_TEST_CRASH_AT", point.to_string());
        }
        let output = command.output().unwrap();
        let lines = json_lines(&output);
        (output, lines)
    }

    /// An apply that kills itself with SIGKILL at its `point`th crash point.
    fn apply_crashing_at(&self, version: &str, point: usize) -> Output {
        self.command(&["apply", ".", "-auto-approve"], version)
            .env("SLIPWAY_TEST_CRASH_AT", point.to_string())
            .output()
            .unwrap()
    }

    fn plan(&self, version: &str) -> Output {
        self.command(&["plan", "."], version).output().unwrap()
    }

    fn backend(&self) -> LocalBackend {
        LocalBackend::new(self.root.join("state"))
    }

    fn state(&self) -> State {
        self.backend().read("dev").unwrap().expect("state exists")
    }

    fn weights(&self) -> BTreeMap<String, i32> {
        self.runtime
            .block_on(self.moto.listener_weights(&self.alb.listener_arn))
    }

    /// `(blue, green)` weights of the listener.
    fn blue_green(&self) -> (i32, i32) {
        let weights = self.weights();
        (
            weights[&self.alb.blue_target_group_arn],
            weights[&self.alb.green_target_group_arn],
        )
    }

    /// The images of the deployments of an active service, as ECS lists
    /// them; `None` when the service is not active.
    fn images(&self, name: &str) -> Option<Vec<String>> {
        let deployments = self
            .runtime
            .block_on(self.moto.service_deployments(CLUSTER, name))?;
        Some(deployments.into_iter().map(|(_, image, _)| image).collect())
    }
}

/// Where a crash point falls within its traffic step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// The entry is written as started; the listener is not touched yet.
    Started,
    /// The listener has moved; the entry is not written as finished.
    NotRecorded,
    /// The entry is written as finished with the new weights.
    Recorded,
}

/// The traffic step (1-based) of crash point `point` and where in it.
fn crash_point(point: usize) -> (usize, Moment) {
    let moment = match point % 3 {
        1 => Moment::Started,
        2 => Moment::NotRecorded,
        _ => Moment::Recorded,
    };
    (point.div_ceil(3), moment)
}

/// A fresh moto server with the backend on 1.0.0 (blue, all traffic), or
/// `None` when moto is not installed (the test is skipped).
fn deployed_on_blue() -> Option<Canary> {
    let canary = Canary::start()?;
    let first = canary.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(canary.blue_green(), (100, 0));
    Some(canary)
}

/// Kill the canary to 2.0.0 at crash point `point`, then check what `plan`
/// says and that `apply` finishes the rollout with every shift made once.
fn kill_and_resume(point: usize) {
    let Some(canary) = deployed_on_blue() else {
        return;
    };
    let killed = canary.apply_crashing_at("2.0.0", point);
    assert_eq!(
        killed.status.signal(),
        Some(9),
        "point {point}: the apply killed itself: {}",
        text(&killed)
    );

    // What the killed apply left: its lock, and a journal of traffic steps.
    let holder = canary
        .backend()
        .current_lock("dev")
        .unwrap()
        .expect("a killed apply leaves its lock");
    let state = canary.state();
    let killed_id = state.journal[0].apply_id.clone();
    let (step, moment) = crash_point(point);
    assert_eq!(
        state.journal.len(),
        step,
        "point {point}: one entry per step reached: {:?}",
        state.journal
    );
    assert!(state
        .journal
        .iter()
        .all(|e| e.action.as_str() == "traffic" && e.host.is_none() && e.deployment == ADDRESS));
    let uncertain: Vec<usize> = state.uncertain_steps().map(|e| e.step).collect();
    let expected_uncertain = match moment {
        Moment::Recorded => vec![],
        Moment::Started | Moment::NotRecorded => vec![step],
    };
    assert_eq!(uncertain, expected_uncertain, "point {point}");
    // Right before an entry is written as finished, the listener has moved.
    let percent = STEPS[step - 1] as i32;
    let before = if step == 1 { 0 } else { STEPS[step - 2] as i32 };
    let moved = if moment == Moment::Started {
        before
    } else {
        percent
    };
    assert_eq!(canary.blue_green(), (100 - moved, moved), "point {point}");

    // plan says what happened and what apply will do.
    let plan = canary.plan("2.0.0");
    let plan_text = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "point {point}: {plan_text}");
    assert!(
        plan_text.contains(&format!("apply {killed_id}")) && plan_text.contains("was interrupted"),
        "point {point}: {plan_text}"
    );
    for done in state.journal.iter().filter(|e| e.finished_at.is_some()) {
        assert!(
            plan_text.contains(&format!(
                "{ADDRESS} step {}: traffic 2.0.0 {}% (done)",
                done.step,
                STEPS[done.step - 1]
            )),
            "point {point}: step {} is known done:\n{plan_text}",
            done.step
        );
    }
    if uncertain.is_empty() {
        assert!(
            plan_text.contains("No step is uncertain"),
            "point {point}: {plan_text}"
        );
    } else {
        assert!(
            plan_text.contains("Uncertain (started, may or may not have happened)")
                && plan_text.contains(&format!(
                    "reads the listener of {ADDRESS}: if it sends {percent}% to 2.0.0 as step {step} meant to"
                )),
            "point {point}: {plan_text}"
        );
    }

    // The rollback it would do goes back to what served before, not to 2.0.0.
    assert!(
        plan_text.contains("send 100% of traffic back to the service that served before")
            && !plan_text.contains("back to 2.0.0"),
        "point {point}: {plan_text}"
    );

    // apply takes the dead process's lock over and finishes the rollout.
    let (resumed, lines) = canary.apply_json("2.0.0", None);
    let log = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "point {point}: {log}");
    assert!(
        log.contains("Took over the lock") && log.contains(&holder.id),
        "point {point}: {log}"
    );
    match moment {
        Moment::Started => assert!(
            log.contains("had not changed the listener; the step runs again"),
            "point {point}: {log}"
        ),
        Moment::NotRecorded => assert!(
            log.contains("had shifted the listener; recorded")
                && log.contains("since the interrupted apply; checking it before going on"),
            "point {point}: {log}"
        ),
        Moment::Recorded => assert!(
            log.contains("since the interrupted apply; checking it before going on"),
            "point {point}: the last shifted step is checked:\n{log}"
        ),
    }
    // Every shift once: the resumed apply makes those the killed one did not.
    let first_left = if moment == Moment::Started {
        step
    } else {
        step + 1
    };
    assert_eq!(
        traffic_shifts(&lines, GREEN_SERVICE),
        STEPS[first_left - 1..],
        "point {point}: {log}"
    );

    assert!(
        log.contains(&format!(
            "updating {BLUE_SERVICE} to backend-dev:2 while {GREEN_SERVICE} carries all the traffic"
        )),
        "point {point}: {log}"
    );
    assert_finished_on_the_serving_service(&canary, point, &log);
    assert_history_and_empty_plan(&canary, point, &killed_id);
}

/// After the resumed apply: the service that served before runs 2.0.0 under
/// its own name with all traffic, the temporary one is gone, and state says
/// so with an empty journal.
fn assert_finished_on_the_serving_service(canary: &Canary, point: usize, log: &str) {
    assert_eq!(canary.blue_green(), (100, 0), "point {point}: {log}");
    assert_eq!(
        canary.images(BLUE_SERVICE),
        Some(vec!["registry.local/workshop-backend:2.0.0".to_string()]),
        "point {point}: {log}"
    );
    assert_eq!(
        canary.images(GREEN_SERVICE),
        None,
        "point {point}: the temporary service is gone: {log}"
    );
    let state = canary.state();
    assert!(
        state.uncertain_steps().next().is_none() && state.journal.is_empty(),
        "point {point}: {:?}",
        state.journal
    );
    let deployment = &state.deployments[ADDRESS];
    assert_eq!(
        deployment.status,
        DeploymentStatus::Deployed,
        "point {point}"
    );
    let ecs = deployment.ecs.as_ref().expect("an ECS record");
    assert_eq!(ecs.service_name, BLUE_SERVICE);
    assert_eq!(
        ecs.target_group.as_deref(),
        Some(canary.alb.blue_target_group_arn.as_str())
    );
    assert!(ecs.canary.is_none(), "point {point}: {ecs:?}");
    let live: BTreeMap<String, u32> = canary
        .weights()
        .into_iter()
        .map(|(group, weight)| (group, weight as u32))
        .collect();
    assert_eq!(
        ecs.weights, live,
        "point {point}: state matches the listener"
    );
}

/// The deployment ended once, and nothing is left to do.
fn assert_history_and_empty_plan(canary: &Canary, point: usize, killed_id: &str) {
    let state = canary.state();
    // The deployment ended once: the killed apply is in history as
    // interrupted (with the version, not a share), then the resumed one.
    let history: Vec<(&str, &str, Option<&str>)> = state
        .history
        .iter()
        .map(|h| {
            (
                h.apply_id.as_str(),
                h.result.as_str(),
                h.versions.get(ADDRESS).map(String::as_str),
            )
        })
        .collect();
    let resume_id = history.last().unwrap().0;
    assert_eq!(
        history[1..],
        [
            (killed_id, "interrupted", Some("2.0.0")),
            (resume_id, "succeeded", Some("2.0.0")),
        ],
        "point {point}"
    );
    let after = canary.plan("2.0.0");
    assert_eq!(
        after.status.code(),
        Some(0),
        "point {point}: {}",
        text(&after)
    );
}

#[test]
fn a_canary_killed_around_its_first_shift_is_resumed() {
    for point in 1..=3 {
        kill_and_resume(point);
    }
}

#[test]
fn a_canary_killed_around_its_second_shift_is_resumed() {
    for point in 4..=6 {
        kill_and_resume(point);
    }
}

#[test]
fn a_canary_killed_around_its_third_shift_is_resumed() {
    for point in 7..=9 {
        kill_and_resume(point);
    }
}

#[test]
fn a_canary_killed_around_its_last_shift_is_resumed() {
    for point in 10..=TRAFFIC_CRASH_POINTS {
        kill_and_resume(point);
    }
}

/// Killed around the promotion (every step passed): as it began (the record
/// says so, nothing changed yet), with all of it done but not recorded, and
/// recorded. `plan` shows no listener drift (all traffic on either side is a
/// point the promotion passes), and the next apply finishes it without a
/// traffic step or a second temporary service.
#[test]
fn a_canary_killed_around_its_promotion_is_finished_and_has_no_later_crash_point() {
    for point in TRAFFIC_CRASH_POINTS + 1..=CRASH_POINTS {
        let Some(canary) = deployed_on_blue() else {
            return;
        };
        let killed = canary.apply_crashing_at("2.0.0", point);
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "point {point}: {}",
            text(&killed)
        );
        let state = canary.state();
        let killed_id = state.journal[0].apply_id.clone();
        let actions: Vec<(&str, bool)> = state
            .journal
            .iter()
            .map(|e| (e.action.as_str(), e.finished_at.is_some()))
            .collect();
        let promoted_recorded = point == CRASH_POINTS;
        assert_eq!(
            actions,
            [
                ("traffic", true),
                ("traffic", true),
                ("traffic", true),
                ("traffic", true),
                ("promote", promoted_recorded)
            ],
            "point {point}"
        );
        let (serving, temporary) = if point == TRAFFIC_CRASH_POINTS + 1 {
            // Begun: all traffic on the temporary service, the serving one
            // on 1.0.0.
            assert_eq!(canary.blue_green(), (0, 100), "point {point}");
            ("1.0.0", true)
        } else {
            assert_eq!(canary.blue_green(), (100, 0), "point {point}");
            ("2.0.0", false)
        };
        assert_eq!(
            canary.images(BLUE_SERVICE),
            Some(vec![format!("registry.local/workshop-backend:{serving}")]),
            "point {point}"
        );
        assert_eq!(
            canary.images(GREEN_SERVICE).is_some(),
            temporary,
            "point {point}"
        );

        let plan = canary.plan("2.0.0");
        let plan_text = text(&plan);
        assert_eq!(plan.status.code(), Some(2), "point {point}: {plan_text}");
        assert!(
            !plan_text.contains("listener weights changed outside slipway"),
            "point {point}: {plan_text}"
        );

        let (resumed, lines) = canary.apply_json("2.0.0", None);
        let log = text(&resumed);
        assert_eq!(resumed.status.code(), Some(0), "point {point}: {log}");
        assert!(
            traffic_shifts(&lines, GREEN_SERVICE).is_empty(),
            "point {point}: {log}"
        );
        assert!(
            !log.contains(&format!("service {GREEN_SERVICE} created")),
            "point {point}: {log}"
        );
        assert_finished_on_the_serving_service(&canary, point, &log);
        assert_history_and_empty_plan(&canary, point, &killed_id);
    }
    // Past the last crash point the apply runs to its end.
    let Some(canary) = deployed_on_blue() else {
        return;
    };
    let (whole, lines) = canary.apply_json("2.0.0", Some(CRASH_POINTS + 1));
    let log = text(&whole);
    assert_eq!(whole.status.code(), Some(0), "{log}");
    assert_eq!(traffic_shifts(&lines, GREEN_SERVICE), STEPS, "{log}");
    assert_eq!(canary.blue_green(), (100, 0));
}

#[test]
fn an_apply_killed_while_rolling_back_a_failing_canary_has_its_rollback_finished() {
    // The new tasks never start, so the rollout fails before its first shift
    // and rolls back: its entry started (1), the work done but not recorded
    // (2), recorded (3).
    for point in 1..=3 {
        let Some(canary) = deployed_on_blue() else {
            return;
        };
        canary.moto.fail_new_tasks("workshop-backend:2.0.0-broken");
        let killed = canary.apply_crashing_at("2.0.0-broken", point);
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "point {point}: {}",
            text(&killed)
        );
        let state = canary.state();
        let killed_id = state.journal[0].apply_id.clone();
        let journal: Vec<(&str, Option<&str>, bool)> = state
            .journal
            .iter()
            .map(|e| {
                (
                    e.action.as_str(),
                    e.host.as_deref(),
                    e.finished_at.is_some(),
                )
            })
            .collect();
        assert_eq!(journal, [("rollback", None, point == 3)], "point {point}");

        let plan = canary.plan("2.0.0-broken");
        let plan_text = text(&plan);
        assert_eq!(plan.status.code(), Some(2), "point {point}: {plan_text}");
        let expected = if point == 3 {
            "had rolled back after a failed step"
        } else {
            "was rolling back after a failed step"
        };
        assert!(
            plan_text.contains(expected) && plan_text.contains("nothing new is deployed"),
            "point {point}: {plan_text}"
        );

        let (resumed, lines) = canary.apply_json("2.0.0-broken", None);
        let log = text(&resumed);
        assert_eq!(resumed.status.code(), Some(1), "point {point}: {log}");
        assert!(
            log.contains("finishing its rollback"),
            "point {point}: {log}"
        );
        assert!(
            log.contains(&format!("failed in the interrupted apply {killed_id}")),
            "point {point}: {log}"
        );
        assert!(
            traffic_shifts(&lines, GREEN_SERVICE).is_empty(),
            "point {point}: nothing new is deployed:\n{log}"
        );
        assert_eq!(canary.blue_green(), (100, 0), "point {point}: {log}");
        assert_eq!(
            canary.images(GREEN_SERVICE),
            None,
            "point {point}: the new service is gone:\n{log}"
        );
        assert_eq!(
            canary.images(BLUE_SERVICE),
            Some(vec!["registry.local/workshop-backend:1.0.0".to_string()]),
            "point {point}"
        );
        let state = canary.state();
        assert!(
            state.journal.is_empty(),
            "point {point}: {:?}",
            state.journal
        );
        let deployment = &state.deployments[ADDRESS];
        assert_eq!(
            deployment.status,
            DeploymentStatus::RolledBack,
            "point {point}"
        );
        let ecs = deployment.ecs.as_ref().unwrap();
        assert_eq!(ecs.service_name, BLUE_SERVICE);
        assert_eq!(ecs.weights[&canary.alb.blue_target_group_arn], 100);
        assert!(ecs.canary.is_none(), "point {point}: {ecs:?}");
        let results = latest_results(&state, 2);
        assert_eq!(results, ["rolled_back", "interrupted"], "point {point}");
    }
}

/// A canary of a service under autoscaling, killed at its first traffic
/// step: the target stays suspended in Application Auto Scaling and state
/// says so; the plan names it as a change; the next apply finishes the
/// canary and leaves the target, unsuspended, on the service that serves.
#[test]
fn autoscaling_suspended_by_a_killed_apply_is_restored_by_the_next_one() {
    let Some(canary) = deployed_on_blue() else {
        return;
    };
    canary.runtime.block_on(
        canary
            .moto
            .put_service_under_autoscaling(CLUSTER, BLUE_SERVICE, 1, 4),
    );
    let scalable = |service: &str| {
        canary
            .runtime
            .block_on(canary.moto.scalable_target(CLUSTER, service))
    };
    let before = scalable(BLUE_SERVICE).expect("the target");

    let killed = canary.apply_crashing_at("2.0.0", 1);
    assert_eq!(killed.status.signal(), Some(9), "{}", text(&killed));
    let suspended = scalable(BLUE_SERVICE).expect("the target");
    assert_eq!(suspended.suspended, [true; 3], "{}", text(&killed));
    let resource = format!("service/{CLUSTER}/{BLUE_SERVICE}");
    let recorded = canary.state().scaling_suspended[ADDRESS].clone();
    assert_eq!(recorded.resource_id, resource);
    assert_eq!(recorded.before, Default::default());

    let plan = canary.plan("2.0.0");
    let shown = text(&plan);
    assert!(
        shown.contains(&format!(
            "autoscaling of {resource} was left suspended by an interrupted apply: apply restores it"
        )),
        "{shown}"
    );

    let resumed = canary.apply("2.0.0");
    let log = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{log}");
    assert_eq!(canary.blue_green(), (100, 0), "{log}");
    assert_eq!(scalable(BLUE_SERVICE), Some(before), "{log}");
    assert_eq!(scalable(GREEN_SERVICE), None, "{log}");
    assert!(canary.state().scaling_suspended.is_empty(), "{log}");
}

/// A canary killed after it recorded its new side and before ECS made it
/// (the record comes first, so the window has a record): the next apply
/// makes the new side and finishes the rollout; nothing is refused as a
/// service state does not know, and nothing is left behind.
#[test]
fn a_canary_killed_before_its_new_side_existed_is_finished_by_the_next_apply() {
    let Some(canary) = deployed_on_blue() else {
        return;
    };
    // The state such a kill leaves: the new side recorded at 0 %, and no
    // such service in ECS.
    let mut state = canary.state();
    let ecs = state
        .deployments
        .get_mut(ADDRESS)
        .and_then(|d| d.ecs.as_mut())
        .expect("the ECS record");
    ecs.canary = Some(slipway::state::CanaryState {
        service_name: GREEN_SERVICE.to_string(),
        target_group: canary.alb.green_target_group_arn.clone(),
        task_definition_arn: "arn:aws:ecs:us-east-1:123456789012:task-definition/backend-dev:2"
            .to_string(),
        percent: 0,
        promoted: false,
    });
    canary.backend().write(&mut state).unwrap();
    assert!(canary.images(GREEN_SERVICE).is_none());

    let applied = canary.apply("2.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert_eq!(canary.blue_green(), (100, 0), "{log}");
    assert_eq!(
        canary.images(BLUE_SERVICE),
        Some(vec!["registry.local/workshop-backend:2.0.0".to_string()]),
        "{log}"
    );
    assert!(canary.images(GREEN_SERVICE).is_none(), "{log}");
    let ecs = canary.state().deployments[ADDRESS].ecs.clone().unwrap();
    assert_eq!(ecs.service_name, BLUE_SERVICE);
    assert!(ecs.canary.is_none());
}

/// An apply of an earlier slipway, which moved the autoscaling target to
/// the service that served after a canary (the name alternated then),
/// killed mid-move: the target already registered on the serving service,
/// still suspended, and state's suspension naming the service it came from,
/// which is gone. The next apply finishes the move instead of failing on
/// the old service, then runs its own canary, and the target ends on the
/// service that serves, unsuspended, with its policy.
#[test]
fn an_autoscaling_target_move_cut_off_by_a_kill_is_finished_by_the_next_apply() {
    let Some(canary) = deployed_on_blue() else {
        return;
    };
    let scalable = |service: &str| {
        canary
            .runtime
            .block_on(canary.moto.scalable_target(CLUSTER, service))
    };
    canary.runtime.block_on(
        canary
            .moto
            .put_service_under_autoscaling(CLUSTER, BLUE_SERVICE, 1, 4),
    );
    let before = scalable(BLUE_SERVICE).expect("the target");

    // What a kill after the move's first registration leaves: the target on
    // the serving service suspended, and state naming the one it came from.
    let serving = format!("service/{CLUSTER}/{BLUE_SERVICE}");
    canary.runtime.block_on(async {
        use aws_sdk_applicationautoscaling::types::{
            ScalableDimension, ServiceNamespace, SuspendedState,
        };
        canary
            .moto
            .autoscaling()
            .await
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&serving)
            .suspended_state(
                SuspendedState::builder()
                    .dynamic_scaling_in_suspended(true)
                    .dynamic_scaling_out_suspended(true)
                    .scheduled_scaling_suspended(true)
                    .build(),
            )
            .send()
            .await
            .expect("suspend the target");
    });
    let mut state = canary.state();
    state.scaling_suspended.insert(
        ADDRESS.to_string(),
        slipway::state::ScalingSuspension {
            resource_id: format!("service/{CLUSTER}/{GREEN_SERVICE}"),
            min_capacity: 1,
            max_capacity: 4,
            before: Default::default(),
        },
    );
    canary.backend().write(&mut state).unwrap();

    let applied = canary.apply("2.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert!(log.contains("an interrupted apply was moving"), "{log}");
    assert_eq!(canary.blue_green(), (100, 0), "{log}");
    assert_eq!(scalable(BLUE_SERVICE), Some(before), "{log}");
    assert_eq!(scalable(GREEN_SERVICE), None, "{log}");
    assert!(canary.state().scaling_suspended.is_empty(), "{log}");
}

/// Weights set by hand, then an apply killed as it began to set them back
/// (its traffic step recorded as started, the listener untouched): the
/// listener is neither as recorded nor as that step set it. The plan shows
/// the weights as a change that apply sets back, and the next apply does
/// so and goes on, rather than refusing the deployment for good. (Found by
/// `ecs_sequences`, seed 2288368271119455115.)
#[test]
fn weights_changed_by_hand_under_an_interrupted_step_are_set_back_as_planned() {
    let Some(canary) = deployed_on_blue() else {
        return;
    };
    let (blue, green) = (
        canary.alb.blue_target_group_arn.clone(),
        canary.alb.green_target_group_arn.clone(),
    );
    let by_hand = || {
        canary.runtime.block_on(
            canary
                .moto
                .set_listener_weights(&canary.alb.listener_arn, &[(&blue, 50), (&green, 50)]),
        )
    };
    by_hand();
    let killed = canary.apply_crashing_at("2.0.0", 1);
    assert_eq!(killed.status.signal(), Some(9), "{}", text(&killed));
    assert_eq!(canary.blue_green(), (50, 50), "{}", text(&killed));

    let plan = canary.plan("2.0.0");
    assert!(
        text(&plan).contains("listener weights changed outside slipway"),
        "{}",
        text(&plan)
    );
    let applied = canary.apply("2.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert!(
        log.contains("the listener was changed outside slipway"),
        "{log}"
    );
    assert_eq!(canary.blue_green(), (100, 0), "{log}");
    assert_eq!(
        canary.images(BLUE_SERVICE),
        Some(vec!["registry.local/workshop-backend:2.0.0".to_string()]),
        "{log}"
    );
}
