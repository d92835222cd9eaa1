//! Gates judged from the machine running apply: HTTP requests, commands with
//! `on = "runner"`, Prometheus queries and CloudWatch alarms or metrics.
//! Shared by the VM and ECS executors. Every gate judged here is recorded in
//! state ([`Recorder::record_gate`]) and printed with the values it saw; one
//! that does not pass is a [`GateError`].
//!
//! Not here: commands run on a deployment's hosts (the VM executor runs those
//! through its transports and records them with [`record`]), and the
//! judgement of metric values itself ([`crate::metrics`], pure).

use std::time::Duration;

use super::events::RolloutEvent;
use super::{Progress, Recorder};
use crate::aws::{self, error_text};
use crate::config::{
    CloudwatchGate, CommandOn, Config, Deployment, DurationText, Gate, PrometheusGate,
};
use crate::http::{Client, HttpError};
use crate::metrics::{self, Baseline, Criteria, MetricsError, QueryContext, Sample};
use crate::state::lock::now_rfc3339;
use crate::state::{GateEvaluation, GateResult};

/// Time between evaluations of a metric gate when `interval` is not set.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// How long one Prometheus query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a gate judged from the runner did not pass, or why one check or
/// query of it failed.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The gate was judged and failed: what [`judge_on_runner`] returns.
    /// `reason` is masked: the check's failure, or the summary of the
    /// metric evaluations.
    #[error("gate \"{gate}\" failed: {reason}")]
    Failed { gate: String, reason: String },
    /// The HTTP client could not be made (a `ca_file`, the TLS setup).
    #[error("GET {url}: {source}")]
    Client { url: String, source: HttpError },
    /// An http check got no answer, or a wrong status or body.
    #[error("{}", .0.message)]
    Check(CheckFailure),
    /// An http check's `json_path`: the body is not JSON.
    #[error("the body is not JSON ({reason})")]
    BodyNotJson { reason: String },
    /// An http check's `json_path` is not in the body.
    #[error("{path} is not in the body")]
    PathMissing { path: String },
    /// An http check's `json_path` holds another value than expected.
    #[error("{path} is {found}, expected {expected}")]
    ValueDiffers {
        path: String,
        found: Box<serde_json::Value>,
        expected: Box<serde_json::Value>,
    },
    /// As [`GateError::ValueDiffers`], the value found not shown: the
    /// service's config files hold sensitive values.
    #[error(
        "{path} is not {expected} (the value found is not shown: the service's config \
         files hold sensitive values, which its answers can repeat)"
    )]
    ValueHidden {
        path: String,
        expected: Box<serde_json::Value>,
    },
    /// A runner command could not be started.
    #[error("{0}")]
    CommandNotStarted(#[source] std::io::Error),
    /// A runner command exited unsuccessfully.
    #[error("`{command}` exited with {status}")]
    CommandFailed {
        command: String,
        status: std::process::ExitStatus,
    },
    /// A Prometheus query got no answer (`address` without credentials).
    #[error("{address}: {source}")]
    QueryRequest { address: String, source: HttpError },
    /// Prometheus's answer holds no value to judge.
    #[error("{address}: {source}")]
    QueryAnswer {
        address: String,
        source: MetricsError,
    },
}

/// What a gate is judged for: one step of one deployment.
pub struct GateContext<'a> {
    pub config: &'a Config,
    pub deployment: &'a Deployment,
    /// The version before this apply, for `baseline = "previous_version"`
    /// (see [`baseline_version`]).
    pub baseline_version: Option<&'a str>,
    /// The step just done (1-based) and its hosts (none on ECS).
    pub step: usize,
    pub hosts: &'a [String],
    /// The deployment runs on hosts (VM), not on ECS: where a command gate
    /// runs ([`crate::config::CommandGate::runs_on`]).
    pub has_hosts: bool,
    pub recorder: &'a Recorder,
    pub progress: &'a Progress,
}

impl GateContext<'_> {
    fn query_context(&self) -> QueryContext {
        let service = &self.deployment.service.address;
        QueryContext {
            version: self.deployment.service.version.clone(),
            baseline_version: self.baseline_version.map(str::to_string),
            hosts: self.hosts.to_vec(),
            environment: self
                .config
                .environment_of(self.deployment)
                .map(|e| e.name.clone())
                .unwrap_or_default(),
            service: service.rsplit('.').next().unwrap_or(service).to_string(),
            deployment: self.deployment.name.clone(),
        }
    }
}

/// The version `address` ran before this apply; call before the apply
/// records its start.
pub fn baseline_version(recorder: &Recorder, address: &str, new_version: &str) -> Option<String> {
    recorder.read(|state| metrics::baseline_version(state, address, new_version))
}

/// http | command | prometheus | cloudwatch
pub fn kind(gate: &Gate) -> &'static str {
    if gate.http.is_some() {
        "http"
    } else if gate.command.is_some() {
        "command"
    } else if gate.prometheus.is_some() {
        "prometheus"
    } else if gate.cloudwatch.is_some() {
        "cloudwatch"
    } else {
        "unknown"
    }
}

/// Record a judged gate in state and print its verdict. `summary` is masked
/// here.
pub fn record(
    ctx: &GateContext<'_>,
    gate: &Gate,
    passed: bool,
    summary: &str,
    evaluations: Vec<GateEvaluation>,
) {
    let summary = ctx.config.mask(summary);
    let address = &ctx.deployment.address;
    ctx.progress.report(
        address,
        RolloutEvent::GateJudged {
            step: ctx.step,
            gate: gate.name.clone(),
            passed,
            summary: summary.clone(),
        },
    );
    let result = GateResult {
        name: gate.name.clone(),
        kind: kind(gate).to_string(),
        step: ctx.step,
        version: ctx.deployment.service.version.clone(),
        passed,
        summary,
        evaluations,
        judged_at: now_rfc3339(),
    };
    if let Err(error) = ctx.recorder.record_gate(address, result) {
        ctx.progress.report(
            address,
            RolloutEvent::GateNotRecorded {
                gate: gate.name.clone(),
                error: error.to_string(),
            },
        );
    }
}

/// Judge `gate` here if it is judged from the runner (everything but a
/// command that runs on the hosts), record and print the result; `None`
/// when it must run on the hosts of the step.
pub async fn judge_on_runner(gate: &Gate, ctx: &GateContext<'_>) -> Option<Result<(), GateError>> {
    if gate.prometheus.is_some() || gate.cloudwatch.is_some() {
        return Some(judge_metric(gate, ctx).await);
    }
    let shown = super::host_output::HostOutput::for_deployment(
        ctx.config,
        ctx.recorder.deployment(&ctx.deployment.address).as_ref(),
    );
    let result = judge_check(gate, ctx.config, shown, ctx.has_hosts).await?;
    let summary = match &result {
        Ok(()) => "pass".to_string(),
        Err(message) => format!("fail: {message}"),
    };
    record(ctx, gate, result.is_ok(), &summary, Vec::new());
    Some(result.map_err(|e| GateError::Failed {
        gate: gate.name.clone(),
        reason: ctx.config.mask(&e.to_string()),
    }))
}

/// An http gate, or a command gate that runs on the runner
/// ([`crate::config::CommandGate::runs_on`]: `on = "runner"`, or a
/// deployment without hosts).
async fn judge_check(
    gate: &Gate,
    config: &Config,
    shown: super::host_output::HostOutput,
    has_hosts: bool,
) -> Option<Result<(), GateError>> {
    if let Some(http) = &gate.http {
        let timeout = http
            .timeout
            .as_ref()
            .map_or(Duration::from_secs(10), DurationText::get);
        let json = http
            .json_path
            .as_ref()
            .map(|path| (path.clone(), http.expect_value.clone()));
        let client = match Client::for_config(config) {
            Ok(client) => client,
            Err(source) => {
                return Some(Err(GateError::Client {
                    url: http.url.clone(),
                    source,
                }))
            }
        };
        let mut result = Err(CheckFailure {
            message: String::new(),
            no_answer: true,
        });
        // `retries` repeats a request that got no answer; an answer, whatever
        // it says, is the verdict.
        for _ in 0..=http.retries.unwrap_or(0) {
            result = http_check(
                &client,
                &http.url,
                http.expect_status.unwrap_or(200),
                timeout,
                http.body_contains.as_deref(),
            )
            .await;
            if !matches!(&result, Err(failure) if failure.no_answer) {
                break;
            }
        }
        return Some(
            result
                .map_err(GateError::Check)
                .and_then(|body| match &json {
                    // The value found comes from the service, which may
                    // repeat a secret the configuration no longer knows
                    // (see `host_output`).
                    Some((path, expected)) => json_path_matches(
                        &body,
                        path,
                        expected.as_ref(),
                        shown == super::host_output::HostOutput::Shown,
                    ),
                    None => Ok(()),
                }),
        );
    }
    let command = gate.command.as_ref()?;
    if command.runs_on(has_hosts) != CommandOn::Runner {
        return None;
    }
    let output = match tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&command.command)
        .current_dir(&config.root)
        .output()
        .await
    {
        Ok(output) => output,
        Err(error) => return Some(Err(GateError::CommandNotStarted(error))),
    };
    Some(if output.status.success() {
        Ok(())
    } else {
        Err(GateError::CommandFailed {
            command: command.command.clone(),
            status: output.status,
        })
    })
}

/// A prometheus or cloudwatch gate: `count` evaluations `interval` apart,
/// stopping at `failure_limit` failed ones.
async fn judge_metric(gate: &Gate, ctx: &GateContext<'_>) -> Result<(), GateError> {
    let criteria = Criteria::of(gate);
    let count = gate.count.unwrap_or(1).max(1);
    let failure_limit = gate.failure_limit.unwrap_or(1).max(1);
    let interval = gate
        .interval
        .as_ref()
        .map_or(DEFAULT_INTERVAL, DurationText::get);
    let query_ctx = ctx.query_context();
    let cloudwatch = match &gate.cloudwatch {
        Some(settings) => Some(cloudwatch_client(settings).await),
        None => None,
    };
    let http = Client::for_config(ctx.config);
    let address = &ctx.deployment.address;
    let mut samples: Vec<Sample> = Vec::new();
    for evaluation in 1..=count {
        if evaluation > 1 {
            let what = format!(
                "step {}: gate {}: evaluation {evaluation}/{count}",
                ctx.step, gate.name
            );
            ctx.progress.wait(address, &what, interval).await;
        }
        let sample = match (&gate.prometheus, &gate.cloudwatch, &cloudwatch) {
            (Some(prometheus), _, _) => {
                prometheus_sample(&http, prometheus, &criteria, &query_ctx).await
            }
            (_, Some(settings), Some(client)) => {
                cloudwatch_sample(client, settings, &criteria, interval).await
            }
            _ => unreachable!("judge_metric is called for metric gates only"),
        };
        let sample = Sample {
            text: ctx.config.mask(&sample.text),
            ..sample
        };
        if count > 1 {
            ctx.progress.report(
                address,
                RolloutEvent::GateEvaluated {
                    gate: gate.name.clone(),
                    evaluation,
                    count,
                    sample: sample.text.clone(),
                },
            );
        }
        samples.push(sample);
        if metrics::gate_failed(&samples, failure_limit) {
            break;
        }
    }
    let failed = metrics::gate_failed(&samples, failure_limit);
    let summary = metrics::summary(&samples, failure_limit);
    let evaluations = samples
        .into_iter()
        .map(|s| GateEvaluation {
            value: s.value,
            baseline: s.baseline,
            passed: s.passed,
            text: s.text,
        })
        .collect();
    record(ctx, gate, !failed, &summary, evaluations);
    if failed {
        Err(GateError::Failed {
            gate: gate.name.clone(),
            reason: ctx.config.mask(&summary),
        })
    } else {
        Ok(())
    }
}

/// One evaluation of a prometheus gate: the query for the new version and,
/// with a baseline, for the previous one. A failed request fails the
/// evaluation.
async fn prometheus_sample(
    client: &Result<Client, HttpError>,
    prometheus: &PrometheusGate,
    criteria: &Criteria,
    ctx: &QueryContext,
) -> Sample {
    let client = match client {
        Ok(client) => client,
        Err(error) => return Sample::failed(format!("query failed: {error}: fail")),
    };
    let query = metrics::render_query(&prometheus.query, ctx, &ctx.version);
    let value = match prometheus_query(client, &prometheus.address, &query).await {
        Ok(value) => value,
        Err(error) => return Sample::failed(format!("query failed: {error}: fail")),
    };
    let baseline = match (criteria.tolerance, &ctx.baseline_version) {
        (None, _) => Baseline::NotUsed,
        (Some(_), None) => Baseline::NoPreviousVersion,
        (Some(_), Some(previous)) => {
            let query = metrics::render_query(&prometheus.query, ctx, previous);
            match prometheus_query(client, &prometheus.address, &query).await {
                Ok(value) => Baseline::Measured(value),
                Err(error) => {
                    return Sample::failed(format!("baseline query failed: {error}: fail"))
                }
            }
        }
    };
    metrics::judge_sample(criteria, value, baseline)
}

/// GET `/api/v1/query` (an instant query at the current time). Errors name
/// the address without its credentials.
pub async fn prometheus_query(
    client: &Client,
    address: &str,
    query: &str,
) -> Result<Option<f64>, GateError> {
    let url = format!("{}/api/v1/query", address.trim_end_matches('/'));
    let shown = metrics::redact_address(address);
    // Prometheus explains a bad query in a JSON body with status 400/422:
    // every answer is parsed.
    let answer = client
        .get(&url, &[("query", query)], QUERY_TIMEOUT)
        .await
        .map_err(|source| GateError::QueryRequest {
            address: shown.clone(),
            source,
        })?;
    metrics::parse_prometheus_response(&answer.body).map_err(|source| GateError::QueryAnswer {
        address: shown,
        source,
    })
}

async fn cloudwatch_client(settings: &CloudwatchGate) -> aws_sdk_cloudwatch::Client {
    let sdk = aws::sdk_config(&aws::Target::new(
        settings.region.as_deref(),
        settings.endpoint.as_deref(),
    ))
    .await;
    aws_sdk_cloudwatch::Client::new(&sdk)
}

/// One evaluation of a cloudwatch gate: the alarm's state, or the metric's
/// statistic over the last `interval` (at least a minute, CloudWatch's
/// smallest standard period).
async fn cloudwatch_sample(
    client: &aws_sdk_cloudwatch::Client,
    settings: &CloudwatchGate,
    criteria: &Criteria,
    interval: Duration,
) -> Sample {
    if let Some(alarm) = &settings.alarm_name {
        return match client.describe_alarms().alarm_names(alarm).send().await {
            Ok(answer) => {
                let state = answer
                    .metric_alarms()
                    .first()
                    .and_then(|a| a.state_value())
                    .map(|s| s.as_str().to_string())
                    .or_else(|| {
                        answer
                            .composite_alarms()
                            .first()
                            .and_then(|a| a.state_value())
                            .map(|s| s.as_str().to_string())
                    });
                metrics::judge_alarm(criteria, alarm, state.as_deref())
            }
            Err(error) => Sample::failed(format!(
                "describing alarm {alarm} failed: {}: fail",
                error_text(&error)
            )),
        };
    }
    let (Some(namespace), Some(metric), Some(statistic)) = (
        &settings.namespace,
        &settings.metric_name,
        &settings.statistic,
    ) else {
        return Sample::failed(
            "the cloudwatch check names neither an alarm nor a metric: fail".into(),
        );
    };
    let period = interval.as_secs().max(60).div_ceil(60) * 60;
    let end = std::time::SystemTime::now();
    let start = end - Duration::from_secs(period);
    let mut request = client
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .start_time(aws_smithy_types::DateTime::from(start))
        .end_time(aws_smithy_types::DateTime::from(end))
        .period(period as i32)
        .statistics(aws_sdk_cloudwatch::types::Statistic::from(
            statistic.as_str(),
        ));
    for (name, value) in &settings.dimensions {
        request = request.dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name(name)
                .value(value)
                .build(),
        );
    }
    let answer = match request.send().await {
        Ok(answer) => answer,
        Err(error) => {
            return Sample::failed(format!(
                "reading {namespace} {metric} failed: {}: fail",
                error_text(&error)
            ))
        }
    };
    let points: Vec<(i64, f64)> = answer
        .datapoints()
        .iter()
        .filter_map(|point| {
            let value = match statistic.as_str() {
                "Average" => point.average(),
                "Sum" => point.sum(),
                "Minimum" => point.minimum(),
                "Maximum" => point.maximum(),
                "SampleCount" => point.sample_count(),
                _ => None,
            }?;
            Some((point.timestamp().map_or(0, |t| t.secs()), value))
        })
        .collect();
    let sample = metrics::judge_sample(
        criteria,
        metrics::latest_datapoint(&points),
        Baseline::NotUsed,
    );
    Sample {
        text: format!("{namespace} {metric} {statistic}: {}", sample.text),
        ..sample
    }
}

/// Why an HTTP check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// Names the URL.
    pub message: String,
    /// No answer came (no connection, a timeout): another attempt may get
    /// one. A wrong status or body is an answer.
    pub no_answer: bool,
}

/// GET `url`: the status must be `expect_status` and the body must contain
/// `body_contains`, if given. Returns the body.
pub async fn http_check(
    client: &Client,
    url: &str,
    expect_status: u16,
    timeout: Duration,
    body_contains: Option<&str>,
) -> Result<String, CheckFailure> {
    let answer = |message: String| CheckFailure {
        message,
        no_answer: false,
    };
    let response = client
        .get(url, &[], timeout)
        .await
        .map_err(|error| CheckFailure {
            message: format!("GET {url}: {error}"),
            no_answer: error.is_transient(),
        })?;
    if response.status != expect_status {
        return Err(answer(format!(
            "GET {url} answered {}, expected {expect_status}",
            response.status
        )));
    }
    if let Some(needle) = body_contains {
        if !response.body.contains(needle) {
            return Err(answer(format!(
                "GET {url}: the body does not contain \"{needle}\""
            )));
        }
    }
    Ok(response.body)
}

/// The value at `path` in a JSON document: `$.status`, `checks[0].ok` or
/// `a.b.0` (a leading `$` or `$.` is optional; `[N]` and `.N` index arrays).
pub fn json_path<'a>(document: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let path = path.trim();
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut current = document;
    for segment in path.replace('[', ".").replace(']', "").split('.') {
        if segment.is_empty() {
            continue;
        }
        current = match current {
            serde_json::Value::Object(map) => map.get(segment)?,
            serde_json::Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Judge a body against `json_path`: the value must exist and, when
/// `expected` is given, equal it (a string `"200"` also matches the number 200).
/// A different value is named in the error only with `show_found`.
pub fn json_path_matches(
    body: &str,
    path: &str,
    expected: Option<&serde_json::Value>,
    show_found: bool,
) -> Result<(), GateError> {
    let document: serde_json::Value =
        serde_json::from_str(body).map_err(|e| GateError::BodyNotJson {
            reason: e.to_string(),
        })?;
    let found = json_path(&document, path).ok_or_else(|| GateError::PathMissing {
        path: path.to_string(),
    })?;
    let Some(expected) = expected else {
        return Ok(());
    };
    let same = found == expected
        || match (found, expected) {
            (serde_json::Value::String(text), other) | (other, serde_json::Value::String(text)) => {
                !other.is_string()
                    && text
                        .parse::<serde_json::Value>()
                        .is_ok_and(|parsed| parsed == *other)
            }
            _ => false,
        };
    if same {
        Ok(())
    } else {
        Err(if show_found {
            GateError::ValueDiffers {
                path: path.to_string(),
                found: Box::new(found.clone()),
                expected: Box::new(expected.clone()),
            }
        } else {
            GateError::ValueHidden {
                path: path.to_string(),
                expected: Box::new(expected.clone()),
            }
        })
    }
}

#[cfg(test)]
mod json_path_tests {
    use super::*;

    #[test]
    fn json_paths_find_values_and_compare_loosely() {
        let body = r#"{"status": "ok", "checks": [{"name": "db", "ok": true}], "code": 200}"#;
        assert_eq!(
            json_path_matches(body, "$.status", Some(&serde_json::json!("ok")), true)
                .map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(
            json_path_matches(body, "checks[0].ok", Some(&serde_json::json!(true)), true)
                .map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(
            json_path_matches(body, "code", Some(&serde_json::json!("200")), true)
                .map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(
            json_path_matches(body, "checks.0.name", None, true).map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(
            json_path_matches(body, "$.status", Some(&serde_json::json!("degraded")), true)
                .map_err(|e| e.to_string()),
            Err("$.status is \"ok\", expected \"degraded\"".to_string())
        );
        assert!(json_path_matches(body, "missing.key", None, true)
            .unwrap_err()
            .to_string()
            .contains("not in the body"));
        assert!(json_path_matches("<html>", "status", None, true)
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        // With sensitive values about, the value found is not repeated.
        let hidden = json_path_matches(
            r#"{"status": "token=hunter2"}"#,
            "$.status",
            Some(&serde_json::json!("ok")),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(hidden.starts_with("$.status is not \"ok\""), "{hidden}");
        assert!(!hidden.contains("hunter2"), "{hidden}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A server on loopback that counts connections and answers each with
    /// `answer`, or closes it without a word when `None`.
    fn counting_server(answer: Option<&'static str>) -> (u16, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = Arc::new(AtomicUsize::new(0));
        let counted = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                if let Some(answer) = answer {
                    let _ = stream.write_all(answer.as_bytes());
                }
            }
        });
        (port, count)
    }

    fn http_gate(url: &str, retries: u32) -> Gate {
        serde_json::from_value(serde_json::json!({
            "name": "api",
            "http": { "url": url, "retries": retries, "timeout": "5s" }
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn an_answer_is_the_verdict_and_is_not_repeated_whatever_its_status() {
        let (port, count) = counting_server(Some(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops",
        ));
        let url = format!("http://127.0.0.1:{port}/health");
        let result = judge_check(
            &http_gate(&url, 3),
            &Config::default(),
            crate::apply::host_output::HostOutput::Shown,
            true,
        )
        .await;
        assert_eq!(
            result.map(|r| r.map_err(|e| e.to_string())),
            Some(Err(format!("GET {url} answered 500, expected 200")))
        );
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_request_without_an_answer_is_repeated_retries_times() {
        let (port, count) = counting_server(None);
        let url = format!("http://127.0.0.1:{port}/health");
        let result = judge_check(
            &http_gate(&url, 2),
            &Config::default(),
            crate::apply::host_output::HostOutput::Shown,
            true,
        )
        .await
        .unwrap();
        let error = result.unwrap_err().to_string();
        assert!(error.starts_with(&format!("GET {url}: ")), "{error}");
        assert_eq!(count.load(Ordering::SeqCst), 3, "the request and 2 retries");
    }

    /// A command gate without `on`: on the hosts of a VM deployment (not
    /// judged here), on the runner of an ECS one, which has no hosts; never
    /// skipped there.
    #[tokio::test]
    async fn a_command_gate_runs_on_the_runner_when_the_deployment_has_no_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            root: dir.path().to_path_buf(),
            ..Config::default()
        };
        let gate = |command: &str, on: Option<&str>| -> Gate {
            let mut check = serde_json::json!({ "command": command });
            if let Some(on) = on {
                check["on"] = serde_json::json!(on);
            }
            serde_json::from_value(serde_json::json!({ "name": "smoke", "command": check }))
                .unwrap()
        };
        let shown = crate::apply::host_output::HostOutput::Shown;
        let judged = |gate: Gate, has_hosts: bool| {
            let config = config.clone();
            async move {
                judge_check(&gate, &config, shown, has_hosts)
                    .await
                    .map(|r| r.map_err(|e| e.to_string()))
            }
        };
        assert_eq!(judged(gate("exit 3", None), true).await, None);
        assert_eq!(
            judged(gate("exit 3", None), false).await,
            Some(Err("`exit 3` exited with exit status: 3".to_string()))
        );
        assert_eq!(
            judged(gate("exit 0", Some("hosts")), false).await,
            Some(Ok(()))
        );
        assert!(matches!(
            judged(gate("exit 3", Some("runner")), true).await,
            Some(Err(_))
        ));
    }
}
