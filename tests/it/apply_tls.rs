//! HTTPS end to end, through the real binary: a private certificate
//! authority made with openssl, an https server on loopback with a
//! certificate it signed (`tests/it/tls`), and the quickstart's hosts with the
//! local transport. An http gate, a health `url`, a webhook and a Prometheus
//! gate reach it when the CA is given (`slipway { ca_file }` or
//! `SSL_CERT_FILE`), and fail with a message naming the URL and the
//! certificate problem when it is not.

use crate::prometheus::{MetricsApp, Prometheus};
use crate::support::quickstart::Quickstart;
use crate::support::text;
use crate::tls::{HttpsServer, Pki};
use slipway::state::DeploymentStatus;

impl Quickstart {
    /// Add `block` (HCL) to the rollout.
    fn with_rollout_block(self, block: &str) -> Quickstart {
        self.edit_config(
            "  on_failure = \"rollback\"\n}\n",
            &format!("  on_failure = \"rollback\"\n\n{block}\n}}\n"),
        );
        self
    }

    /// Copy the CA's certificate into the configuration and name it in
    /// `slipway { ca_file }`.
    fn trusting(self, pki: &Pki) -> Quickstart {
        std::fs::create_dir_all(self.root.join("certs")).unwrap();
        std::fs::copy(pki.ca_pem(), self.root.join("certs/internal-ca.pem")).unwrap();
        self.edit_config(
            "slipway {\n",
            "slipway {\n  ca_file = \"certs/internal-ca.pem\"\n",
        );
        self
    }
}

fn http_gate(url: &str) -> String {
    format!(
        r#"  verify "api" {{
    http {{
      url          = "{url}"
      json_path    = "$.status"
      expect_value = "healthy"
    }}
  }}"#
    )
}

/// The gates state recorded for the quickstart's deployment: (kind, passed).
fn gates(quickstart: &Quickstart) -> Vec<(String, bool, String)> {
    quickstart.state().deployments["deployment.hello"]
        .gates
        .iter()
        .map(|g| (g.kind.clone(), g.passed, g.summary.clone()))
        .collect()
}

#[test]
fn an_https_gate_and_health_url_pass_with_the_ca_in_ca_file() {
    let Some(pki) = Pki::make() else { return };
    let server = HttpsServer::start(&pki, None);
    let quickstart = Quickstart::new()
        .with_rollout_block(&http_gate(&server.url("/health")))
        .trusting(&pki);
    // A health URL checked from the runner, by host name (the certificate's
    // DNS name) this time.
    quickstart.edit_config(
        "      interval = \"1s\"\n    }\n",
        &format!(
            "      interval = \"1s\"\n    }}\n\n    health \"tls\" {{\n      url = \"https://localhost:{}/health\"\n    }}\n",
            server.port
        ),
    );

    let apply = quickstart.apply("1.0.0");
    let log = text(&apply);
    assert_eq!(apply.status.code(), Some(0), "{log}");
    assert!(log.contains("gate api: pass"), "{log}");
    quickstart.assert_serving("1.0.0");
    let deployment = &quickstart.state().deployments["deployment.hello"];
    assert_eq!(deployment.status, DeploymentStatus::Deployed);
    assert_eq!(
        gates(&quickstart),
        [
            ("http".to_string(), true, "pass".to_string()),
            ("http".to_string(), true, "pass".to_string())
        ],
        "one gate per step"
    );
}

#[test]
fn an_https_gate_passes_with_the_ca_in_ssl_cert_file() {
    let Some(pki) = Pki::make() else { return };
    let server = HttpsServer::start(&pki, None);
    let mut quickstart = Quickstart::new().with_rollout_block(&http_gate(&server.url("/health")));
    quickstart.env.push((
        "SSL_CERT_FILE".into(),
        pki.ca_pem().to_string_lossy().into_owned(),
    ));
    let apply = quickstart.apply("1.0.0");
    let log = text(&apply);
    assert_eq!(apply.status.code(), Some(0), "{log}");
    assert!(log.contains("gate api: pass"), "{log}");
    assert!(gates(&quickstart).iter().all(|(_, passed, _)| *passed));
}

#[test]
fn without_the_ca_an_https_gate_fails_naming_the_url_and_the_certificate_problem() {
    let Some(pki) = Pki::make() else { return };
    let server = HttpsServer::start(&pki, None);
    let url = server.url("/health");
    let quickstart = Quickstart::new().with_rollout_block(&http_gate(&url));
    let apply = quickstart.apply("1.0.0");
    let log = text(&apply);
    assert_ne!(apply.status.code(), Some(0), "{log}");
    let problem = format!(
        "GET {url}: the server's certificate is not trusted: it was issued by an unknown certificate authority"
    );
    assert!(log.contains(&problem), "{log}");
    assert!(
        log.contains("give that CA's certificate (PEM) with ca_file in the slipway block or with the SSL_CERT_FILE environment variable"),
        "{log}"
    );
    assert!(!log.contains("no TLS backend"), "{log}");
    let recorded = gates(&quickstart);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(
        !recorded[0].1 && recorded[0].2.contains(&problem),
        "{recorded:?}"
    );
    assert_ne!(
        quickstart.state().deployments["deployment.hello"].status,
        DeploymentStatus::Deployed
    );
}

#[test]
fn a_webhook_over_https_is_received_with_the_ca_and_refused_without_it() {
    let Some(pki) = Pki::make() else { return };
    let server = HttpsServer::start(&pki, None);
    let notify = format!(
        "  notify \"hook\" {{\n    webhook = \"{}\"\n  }}",
        server.url("/hooks/T000/B000/TOKEN")
    );

    let untrusting = Quickstart::new().with_rollout_block(&notify);
    let apply = untrusting.apply("1.0.0");
    let log = text(&apply);
    assert_eq!(
        apply.status.code(),
        Some(0),
        "a notification never fails a deployment: {log}"
    );
    assert!(
        log.contains(&format!(
            "warning: notify \"hook\": could not deliver \"started\" to https://127.0.0.1:{}/…: the server's certificate is not trusted",
            server.port
        )),
        "{log}"
    );
    assert!(
        !log.contains("TOKEN"),
        "the webhook's path is never shown: {log}"
    );
    assert!(server.received().is_empty());
    drop(untrusting);

    let trusting = Quickstart::new().with_rollout_block(&notify).trusting(&pki);
    let apply = trusting.apply("1.0.0");
    let log = text(&apply);
    assert_eq!(apply.status.code(), Some(0), "{log}");
    assert!(!log.contains("warning: notify"), "{log}");
    let events: Vec<String> = server
        .received()
        .iter()
        .map(|body| {
            let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
            assert_eq!(body["deployment"], "deployment.hello");
            body["event"].as_str().unwrap_or("").to_string()
        })
        .collect();
    assert_eq!(events, ["started", "succeeded"]);
}

#[test]
fn a_prometheus_gate_queries_an_https_endpoint() {
    let Some(pki) = Pki::make() else { return };
    let app = MetricsApp::start(&[("1.0.0", 200.0, 2.0)]);
    let Some(prometheus) = Prometheus::start(&[app.target()]) else {
        return;
    };
    prometheus.wait_for_data("rate(app_requests_total{version=\"1.0.0\"}[5s])");
    // TLS in front of the real Prometheus.
    let front = HttpsServer::start(&pki, Some(&prometheus.address));
    let gate = format!(
        r#"  verify "error-rate" {{
    prometheus {{
      address = "{}"
      query   = "sum(rate(app_errors_total{{version=\"{{{{version}}}}\"}}[5s])) / sum(rate(app_requests_total{{version=\"{{{{version}}}}\"}}[5s]))"
    }}
    max = 0.03
  }}"#,
        front.url("")
    );
    let quickstart = Quickstart::new().with_rollout_block(&gate).trusting(&pki);
    let apply = quickstart.apply("1.0.0");
    let log = text(&apply);
    assert_eq!(apply.status.code(), Some(0), "{log}");
    assert!(
        log.contains("gate error-rate: 0.01 (max 0.03): pass"),
        "{log}"
    );
    let deployment = &quickstart.state().deployments["deployment.hello"];
    let gate = &deployment.gates[0];
    assert_eq!((gate.kind.as_str(), gate.passed), ("prometheus", true));
    let value = gate.evaluations[0].value.expect("a value");
    assert!((value - 0.01).abs() < 1e-6, "{:?}", gate.evaluations);
}

#[test]
fn a_ca_file_that_is_missing_or_holds_no_certificate_is_a_located_error() {
    let quickstart = Quickstart::new();
    quickstart.edit_config(
        "slipway {\n",
        "slipway {\n  ca_file = \"certs/missing.pem\"\n",
    );
    let validate = quickstart.slipway(&["validate", "."]);
    let log = text(&validate);
    assert_ne!(validate.status.code(), Some(0), "{log}");
    assert!(log.contains("ca_file: cannot read"), "{log}");
    assert!(log.contains("missing.pem"), "{log}");
    assert!(
        log.contains("main.hcl:11:"),
        "located at the attribute: {log}"
    );

    std::fs::create_dir_all(quickstart.root.join("certs")).unwrap();
    std::fs::write(
        quickstart.root.join("certs/missing.pem"),
        "not a certificate\n",
    )
    .unwrap();
    let validate = quickstart.slipway(&["validate", "."]);
    let log = text(&validate);
    assert_ne!(validate.status.code(), Some(0), "{log}");
    assert!(log.contains("holds no certificate"), "{log}");
}
