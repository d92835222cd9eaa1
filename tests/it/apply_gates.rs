//! Metric verification gates end to end, through the real binary: the
//! quickstart's hosts with the local transport, a real Prometheus scraping a
//! test service whose per-version error rates are set by each test
//! (`tests/it/prometheus`), and CloudWatch alarms and metrics in a moto server
//! (`tests/it/moto`). Each test checks the apply's verdict, what it printed and
//! the gate results recorded in state.
//!
//! Everything listens on loopback; each test has its own copy of
//! `examples/quickstart`, its own ports, and stops what it started.

use crate::moto;
use crate::support::quickstart::Quickstart;
use crate::support::text;

use crate::prometheus::{MetricsApp, Prometheus};
use slipway::state::DeploymentStatus;

/// The error ratio of one version, as the gates query it.
const ERROR_RATIO: &str = r#"sum(rate(app_errors_total{version=\"{{version}}\"}[5s])) / sum(rate(app_requests_total{version=\"{{version}}\"}[5s]))"#;

impl Quickstart {
    /// A copy of the quickstart whose rollout has `verify` (HCL) as its gates.
    fn with_gates(verify: &str) -> Quickstart {
        let quickstart = Quickstart::new();
        quickstart.edit_config(
            "  on_failure = \"rollback\"\n}\n",
            &format!("  on_failure = \"rollback\"\n\n{verify}\n}}\n"),
        );
        quickstart
    }
}

/// A gate on the error ratio compared with the previous version.
fn error_rate_gate(address: &str, extra: &str) -> String {
    format!(
        r#"  verify "error-rate" {{
    prometheus {{
      address = "{address}"
      query   = "{ERROR_RATIO}"
    }}
    max       = 0.03
    baseline  = "previous_version"
    tolerance = 1.5
    interval  = "1s"
    count     = 2
{extra}  }}"#
    )
}

/// The test service with these per-version rates, and Prometheus scraping
/// it until every version has a rate; `None` when there is no Prometheus.
fn metrics(rates: &[(&str, f64, f64)]) -> Option<(MetricsApp, Prometheus)> {
    let app = MetricsApp::start(rates);
    let prometheus = Prometheus::start(&[app.target()])?;
    for (version, _, _) in rates {
        prometheus.wait_for_data(&format!(
            "rate(app_requests_total{{version=\"{version}\"}}[5s])"
        ));
    }
    Some((app, prometheus))
}

#[test]
fn a_canary_as_good_as_its_baseline_passes_every_step() {
    let Some((_app, prometheus)) = metrics(&[("1.0.0", 200.0, 2.0), ("1.1.0", 200.0, 2.0)]) else {
        return;
    };
    let quickstart = Quickstart::with_gates(&error_rate_gate(&prometheus.address, ""));
    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(
        text(&first).contains("new 0.01 (no previous version to compare with) (max 0.03): pass"),
        "{}",
        text(&first)
    );

    let upgrade = quickstart.apply("1.1.0");
    let log = text(&upgrade);
    assert_eq!(upgrade.status.code(), Some(0), "{log}");
    assert!(
        log.contains("gate error-rate: evaluation 2/2: new 0.01 vs baseline 0.01 × 1.5 = 0.015 (max 0.03): pass"),
        "{log}"
    );
    quickstart.assert_serving("1.1.0");
    let state = quickstart.state();
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert!(deployment.verified);
    let steps: Vec<(usize, bool)> = deployment
        .gates
        .iter()
        .map(|g| (g.step, g.passed))
        .collect();
    assert_eq!(steps, [(1, true), (2, true)], "{:#?}", deployment.gates);
    let gate = &deployment.gates[0];
    assert_eq!(gate.kind, "prometheus");
    assert_eq!(gate.version, "1.1.0");
    assert_eq!(gate.evaluations.len(), 2);
    for evaluation in &gate.evaluations {
        let (value, baseline) = (evaluation.value.unwrap(), evaluation.baseline.unwrap());
        assert!((value - 0.01).abs() < 1e-6, "{evaluation:?}");
        assert!((baseline - 0.01).abs() < 1e-6, "{evaluation:?}");
    }
}

#[test]
fn a_canary_five_times_worse_than_its_baseline_fails_at_the_first_step_and_rolls_back() {
    let Some((_app, prometheus)) = metrics(&[("1.0.0", 200.0, 2.0), ("1.1.0", 200.0, 10.0)]) else {
        return;
    };
    let quickstart = Quickstart::with_gates(&error_rate_gate(&prometheus.address, ""));
    let first = quickstart.apply("1.0.0");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    let upgrade = quickstart.apply("1.1.0");
    let log = text(&upgrade);
    assert_ne!(upgrade.status.code(), Some(0), "{log}");
    let verdict = "new 0.05 vs baseline 0.01 × 1.5 = 0.015 (max 0.03): fail, above the baseline's 0.015, above max 0.03";
    assert!(
        log.contains(&format!("gate error-rate: {verdict}")),
        "{log}"
    );
    assert!(
        log.contains("step 1 failed: rolling back 1 host(s)"),
        "{log}"
    );
    assert!(
        !log.contains("step 2/2"),
        "the second step never starts:\n{log}"
    );
    quickstart.assert_serving("1.0.0");
    let state = quickstart.state();
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::RolledBack);
    assert!(!deployment.verified);
    assert_eq!(deployment.gates.len(), 1, "{:#?}", deployment.gates);
    let gate = &deployment.gates[0];
    assert_eq!((gate.step, gate.passed), (1, false));
    assert_eq!(gate.summary, verdict);
    assert_eq!(
        gate.evaluations.len(),
        1,
        "failure_limit 1 stops at the first failed evaluation"
    );
    assert!((gate.evaluations[0].value.unwrap() - 0.05).abs() < 1e-6);
    assert!((gate.evaluations[0].baseline.unwrap() - 0.01).abs() < 1e-6);
}

#[test]
fn a_query_without_data_fails_unless_no_data_is_pass() {
    // The service reports 1.0.0 only: a query for 2.0.0 finds nothing.
    let Some((_app, prometheus)) = metrics(&[("1.0.0", 100.0, 1.0)]) else {
        return;
    };
    let gate = format!(
        r#"  verify "error-rate" {{
    prometheus {{
      address = "{}"
      query   = "{ERROR_RATIO}"
    }}
    max      = 0.05
    interval = "0s"
  }}"#,
        prometheus.address
    );
    let quickstart = Quickstart::with_gates(&gate);
    let failed = quickstart.apply("2.0.0");
    let log = text(&failed);
    assert_ne!(failed.status.code(), Some(0), "{log}");
    assert!(
        log.contains("gate error-rate: no data: fail (no_data = \"fail\")"),
        "{log}"
    );
    let state = quickstart.state();
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::RolledBack);
    assert_eq!(deployment.gates[0].evaluations[0].value, None);

    quickstart.edit_config(
        "    max      = 0.05\n",
        "    max      = 0.05\n    no_data  = \"pass\"\n",
    );
    let passed = quickstart.apply("2.0.0");
    let log = text(&passed);
    assert_eq!(passed.status.code(), Some(0), "{log}");
    assert!(
        log.contains("gate error-rate: no data: pass (no_data = \"pass\")"),
        "{log}"
    );
    let state = quickstart.state();
    let gates = &state.deployments["deployment.hello"].gates;
    assert_eq!(gates.len(), 2, "{gates:#?}");
    assert!(gates.iter().all(|g| g.passed), "{gates:#?}");
}

#[test]
fn a_cloudwatch_alarm_in_alarm_fails_the_gate_and_ok_passes_it() {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cloudwatch =
        runtime.block_on(async { aws_sdk_cloudwatch::Client::new(&moto.sdk_config().await) });
    let set_alarm = |state: aws_sdk_cloudwatch::types::StateValue| {
        runtime.block_on(moto.alarm_in_state("hello-errors", "Slipway/Test", state));
    };
    let gate = format!(
        r#"  verify "alarm" {{
    cloudwatch {{
      region     = "us-east-1"
      endpoint   = "{}"
      alarm_name = "hello-errors"
    }}
  }}

  verify "errors" {{
    cloudwatch {{
      region      = "us-east-1"
      endpoint    = "{}"
      namespace   = "Slipway/Test"
      metric_name = "Errors"
      statistic   = "Sum"
      dimensions  = {{ Service = "hello" }}
    }}
    max     = 5
    no_data = "pass"
  }}"#,
        moto.endpoint, moto.endpoint
    );
    let mut quickstart = Quickstart::with_gates(&gate);
    quickstart.env = moto.env();

    set_alarm(aws_sdk_cloudwatch::types::StateValue::Alarm);
    let failed = quickstart.apply("1.0.0");
    let log = text(&failed);
    assert_ne!(failed.status.code(), Some(0), "{log}");
    assert!(
        log.contains("gate alarm: alarm hello-errors is in ALARM: fail"),
        "{log}"
    );
    let state = quickstart.state();
    let deployment = &state.deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::RolledBack);
    assert_eq!(
        (
            deployment.gates[0].kind.as_str(),
            deployment.gates[0].passed
        ),
        ("cloudwatch", false)
    );

    set_alarm(aws_sdk_cloudwatch::types::StateValue::Ok);
    runtime.block_on(async {
        cloudwatch
            .put_metric_data()
            .namespace("Slipway/Test")
            .metric_data(
                aws_sdk_cloudwatch::types::MetricDatum::builder()
                    .metric_name("Errors")
                    .dimensions(
                        aws_sdk_cloudwatch::types::Dimension::builder()
                            .name("Service")
                            .value("hello")
                            .build(),
                    )
                    .value(2.0)
                    // Well inside the gate's one-minute window, never after its end.
                    .timestamp(aws_smithy_types::DateTime::from(
                        std::time::SystemTime::now() - std::time::Duration::from_secs(10),
                    ))
                    .build(),
            )
            .send()
            .await
            .expect("PutMetricData")
    });
    let passed = quickstart.apply("1.0.0");
    let log = text(&passed);
    assert_eq!(passed.status.code(), Some(0), "{log}");
    assert!(
        log.contains("gate alarm: alarm hello-errors is OK: pass"),
        "{log}"
    );
    assert!(
        log.contains("gate errors: Slipway/Test Errors Sum: 2 (max 5): pass"),
        "{log}"
    );
    let state = quickstart.state();
    let gates = &state.deployments["deployment.hello"].gates;
    assert!(gates.iter().all(|g| g.passed), "{gates:#?}");
    assert!(
        gates
            .iter()
            .filter(|g| g.name == "errors")
            .flat_map(|g| &g.evaluations)
            .any(|e| e.value == Some(2.0)),
        "the metric's sum is recorded: {gates:#?}"
    );
}
