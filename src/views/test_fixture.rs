//! Plans shared by the view tests.
//!
//! [`representative_plan`] exercises every part of a plan: a VM deployment
//! being created in batches, a VM update with a masked config-file diff and a
//! new version, an ECS canary with traffic steps, a gate and an approval, a
//! destroy and an unchanged deployment, scheduled in two waves.

use crate::plan::model::{
    Action, DeploymentChange, DurationText, EnvironmentBasis, Gate, InputVariable, OnFailure,
    OutputValue, Plan, PlanInputs, Reason, ReasonKind, RolloutEnd, Schedule, ScheduledDeployment,
    ScheduledStrategy, Step, StepKind, Summary, TargetKind, Wave, FORMAT_VERSION,
};

/// Snapshot settings shared by the view tests: snapshot files are named after
/// the snapshot alone, so they do not depend on the crate's module path.
pub(super) fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings
}

pub(super) fn representative_plan() -> Plan {
    Plan {
        format_version: FORMAT_VERSION.to_string(),
        slipway_version: "0.1.0".to_string(),
        config_digest: "9b2f6c1de0a4478f3a5c2e7b81d94f06c3e5a7b9d1f2048c6e8a0b3d5f7a9c1e"
            .to_string(),
        environments: vec![
            EnvironmentBasis {
                name: "prod".to_string(),
                state_serial: Some(41),
                state_lineage: Some("5f0c7d2e-8a41-4b6f-9c3d-2e1a7b9f4c60".to_string()),
            },
            EnvironmentBasis {
                name: "staging".to_string(),
                state_serial: None,
                state_lineage: None,
            },
        ],
        inputs: Some(PlanInputs {
            environments: None,
            variables: vec![
                InputVariable {
                    name: "checkout_version".to_string(),
                    sensitive: false,
                    value: serde_json::json!("2.5.0"),
                    sha256: None,
                    salt: None,
                },
                InputVariable {
                    name: "stripe_key".to_string(),
                    sensitive: true,
                    value: serde_json::Value::Null,
                    sha256: Some(
                        "5d2c0f6a1e8b4c7d9a3f2e1b0c4d6e8f7a9b1c3d5e7f9a0b2c4d6e8f0a1b3c5d"
                            .to_string(),
                    ),
                    salt: Some("3f9a2c7e41b85d06e1c4a9f27b3d8e50".to_string()),
                },
            ],
            secrets: Vec::new(),
        }),
        deployments: vec![
            api_staging_created(),
            myapp_prod_updated(),
            checkout_canary_updated(),
            legacy_worker_destroyed(),
            docs_unchanged(),
        ],
        schedule: Schedule {
            waves: vec![
                Wave {
                    index: 1,
                    deployments: vec![
                        api_staging_schedule(),
                        myapp_prod_schedule(),
                        checkout_canary_schedule(),
                    ],
                },
                Wave {
                    index: 2,
                    deployments: vec![legacy_worker_schedule()],
                },
            ],
        },
        outputs: vec![
            OutputValue {
                name: "checkout_url".to_string(),
                value: serde_json::json!("https://checkout.example.com"),
                sensitive: false,
            },
            OutputValue {
                name: "myapp_hosts".to_string(),
                value: serde_json::json!(["web-1", "web-2", "web-3"]),
                sensitive: false,
            },
            OutputValue {
                name: "database_password".to_string(),
                value: serde_json::Value::Null,
                sensitive: true,
            },
            OutputValue {
                name: "smoke_test".to_string(),
                value: serde_json::json!("curl -fsS https://checkout.example.com/health | grep ok"),
                sensitive: false,
            },
        ],
        summary: Summary {
            create: 1,
            update: 2,
            no_op: 1,
            destroy: 1,
        },
        warnings: vec![
            "The last apply in environment prod was interrupted during deployment.myapp-prod \
             step 2; this plan rolls that deployment out again from step 1."
                .to_string(),
        ],
        drift: Vec::new(),
    }
}

/// A plan in which nothing changes.
pub(super) fn unchanged_plan() -> Plan {
    Plan {
        deployments: vec![docs_unchanged()],
        schedule: Schedule::default(),
        outputs: Vec::new(),
        summary: Summary {
            no_op: 1,
            ..Summary::default()
        },
        warnings: Vec::new(),
        ..representative_plan()
    }
}

/// The representative plan with one config-file diff of `line_count` changed
/// lines, far too long for a pull-request comment.
pub(super) fn plan_with_huge_diff(line_count: usize) -> Plan {
    let mut plan = representative_plan();
    let mut diff =
        String::from("--- /etc/myapp/routes.conf\n+++ /etc/myapp/routes.conf\n@@ -1,1 +1,1 @@\n");
    for line in 0..line_count {
        diff.push_str(&format!("-route /old/path/{line} => backend-a\n"));
        diff.push_str(&format!("+route /new/path/{line} => backend-b\n"));
    }
    let myapp = plan
        .deployments
        .iter_mut()
        .find(|deployment| deployment.name == "myapp-prod")
        .expect("the fixture has myapp-prod");
    myapp.reasons.push(Reason {
        kind: ReasonKind::ConfigFile,
        summary: "config file /etc/myapp/routes.conf changed".to_string(),
        diff: Some(diff),
    });
    plan
}

fn api_staging_created() -> DeploymentChange {
    DeploymentChange {
        promotion: None,
        capacity: None,
        adopt: None,
        address: "deployment.api-staging".to_string(),
        name: "api-staging".to_string(),
        service: "api".to_string(),
        environment: "staging".to_string(),
        rollout: Some("rolling".to_string()),
        target: TargetKind::Vm,
        action: Action::Create,
        version_before: None,
        version_after: Some("2.3.0".to_string()),
        artifact: None,
        reasons: vec![Reason {
            kind: ReasonKind::NewDeployment,
            summary: "new deployment: 2.3.0 to 3 hosts".to_string(),
            diff: None,
        }],
    }
}

fn myapp_prod_updated() -> DeploymentChange {
    let config_diff = "\
--- /etc/myapp/app.env (saved)
+++ /etc/myapp/app.env (planned)
@@ -1,5 +1,6 @@
 LISTEN_ADDR=0.0.0.0:8080
-LOG_LEVEL=info
+LOG_LEVEL=warn
 DATABASE_URL=(sensitive)
-API_TOKEN=(sensitive)
+API_TOKEN=(sensitive)
+FEATURE_FLAGS=checkout-v2
 WORKERS=4
";
    DeploymentChange {
        promotion: None,
        capacity: None,
        adopt: None,
        address: "deployment.myapp-prod".to_string(),
        name: "myapp-prod".to_string(),
        service: "myapp".to_string(),
        environment: "prod".to_string(),
        rollout: Some("rolling".to_string()),
        target: TargetKind::Vm,
        action: Action::Update,
        version_before: Some("1.4.2".to_string()),
        version_after: Some("1.5.0".to_string()),
        artifact: None,
        reasons: vec![
            Reason {
                kind: ReasonKind::ArtifactVersion,
                summary: "version 1.4.2 → 1.5.0".to_string(),
                diff: None,
            },
            Reason {
                kind: ReasonKind::ConfigFile,
                summary: "config file /etc/myapp/app.env changed".to_string(),
                diff: Some(config_diff.to_string()),
            },
        ],
    }
}

fn legacy_worker_destroyed() -> DeploymentChange {
    DeploymentChange {
        promotion: None,
        capacity: None,
        adopt: None,
        address: "deployment.legacy-worker-prod".to_string(),
        name: "legacy-worker-prod".to_string(),
        service: "legacy-worker".to_string(),
        environment: "prod".to_string(),
        rollout: None,
        target: TargetKind::Vm,
        action: Action::Destroy,
        version_before: Some("0.9.1".to_string()),
        version_after: None,
        artifact: None,
        reasons: vec![Reason {
            kind: ReasonKind::RemovedFromConfig,
            summary: "no longer in the configuration: slipway stops tracking it \
                      (hosts and services are left running)"
                .to_string(),
            diff: None,
        }],
    }
}

fn checkout_canary_updated() -> DeploymentChange {
    let task_definition_diff = r#"--- task definition (saved)
+++ task definition (planned)
@@ -4,8 +4,8 @@
     {
       "name": "checkout",
-      "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/checkout:2.4.0",
+      "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/checkout:2.5.0",
       "cpu": 512,
-      "memory": 1024,
+      "memory": 2048,
       "environment": [
         { "name": "STRIPE_KEY", "value": "(sensitive)" }
       ]
"#;
    DeploymentChange {
        promotion: None,
        capacity: None,
        adopt: None,
        address: "deployment.checkout-prod".to_string(),
        name: "checkout-prod".to_string(),
        service: "checkout".to_string(),
        environment: "prod".to_string(),
        rollout: Some("canary".to_string()),
        target: TargetKind::Ecs,
        action: Action::Update,
        version_before: Some("2.4.0".to_string()),
        version_after: Some("2.5.0".to_string()),
        artifact: None,
        reasons: vec![
            Reason {
                kind: ReasonKind::ArtifactVersion,
                summary: "version 2.4.0 → 2.5.0".to_string(),
                diff: None,
            },
            Reason {
                kind: ReasonKind::TaskDefinition,
                summary: "task definition changed: containerDefinitions[0].image, \
                          containerDefinitions[0].memory"
                    .to_string(),
                diff: Some(task_definition_diff.to_string()),
            },
        ],
    }
}

fn docs_unchanged() -> DeploymentChange {
    DeploymentChange {
        promotion: None,
        capacity: None,
        adopt: None,
        address: "deployment.docs-prod".to_string(),
        name: "docs-prod".to_string(),
        service: "docs".to_string(),
        environment: "prod".to_string(),
        rollout: Some("rolling".to_string()),
        target: TargetKind::Vm,
        action: Action::NoOp,
        version_before: Some("1.0.0".to_string()),
        version_after: Some("1.0.0".to_string()),
        artifact: None,
        reasons: Vec::new(),
    }
}

fn http_health_gate() -> Gate {
    Gate {
        name: "http".to_string(),
        kind: "health".to_string(),
        detail: "GET http://localhost:8080/health on each host expects 200".to_string(),
    }
}

fn host_batch(index: usize, hosts: &[&str], bake: Option<&str>) -> Step {
    Step {
        index,
        kind: StepKind::HostBatch {
            hosts: hosts.iter().map(|host| host.to_string()).collect(),
        },
        bake: bake.map(|b| DurationText::parse(b).unwrap()),
        gates: vec![http_health_gate()],
        approval: None,
    }
}

fn api_staging_schedule() -> ScheduledDeployment {
    ScheduledDeployment {
        address: "deployment.api-staging".to_string(),
        action: Action::Create,
        strategy: ScheduledStrategy::Rolling,
        steps: vec![
            host_batch(1, &["stg-web-1"], None),
            host_batch(2, &["stg-web-2", "stg-web-3"], None),
        ],
        on_failure: OnFailure::Rollback,
        rollback: "on failure, stop the new release on the hosts it reached \
                   (there is no previous release)"
            .to_string(),
        needs_approval_before_start: false,
        after: Some(Vec::new()),
        ends_with: None,
    }
}

fn myapp_prod_schedule() -> ScheduledDeployment {
    ScheduledDeployment {
        address: "deployment.myapp-prod".to_string(),
        action: Action::Update,
        strategy: ScheduledStrategy::Rolling,
        steps: vec![
            host_batch(1, &["web-1"], Some("5m")),
            host_batch(
                2,
                &[
                    "web-2", "web-3", "web-4", "web-5", "web-6", "web-7", "web-8",
                ],
                None,
            ),
        ],
        on_failure: OnFailure::Rollback,
        rollback: "on failure, switch every host of this apply back to 1.4.2 \
                   (previous release), restart, check health and re-register"
            .to_string(),
        needs_approval_before_start: true,
        after: Some(Vec::new()),
        ends_with: None,
    }
}

fn legacy_worker_schedule() -> ScheduledDeployment {
    ScheduledDeployment {
        address: "deployment.legacy-worker-prod".to_string(),
        action: Action::Destroy,
        strategy: ScheduledStrategy::Remove,
        steps: vec![Step {
            index: 1,
            kind: StepKind::Remove,
            bake: None,
            gates: Vec::new(),
            approval: None,
        }],
        on_failure: OnFailure::Abort,
        rollback: "nothing to roll back: only the record in state is removed".to_string(),
        needs_approval_before_start: false,
        after: Some(Vec::new()),
        ends_with: None,
    }
}

fn checkout_canary_schedule() -> ScheduledDeployment {
    let error_rate_gate = Gate {
        name: "error-rate".to_string(),
        kind: "prometheus".to_string(),
        detail: "query `sum(rate(http_requests_total{service=\"checkout\",code=~\"5..\"}[5m])) \
                 / sum(rate(http_requests_total{service=\"checkout\"}[5m]))` \
                 at http://prometheus.internal:9090, max 0.01, no data: fail"
            .to_string(),
    };
    let traffic_step = |index: usize, percent: u32| Step {
        index,
        kind: StepKind::TrafficShift { percent },
        bake: Some(DurationText::parse("10m").unwrap()),
        gates: vec![error_rate_gate.clone()],
        approval: None,
    };
    let mut steps = vec![
        traffic_step(1, 10),
        traffic_step(2, 25),
        traffic_step(3, 50),
        Step {
            index: 4,
            kind: StepKind::TrafficShift { percent: 100 },
            bake: None,
            gates: vec![Gate {
                name: "errors".to_string(),
                kind: "cloudwatch".to_string(),
                detail: "alarm checkout-5xx not in ALARM, no data: fail".to_string(),
            }],
            approval: None,
        },
    ];
    steps[0].approval = Some("release-manager".to_string());
    ScheduledDeployment {
        address: "deployment.checkout-prod".to_string(),
        action: Action::Update,
        strategy: ScheduledStrategy::Canary,
        steps,
        on_failure: OnFailure::Rollback,
        rollback: "on failure, send 100% of traffic back to 2.4.0 and remove the new tasks \
                   (rolling: restore the previous task definition)"
            .to_string(),
        needs_approval_before_start: true,
        after: Some(Vec::new()),
        ends_with: Some(RolloutEnd::UpdateInPlace {
            service: "checkout-prod".to_string(),
            temporary: "checkout-prod-green".to_string(),
        }),
    }
}
