//! End-to-end ECS apply through the real binary and the real AWS SDK, against
//! a moto server started by the test harness (tests/it/moto), extended so that
//! ECS deployments progress and new tasks can be made to fail.
//!
//! The configuration is the ECS workshop's: backend and frontend from
//! `modules/ecs-web-service`, frontend after backend, each behind its own
//! listener with a blue and a green target group created in moto.

use crate::moto;
use crate::support::{json_lines, text, traffic_shifts};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use slipway::state::{
    Backend, DeploymentStatus, HistoryOperation, HistoryResult, LocalBackend, State,
};

const CLUSTER: &str = "workshop-dev";

struct Workshop {
    moto: moto::Moto,
    _dir: tempfile::TempDir,
    root: PathBuf,
    backend: moto::AlbFixture,
    frontend: moto::AlbFixture,
    runtime: tokio::runtime::Runtime,
}

impl Workshop {
    /// A moto server with a cluster and one ALB per service, and the
    /// workshop configuration with `rollout` as the backend's rollout body.
    fn start(backend_rollout: &str) -> Option<Workshop> {
        let moto = moto::Moto::start()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (backend, frontend) = runtime.block_on(async {
            let sdk = moto.sdk_config().await;
            aws_sdk_ecs::Client::new(&sdk)
                .create_cluster()
                .cluster_name(CLUSTER)
                .send()
                .await
                .expect("create cluster");
            (
                moto.create_alb_with_two_target_groups("backend", 5000)
                    .await,
                moto.create_alb_with_two_target_groups("frontend", 80).await,
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("workshop");
        std::fs::create_dir_all(&root).unwrap();
        let workshop = Workshop {
            moto,
            _dir: dir,
            root,
            backend,
            frontend,
            runtime,
        };
        workshop.write_config(backend_rollout);
        Some(workshop)
    }

    fn write_config(&self, backend_rollout: &str) {
        let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("modules/ecs-web-service");
        let fixture = &self.backend;
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

variable "frontend_version" {{
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
  desired_count      = 2
  execution_role_arn = "arn:aws:iam::123456789012:role/workshop-ecs-task-execution"
  task_role_arn      = "arn:aws:iam::123456789012:role/workshop-backend-task"
  environment        = {{ PORT = "5000" }}
  secrets            = {{ DATABASE_URL = "DATABASE_URL_SECRET_ARN" }}
}}

module "frontend" {{
  source             = "{module}"
  name               = "frontend"
  image              = "registry.local/workshop-frontend"
  version            = var.frontend_version
  port               = 80
  cpu                = 256
  memory             = 256
  health_check_path  = "/"
  desired_count      = 1
  execution_role_arn = "arn:aws:iam::123456789012:role/workshop-ecs-task-execution"
  task_role_arn      = "arn:aws:iam::123456789012:role/workshop-frontend-task"
  environment        = {{ API_BASE_URL = "/api" }}
}}

environment "dev" {{
  variables = {{
    STAGE                   = "dev"
    DATABASE_URL_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:workshop/dev/database-url-Ab12Cd"
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
  {backend_rollout}
}}

rollout "frontend" {{
  strategy   = "rolling"
  on_failure = "rollback"
}}

deployment "backend-dev" {{
  service     = module.backend.service.web
  environment = environment.dev
  rollout     = rollout.backend

  ecs {{
    service_name  = "workshop-dev-backend"
    desired_count = module.backend.desired_count
    listener_arn  = "{backend_listener}"
    target_groups = ["{backend_blue}", "{backend_green}"]
  }}
}}

deployment "frontend-dev" {{
  service     = module.frontend.service.web
  environment = environment.dev
  rollout     = rollout.frontend
  depends_on  = [deployment.backend-dev]

  ecs {{
    service_name  = "workshop-dev-frontend"
    listener_arn  = "{frontend_listener}"
    target_groups = ["{frontend_blue}", "{frontend_green}"]
  }}
}}
"#,
            module = module.display(),
            endpoint = self.moto.endpoint,
            subnets = serde_json::to_string(&fixture.subnets).unwrap(),
            security_group = fixture.security_group,
            backend_listener = fixture.listener_arn,
            backend_blue = fixture.blue_target_group_arn,
            backend_green = fixture.green_target_group_arn,
            frontend_listener = self.frontend.listener_arn,
            frontend_blue = self.frontend.blue_target_group_arn,
            frontend_green = self.frontend.green_target_group_arn,
        );
        std::fs::write(self.root.join("main.hcl"), config).unwrap();
    }

    fn slipway(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .envs(self.moto.env())
            .output()
            .unwrap()
    }

    fn apply(&self, backend: &str, frontend: &str) -> Output {
        let (b, f) = (
            format!("backend_version={backend}"),
            format!("frontend_version={frontend}"),
        );
        self.slipway(&["apply", ".", "-auto-approve", "-var", &b, "-var", &f])
    }

    /// An apply that kills itself with SIGKILL at its `point`th crash point
    /// (the test-only hook of debug builds).
    fn apply_crashing_at(&self, backend: &str, frontend: &str, point: usize) -> Output {
        Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["apply", ".", "-auto-approve", "-var"])
            .arg(format!("backend_version={backend}"))
            .arg("-var")
            .arg(format!("frontend_version={frontend}"))
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1")
            .env("SLIPWAY_TEST_CRASH_AT", point.to_string())
            .envs(self.moto.env())
            .output()
            .unwrap()
    }

    fn plan_json(
        &self,
        backend: &str,
        frontend: &str,
        extra: &[&str],
    ) -> (Option<i32>, serde_json::Value) {
        let (b, f) = (
            format!("backend_version={backend}"),
            format!("frontend_version={frontend}"),
        );
        let mut args = vec!["plan", ".", "-json", "-var", &b, "-var", &f];
        args.extend(extra);
        let output = self.slipway(&args);
        let json = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("plan -json: {e}\n{}", text(&output)));
        (output.status.code(), json)
    }

    fn state(&self) -> State {
        LocalBackend::new(self.root.join("state"))
            .read("dev")
            .unwrap()
            .expect("state exists")
    }

    /// `(status, image, running count)` of each deployment of an active
    /// service, as ECS lists them; `None` when the service is not active.
    fn service(&self, name: &str) -> Option<Vec<(String, String, i32)>> {
        self.runtime
            .block_on(self.moto.service_deployments(CLUSTER, name))
    }

    fn weights(&self, listener: &str) -> BTreeMap<String, i32> {
        self.runtime.block_on(self.moto.listener_weights(listener))
    }

    /// The backend listener's weights on (blue, green), as ELB has them.
    fn backend_blue_green(&self) -> (i32, i32) {
        let weights = self.weights(&self.backend.listener_arn);
        (
            weights[&self.backend.blue_target_group_arn],
            weights[&self.backend.green_target_group_arn],
        )
    }

    /// Change the backend's image behind slipway's back.
    fn change_image_by_hand(&self, service: &str, image: &str) {
        self.runtime.block_on(async {
            let ecs = aws_sdk_ecs::Client::new(&self.moto.sdk_config().await);
            let described = ecs
                .describe_services()
                .cluster(CLUSTER)
                .services(service)
                .send()
                .await
                .unwrap();
            let current = described.services()[0]
                .task_definition()
                .unwrap()
                .to_string();
            let td = ecs
                .describe_task_definition()
                .task_definition(&current)
                .send()
                .await
                .unwrap();
            let td = td.task_definition().unwrap();
            let mut container = td.container_definitions()[0].clone();
            container.image = Some(image.to_string());
            let registered = ecs
                .register_task_definition()
                .family(td.family().unwrap())
                .set_cpu(td.cpu().map(str::to_string))
                .set_memory(td.memory().map(str::to_string))
                .set_network_mode(td.network_mode().cloned())
                .set_requires_compatibilities(Some(td.requires_compatibilities().to_vec()))
                .set_execution_role_arn(td.execution_role_arn().map(str::to_string))
                .set_task_role_arn(td.task_role_arn().map(str::to_string))
                .container_definitions(container)
                .send()
                .await
                .unwrap();
            ecs.update_service()
                .cluster(CLUSTER)
                .service(service)
                .task_definition(
                    registered
                        .task_definition()
                        .unwrap()
                        .task_definition_arn()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        });
    }
}

impl Workshop {
    /// A service made outside slipway (see [`moto::Moto::create_service_by_hand`]),
    /// task definition family `legacy-backend`; the value is its ARN.
    fn create_service_by_hand(
        &self,
        service: &str,
        image: &str,
        count: i32,
        target_group: Option<&str>,
    ) -> String {
        self.runtime.block_on(self.moto.create_service_by_hand(
            CLUSTER,
            &self.backend,
            ("legacy-backend", image),
            service,
            count,
            target_group,
        ))
    }

    /// `(task definition ARN, desired count, running count, status)` of a
    /// service as ECS describes it.
    fn describe(&self, service: &str) -> (String, i32, i32, String) {
        self.runtime.block_on(async {
            let ecs = aws_sdk_ecs::Client::new(&self.moto.sdk_config().await);
            let described = ecs
                .describe_services()
                .cluster(CLUSTER)
                .services(service)
                .send()
                .await
                .unwrap();
            let s = &described.services()[0];
            (
                s.task_definition().unwrap_or_default().to_string(),
                s.desired_count(),
                s.running_count(),
                s.status().unwrap_or_default().to_string(),
            )
        })
    }
}

/// The plan entry (change and schedule) of `address` in a plan JSON document.
fn planned<'a>(
    plan: &'a serde_json::Value,
    address: &str,
) -> (&'a serde_json::Value, &'a serde_json::Value) {
    let change = plan["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == address)
        .unwrap_or_else(|| panic!("{address} in the plan: {plan:#}"));
    let scheduled = plan["schedule"]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["deployments"].as_array().unwrap())
        .find(|d| d["address"] == address)
        .unwrap_or_else(|| panic!("{address} scheduled: {plan:#}"));
    (change, scheduled)
}

const ROLLING: &str = "strategy   = \"rolling\"\n  on_failure = \"rollback\"";
const CANARY: &str =
    "strategy   = \"canary\"\n  steps      = [\"10%\", \"25%\", \"50%\", \"100%\"]\n  on_failure = \"rollback\"";

/// The backend settled on its serving service, which kept its name: all
/// traffic on blue, no temporary service, and `workshop-dev-backend` runs
/// only `version`.
fn assert_backend_serves(workshop: &Workshop, version: &str, log: &str) {
    assert_eq!(workshop.backend_blue_green(), (100, 0), "{log}");
    assert!(
        workshop.service("workshop-dev-backend-green").is_none(),
        "the temporary service is gone:\n{log}"
    );
    only_running(
        workshop,
        "workshop-dev-backend",
        &format!("registry.local/workshop-backend:{version}"),
    );
}

fn only_running(workshop: &Workshop, service: &str, image: &str) {
    let deployments = workshop
        .service(service)
        .unwrap_or_else(|| panic!("service {service} exists"));
    assert_eq!(deployments.len(), 1, "{service}: {deployments:?}");
    assert_eq!(deployments[0].1, image, "{service}: {deployments:?}");
}

#[test]
fn the_workshop_services_are_created_backend_first_and_a_second_plan_is_empty() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let applied = workshop.apply("1.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    let backend_stable = log
        .find("service workshop-dev-backend is stable")
        .unwrap_or_else(|| panic!("backend became stable:\n{log}"));
    let frontend_created = log
        .find("service workshop-dev-frontend created")
        .unwrap_or_else(|| panic!("frontend created:\n{log}"));
    assert!(
        backend_stable < frontend_created,
        "frontend waits for backend:\n{log}"
    );
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    only_running(
        &workshop,
        "workshop-dev-frontend",
        "registry.local/workshop-frontend:1.0.0",
    );

    let state = workshop.state();
    for (address, service) in [
        ("deployment.backend-dev", "workshop-dev-backend"),
        ("deployment.frontend-dev", "workshop-dev-frontend"),
    ] {
        let deployment = &state.deployments[address];
        assert_eq!(deployment.status, DeploymentStatus::Deployed);
        let ecs = deployment.ecs.as_ref().expect("ECS record");
        assert_eq!(ecs.service_name, service);
        assert!(ecs
            .task_definition_arn
            .as_deref()
            .unwrap()
            .contains(":task-definition/"));
    }
    assert_eq!(
        state.deployments["deployment.backend-dev"]
            .ecs
            .as_ref()
            .unwrap()
            .desired_count,
        2
    );
    // The secret is sent and recorded as its ARN only.
    let recorded = serde_json::to_string(&state.deployments["deployment.backend-dev"].ecs).unwrap();
    assert!(
        recorded.contains("secret:workshop/dev/database-url-Ab12Cd"),
        "{recorded}"
    );

    let (code, plan) = workshop.plan_json("1.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");
}

#[test]
fn a_rolling_update_replaces_the_image_and_a_second_plan_is_empty() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let arn_v1 = workshop.state().deployments["deployment.backend-dev"]
        .ecs
        .clone()
        .unwrap()
        .task_definition_arn
        .unwrap();

    let second = workshop.apply("1.1.0", "1.0.0");
    let log = text(&second);
    assert_eq!(second.status.code(), Some(0), "{log}");
    assert!(
        log.contains("service workshop-dev-backend updated to backend-dev:2"),
        "{log}"
    );
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.1.0",
    );
    let (code, plan) = workshop.plan_json("1.1.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");

    // Back to 1.0.0: a new revision, since the latest (1.1.0) does not match.
    let back = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(back.status.code(), Some(0), "{}", text(&back));
    let arn_back = workshop.state().deployments["deployment.backend-dev"]
        .ecs
        .clone()
        .unwrap()
        .task_definition_arn
        .unwrap();
    assert_ne!(arn_back, arn_v1);
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
}

#[test]
fn a_canary_moves_the_listener_weights_step_by_step_as_planned() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let blue = workshop.backend.blue_target_group_arn.clone();
    let green = workshop.backend.green_target_group_arn.clone();
    let listener = workshop.backend.listener_arn.clone();
    assert_eq!(workshop.weights(&listener)[&blue], 100);

    let (_, plan) = workshop.plan_json("2.0.0", "1.0.0", &[]);
    let planned: Vec<u32> = plan["schedule"]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["deployments"].as_array().unwrap().clone())
        .find(|d| d["address"] == "deployment.backend-dev")
        .unwrap()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["percent"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(planned, [10, 25, 50, 100]);
    // The plan says how the rollout ends: the serving service keeps its name.
    let scheduled = plan["schedule"]["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["deployments"].as_array().unwrap().clone())
        .find(|d| d["address"] == "deployment.backend-dev")
        .unwrap();
    assert_eq!(
        scheduled["ends_with"],
        serde_json::json!({
            "kind": "update_in_place",
            "service": "workshop-dev-backend",
            "temporary": "workshop-dev-backend-green"
        })
    );

    let (applied, lines) = workshop.apply_json("2.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    // The new version ran in the temporary service for every step...
    let observed = traffic_shifts(&lines, "workshop-dev-backend-green");
    assert_eq!(observed, planned, "{log}");
    // The service that served keeps its name, its target group and all
    // traffic, and now runs 2.0.0; the temporary one is gone.
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (100, 0), "{log}");
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:2.0.0",
    );
    assert!(
        workshop.service("workshop-dev-backend-green").is_none(),
        "the temporary service is gone:\n{log}"
    );
    let ecs = workshop.state().deployments["deployment.backend-dev"]
        .ecs
        .clone()
        .unwrap();
    assert_eq!(ecs.service_name, "workshop-dev-backend");
    assert_eq!(ecs.target_group.as_deref(), Some(blue.as_str()));
    assert!(ecs.canary.is_none());
    let (code, plan) = workshop.plan_json("2.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");

    // The next canary runs beside it under the same temporary name, and the
    // serving service keeps its name again.
    let (again, lines) = workshop.apply_json("3.0.0", "1.0.0");
    let log = text(&again);
    assert_eq!(again.status.code(), Some(0), "{log}");
    assert_eq!(
        traffic_shifts(&lines, "workshop-dev-backend-green"),
        planned,
        "{log}"
    );
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (100, 0));
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:3.0.0",
    );
    assert!(workshop.service("workshop-dev-backend-green").is_none());
}

#[test]
fn a_canary_waits_at_its_approval_then_goes_on_from_the_next_step_or_is_rejected() {
    let rollout =
        format!("{CANARY}\n\n  approval \"release-manager\" {{\n    after_step = 1\n  }}");
    let Some(workshop) = Workshop::start(&rollout) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let blue = workshop.backend.blue_target_group_arn.clone();
    let green = workshop.backend.green_target_group_arn.clone();
    let listener = workshop.backend.listener_arn.clone();

    // 2.0.0 stops at 10 %, waiting.
    let paused = workshop.apply("2.0.0", "1.0.0");
    let log = text(&paused);
    assert_eq!(paused.status.code(), Some(0), "{log}");
    assert!(
        log.contains("waits for approval \"release-manager\" after step 1"),
        "{log}"
    );
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (90, 10), "{log}");
    let ecs = workshop.state().deployments["deployment.backend-dev"]
        .ecs
        .clone()
        .unwrap();
    assert_eq!(ecs.canary.as_ref().map(|c| c.percent), Some(10));

    // Approved, the next apply goes on at 25 %.
    let approve = workshop.slipway(&["approve", "backend-dev", "."]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    let (resumed, lines) = workshop.apply_json("2.0.0", "1.0.0");
    let log = text(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{log}");
    let observed = traffic_shifts(&lines, "workshop-dev-backend-green");
    assert_eq!(observed, [25, 50, 100], "{log}");
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (100, 0), "{log}");
    assert!(
        workshop.service("workshop-dev-backend-green").is_none(),
        "the temporary service is gone"
    );

    // 3.0.0 stops at 10 % on the green side again; reject sends everything back.
    let paused = workshop.apply("3.0.0", "1.0.0");
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (90, 10));
    let reject = workshop.slipway(&[
        "reject",
        "deployment.backend-dev",
        ".",
        "-var",
        "backend_version=3.0.0",
        "-var",
        "frontend_version=1.0.0",
    ]);
    let log = text(&reject);
    assert_eq!(reject.status.code(), Some(0), "{log}");
    assert_backend_serves(&workshop, "2.0.0", &log);
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(backend.status, slipway::state::DeploymentStatus::RolledBack);
    assert!(backend.ecs.as_ref().unwrap().canary.is_none());
}

/// Every step passed, then the serving service's own update to the new
/// version fails (its new tasks exit while the temporary service's keep
/// running): the rollback sets the serving service back to the task
/// definition it ran, only then gives it all traffic back, and removes the
/// temporary service. ECS runs 1.0.0 under the serving name afterwards, and
/// state says so.
#[test]
fn a_canary_whose_final_in_place_update_fails_sets_the_serving_service_back() {
    let rollout =
        format!("{CANARY}\n\n  approval \"release-manager\" {{\n    after_step = 4\n  }}");
    let Some(workshop) = Workshop::start(&rollout) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let (blue, green) = (
        workshop.backend.blue_target_group_arn.clone(),
        workshop.backend.green_target_group_arn.clone(),
    );
    let listener = workshop.backend.listener_arn.clone();
    let paused = workshop.apply("2.0.0", "1.0.0");
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (0, 100));

    // From now on new 2.0.0 tasks fail; the temporary service's run on.
    workshop.moto.fail_new_tasks("workshop-backend:2.0.0");
    let approve = workshop.slipway(&["approve", "backend-dev", "."]);
    assert_eq!(approve.status.code(), Some(0), "{}", text(&approve));
    let failed = workshop.apply("2.0.0", "1.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(
        log.contains("updating workshop-dev-backend to backend-dev:2 while workshop-dev-backend-green carries all the traffic"),
        "{log}"
    );
    let set_back = log
        .find("setting workshop-dev-backend back to backend-dev:1")
        .unwrap_or_else(|| panic!("the serving service is set back first:\n{log}"));
    let removed = log
        .find("service workshop-dev-backend-green deleted")
        .unwrap_or_else(|| panic!("the temporary service is removed:\n{log}"));
    assert!(set_back < removed, "{log}");
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (100, 0), "{log}");
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    assert!(
        workshop.service("workshop-dev-backend-green").is_none(),
        "{log}"
    );
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(
        (backend.version.as_str(), &backend.status),
        ("1.0.0", &DeploymentStatus::RolledBack),
        "{log}"
    );
    let ecs = backend.ecs.as_ref().unwrap();
    assert_eq!(ecs.service_name, "workshop-dev-backend");
    assert!(ecs.canary.is_none(), "{ecs:?}");
    assert!(
        ecs.task_definition_arn
            .as_deref()
            .unwrap()
            .ends_with("backend-dev:1"),
        "{ecs:?}"
    );
}

#[test]
fn a_canary_whose_new_tasks_fail_sends_all_traffic_back_and_removes_the_new_service() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    workshop
        .moto
        .fail_new_tasks("workshop-backend:2.0.0-broken");

    let failed = workshop.apply("2.0.0-broken", "1.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(log.contains("workshop-dev-backend-green"), "{log}");
    let blue = workshop.backend.blue_target_group_arn.clone();
    let weights = workshop.weights(&workshop.backend.listener_arn);
    assert_eq!(weights[&blue], 100, "{log}");
    assert!(
        workshop.service("workshop-dev-backend-green").is_none(),
        "the new service is gone:\n{log}"
    );
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(backend.status, DeploymentStatus::RolledBack, "{log}");
    assert_eq!(backend.version, "1.0.0", "state names the version ECS runs");
    let ecs = backend.ecs.as_ref().unwrap();
    assert_eq!(ecs.service_name, "workshop-dev-backend");
    assert_eq!(ecs.weights[&blue], 100);
    assert!(ecs.canary.is_none());
    assert_eq!(
        state.history.last().unwrap().result,
        HistoryResult::RolledBack
    );
    assert!(
        !state.deployments.contains_key("deployment.frontend-dev")
            || state.deployments["deployment.frontend-dev"].version == "1.0.0"
    );
}

#[test]
fn an_image_changed_by_hand_shows_up_in_plan_refresh() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    workshop.change_image_by_hand(
        "workshop-dev-backend",
        "registry.local/workshop-backend:hotfix",
    );

    let (plain, _) = workshop.plan_json("1.0.0", "1.0.0", &[]);
    assert_eq!(plain, Some(0), "without -refresh, plan trusts state");
    let (code, plan) = workshop.plan_json("1.0.0", "1.0.0", &["-refresh"]);
    assert_eq!(code, Some(2), "{plan:#}");
    let backend = plan["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "deployment.backend-dev")
        .unwrap();
    let drift = backend["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "drift")
        .unwrap_or_else(|| panic!("a drift reason: {backend:#}"));
    let summary = drift["summary"].as_str().unwrap();
    assert!(
        summary.contains("registry.local/workshop-backend:hotfix"),
        "{summary}"
    );
}

/// An account that is not empty: `workshop-dev-backend` runs 2 tasks of a
/// task definition made outside slipway. The plan says it adopts the service
/// (what it runs, what a failure puts back, and that the count changes); a
/// failed rolling deployment puts it back on its task definition with its 2
/// tasks, never deleting it, and state keeps no record of a deployment that
/// does not run.
#[test]
fn an_existing_service_is_adopted_visibly_and_a_failed_deployment_puts_it_back() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let service = "workshop-dev-backend";
    let legacy = workshop.create_service_by_hand(service, "registry.local/legacy:1", 2, None);

    let (code, plan) = workshop.plan_json("2.0.0-broken", "1.0.0", &[]);
    assert_eq!(code, Some(2), "{plan:#}");
    let (change, scheduled) = planned(&plan, "deployment.backend-dev");
    let reasons: Vec<&str> = change["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["summary"].as_str().unwrap())
        .collect();
    assert!(
        reasons[0].starts_with(
            "adopt existing service workshop-dev-backend: task definition legacy-backend:1, 2 tasks"
        ),
        "{reasons:#?}"
    );
    assert_eq!(change["reasons"][0]["kind"], "adopt_service");
    assert_eq!(change["adopt"]["task_definition_arn"], legacy.as_str());
    assert_eq!(change["adopt"]["desired_count"], 2);
    let rollback = scheduled["rollback"].as_str().unwrap();
    assert!(
        rollback.contains("put workshop-dev-backend back as it was before this apply: task definition legacy-backend:1, 2 task(s)"),
        "{rollback}"
    );
    assert!(!rollback.contains("remove the new service"), "{rollback}");

    workshop
        .moto
        .fail_new_tasks("workshop-backend:2.0.0-broken");
    let failed = workshop.apply("2.0.0-broken", "1.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(
        log.contains("adopting service workshop-dev-backend"),
        "{log}"
    );
    // ECS itself: the same service, back on its task definition and count.
    let (task_definition, desired, running, status) = workshop.describe(service);
    assert_eq!(status, "ACTIVE", "{log}");
    assert_eq!(task_definition, legacy, "{log}");
    assert_eq!((desired, running), (2, 2), "{log}");
    only_running(&workshop, service, "registry.local/legacy:1");
    // State says nothing runs from slipway there; the wording is ECS's.
    let state = workshop.state();
    assert!(
        !state.deployments.contains_key("deployment.backend-dev"),
        "{:#?}",
        state.deployments.get("deployment.backend-dev")
    );
    assert!(!log.contains("every host"), "{log}");
    assert!(log.contains("each ECS service as it runs now"), "{log}");
    // The frontend waited for the backend: it never started, and history
    // does not list it.
    let last = state.history.last().unwrap();
    assert_eq!(last.result, HistoryResult::RolledBack);
    assert!(
        !last.versions.contains_key("deployment.frontend-dev"),
        "{:?}",
        last.versions
    );
    assert!(workshop.service("workshop-dev-frontend").is_none());

    // The next plan adopts it again, from what it runs.
    let (_, plan) = workshop.plan_json("2.0.0", "1.0.0", &[]);
    let (change, _) = planned(&plan, "deployment.backend-dev");
    assert_eq!(change["adopt"]["task_definition_arn"], legacy.as_str());

    // A deployment that works takes the service over: same service, new
    // task definition, the configured count (2).
    let applied = workshop.apply("2.0.0", "1.0.0");
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    only_running(&workshop, service, "registry.local/workshop-backend:2.0.0");
    let ecs = workshop.state().deployments["deployment.backend-dev"]
        .ecs
        .clone()
        .unwrap();
    assert_eq!(ecs.service_name, service);
}

/// A canary over an adopted service registered with the blue target group:
/// the plan says the service is updated in place at the end and keeps its
/// name; a failure sends all traffic back to it and removes only the new
/// service; a canary that passes leaves the adopted service, under its own
/// name, running the new version.
#[test]
fn a_failed_canary_beside_an_adopted_service_sends_traffic_back_to_it_and_keeps_it() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let service = "workshop-dev-backend";
    let blue = workshop.backend.blue_target_group_arn.clone();
    let green = workshop.backend.green_target_group_arn.clone();
    let listener = workshop.backend.listener_arn.clone();
    let legacy =
        workshop.create_service_by_hand(service, "registry.local/legacy:1", 2, Some(&blue));

    let (_, plan) = workshop.plan_json("2.0.0-broken", "1.0.0", &[]);
    let (change, scheduled) = planned(&plan, "deployment.backend-dev");
    let adopt = change["reasons"][0]["summary"].as_str().unwrap();
    assert!(
        adopt.contains("adopt existing service workshop-dev-backend"),
        "{adopt}"
    );
    assert!(
        adopt.contains("in a temporary service, workshop-dev-backend-green,")
            && adopt.contains("at the end workshop-dev-backend is updated to it in place, takes all traffic back and keeps its name"),
        "{adopt}"
    );
    assert_eq!(change["adopt"]["target_group"], blue.as_str());
    assert!(
        scheduled["rollback"]
            .as_str()
            .unwrap()
            .contains("put workshop-dev-backend back"),
        "{scheduled:#}"
    );

    workshop
        .moto
        .fail_new_tasks("workshop-backend:2.0.0-broken");
    let failed = workshop.apply("2.0.0-broken", "1.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (100, 0), "{log}");
    assert!(
        workshop.service("workshop-dev-backend-green").is_none(),
        "{log}"
    );
    let (task_definition, desired, running, status) = workshop.describe(service);
    assert_eq!(
        (task_definition.as_str(), desired, running, status.as_str()),
        (legacy.as_str(), 2, 2, "ACTIVE"),
        "{log}"
    );
    assert!(
        !workshop
            .state()
            .deployments
            .contains_key("deployment.backend-dev"),
        "{log}"
    );

    // A canary that passes: the adopted service keeps its name and its
    // target group, and runs the new version.
    let (applied, lines) = workshop.apply_json("2.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert_eq!(
        traffic_shifts(&lines, "workshop-dev-backend-green"),
        [10, 25, 50, 100],
        "{log}"
    );
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (100, 0), "{log}");
    only_running(&workshop, service, "registry.local/workshop-backend:2.0.0");
    assert!(workshop.service("workshop-dev-backend-green").is_none());
    let ecs = workshop.state().deployments["deployment.backend-dev"]
        .ecs
        .clone()
        .unwrap();
    assert_eq!(
        (ecs.service_name.as_str(), ecs.target_group.as_deref()),
        (service, Some(blue.as_str()))
    );
}

/// A first deployment under a canary: nothing serves yet, so the plan has
/// one step (100%) with the rollout's gates, and apply judges them before it
/// records the deployment verified. A failing gate removes the new service.
#[test]
fn a_first_canary_runs_its_gates_before_it_is_recorded_verified() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let marker = workshop.root.join("gate-fails");
    workshop.write_config(&format!(
        "{CANARY}\n\n  verify \"smoke\" {{\n    command {{\n      command = \"test ! -e {}\"\n      on      = \"runner\"\n    }}\n  }}",
        marker.display()
    ));
    let (_, plan) = workshop.plan_json("1.0.0", "1.0.0", &[]);
    let (change, scheduled) = planned(&plan, "deployment.backend-dev");
    let steps = scheduled["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{scheduled:#}");
    assert_eq!(steps[0]["percent"], 100);
    assert_eq!(steps[0]["gates"][0]["name"], "smoke", "{scheduled:#}");
    let reason = change["reasons"][0]["summary"].as_str().unwrap();
    assert!(
        reason.contains("nothing serves yet, so the canary steps do not apply"),
        "{reason}"
    );

    std::fs::write(&marker, "").unwrap();
    let failed = workshop.apply("1.0.0", "1.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(log.contains("gate smoke"), "{log}");
    assert!(workshop.service("workshop-dev-backend").is_none(), "{log}");
    assert!(
        !workshop
            .state()
            .deployments
            .contains_key("deployment.backend-dev"),
        "{log}"
    );

    std::fs::remove_file(&marker).unwrap();
    let applied = workshop.apply("1.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert!(backend.verified, "{log}");
    let gates: Vec<(&str, usize, bool)> = backend
        .gates
        .iter()
        .map(|g| (g.name.as_str(), g.step, g.passed))
        .collect();
    assert_eq!(gates, [("smoke", 1, true)], "{log}");
    let weights = workshop.weights(&workshop.backend.listener_arn);
    assert_eq!(weights[&workshop.backend.blue_target_group_arn], 100);
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
}

/// After a failed rolling update rolls back, state, plan and history say
/// what ECS runs: the previous version, verified as it was; the frontend,
/// held back by the failed wave, is not in history; the closing words are
/// about services, not hosts.
#[test]
fn after_a_rollback_state_plan_and_history_report_what_ecs_runs() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let first = workshop.apply("1.5.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let arn_before = workshop.describe("workshop-dev-backend").0;
    workshop
        .moto
        .fail_new_tasks("workshop-backend:1.6.0-broken");

    let failed = workshop.apply("1.6.0-broken", "1.1.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    // ECS runs 1.5.0 again, on the task definition it ran before.
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.5.0",
    );
    let (arn, desired, _, _) = workshop.describe("workshop-dev-backend");
    assert_eq!((arn.as_str(), desired), (arn_before.as_str(), 2), "{log}");
    // State says so.
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(backend.version, "1.5.0", "{log}");
    assert_eq!(backend.status, DeploymentStatus::RolledBack);
    assert!(backend.verified, "1.5.0 was verified before");
    assert_eq!(
        backend.ecs.as_ref().unwrap().task_definition_arn.as_deref(),
        Some(arn_before.as_str())
    );
    // History: the apply rolled back; the frontend never started.
    let last = state.history.last().unwrap();
    assert_eq!(last.result, HistoryResult::RolledBack);
    assert_eq!(
        last.versions.keys().collect::<Vec<_>>(),
        ["deployment.backend-dev"],
        "{:?}",
        last.versions
    );
    assert!(
        log.contains("State records each ECS service as it runs now"),
        "{log}"
    );
    assert!(!log.contains("every host"), "{log}");
    // The plan starts from 1.5.0.
    let (_, plan) = workshop.plan_json("1.6.0-broken", "1.0.0", &[]);
    let (change, _) = planned(&plan, "deployment.backend-dev");
    assert_eq!(change["version_before"], "1.5.0", "{change:#}");
    assert_eq!(
        change["reasons"][0]["summary"], "version 1.5.0 → 1.6.0-broken",
        "{change:#}"
    );
}

/// Listener weights changed by hand (50/50, nothing behind green) are a
/// change: the plan shows it with its reason and one step without gates,
/// apply sets the recorded weights back, and a later rollout of a new version
/// starts from the recorded weights too.
#[test]
fn listener_weights_changed_by_hand_are_a_change_that_apply_restores() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let blue = workshop.backend.blue_target_group_arn.clone();
    let green = workshop.backend.green_target_group_arn.clone();
    let listener = workshop.backend.listener_arn.clone();
    let by_hand = || {
        workshop.runtime.block_on(
            workshop
                .moto
                .set_listener_weights(&listener, &[(&blue, 50), (&green, 50)]),
        )
    };
    by_hand();

    let (code, plan) = workshop.plan_json("1.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(2), "{plan:#}");
    let (change, scheduled) = planned(&plan, "deployment.backend-dev");
    assert_eq!(change["action"], "update");
    let reason = &change["reasons"][0];
    assert_eq!(reason["kind"], "listener_weights", "{change:#}");
    let summary = reason["summary"].as_str().unwrap();
    assert!(
        summary.contains("listener weights changed outside slipway")
            && summary.contains("backend-blue 50, backend-green 50")
            && summary.contains("state recorded backend-blue 100, backend-green 0"),
        "{summary}"
    );
    let steps = scheduled["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{scheduled:#}");
    assert_eq!(steps[0]["gates"].as_array().unwrap().len(), 0);

    let applied = workshop.apply("1.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert!(log.contains("set outside slipway; set back"), "{log}");
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (100, 0), "{log}");
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let (code, plan) = workshop.plan_json("1.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");

    // Changed again, then a new version: set back first, then the canary.
    by_hand();
    let (_, plan) = workshop.plan_json("2.0.0", "1.0.0", &[]);
    let (change, _) = planned(&plan, "deployment.backend-dev");
    assert!(
        change["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "listener_weights"),
        "{change:#}"
    );
    let (applied, lines) = workshop.apply_json("2.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert_eq!(
        traffic_shifts(&lines, "workshop-dev-backend-green"),
        [10, 25, 50, 100],
        "{log}"
    );
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (100, 0), "{log}");
}

/// Listener weights changed by hand *during* an apply, while step 1 bakes:
/// the next step's check reads the listener as it is, sees it is not as the
/// rollout left it, and the rollout rolls back instead of moving weights it
/// did not set. Afterwards ECS, the listener and state agree.
#[test]
fn listener_weights_changed_during_a_canary_stop_it_and_roll_it_back() {
    let Some(workshop) = Workshop::start(&format!("{CANARY}\n  bake       = \"3s\"")) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let blue = workshop.backend.blue_target_group_arn.clone();
    let green = workshop.backend.green_target_group_arn.clone();
    let listener = workshop.backend.listener_arn.clone();

    let running = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "apply",
            ".",
            "-json",
            "-auto-approve",
            "-var",
            "backend_version=2.0.0",
        ])
        .args(["-var", "frontend_version=1.0.0"])
        .current_dir(&workshop.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .envs(workshop.moto.env())
        .spawn()
        .unwrap();
    // Step 1 is made (10 % on green) and bakes: change the weights then.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while workshop.weights(&listener)[&green] != 10 {
        assert!(std::time::Instant::now() < deadline, "step 1 never came");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    workshop.runtime.block_on(
        workshop
            .moto
            .set_listener_weights(&listener, &[(&blue, 50), (&green, 50)]),
    );
    let output = running.wait_with_output().unwrap();
    let log = text(&output);
    assert_eq!(output.status.code(), Some(1), "{log}");
    assert!(log.contains("changed during the rollout"), "{log}");
    assert_eq!(
        traffic_shifts(&json_lines(&output), "workshop-dev-backend-green"),
        [10],
        "{log}"
    );
    assert_backend_serves(&workshop, "1.0.0", &log);
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(
        (backend.version.as_str(), &backend.status),
        ("1.0.0", &DeploymentStatus::RolledBack),
        "{log}"
    );
    let ecs = backend.ecs.as_ref().unwrap();
    assert!(ecs.canary.is_none(), "{ecs:?}");
    assert_eq!((ecs.weights[&blue], ecs.weights[&green]), (100, 0));
}

/// A canary cannot start beside an adopted service that is not registered
/// with the first target group: apply refuses before changing anything.
#[test]
fn a_canary_beside_an_adopted_service_outside_the_target_groups_is_refused() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let service = "workshop-dev-backend";
    let legacy = workshop.create_service_by_hand(service, "registry.local/legacy:1", 2, None);
    // The plan says so before apply is run.
    let (_, plan) = workshop.plan_json("2.0.0", "1.0.0", &[]);
    assert!(
        plan["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("is not registered with the first of the deployment's target groups")
            && w.as_str().unwrap().contains("apply refuses this plan")),
        "{plan:#}"
    );
    let refused = workshop.apply("2.0.0", "1.0.0");
    let log = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{log}");
    assert!(
        log.contains("is not registered with the first of the deployment's target groups")
            && log.contains("nothing was changed"),
        "{log}"
    );
    let (task_definition, desired, running, status) = workshop.describe(service);
    assert_eq!(
        (task_definition.as_str(), desired, running, status.as_str()),
        (legacy.as_str(), 2, 2, "ACTIVE"),
        "{log}"
    );
    assert!(workshop.service("workshop-dev-backend-green").is_none());
    assert!(workshop.service("workshop-dev-frontend").is_none());
}

/// The canary's second service name is taken by a service made outside
/// slipway: apply refuses before changing anything, leaves that service as
/// it is, and state keeps its record (1.0.0, deployed).
#[test]
fn a_canary_whose_green_name_is_taken_by_a_foreign_service_changes_nothing() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let foreign = "workshop-dev-backend-green";
    let legacy = workshop.create_service_by_hand(foreign, "registry.local/legacy:1", 2, None);

    let refused = workshop.apply("2.0.0", "1.0.0");
    let log = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{log}");
    assert!(
        log.contains("exists in cluster workshop-dev but state has no record of it")
            && log.contains("nothing was changed"),
        "{log}"
    );
    let (task_definition, desired, running, status) = workshop.describe(foreign);
    assert_eq!(
        (task_definition.as_str(), desired, running, status.as_str()),
        (legacy.as_str(), 2, 2, "ACTIVE"),
        "{log}"
    );
    let weights = workshop.weights(&workshop.backend.listener_arn);
    assert_eq!(weights[&workshop.backend.blue_target_group_arn], 100);
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(
        (backend.version.as_str(), &backend.status),
        ("1.0.0", &DeploymentStatus::Deployed),
        "{log}"
    );
}

/// The task definition ARN state records for the backend.
fn backend_arn(workshop: &Workshop) -> String {
    workshop.state().deployments["deployment.backend-dev"]
        .ecs
        .clone()
        .unwrap()
        .task_definition_arn
        .unwrap()
}

fn rollback_backend(workshop: &Workshop, backend: &str) -> Output {
    let b = format!("backend_version={backend}");
    workshop.slipway(&[
        "rollback",
        "backend-dev",
        ".",
        "-auto-approve",
        "-var",
        &b,
        "-var",
        "frontend_version=1.0.0",
    ])
}

/// 1.0.0 then 1.1.0 rolled out; `slipway rollback` puts the service back on
/// 1.0.0's task definition (the same revision, none registered) and ECS runs
/// only 1.0.0; the frontend is not touched. apply then refuses 1.1.0.
#[test]
fn rollback_puts_a_rolling_service_back_on_the_previous_task_definition() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let arn_v1 = backend_arn(&workshop);
    let second = workshop.apply("1.1.0", "1.0.0");
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let frontend = workshop.service("workshop-dev-frontend");

    let rolled = rollback_backend(&workshop, "1.1.0");
    let log = text(&rolled);
    assert_eq!(rolled.status.code(), Some(0), "{log}");
    assert!(
        log.contains("deployment.backend-dev: 1.1.0 -> 1.0.0"),
        "{log}"
    );
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let live = workshop.runtime.block_on(async {
        aws_sdk_ecs::Client::new(&workshop.moto.sdk_config().await)
            .describe_services()
            .cluster(CLUSTER)
            .services("workshop-dev-backend")
            .send()
            .await
            .unwrap()
            .services()[0]
            .task_definition()
            .unwrap()
            .to_string()
    });
    assert_eq!(live, arn_v1, "the same revision, not a new one");
    assert_eq!(workshop.service("workshop-dev-frontend"), frontend);
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(
        (backend.version.as_str(), &backend.status, backend.verified),
        ("1.0.0", &DeploymentStatus::Deployed, true)
    );
    assert_eq!(backend_arn(&workshop), arn_v1);
    assert_eq!(
        state.history.last().unwrap().operation,
        HistoryOperation::Rollback
    );

    let refused = workshop.apply("1.1.0", "1.0.0");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("was rolled back to 1.0.0"),
        "{}",
        text(&refused)
    );
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let (code, plan) = workshop.plan_json("1.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");
}

/// `slipway rollback` whose UpdateService fails after it recorded its start
/// (a missing permission, say): ECS still runs 1.1.0, and state must not say
/// otherwise; the next plan does not claim 1.0.0 serves, and the same
/// `slipway rollback`, once the cause is gone, finishes it.
#[test]
fn a_rollback_whose_service_update_fails_says_so_and_can_be_run_again() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    for version in ["1.0.0", "1.1.0"] {
        let applied = workshop.apply(version, "1.0.0");
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    }
    let arn_v2 = backend_arn(&workshop);
    workshop.moto.refuse_updates(Some("workshop-dev-backend"));
    let failed = rollback_backend(&workshop, "1.1.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(log.contains("refused by the test"), "{log}");
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.1.0",
    );
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_ne!(backend.status, DeploymentStatus::Deployed, "{log}");
    assert!(!backend.verified, "{log}");
    assert_eq!(
        backend.ecs.as_ref().unwrap().task_definition_arn.as_deref(),
        Some(arn_v2.as_str()),
        "state names the task definition ECS still runs: {log}"
    );
    assert_eq!(state.history.last().unwrap().result, HistoryResult::Failed);

    workshop.moto.refuse_updates(None);
    let again = rollback_backend(&workshop, "1.1.0");
    let log = text(&again);
    assert_eq!(again.status.code(), Some(0), "{log}");
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(
        (backend.version.as_str(), &backend.status, backend.verified),
        ("1.0.0", &DeploymentStatus::Deployed, true),
        "{log}"
    );
    let (code, plan) = workshop.plan_json("1.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");
}

/// After a finished canary (the service serves 2.0.0 under its own name),
/// rollback updates it to 1.0.0's task definition. Then 3.0.0 stops at 10 %
/// on the temporary service: rollback sends all traffic back, removes the
/// temporary service and leaves the service on 1.0.0, the release that
/// served before 3.0.0.
#[test]
fn rollback_after_a_canary_and_during_one() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let listener = workshop.backend.listener_arn.clone();
    let blue = workshop.backend.blue_target_group_arn.clone();
    let green = workshop.backend.green_target_group_arn.clone();
    for version in ["1.0.0", "2.0.0"] {
        let applied = workshop.apply(version, "1.0.0");
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    }
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:2.0.0",
    );
    let rolled = rollback_backend(&workshop, "2.0.0");
    assert_eq!(rolled.status.code(), Some(0), "{}", text(&rolled));
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (100, 0));

    workshop.write_config(&format!(
        "{CANARY}\n\n  approval \"release-manager\" {{\n    after_step = 1\n  }}"
    ));
    let paused = workshop.apply("3.0.0", "1.0.0");
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue], weights[&green]), (90, 10));

    let rolled = rollback_backend(&workshop, "3.0.0");
    let log = text(&rolled);
    assert_eq!(rolled.status.code(), Some(0), "{log}");
    assert!(log.contains("3.0.0 -> 1.0.0"), "{log}");
    assert_backend_serves(&workshop, "1.0.0", &log);
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(backend.version, "1.0.0");
    assert!(backend.ecs.as_ref().unwrap().canary.is_none());
    assert_eq!(backend.status, DeploymentStatus::Deployed);
}

// ---- autoscaling -----------------------------------------------------------

impl Workshop {
    /// Set a service's desired count behind slipway's back, as autoscaling
    /// or an operator would.
    fn set_desired_count_by_hand(&self, service: &str, count: i32) {
        self.runtime
            .block_on(self.moto.set_desired_count(CLUSTER, service, count));
    }

    fn scalable_target(&self, service: &str) -> Option<moto::ScalableTarget> {
        self.runtime
            .block_on(self.moto.scalable_target(CLUSTER, service))
    }

    fn put_under_autoscaling(&self, service: &str, min: i32, max: i32) {
        self.runtime.block_on(
            self.moto
                .put_service_under_autoscaling(CLUSTER, service, min, max),
        );
    }
}

fn reason_summaries(change: &serde_json::Value) -> Vec<String> {
    change["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["summary"].as_str().unwrap().to_string())
        .collect()
}

/// A service under Application Auto Scaling (min 3, max 6, 4 tasks; the
/// configuration asks for 2), as real accounts have them. The plan keeps
/// autoscaling's count and shows the peak; apply never sets fewer tasks, on
/// success or on rollback; the target, its policy and its scheduled action
/// are as they were afterwards (read from Application Auto Scaling itself);
/// a count lowered below the minimum by hand is raised to it.
#[test]
fn autoscaling_owns_the_count_and_a_rollout_never_goes_below_it() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let service = "workshop-dev-backend";
    let legacy = workshop.create_service_by_hand(service, "registry.local/legacy:1", 4, None);
    workshop.put_under_autoscaling(service, 3, 6);
    let untouched = workshop.scalable_target(service).expect("the target");
    assert_eq!(untouched.suspended, [false; 3]);

    let (code, plan) = workshop.plan_json("2.0.0-broken", "1.0.0", &[]);
    assert_eq!(code, Some(2), "{plan:#}");
    let (change, scheduled) = planned(&plan, "deployment.backend-dev");
    assert_eq!(
        change["capacity"],
        serde_json::json!({
            "tasks": 4, "configured": 2, "live": 4,
            "scaling": {"min": 3, "max": 6}, "peak_tasks": 8
        }),
        "{change:#}"
    );
    assert_eq!(scheduled["steps"][0]["desired_count"], 4, "{scheduled:#}");
    let reasons = reason_summaries(change);
    assert!(
        reasons.contains(&"4 tasks, the count autoscaling keeps (min 3, max 6; the configured 2 is not used); up to 8 at once during the rollout; autoscaling is suspended while it runs and restored after".to_string()),
        "{reasons:#?}"
    );
    assert!(
        !reasons.iter().any(|r| r.starts_with("desired count")),
        "{reasons:#?}"
    );

    // A rollout whose tasks fail goes back to the legacy task definition
    // with autoscaling's 4 tasks, and autoscaling is as it was.
    workshop
        .moto
        .fail_new_tasks("workshop-backend:2.0.0-broken");
    let failed = workshop.apply("2.0.0-broken", "1.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    let resource = format!("service/{CLUSTER}/{service}");
    assert!(
        log.contains(&format!(
            "autoscaling of {resource} suspended while the rollout runs (min 3, max 6)"
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("autoscaling of {resource} restored")),
        "{log}"
    );
    let (task_definition, desired, running, _) = workshop.describe(service);
    assert_eq!(task_definition, legacy, "{log}");
    assert_eq!((desired, running), (4, 4), "{log}");
    assert_eq!(
        workshop.scalable_target(service),
        Some(untouched.clone()),
        "{log}"
    );

    // A rollout that works runs the new version on 4 tasks.
    workshop.moto.clear_failing_tasks();
    let applied = workshop.apply("2.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    only_running(&workshop, service, "registry.local/workshop-backend:2.0.0");
    assert_eq!(workshop.describe(service).1, 4, "{log}");
    assert_eq!(
        workshop.scalable_target(service),
        Some(untouched.clone()),
        "{log}"
    );
    assert!(workshop.state().scaling_suspended.is_empty());

    // Autoscaling scaled out to 5: nothing to change, and the next rollout
    // keeps 5.
    workshop.set_desired_count_by_hand(service, 5);
    let (code, plan) = workshop.plan_json("2.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");
    // Nor is it drift: the count is autoscaling's.
    let (code, plan) = workshop.plan_json("2.0.0", "1.0.0", &["-refresh"]);
    assert_eq!(code, Some(0), "{plan:#}");
    let backend = plan["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["address"] == "deployment.backend-dev")
        .unwrap();
    assert_eq!(backend["reasons"], serde_json::json!([]), "{backend:#}");
    let (_, plan) = workshop.plan_json("2.1.0", "1.0.0", &[]);
    let (change, _) = planned(&plan, "deployment.backend-dev");
    assert_eq!(change["capacity"]["tasks"], 5, "{change:#}");
    let applied = workshop.apply("2.1.0", "1.0.0");
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_eq!(workshop.describe(service).1, 5);

    // Lowered by hand below the minimum: the plan raises it to 3.
    workshop.set_desired_count_by_hand(service, 2);
    let (code, plan) = workshop.plan_json("2.1.0", "1.0.0", &[]);
    assert_eq!(code, Some(2), "{plan:#}");
    let (change, _) = planned(&plan, "deployment.backend-dev");
    let reasons = reason_summaries(change);
    assert!(
        reasons.contains(&"desired count 2 → 3".to_string()),
        "{reasons:#?}"
    );
    let applied = workshop.apply("2.1.0", "1.0.0");
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_eq!(workshop.describe(service).1, 3);
    assert_eq!(workshop.scalable_target(service), Some(untouched.clone()));

    // Autoscaling scales out to 5; `slipway rollback` to 2.0.0 keeps 5.
    workshop.set_desired_count_by_hand(service, 5);
    let rolled = rollback_backend(&workshop, "2.1.0");
    let log = text(&rolled);
    assert_eq!(rolled.status.code(), Some(0), "{log}");
    only_running(&workshop, service, "registry.local/workshop-backend:2.0.0");
    assert_eq!(workshop.describe(service).1, 5, "{log}");
    assert_eq!(workshop.scalable_target(service), Some(untouched), "{log}");
    assert!(workshop.state().scaling_suspended.is_empty(), "{log}");
}

/// A canary of a service under autoscaling: the new side starts with the
/// count autoscaling holds (not the configured one); afterwards the service
/// that serves is the same one, under its own name, so the scalable target,
/// its policy and its scheduled action govern it as before, never moved.
#[test]
fn after_a_canary_autoscaling_governs_the_service_that_serves() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let blue = "workshop-dev-backend";
    let green = "workshop-dev-backend-green";
    workshop.put_under_autoscaling(blue, 2, 5);
    workshop.set_desired_count_by_hand(blue, 3);
    let before = workshop.scalable_target(blue).expect("the target");

    let (_, plan) = workshop.plan_json("2.0.0", "1.0.0", &[]);
    let (change, _) = planned(&plan, "deployment.backend-dev");
    assert_eq!(change["capacity"]["tasks"], 3, "{change:#}");
    // 3 serving, 3 in the temporary service, and up to 3 more while the
    // serving service is updated in place beside it.
    assert_eq!(change["capacity"]["peak_tasks"], 9, "{change:#}");

    let applied = workshop.apply("2.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert!(
        log.contains(&format!("service {green} created with backend-dev:2")),
        "{log}"
    );
    only_running(&workshop, blue, "registry.local/workshop-backend:2.0.0");
    assert_eq!(workshop.describe(blue).1, 3, "{log}");
    assert!(workshop.service(green).is_none(), "{log}");
    assert_eq!(workshop.scalable_target(blue), Some(before), "{log}");
    assert_eq!(workshop.scalable_target(green), None, "{log}");
    assert!(!log.contains("autoscaling target moved"), "{log}");
    assert!(
        log.contains(&format!("autoscaling of service/{CLUSTER}/{blue} restored")),
        "{log}"
    );
    assert!(workshop.state().scaling_suspended.is_empty());
    let (code, plan) = workshop.plan_json("2.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");
}

/// After a canary the service that serves is the one it always was. A
/// rolling update then updates that service in place: no second service
/// beside it, traffic where it was. A canary stopped at its approval and
/// then followed by a rolling update is given up first: its traffic goes
/// back and its temporary service is removed. (Found by `ecs_sequences`
/// when a canary alternated the serving service's name: the rolling update
/// created a service of the configured name beside the one serving, behind
/// the target group without traffic, and state recorded it as serving.)
#[test]
fn a_rolling_update_after_a_canary_updates_the_service_that_serves() {
    let Some(workshop) = Workshop::start(CANARY) else {
        return;
    };
    let (blue, green) = ("workshop-dev-backend", "workshop-dev-backend-green");
    let listener = workshop.backend.listener_arn.clone();
    let (blue_group, green_group) = (
        workshop.backend.blue_target_group_arn.clone(),
        workshop.backend.green_target_group_arn.clone(),
    );
    for version in ["1.0.0", "2.0.0"] {
        let applied = workshop.apply(version, "1.0.0");
        assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    }
    only_running(&workshop, blue, "registry.local/workshop-backend:2.0.0");

    workshop.write_config(ROLLING);
    let applied = workshop.apply("3.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    only_running(&workshop, blue, "registry.local/workshop-backend:3.0.0");
    assert!(workshop.service(green).is_none(), "{log}");
    let weights = workshop.weights(&listener);
    assert_eq!(
        (weights[&blue_group], weights[&green_group]),
        (100, 0),
        "{log}"
    );
    let ecs = workshop.state().deployments["deployment.backend-dev"]
        .ecs
        .clone()
        .unwrap();
    assert_eq!(ecs.service_name, blue);
    assert_eq!(ecs.target_group.as_deref(), Some(blue_group.as_str()));
    let (code, plan) = workshop.plan_json("3.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");

    // A canary stopped at its approval (10 % on the temporary service),
    // then a rolling update of another version.
    workshop.write_config(&format!(
        "{CANARY}\n\n  approval \"release-manager\" {{\n    after_step = 1\n  }}"
    ));
    let paused = workshop.apply("4.0.0", "1.0.0");
    assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
    let weights = workshop.weights(&listener);
    assert_eq!((weights[&blue_group], weights[&green_group]), (90, 10));
    workshop.write_config(ROLLING);
    let applied = workshop.apply("5.0.0", "1.0.0");
    let log = text(&applied);
    assert_eq!(applied.status.code(), Some(0), "{log}");
    assert!(
        log.contains("the 10% of traffic on workshop-dev-backend-green left by an unfinished rollout goes back to workshop-dev-backend"),
        "{log}"
    );
    only_running(&workshop, blue, "registry.local/workshop-backend:5.0.0");
    assert!(workshop.service(green).is_none(), "{log}");
    let weights = workshop.weights(&listener);
    assert_eq!(
        (weights[&blue_group], weights[&green_group]),
        (100, 0),
        "{log}"
    );
    let (code, plan) = workshop.plan_json("5.0.0", "1.0.0", &[]);
    assert_eq!(code, Some(0), "{plan:#}");
}

/// A rolling update that gives up a canary stopped at its approval, killed
/// as it began doing so and after it had (traffic back, temporary service
/// removed, not recorded): the next apply of the same version gives it up
/// again if need be and deploys the version, rather than taking the killed
/// apply for one that was rolling back a failure and ending "rolled back".
#[test]
fn a_rolling_update_killed_while_it_gives_up_a_canary_is_deployed_by_the_next_apply() {
    for point in [1, 2] {
        let Some(workshop) = Workshop::start(CANARY) else {
            return;
        };
        let (blue, green) = ("workshop-dev-backend", "workshop-dev-backend-green");
        let first = workshop.apply("1.0.0", "1.0.0");
        assert_eq!(first.status.code(), Some(0), "{}", text(&first));
        workshop.write_config(&format!(
            "{CANARY}\n\n  approval \"release-manager\" {{\n    after_step = 1\n  }}"
        ));
        let paused = workshop.apply("2.0.0", "1.0.0");
        assert_eq!(paused.status.code(), Some(0), "{}", text(&paused));
        workshop.write_config(ROLLING);

        let killed = workshop.apply_crashing_at("3.0.0", "1.0.0", point);
        assert_eq!(
            killed.status.code(),
            None,
            "point {point}: {}",
            text(&killed)
        );
        let journal: Vec<String> = workshop
            .state()
            .journal
            .iter()
            .map(|e| e.action.as_str().to_string())
            .collect();
        assert_eq!(journal, ["withdraw"], "point {point}");

        let applied = workshop.apply("3.0.0", "1.0.0");
        let log = text(&applied);
        assert_eq!(applied.status.code(), Some(0), "point {point}: {log}");
        assert!(!log.contains("rolled back"), "point {point}: {log}");
        only_running(&workshop, blue, "registry.local/workshop-backend:3.0.0");
        assert!(workshop.service(green).is_none(), "point {point}: {log}");
        assert_eq!(
            workshop.backend_blue_green(),
            (100, 0),
            "point {point}: {log}"
        );
        let state = workshop.state();
        let backend = &state.deployments["deployment.backend-dev"];
        assert_eq!(
            (backend.version.as_str(), &backend.status),
            ("3.0.0", &DeploymentStatus::Deployed),
            "point {point}: {log}"
        );
    }
}

// ---- on_failure = "pause" and "abort" ---------------------------------------

impl Workshop {
    /// `apply -json` of these versions: its lines, parsed.
    fn apply_json(&self, backend: &str, frontend: &str) -> (Output, Vec<serde_json::Value>) {
        let (b, f) = (
            format!("backend_version={backend}"),
            format!("frontend_version={frontend}"),
        );
        let output = self.slipway(&[
            "apply",
            ".",
            "-json",
            "-auto-approve",
            "-var",
            &b,
            "-var",
            &f,
        ]);
        let lines = json_lines(&output);
        (output, lines)
    }

    /// The CloudWatch alarm `backend-errors` in moto, set to `state`.
    fn set_alarm(&self, state: aws_sdk_cloudwatch::types::StateValue) {
        self.runtime.block_on(
            self.moto
                .alarm_in_state("backend-errors", "Workshop", state),
        );
    }

    /// A backend rollout body: `policy` (strategy, steps, on_failure) and a
    /// gate on the alarm `backend-errors`.
    fn alarm_gated(&self, policy: &str) -> String {
        format!(
            r#"{policy}

  verify "alarm" {{
    cloudwatch {{
      region     = "us-east-1"
      endpoint   = "{}"
      alarm_name = "backend-errors"
    }}
  }}"#,
            self.moto.endpoint
        )
    }
}

/// The `kind`s of the backend's `progress` events, in order.
fn backend_event_kinds(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["type"] == "progress" && l["deployment"] == "deployment.backend-dev")
        .filter_map(|l| l["event"]["kind"].as_str().map(str::to_string))
        .collect()
}

/// The `result` of the `apply_complete` line.
fn apply_result(lines: &[serde_json::Value]) -> String {
    lines
        .iter()
        .find(|l| l["type"] == "apply_complete")
        .and_then(|l| l["result"].as_str())
        .unwrap_or_else(|| panic!("an apply_complete line: {lines:#?}"))
        .to_string()
}

#[test]
fn a_paused_rolling_update_stays_on_the_new_version_and_the_next_apply_finishes_it() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    workshop
        .write_config(&workshop.alarm_gated("strategy   = \"rolling\"\n  on_failure = \"pause\""));
    workshop.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);

    let (paused, lines) = workshop.apply_json("2.0.0", "1.0.0");
    let log = text(&paused);
    assert_eq!(paused.status.code(), Some(1), "{log}");
    assert_eq!(apply_result(&lines), "paused", "{log}");
    let kinds = backend_event_kinds(&lines);
    assert!(kinds.contains(&"paused".to_string()), "{kinds:?}");
    assert!(
        !kinds.iter().any(|k| k == "rolling_back_to"),
        "nothing is put back: {kinds:?}"
    );
    // ECS itself: the service was left on the new version.
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:2.0.0",
    );
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(
        (&backend.status, backend.version.as_str(), backend.verified),
        (&DeploymentStatus::Partial, "2.0.0", false),
        "{log}"
    );
    assert_eq!(state.history.last().unwrap().result, HistoryResult::Paused);

    // The plan says the rollout is unfinished; the next apply, with the cause
    // fixed, judges it again and records its end.
    workshop.set_alarm(aws_sdk_cloudwatch::types::StateValue::Ok);
    let (code, plan) = workshop.plan_json("2.0.0", "1.0.0", &["-detailed-exitcode"]);
    assert_eq!(code, Some(2), "{plan:#}");
    let (change, _) = planned(&plan, "deployment.backend-dev");
    assert!(
        reason_summaries(change)
            .iter()
            .any(|r| r.contains("stopped before its end")),
        "{change:#}"
    );
    let finished = workshop.apply("2.0.0", "1.0.0");
    let log = text(&finished);
    assert_eq!(finished.status.code(), Some(0), "{log}");
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:2.0.0",
    );
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(
        (&backend.status, backend.verified),
        (&DeploymentStatus::Deployed, true),
        "{log}"
    );
}

#[test]
fn an_aborted_canary_keeps_its_traffic_share_and_is_recorded_failed() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    workshop.write_config(&workshop.alarm_gated(
        "strategy   = \"canary\"\n  steps      = [\"25%\", \"100%\"]\n  on_failure = \"abort\"",
    ));
    workshop.set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);

    let (aborted, lines) = workshop.apply_json("2.0.0", "1.0.0");
    let log = text(&aborted);
    assert_eq!(aborted.status.code(), Some(1), "{log}");
    assert_eq!(apply_result(&lines), "failed", "{log}");
    let kinds = backend_event_kinds(&lines);
    assert!(!kinds.iter().any(|k| k == "paused"), "{kinds:?}");
    assert!(
        !kinds.iter().any(|k| k == "traffic_sent_back"),
        "nothing is put back: {kinds:?}"
    );
    // The listener and ECS as they are: 25% on the canary, which still runs.
    assert_eq!(workshop.backend_blue_green(), (75, 25), "{log}");
    only_running(
        &workshop,
        "workshop-dev-backend-green",
        "registry.local/workshop-backend:2.0.0",
    );
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(backend.status, DeploymentStatus::Failed, "{log}");
    assert_eq!(
        backend
            .ecs
            .as_ref()
            .and_then(|e| e.canary.as_ref())
            .map(|c| c.percent),
        Some(25),
        "state records the share the canary holds"
    );
    assert_eq!(state.history.last().unwrap().result, HistoryResult::Failed);

    // Fixed, the next apply goes on from 25% and promotes.
    workshop.set_alarm(aws_sdk_cloudwatch::types::StateValue::Ok);
    let finished = workshop.apply("2.0.0", "1.0.0");
    let log = text(&finished);
    assert_eq!(finished.status.code(), Some(0), "{log}");
    assert_backend_serves(&workshop, "2.0.0", &log);
    assert_eq!(
        workshop.state().deployments["deployment.backend-dev"].status,
        DeploymentStatus::Deployed
    );
}

#[test]
fn a_canary_paused_before_any_traffic_moved_is_partial_and_moves_no_traffic() {
    let Some(workshop) = Workshop::start(ROLLING) else {
        return;
    };
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    workshop.write_config(
        "strategy   = \"canary\"\n  steps      = [\"25%\", \"100%\"]\n  on_failure = \"pause\"",
    );
    workshop
        .moto
        .fail_new_tasks("workshop-backend:2.0.0-broken");

    let (paused, lines) = workshop.apply_json("2.0.0-broken", "1.0.0");
    let log = text(&paused);
    assert_eq!(paused.status.code(), Some(1), "{log}");
    assert_eq!(apply_result(&lines), "paused", "{log}");
    assert!(
        backend_event_kinds(&lines).contains(&"paused".to_string()),
        "{log}"
    );
    assert_eq!(workshop.backend_blue_green(), (100, 0), "{log}");
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let state = workshop.state();
    assert_eq!(
        state.deployments["deployment.backend-dev"].status,
        DeploymentStatus::Partial,
        "{log}"
    );
    assert_eq!(state.history.last().unwrap().result, HistoryResult::Paused);
}

/// A `command` gate without `on` on an ECS deployment runs on the runner
/// (ECS has no hosts to run it on), as docs/language.md says: a failing one
/// fails the rollout, which goes back to what ran before; a passing one is
/// recorded. Apply used to refuse it after the plan had shown it "on hosts".
#[test]
fn a_command_gate_of_an_ecs_rollout_runs_on_the_runner() {
    let gated = |command: &str| {
        format!(
            "{ROLLING}\n\n  verify \"smoke\" {{\n    command {{\n      command = \"{command}\"\n    }}\n  }}"
        )
    };
    let Some(workshop) = Workshop::start(&gated("test -f smoke-ok")) else {
        return;
    };
    std::fs::write(workshop.root.join("smoke-ok"), "").unwrap();
    let first = workshop.apply("1.0.0", "1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let (_, plan) = workshop.plan_json("2.0.0", "1.0.0", &[]);
    let (_, scheduled) = planned(&plan, "deployment.backend-dev");
    let described = scheduled.to_string();
    assert!(
        described.contains("`test -f smoke-ok` on runner"),
        "the plan says where the gate runs: {scheduled:#}"
    );

    // The runner's check fails: the rollout fails and goes back to 1.0.0.
    std::fs::remove_file(workshop.root.join("smoke-ok")).unwrap();
    let failed = workshop.apply("2.0.0", "1.0.0");
    let log = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(log.contains("smoke"), "{log}");
    only_running(
        &workshop,
        "workshop-dev-backend",
        "registry.local/workshop-backend:1.0.0",
    );
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert_eq!(
        (&backend.status, backend.version.as_str()),
        (&DeploymentStatus::RolledBack, "1.0.0"),
        "{log}"
    );

    // It passes: 2.0.0 is deployed, and the gate's pass is recorded.
    std::fs::write(workshop.root.join("smoke-ok"), "").unwrap();
    let passed = workshop.apply("2.0.0", "1.0.0");
    let log = text(&passed);
    assert_eq!(passed.status.code(), Some(0), "{log}");
    let state = workshop.state();
    let backend = &state.deployments["deployment.backend-dev"];
    assert!(backend.verified, "{log}");
    assert!(
        backend
            .gates
            .iter()
            .any(|g| g.name == "smoke" && g.kind == "command" && g.passed),
        "{:#?}",
        backend.gates
    );
}
