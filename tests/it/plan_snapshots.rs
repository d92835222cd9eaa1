//! Data-driven plan snapshots: an example configuration and a set of saved
//! states in, the plan in every view out.
//!
//! Each case names an example, its input values, a directory of saved states
//! under `tests/fixtures/states/` (or none: nothing applied yet) and an
//! optional `-environment` filter. The test plans it with the library, checks
//! what the case is about (no changes, the hosts still pending, a refused
//! promotion, ...), checks that no view leaks the example's database password,
//! and snapshots the human (no colour), markdown and JSON views. The JSON
//! snapshot has the configuration digest, the slipway version and the state
//! lineages redacted so the snapshots do not change with them.
//!
//! The state fixtures are built from the examples themselves ("as if this
//! release had been applied everywhere", then changed by hand) by
//! [`fixture_states`]. When an example changes, regenerate them with
//!
//! ```sh
//! cargo test --test it plan_snapshots::regenerate_state_fixtures -- --ignored
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::common::*;
use slipway::config::Config;
use slipway::diagnostics::Diagnostics;
use slipway::plan::{Action, Plan, PlanOptions, ReasonKind, ScheduledStrategy, States, StepKind};
use slipway::state::{DeploymentState, DeploymentStatus, HostState, HostStatus, State};
use slipway::views::{self, ViewFormat};

// ---------------------------------------------------------------------------
// State fixtures
// ---------------------------------------------------------------------------

/// Every fixture directory and the states it holds, built from the examples.
fn fixture_states() -> BTreeMap<&'static str, Vec<State>> {
    let mut fixtures = BTreeMap::new();

    let quickstart = quickstart(&[]);
    fixtures.insert(
        "quickstart-applied",
        vec![applied_state(&quickstart, "local")],
    );

    // An apply of 1.0.0 stopped part-way: host-1 is done, host-2 failed its
    // health check, host-3 was never reached and still runs 0.9.0.
    let mut partial = applied_state(&quickstart, "local");
    let hello = deployment_mut(&mut partial, "deployment.hello");
    hello.status = DeploymentStatus::Partial;
    hello.verified = false;
    set_host(hello, "host-2", "1.0.0", HostStatus::Failed);
    set_host(hello, "host-3", "0.9.0", HostStatus::Pending);
    fixtures.insert("quickstart-partial", vec![partial]);

    let current = vm_myapp(&[]);
    let previous = vm_myapp_2_4_0();
    let all_at = |config: &Config| -> Vec<State> {
        ["dev", "qa", "staging", "production"]
            .into_iter()
            .map(|env| applied_state(config, env))
            .collect()
    };
    fixtures.insert("vm-myapp-applied", all_at(&current));

    // dev and qa run 2.4.1; staging too, but its pool size and heap were
    // changed in the configuration since; production still runs 2.4.0.
    let mut drifted = all_at(&current);
    let staging = deployment_mut(&mut drifted[2], "deployment.myapp-staging");
    edit_config_file(
        staging,
        "/opt/myapp/config/app.properties",
        "db.pool.max=20",
        "db.pool.max=15",
    );
    let unit = staging.systemd_unit.as_mut().expect("myapp has a unit");
    assert!(unit.contains("-Xms1g -Xmx2g"), "{unit}");
    *unit = unit.replace("-Xms1g -Xmx2g", "-Xms1g -Xmx1g");
    drifted[3] = applied_state(&previous, "production");
    fixtures.insert("vm-myapp-drifted", drifted);

    // The production canary of 2.4.1 stopped after its first hosts:
    // prod-vm-01 is done, prod-vm-02 failed, the rest still run 2.4.0.
    let mut partial = all_at(&current);
    let production = deployment_mut(&mut partial[3], "deployment.myapp-production");
    production.status = DeploymentStatus::Partial;
    production.verified = false;
    set_host(
        production,
        "prod-vm-02.internal",
        "2.4.1",
        HostStatus::Failed,
    );
    for n in 3..=10 {
        let host = format!("prod-vm-{n:02}.internal");
        set_host(production, &host, "2.4.0", HostStatus::Pending);
        production.hosts.get_mut(&host).unwrap().artifact_sha256 = Some(SHA_2_4_0.into());
    }
    fixtures.insert("vm-myapp-partial", partial);

    // State tracks a deployment the configuration no longer has, and a whole
    // environment (sandbox) that is gone from it.
    let mut removed = all_at(&current);
    let mut reports = applied_deployment(&current, &current.deployments["deployment.myapp-dev"]);
    reports.service = "service.reports".into();
    reports.version = "0.9.3".into();
    reports.artifact_sha256 = None;
    reports.config_files.clear();
    reports.systemd_unit = None;
    for host in reports.hosts.values_mut() {
        host.version = "0.9.3".into();
        host.artifact_sha256 = None;
    }
    removed[0]
        .deployments
        .insert("deployment.reports-dev".into(), reports);
    let mut sandbox = State {
        serial: 12,
        lineage: fixture_lineage("sandbox"),
        ..applied_state(&current, "dev")
    };
    sandbox.environment = "sandbox".into();
    let myapp_dev = sandbox
        .deployments
        .remove("deployment.myapp-dev")
        .expect("dev has myapp");
    sandbox
        .deployments
        .insert("deployment.myapp-sandbox".into(), myapp_dev);
    sandbox.history.clear();
    removed.push(sandbox);
    fixtures.insert("vm-myapp-removed", removed);

    // 2.4.1 has reached dev and qa only.
    let mut refused = all_at(&current);
    refused[2] = applied_state(&previous, "staging");
    refused[3] = applied_state(&previous, "production");
    fixtures.insert("vm-myapp-promotion-refused", refused);

    // 2.4.1 is on staging, but its verification failed.
    let mut unverified = all_at(&current);
    deployment_mut(&mut unverified[2], "deployment.myapp-staging").verified = false;
    unverified[3] = applied_state(&previous, "production");
    fixtures.insert("vm-myapp-promotion-unverified", unverified);

    // 2.4.1 passed staging; production is next.
    let mut allowed = all_at(&current);
    allowed[3] = applied_state(&previous, "production");
    fixtures.insert("vm-myapp-promotion-allowed", allowed);

    let ecs_1_4 = ecs_workshop("1.4.0", "1.4.0");
    let ecs_1_5 = ecs_workshop("1.5.0", "1.5.0");
    let ecs_at = |dev: &Config, prod: &Config| -> Vec<State> {
        vec![applied_state(dev, "dev"), applied_state(prod, "prod")]
    };
    fixtures.insert("ecs-workshop-applied", ecs_at(&ecs_1_4, &ecs_1_4));

    // 1.5.0 is verified in dev; prod runs 1.4.0, and someone scaled the prod
    // frontend to 3 tasks by hand.
    let mut promote = ecs_at(&ecs_1_5, &ecs_1_4);
    deployment_mut(&mut promote[1], "deployment.frontend-prod")
        .ecs
        .as_mut()
        .expect("an ECS deployment")
        .desired_count = 3;
    fixtures.insert("ecs-workshop-promote", promote);

    fixtures
}

fn deployment_mut<'a>(state: &'a mut State, address: &str) -> &'a mut DeploymentState {
    state
        .deployments
        .get_mut(address)
        .unwrap_or_else(|| panic!("{address} is not in the state of {}", state.environment))
}

fn set_host(deployment: &mut DeploymentState, host: &str, version: &str, status: HostStatus) {
    let entry = deployment
        .hosts
        .get_mut(host)
        .unwrap_or_else(|| panic!("no host {host}"));
    *entry = HostState {
        version: version.into(),
        status,
        ..entry.clone()
    };
}

fn edit_config_file(deployment: &mut DeploymentState, destination: &str, from: &str, to: &str) {
    let content = deployment
        .config_files
        .get_mut(destination)
        .unwrap_or_else(|| panic!("no config file {destination}"));
    assert!(content.contains(from), "{destination} lacks {from:?}");
    *content = content.replace(from, to);
}

fn fixtures_root() -> PathBuf {
    root().join("tests/fixtures/states")
}

/// Writes `tests/fixtures/states/` from [`fixture_states`].
#[test]
#[ignore = "writes the state fixtures; run it after an example changed"]
fn regenerate_state_fixtures() {
    for (case, states) in fixture_states() {
        let dir = state_fixture_dir(case);
        if dir.exists() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    std::fs::remove_file(path).unwrap();
                }
            }
        }
        std::fs::create_dir_all(&dir).unwrap();
        for state in states {
            let path = dir.join(format!("{}.json", state.environment));
            std::fs::write(path, state_json(&state)).unwrap();
        }
    }
}

#[test]
fn state_fixtures_are_current() {
    let expected = fixture_states();
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures_root())
        .expect("tests/fixtures/states exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    let known: BTreeSet<String> = expected.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        on_disk, known,
        "fixture directories differ from fixture_states()"
    );
    for (case, states) in expected {
        let read = read_state_dir(&state_fixture_dir(case));
        let built: States = states
            .into_iter()
            .map(|s| (s.environment.clone(), Some(s)))
            .collect();
        assert!(
            read == built,
            "tests/fixtures/states/{case} is out of date; regenerate it with \
             `cargo test --test it plan_snapshots::regenerate_state_fixtures -- --ignored`"
        );
    }
}

#[test]
fn state_fixtures_hold_no_secret() {
    for case in fixture_states().keys() {
        for entry in std::fs::read_dir(state_fixture_dir(case)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            assert!(!text.contains(EXAMPLE_DB_PASSWORD), "{case}");
        }
    }
    let dev =
        std::fs::read_to_string(state_fixture_dir("vm-myapp-applied").join("dev.json")).unwrap();
    assert!(dev.contains("db.password=(sensitive)"), "{dev}");
}

#[test]
fn every_fixture_is_planned_by_a_case() {
    let used: BTreeSet<&str> = CASES.iter().filter_map(|(_, case)| case.states).collect();
    for case in fixture_states().keys() {
        assert!(used.contains(case), "no case plans the fixture {case}");
    }
}

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Example {
    Quickstart,
    /// With `vars/example.vars.hcl` (version 2.4.1).
    VmMyapp,
    /// With both services at 1.4.0 unless the case's vars say otherwise.
    EcsWorkshop,
}

enum Expect {
    /// A plan without changes (`plan` would exit 0).
    NoChanges,
    /// A plan with changes (exit 2); the function checks what the case is about.
    Changes(fn(&Plan)),
    /// No plan: the promotion diagnostics, checked by the function.
    Refused(fn(&Diagnostics)),
}

struct Case {
    description: &'static str,
    example: Example,
    /// `-var` values, after the example's own inputs.
    vars: &'static [&'static str],
    /// A directory under `tests/fixtures/states/`; `None`: no state at all.
    states: Option<&'static str>,
    /// `-environment` filter; empty: every environment.
    environments: &'static [&'static str],
    expect: Expect,
}

macro_rules! cases {
    ($($name:ident: $case:expr;)*) => {
        const CASES: &[(&str, Case)] = &[$((stringify!($name), $case)),*];
        $(
            #[test]
            fn $name() {
                let (name, case) = CASES
                    .iter()
                    .find(|(name, _)| *name == stringify!($name))
                    .expect("the case is in CASES");
                run_case(&name.replace('_', "-"), case);
            }
        )*
    };
}

cases! {
    quickstart_fresh: Case {
        description: "quickstart, nothing applied yet",
        example: Example::Quickstart,
        vars: &[],
        states: None,
        environments: &[],
        expect: Expect::Changes(creates_hello_in_two_batches),
    };
    quickstart_applied: Case {
        description: "quickstart, applied exactly as configured",
        example: Example::Quickstart,
        vars: &[],
        states: Some("quickstart-applied"),
        environments: &[],
        expect: Expect::NoChanges,
    };
    quickstart_new_version: Case {
        description: "quickstart applied at 1.0.0, planned with -var version=1.0.1",
        example: Example::Quickstart,
        vars: &["version=1.0.1"],
        states: Some("quickstart-applied"),
        environments: &[],
        expect: Expect::Changes(updates_hello_to_1_0_1),
    };
    quickstart_partial: Case {
        description: "quickstart: host-2 failed and host-3 was never reached",
        example: Example::Quickstart,
        vars: &[],
        states: Some("quickstart-partial"),
        environments: &[],
        expect: Expect::Changes(schedules_only_pending_quickstart_hosts),
    };
    vm_myapp_fresh: Case {
        description: "vm-myapp, nothing applied: dev, qa, staging and production in one apply, each promoted when the one before verifies",
        example: Example::VmMyapp,
        vars: &[],
        states: None,
        environments: &[],
        expect: Expect::Changes(promotes_the_fresh_chain_in_one_apply),
    };
    vm_myapp_fresh_dev: Case {
        description: "vm-myapp, nothing applied, -environment dev",
        example: Example::VmMyapp,
        vars: &[],
        states: None,
        environments: &["dev"],
        expect: Expect::Changes(creates_myapp_dev_only),
    };
    vm_myapp_applied: Case {
        description: "vm-myapp, 2.4.1 applied and verified everywhere",
        example: Example::VmMyapp,
        vars: &[],
        states: Some("vm-myapp-applied"),
        environments: &[],
        expect: Expect::NoChanges,
    };
    vm_myapp_drifted: Case {
        description: "vm-myapp: staging's config file and unit changed since its apply, production runs 2.4.0",
        example: Example::VmMyapp,
        vars: &[],
        states: Some("vm-myapp-drifted"),
        environments: &[],
        expect: Expect::Changes(shows_drift_with_masked_password),
    };
    vm_myapp_partial: Case {
        description: "vm-myapp: the production canary stopped after prod-vm-01 (prod-vm-02 failed)",
        example: Example::VmMyapp,
        vars: &[],
        states: Some("vm-myapp-partial"),
        environments: &[],
        expect: Expect::Changes(schedules_only_pending_production_hosts),
    };
    vm_myapp_removed: Case {
        description: "vm-myapp: state tracks deployment.reports-dev and a sandbox environment the configuration lost",
        example: Example::VmMyapp,
        vars: &[],
        states: Some("vm-myapp-removed"),
        environments: &[],
        expect: Expect::Changes(destroys_what_config_lost),
    };
    vm_myapp_promotion_refused: Case {
        description: "vm-myapp: 2.4.1 reached dev and qa only; production may not get it",
        example: Example::VmMyapp,
        vars: &[],
        states: Some("vm-myapp-promotion-refused"),
        environments: &["production"],
        expect: Expect::Refused(refuses_production_because_staging_lacks_the_version),
    };
    vm_myapp_promotion_unverified: Case {
        description: "vm-myapp: 2.4.1 is on staging but failed verification",
        example: Example::VmMyapp,
        vars: &[],
        states: Some("vm-myapp-promotion-unverified"),
        environments: &[],
        expect: Expect::Refused(refuses_production_because_staging_is_unverified),
    };
    vm_myapp_promotion_allowed: Case {
        description: "vm-myapp: 2.4.1 verified on staging, -environment production",
        example: Example::VmMyapp,
        vars: &[],
        states: Some("vm-myapp-promotion-allowed"),
        environments: &["production"],
        expect: Expect::Changes(promotes_to_production_only),
    };
    ecs_workshop_fresh: Case {
        description: "ecs-workshop, nothing applied: prod is promoted in the apply once dev verifies",
        example: Example::EcsWorkshop,
        vars: &[],
        states: None,
        environments: &[],
        expect: Expect::Changes(promotes_both_prod_deployments_after_dev),
    };
    ecs_workshop_fresh_dev: Case {
        description: "ecs-workshop, nothing applied, -environment dev",
        example: Example::EcsWorkshop,
        vars: &[],
        states: None,
        environments: &["dev"],
        expect: Expect::Changes(creates_dev_backend_then_frontend),
    };
    ecs_workshop_applied: Case {
        description: "ecs-workshop, 1.4.0 applied everywhere",
        example: Example::EcsWorkshop,
        vars: &[],
        states: Some("ecs-workshop-applied"),
        environments: &[],
        expect: Expect::NoChanges,
    };
    ecs_workshop_new_backend_dev: Case {
        description: "ecs-workshop at 1.4.0, backend 1.5.0 planned for dev",
        example: Example::EcsWorkshop,
        vars: &["backend_version=1.5.0"],
        states: Some("ecs-workshop-applied"),
        environments: &["dev"],
        expect: Expect::Changes(updates_dev_backend_task_definition),
    };
    ecs_workshop_new_backend_prod: Case {
        description: "ecs-workshop at 1.4.0, backend 1.5.0 planned everywhere: prod gets it once dev verifies it in the apply",
        example: Example::EcsWorkshop,
        vars: &["backend_version=1.5.0"],
        states: Some("ecs-workshop-applied"),
        environments: &[],
        expect: Expect::Changes(promotes_backend_prod_in_the_apply),
    };
    ecs_workshop_promote: Case {
        description: "ecs-workshop: 1.5.0 verified in dev, prod on 1.4.0 with its frontend scaled to 3",
        example: Example::EcsWorkshop,
        vars: &["backend_version=1.5.0", "frontend_version=1.5.0"],
        states: Some("ecs-workshop-promote"),
        environments: &[],
        expect: Expect::Changes(promotes_prod_with_canary),
    };
}

fn run_case(name: &str, case: &Case) {
    let (dir, mut vars, var_files) = match case.example {
        Example::Quickstart => (example_dir("quickstart"), vec![], vec![]),
        Example::VmMyapp => (example_dir("vm-myapp"), vec![], vec![vm_myapp_var_file()]),
        Example::EcsWorkshop => (
            example_dir("ecs-workshop"),
            vec!["backend_version=1.4.0", "frontend_version=1.4.0"],
            vec![],
        ),
    };
    vars.extend(case.vars.iter().copied());
    let loaded = slipway::config::load(
        &dir,
        &slipway::config::InputSources {
            vars: vars.iter().map(|v| v.to_string()).collect(),
            var_files,
            environment: Vec::new(),
        },
    );
    let Some(config) = loaded.config else {
        panic!(
            "{name}: the configuration is invalid:\n{}",
            slipway::diagnostics::render(&loaded.sources, &loaded.diagnostics, false)
        );
    };

    // As the CLI does: every environment the configuration needs, with the
    // saved state when there is one.
    let mut states: States = match case.states {
        Some(fixture) => read_state_dir(&state_fixture_dir(fixture)),
        None => States::new(),
    };
    for environment in environment_names(&config) {
        states.entry(environment).or_insert(None);
    }
    let options = PlanOptions {
        environments: (!case.environments.is_empty())
            .then(|| case.environments.iter().map(|e| e.to_string()).collect()),
        ..PlanOptions::default()
    };

    let mut settings = insta::Settings::clone_current();
    settings.set_description(case.description);
    settings.set_omit_expression(true);
    let _guard = settings.bind_to_scope();

    match (
        slipway::plan::plan(&config, &states, &options),
        &case.expect,
    ) {
        (Ok(plan), Expect::NoChanges) => {
            assert!(!plan.has_changes(), "{name}: {:#?}", plan.summary);
            assert!(plan.schedule.waves.is_empty(), "{name}");
            assert!(
                plan.deployments.iter().all(|d| d.action == Action::NoOp),
                "{name}"
            );
            snapshot_views(name, &plan, &options);
        }
        (Ok(plan), Expect::Changes(check)) => {
            assert!(plan.has_changes(), "{name}: {:#?}", plan.summary);
            check(&plan);
            snapshot_views(name, &plan, &options);
        }
        (Err(diagnostics), Expect::Refused(check)) => {
            assert!(diagnostics.has_errors(), "{name}");
            assert!(
                diagnostics.iter().all(|d| d.code == "promotion"),
                "{name}: {:?}",
                diagnostics.iter().map(|d| &d.message).collect::<Vec<_>>()
            );
            check(&diagnostics);
            let text = slipway::diagnostics::render(&loaded.sources, &diagnostics, false);
            assert_no_secret(name, "diagnostics", &text);
            insta::assert_snapshot!(format!("{name}__error"), scrub_paths(&text));
        }
        (Ok(plan), Expect::Refused(_)) => {
            panic!(
                "{name}: expected a refused promotion, got {:#?}",
                plan.summary
            )
        }
        (Err(diagnostics), _) => panic!(
            "{name}: expected a plan, got:\n{}",
            slipway::diagnostics::render(&loaded.sources, &diagnostics, false)
        ),
    }
}

fn snapshot_views(name: &str, plan: &Plan, options: &PlanOptions) {
    // The plan covers the filtered environments only.
    if let Some(only) = &options.environments {
        for change in &plan.deployments {
            assert!(only.contains(&change.environment), "{name}: {change:?}");
        }
        for basis in &plan.environments {
            assert!(only.contains(&basis.name), "{name}: {basis:?}");
        }
    }
    // Every deployment that changes is scheduled, in exactly one wave.
    let scheduled: Vec<&str> = plan
        .schedule
        .waves
        .iter()
        .flat_map(|w| w.deployments.iter().map(|d| d.address.as_str()))
        .collect();
    let changing: BTreeSet<&str> = plan
        .deployments
        .iter()
        .filter(|d| d.action != Action::NoOp)
        .map(|d| d.address.as_str())
        .collect();
    assert_eq!(
        scheduled.iter().copied().collect::<BTreeSet<_>>(),
        changing,
        "{name}"
    );
    assert_eq!(scheduled.len(), changing.len(), "{name}: scheduled twice");

    let human = views::render(plan, ViewFormat::Human { color: false });
    let markdown = views::render(plan, ViewFormat::Markdown);
    let json = views::render(plan, ViewFormat::Json);
    for (view, text) in [("human", &human), ("markdown", &markdown), ("json", &json)] {
        assert_no_secret(name, view, text);
        assert!(!text.contains('\u{1b}'), "{name}: {view} has ANSI escapes");
    }
    assert!(
        human.trim_end().ends_with(&summary_or_no_changes(plan)),
        "{name}"
    );
    assert_eq!(
        markdown.lines().next(),
        Some(format!("**{}**", summary_or_no_changes(plan)).as_str()),
        "{name}: markdown starts with the summary"
    );
    let parsed = slipway::plan::document::parse(&json).expect("the JSON view parses");
    assert_eq!(
        &parsed, plan,
        "{name}: the JSON view reads back as the plan"
    );

    insta::assert_snapshot!(format!("{name}__human"), scrub(plan, &human));
    insta::assert_snapshot!(format!("{name}__markdown"), scrub(plan, &markdown));
    insta::assert_snapshot!(format!("{name}__json"), redact_json(&json));
}

fn summary_or_no_changes(plan: &Plan) -> String {
    if plan.has_changes() {
        plan.summary.line()
    } else {
        "No changes. Deployments match the configuration and state.".to_string()
    }
}

fn assert_no_secret(name: &str, view: &str, text: &str) {
    assert!(
        !text.contains(EXAMPLE_DB_PASSWORD),
        "{name}: the {view} view shows the database password:\n{text}"
    );
}

/// Replaces what changes from run to run or build to build in a text view.
fn scrub(plan: &Plan, text: &str) -> String {
    let mut text = text.replace(&plan.config_digest, "[config_digest]");
    for basis in &plan.environments {
        if let Some(lineage) = &basis.state_lineage {
            text = text.replace(lineage.as_str(), "[lineage]");
        }
    }
    scrub_paths(&text)
}

fn scrub_paths(text: &str) -> String {
    text.replace(&format!("{}/", root().display()), "")
}

/// The JSON view with the digest, slipway's version and lineages redacted.
fn redact_json(text: &str) -> String {
    let mut document: serde_json::Value = serde_json::from_str(text).expect("JSON");
    document["config_digest"] = "[config_digest]".into();
    document["slipway_version"] = "[slipway_version]".into();
    for basis in document["environments"]
        .as_array_mut()
        .expect("environments")
    {
        if !basis["state_lineage"].is_null() {
            basis["state_lineage"] = "[lineage]".into();
        }
    }
    // Salted with the start of the configuration digest.
    if let Some(variables) = document["inputs"]["variables"].as_array_mut() {
        for variable in variables.iter_mut().filter(|v| v["sensitive"] == true) {
            variable["sha256"] = "[input_digest]".into();
            variable["salt"] = "[salt]".into();
        }
    }
    serde_json::to_string_pretty(&document).expect("JSON") + "\n"
}

/// After an apply stopped part-way, the hosts still to do run the release
/// before; rollback cannot send them "back" to the release being applied.
#[test]
fn rollback_of_an_unfinished_apply_names_the_release_hosts_ran_before() {
    let config = vm_myapp(&[]);
    let states = read_state_dir(&state_fixture_dir("vm-myapp-partial"));
    let plan = slipway::plan::plan(&config, &states, &PlanOptions::default()).expect("a plan");
    let production = plan
        .schedule
        .waves
        .iter()
        .flat_map(|w| &w.deployments)
        .find(|d| d.address == "deployment.myapp-production")
        .expect("production is scheduled");
    assert!(
        !production
            .rollback
            .contains("back to 2.4.1 (previous release)"),
        "{}",
        production.rollback
    );
}

/// An apply of a rebuilt artifact (the version the hosts run, other bytes)
/// stopped after its first host: state already names the new artifact for
/// the deployment, and the hosts still on the earlier build are not on the
/// release the configuration asks for. The next plan goes on with them.
#[test]
fn a_cut_off_apply_of_a_rebuilt_artifact_goes_on_with_the_hosts_on_the_earlier_build() {
    let config = vm_myapp(&[]);
    let mut states: States = ["dev", "qa", "staging", "production"]
        .into_iter()
        .map(|env| (env.to_string(), Some(applied_state(&config, env))))
        .collect();
    for environment in environment_names(&config) {
        states.entry(environment).or_insert(None);
    }
    let state = states
        .get_mut("production")
        .and_then(Option::as_mut)
        .expect("production's state");
    let production = deployment_mut(state, "deployment.myapp-production");
    production.status = DeploymentStatus::InProgress;
    production.verified = false;
    let earlier_build = "ab".repeat(32);
    assert_ne!(production.artifact_sha256.as_ref(), Some(&earlier_build));
    for n in 2..=10 {
        let host = format!("prod-vm-{n:02}.internal");
        production.hosts.get_mut(&host).unwrap().artifact_sha256 = Some(earlier_build.clone());
    }

    let plan = slipway::plan::plan(&config, &states, &PlanOptions::default()).expect("a plan");
    let address = "deployment.myapp-production";
    assert_eq!(change(&plan, address).action, Action::Update);
    assert_eq!(reason_kinds(&plan, address), [ReasonKind::HostsPending]);
    let hosts = host_batches(&plan, address).concat();
    assert_eq!(hosts.len(), 9, "{hosts:?}");
    assert!(!hosts.contains(&"prod-vm-01.internal".to_string()));
}

// ---------------------------------------------------------------------------
// What each case is about
// ---------------------------------------------------------------------------

fn change<'a>(plan: &'a Plan, address: &str) -> &'a slipway::plan::DeploymentChange {
    plan.deployment(address)
        .unwrap_or_else(|| panic!("{address} is not in the plan"))
}

fn reason_kinds(plan: &Plan, address: &str) -> Vec<ReasonKind> {
    change(plan, address)
        .reasons
        .iter()
        .map(|r| r.kind)
        .collect()
}

/// The host batches scheduled for `address`, in order.
fn host_batches(plan: &Plan, address: &str) -> Vec<Vec<String>> {
    let scheduled = plan
        .schedule
        .waves
        .iter()
        .flat_map(|w| &w.deployments)
        .find(|d| d.address == address)
        .unwrap_or_else(|| panic!("{address} is not scheduled"));
    scheduled
        .steps
        .iter()
        .map(|step| match &step.kind {
            StepKind::HostBatch { hosts } => hosts.clone(),
            other => panic!("{address}: not a host batch: {other:?}"),
        })
        .collect()
}

fn step_indices(plan: &Plan, address: &str) -> Vec<usize> {
    plan.schedule
        .waves
        .iter()
        .flat_map(|w| &w.deployments)
        .find(|d| d.address == address)
        .unwrap_or_else(|| panic!("{address} is not scheduled"))
        .steps
        .iter()
        .map(|step| step.index)
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn creates_hello_in_two_batches(plan: &Plan) {
    assert_eq!(plan.summary.create, 1);
    assert_eq!(change(plan, "deployment.hello").action, Action::Create);
    assert_eq!(
        host_batches(plan, "deployment.hello"),
        vec![strings(&["host-1"]), strings(&["host-2", "host-3"])]
    );
    assert_eq!(plan.environments[0].state_serial, None);
}

fn updates_hello_to_1_0_1(plan: &Plan) {
    let hello = change(plan, "deployment.hello");
    assert_eq!(hello.action, Action::Update);
    assert_eq!(hello.version_before.as_deref(), Some("1.0.0"));
    assert_eq!(hello.version_after.as_deref(), Some("1.0.1"));
    assert_eq!(
        reason_kinds(plan, "deployment.hello"),
        [ReasonKind::ArtifactVersion, ReasonKind::ConfigFile]
    );
    let diff = hello.reasons[1].diff.as_deref().expect("a diff");
    assert!(
        diff.contains("-VERSION='1.0.0'") && diff.contains("+VERSION='1.0.1'"),
        "{diff}"
    );
    // A new version goes to every host again.
    assert_eq!(
        host_batches(plan, "deployment.hello").concat(),
        strings(&["host-1", "host-2", "host-3"])
    );
    assert_eq!(plan.outputs[0].value, "1.0.1");
}

fn schedules_only_pending_quickstart_hosts(plan: &Plan) {
    let hello = change(plan, "deployment.hello");
    assert_eq!(hello.action, Action::Update);
    assert_eq!(
        reason_kinds(plan, "deployment.hello"),
        [ReasonKind::HostsPending]
    );
    assert!(
        hello.reasons[0].summary.contains("host-2, host-3"),
        "{:?}",
        hello.reasons
    );
    // The stopped rollout goes on: host-2 and host-3 are its step 2.
    assert_eq!(
        host_batches(plan, "deployment.hello"),
        vec![strings(&["host-2", "host-3"])]
    );
    assert_eq!(step_indices(plan, "deployment.hello"), [2]);
}

/// The deployment's pending promotion as (from, version).
fn promotion_of(plan: &Plan, address: &str) -> Option<(String, String)> {
    change(plan, address)
        .promotion
        .as_ref()
        .map(|p| (p.from.clone(), p.version.clone()))
}

/// The addresses of each wave.
fn wave_addresses(plan: &Plan) -> Vec<Vec<&str>> {
    plan.schedule
        .waves
        .iter()
        .map(|w| w.deployments.iter().map(|d| d.address.as_str()).collect())
        .collect()
}

fn promotes_the_fresh_chain_in_one_apply(plan: &Plan) {
    assert_eq!(plan.summary.create, 4);
    assert_eq!(promotion_of(plan, "deployment.myapp-dev"), None);
    for (target, source) in [("qa", "dev"), ("staging", "qa"), ("production", "staging")] {
        assert_eq!(
            promotion_of(plan, &format!("deployment.myapp-{target}")),
            Some((format!("deployment.myapp-{source}"), "2.4.1".to_string()))
        );
    }
    assert_eq!(
        wave_addresses(plan),
        [
            ["deployment.myapp-dev"],
            ["deployment.myapp-qa"],
            ["deployment.myapp-staging"],
            ["deployment.myapp-production"]
        ]
    );
    let production = &plan.schedule.waves[3].deployments[0];
    assert_eq!(
        production.after.as_deref(),
        Some(
            &strings(&[
                "deployment.myapp-dev",
                "deployment.myapp-qa",
                "deployment.myapp-staging"
            ])[..]
        )
    );
}

fn creates_myapp_dev_only(plan: &Plan) {
    assert_eq!(plan.deployments.len(), 1);
    assert_eq!(change(plan, "deployment.myapp-dev").action, Action::Create);
    assert_eq!(
        host_batches(plan, "deployment.myapp-dev"),
        vec![
            strings(&["dev-vm-01.internal"]),
            strings(&["dev-vm-02.internal"])
        ]
    );
    let names: Vec<&str> = plan.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev"]);
}

fn shows_drift_with_masked_password(plan: &Plan) {
    assert_eq!(plan.summary.update, 2);
    assert_eq!(plan.summary.no_op, 2);
    assert_eq!(
        reason_kinds(plan, "deployment.myapp-staging"),
        [ReasonKind::ConfigFile, ReasonKind::SystemdUnit]
    );
    let staging = change(plan, "deployment.myapp-staging");
    let diff = staging.reasons[0].diff.as_deref().expect("a diff");
    assert!(diff.contains("-db.pool.max=15"), "{diff}");
    assert!(diff.contains("+db.pool.max=20"), "{diff}");
    assert!(diff.contains(" db.password=(sensitive)"), "{diff}");
    let unit = staging.reasons[1].diff.as_deref().expect("a diff");
    assert!(
        unit.contains("+Environment=\"JAVA_OPTS=-Xms1g -Xmx2g\""),
        "{unit}"
    );

    let production = change(plan, "deployment.myapp-production");
    assert_eq!(production.version_before.as_deref(), Some("2.4.0"));
    let kinds = reason_kinds(plan, "deployment.myapp-production");
    assert_eq!(kinds[0], ReasonKind::ArtifactVersion);
    assert!(kinds.contains(&ReasonKind::ConfigFile), "{kinds:?}");
    assert_eq!(
        host_batches(plan, "deployment.myapp-production")
            .concat()
            .len(),
        10
    );
    // Staging goes before production.
    let order: Vec<&str> = plan
        .deployments
        .iter()
        .map(|d| d.address.as_str())
        .collect();
    let staging_at = order.iter().position(|a| *a == "deployment.myapp-staging");
    let production_at = order
        .iter()
        .position(|a| *a == "deployment.myapp-production");
    assert!(staging_at < production_at, "{order:?}");
}

fn schedules_only_pending_production_hosts(plan: &Plan) {
    assert_eq!(plan.summary.update, 1);
    let production = change(plan, "deployment.myapp-production");
    assert_eq!(
        reason_kinds(plan, "deployment.myapp-production"),
        [ReasonKind::HostsPending]
    );
    assert!(
        production.reasons[0]
            .summary
            .starts_with("9 of 10 hosts not yet on 2.4.1"),
        "{:?}",
        production.reasons
    );
    let batches = host_batches(plan, "deployment.myapp-production");
    let hosts = batches.concat();
    assert_eq!(hosts.len(), 9, "{batches:?}");
    assert!(!hosts.contains(&"prod-vm-01.internal".to_string()));
    assert_eq!(hosts[0], "prod-vm-02.internal");
    // The stopped canary goes on: its steps 25%, 50%, 100% of the 10 hosts
    // (step 1, 10%, was prod-vm-01 alone and is done).
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 5]);
    assert_eq!(step_indices(plan, "deployment.myapp-production"), [2, 3, 4]);
}

fn destroys_what_config_lost(plan: &Plan) {
    assert_eq!(plan.summary.destroy, 2);
    assert_eq!(plan.summary.no_op, 4);
    for (address, environment, version) in [
        ("deployment.reports-dev", "dev", "0.9.3"),
        ("deployment.myapp-sandbox", "sandbox", "2.4.1"),
    ] {
        let destroyed = change(plan, address);
        assert_eq!(destroyed.action, Action::Destroy);
        assert_eq!(destroyed.environment, environment);
        assert_eq!(destroyed.version_before.as_deref(), Some(version));
        assert_eq!(destroyed.version_after, None);
        assert_eq!(reason_kinds(plan, address), [ReasonKind::RemovedFromConfig]);
    }
    assert!(plan.environments.iter().any(|e| e.name == "sandbox"));
}

fn refuses_production_because_staging_lacks_the_version(diagnostics: &Diagnostics) {
    let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        ["deployment.myapp-production cannot get version 2.4.1: deployment.myapp-staging has 2.4.0 recorded, not 2.4.1"]
    );
    let help = diagnostics.iter().next().unwrap().help.as_deref().unwrap();
    assert!(help.contains("-environment staging"), "{help}");
}

fn refuses_production_because_staging_is_unverified(diagnostics: &Diagnostics) {
    let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        ["deployment.myapp-production cannot get version 2.4.1: 2.4.1 on deployment.myapp-staging did not pass verification"]
    );
}

fn promotes_to_production_only(plan: &Plan) {
    assert_eq!(plan.deployments.len(), 1);
    let production = change(plan, "deployment.myapp-production");
    assert_eq!(production.action, Action::Update);
    assert_eq!(production.version_before.as_deref(), Some("2.4.0"));
    assert_eq!(production.version_after.as_deref(), Some("2.4.1"));
    let scheduled = &plan.schedule.waves[0].deployments[0];
    assert!(
        scheduled.needs_approval_before_start,
        "production is protected"
    );
    assert_eq!(scheduled.strategy, ScheduledStrategy::Canary);
    assert_eq!(
        scheduled.steps[0].approval.as_deref(),
        Some("release-manager")
    );
    assert_eq!(
        scheduled
            .steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::HostBatch { hosts } => hosts.len(),
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>(),
        [1, 2, 2, 5]
    );
    let names: Vec<&str> = plan.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["production"]);
    assert_eq!(plan.environments[0].state_serial, Some(3));
}

fn promotes_both_prod_deployments_after_dev(plan: &Plan) {
    assert_eq!(plan.summary.create, 4);
    for service in ["backend", "frontend"] {
        assert_eq!(
            promotion_of(plan, &format!("deployment.{service}-prod")),
            Some((format!("deployment.{service}-dev"), "1.4.0".to_string()))
        );
        assert_eq!(
            promotion_of(plan, &format!("deployment.{service}-dev")),
            None
        );
    }
}

fn promotes_backend_prod_in_the_apply(plan: &Plan) {
    assert_eq!(
        change(plan, "deployment.backend-dev").action,
        Action::Update
    );
    assert_eq!(
        change(plan, "deployment.backend-prod").action,
        Action::Update
    );
    assert_eq!(
        promotion_of(plan, "deployment.backend-prod"),
        Some(("deployment.backend-dev".to_string(), "1.5.0".to_string()))
    );
    let waves = wave_addresses(plan);
    let position = |address: &str| waves.iter().position(|w| w.contains(&address));
    assert!(position("deployment.backend-dev") < position("deployment.backend-prod"));
}

fn creates_dev_backend_then_frontend(plan: &Plan) {
    assert_eq!(plan.summary.create, 2);
    let waves: Vec<Vec<&str>> = plan
        .schedule
        .waves
        .iter()
        .map(|w| w.deployments.iter().map(|d| d.address.as_str()).collect())
        .collect();
    assert_eq!(
        waves,
        [["deployment.backend-dev"], ["deployment.frontend-dev"]]
    );
    for wave in &plan.schedule.waves {
        assert_eq!(
            wave.deployments[0].steps[0].kind,
            StepKind::ServiceUpdate { desired_count: 1 }
        );
    }
}

fn updates_dev_backend_task_definition(plan: &Plan) {
    assert_eq!(plan.summary.update, 1);
    assert_eq!(plan.summary.no_op, 1);
    let backend = change(plan, "deployment.backend-dev");
    assert_eq!(
        reason_kinds(plan, "deployment.backend-dev"),
        [
            ReasonKind::ArtifactVersion,
            ReasonKind::TaskDefinition,
            ReasonKind::Capacity
        ]
    );
    // Nothing was read from ECS: the configured count, and the serving
    // tasks beside the new ones at the peak.
    let capacity = backend
        .capacity
        .as_ref()
        .expect("an ECS update has a capacity");
    assert_eq!((capacity.tasks, capacity.peak_tasks), (1, 2));
    let task = &backend.reasons[1];
    assert!(task.summary.contains("image"), "{}", task.summary);
    let diff = task.diff.as_deref().expect("a diff");
    assert!(diff.contains("workshop-backend:1.5.0"), "{diff}");
    // Secrets stay ARNs.
    assert!(!diff.contains("postgres://"), "{diff}");
    assert_eq!(change(plan, "deployment.frontend-dev").action, Action::NoOp);
}

fn promotes_prod_with_canary(plan: &Plan) {
    assert_eq!(plan.summary.update, 2);
    assert_eq!(plan.summary.no_op, 2);
    let waves: Vec<Vec<&str>> = plan
        .schedule
        .waves
        .iter()
        .map(|w| w.deployments.iter().map(|d| d.address.as_str()).collect())
        .collect();
    assert_eq!(
        waves,
        [["deployment.backend-prod"], ["deployment.frontend-prod"]]
    );
    for wave in &plan.schedule.waves {
        let scheduled = &wave.deployments[0];
        assert!(scheduled.needs_approval_before_start);
        let percents: Vec<u32> = scheduled
            .steps
            .iter()
            .map(|s| match s.kind {
                StepKind::TrafficShift { percent } => percent,
                ref other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(percents, [10, 25, 50, 100]);
        let gates: Vec<&str> = scheduled.steps[0]
            .gates
            .iter()
            .map(|g| g.name.as_str())
            .collect();
        assert_eq!(gates, ["api-health", "site", "error-rate-alarm"]);
    }
    assert!(reason_kinds(plan, "deployment.frontend-prod").contains(&ReasonKind::DesiredCount));
    let frontend = change(plan, "deployment.frontend-prod");
    assert!(
        frontend
            .reasons
            .iter()
            .any(|r| r.summary == "desired count 3 → 2"),
        "{:?}",
        frontend.reasons
    );
}
