//! Metric gates as data: the pure half of the `prometheus` and `cloudwatch`
//! verification gates.
//!
//! - [`render_query`] fills a query's `{{...}}` placeholders for the version
//!   being measured (the new one, or the baseline).
//! - [`Criteria`] and [`judge_sample`] decide one evaluation from the value
//!   seen (and the baseline's): `min`/`max`, `tolerance` × baseline in the
//!   configured `direction`, and what "no data" means; [`gate_failed`] applies
//!   `failure_limit` to a series of evaluations.
//! - [`parse_prometheus_response`] reads an answer of Prometheus's
//!   `/api/v1/query` ([`MetricsError`]: why it gives no value);
//!   [`judge_alarm`] and [`latest_datapoint`] read CloudWatch's.
//! - [`baseline_version`] finds the version to compare with in the state as it
//!   was before this apply.
//!
//! Every evaluation carries a one-line text with the values it saw, so output
//! and state say why a gate passed or failed. Not here: any request, any
//! waiting between evaluations (`super::gates` does both), or masking (callers
//! mask texts that contain configuration values).

use crate::config::placeholders::for_each_placeholder;
use crate::config::{Direction, Gate, NoData};
use crate::state::{DeploymentStatus, HistoryResult, State};

/// What the placeholders of a query stand for in one step of one deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryContext {
    /// The version being deployed.
    pub version: String,
    /// The version before this apply, if any.
    pub baseline_version: Option<String>,
    /// The hosts of the step (empty for ECS).
    pub hosts: Vec<String>,
    pub environment: String,
    pub service: String,
    pub deployment: String,
}

/// `query` with its placeholders filled in for measuring `measured` (the
/// new version, or the baseline version for the baseline's measurement).
///
/// `{{version}}` is `measured`; `{{baseline_version}}` the version before this
/// apply (empty when there is none); `{{hosts}}` the step's hosts as a regular
/// expression alternation (`a\\.example|b\\.example`) for
/// `instance=~"{{hosts}}"`; `{{environment}}`, `{{service}}` and
/// `{{deployment}}` the names. Values are escaped for a double-quoted PromQL
/// string. Unknown placeholders stay as they are.
pub fn render_query(query: &str, ctx: &QueryContext, measured: &str) -> String {
    for_each_placeholder(query, |name| {
        Some(match name {
            "version" => escape_string(measured),
            "baseline_version" => escape_string(ctx.baseline_version.as_deref().unwrap_or("")),
            "hosts" => ctx
                .hosts
                .iter()
                .map(|h| escape_string(&escape_regex(h)))
                .collect::<Vec<_>>()
                .join("|"),
            "environment" => escape_string(&ctx.environment),
            "service" => escape_string(&ctx.service),
            "deployment" => escape_string(&ctx.deployment),
            _ => return None,
        })
    })
}

fn escape_string(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

fn escape_regex(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How one evaluation is judged, from a gate's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Criteria {
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `Some(tolerance)` when the gate compares with the previous version.
    pub tolerance: Option<f64>,
    /// `direction = "lower_is_worse"`.
    pub lower_is_worse: bool,
    /// `no_data`: `pass` passes an evaluation without data, `fail` and
    /// `pause` fail it.
    pub no_data: NoData,
}

impl Criteria {
    pub fn of(gate: &Gate) -> Criteria {
        Criteria {
            min: gate.min,
            max: gate.max,
            tolerance: gate
                .baseline
                .as_ref()
                .map(|_| gate.tolerance.unwrap_or(1.0)),
            lower_is_worse: gate.direction == Some(Direction::LowerIsWorse),
            no_data: gate.no_data,
        }
    }

    pub fn no_data_passes(&self) -> bool {
        self.no_data == NoData::Pass
    }
}

/// The baseline side of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Baseline {
    /// The gate does not compare with the previous version.
    NotUsed,
    /// It does, but there is no previous version (a first deployment).
    NoPreviousVersion,
    /// The previous version's value, `None` when its query returned no data.
    Measured(Option<f64>),
}

/// One evaluation of a gate: what it saw and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub value: Option<f64>,
    pub baseline: Option<f64>,
    pub passed: bool,
    /// e.g. `new 0.012 vs baseline 0.01 × 1.5 = 0.015: pass`.
    pub text: String,
}

impl Sample {
    /// An evaluation that could not be made (a failed request): it fails.
    pub fn failed(text: String) -> Sample {
        Sample {
            value: None,
            baseline: None,
            passed: false,
            text,
        }
    }
}

/// Judge one evaluation: `value` of the new version (None: no data; NaN
/// counts as no data) against `criteria` and the baseline.
pub fn judge_sample(criteria: &Criteria, value: Option<f64>, baseline: Baseline) -> Sample {
    let value = value.filter(|v| !v.is_nan());
    let baseline = match baseline {
        Baseline::Measured(b) => Baseline::Measured(b.filter(|v| !v.is_nan())),
        other => other,
    };
    let baseline_value = match baseline {
        Baseline::Measured(b) => b,
        _ => None,
    };
    let no_data = |what: &str| {
        let passed = criteria.no_data_passes();
        let verdict = if passed { "pass" } else { "fail" };
        (
            passed,
            format!("{what}: {verdict} (no_data = \"{}\")", criteria.no_data),
        )
    };
    let Some(v) = value else {
        let (passed, text) = no_data("no data");
        return Sample {
            value: None,
            baseline: baseline_value,
            passed,
            text,
        };
    };

    let mut failures: Vec<String> = Vec::new();
    let mut head = number(v);
    if let Some(tolerance) = criteria.tolerance {
        match baseline {
            Baseline::Measured(Some(b)) => {
                let (limit, worse) = if criteria.lower_is_worse {
                    let limit = b / tolerance;
                    head = format!(
                        "new {} vs baseline {} ÷ {} = {}",
                        number(v),
                        number(b),
                        number(tolerance),
                        number(limit)
                    );
                    (limit, v < limit)
                } else {
                    let limit = b * tolerance;
                    head = format!(
                        "new {} vs baseline {} × {} = {}",
                        number(v),
                        number(b),
                        number(tolerance),
                        number(limit)
                    );
                    (limit, v > limit)
                };
                if worse {
                    failures.push(format!(
                        "{} the baseline's {}",
                        if criteria.lower_is_worse {
                            "below"
                        } else {
                            "above"
                        },
                        number(limit)
                    ));
                }
            }
            Baseline::Measured(None) => {
                let (passed, text) = no_data("baseline: no data");
                head = format!("new {}, {text}", number(v));
                if !passed {
                    failures.push("the baseline has no data".into());
                }
            }
            Baseline::NoPreviousVersion => {
                head = format!("new {} (no previous version to compare with)", number(v));
            }
            Baseline::NotUsed => {}
        }
    }
    let mut bounds = Vec::new();
    if let Some(min) = criteria.min {
        bounds.push(format!("min {}", number(min)));
        if v < min {
            failures.push(format!("below min {}", number(min)));
        }
    }
    if let Some(max) = criteria.max {
        bounds.push(format!("max {}", number(max)));
        if v > max {
            failures.push(format!("above max {}", number(max)));
        }
    }
    let bounds = if bounds.is_empty() {
        String::new()
    } else {
        format!(" ({})", bounds.join(", "))
    };
    let passed = failures.is_empty();
    let verdict = if passed {
        "pass".to_string()
    } else {
        format!("fail, {}", failures.join(", "))
    };
    // "baseline: no data: fail" already says so.
    let verdict = if head.contains(", baseline: no data: fail") && failures.len() == 1 {
        "fail".to_string()
    } else {
        verdict
    };
    Sample {
        value: Some(v),
        baseline: baseline_value,
        passed,
        text: format!("{head}{bounds}: {verdict}"),
    }
}

/// Judge one evaluation of a CloudWatch alarm from its state value (`OK`,
/// `ALARM`, `INSUFFICIENT_DATA`; `None` when the alarm does not exist).
pub fn judge_alarm(criteria: &Criteria, alarm: &str, state: Option<&str>) -> Sample {
    let (passed, text) = match state {
        Some("OK") => (true, format!("alarm {alarm} is OK: pass")),
        Some("ALARM") => (false, format!("alarm {alarm} is in ALARM: fail")),
        other => {
            let what = match other {
                Some(state) => format!("alarm {alarm} is {state}"),
                None => format!("alarm {alarm} does not exist"),
            };
            let passed = criteria.no_data_passes();
            let verdict = if passed { "pass" } else { "fail" };
            (
                passed,
                format!("{what}: {verdict} (no_data = \"{}\")", criteria.no_data),
            )
        }
    };
    Sample {
        value: None,
        baseline: None,
        passed,
        text,
    }
}

/// The value of the most recent datapoint (time in seconds, value).
pub fn latest_datapoint(points: &[(i64, f64)]) -> Option<f64> {
    points.iter().max_by_key(|(time, _)| *time).map(|(_, v)| *v)
}

/// Whether a gate with these evaluations has failed: `failure_limit`
/// (at least 1) of them failed.
pub fn gate_failed(samples: &[Sample], failure_limit: u32) -> bool {
    samples.iter().filter(|s| !s.passed).count() >= failure_limit.max(1) as usize
}

/// The closing line of a gate: the verdict and the evaluation that decided it.
pub fn summary(samples: &[Sample], failure_limit: u32) -> String {
    let failed = samples.iter().filter(|s| !s.passed).count();
    let deciding = if gate_failed(samples, failure_limit) {
        samples.iter().rev().find(|s| !s.passed)
    } else {
        samples.last()
    };
    let text = deciding.map_or("no evaluation", |s| s.text.as_str());
    if samples.len() == 1 {
        return text.to_string();
    }
    format!(
        "{} of {} evaluations failed (failure_limit {}); {}: {text}",
        failed,
        samples.len(),
        failure_limit.max(1),
        if gate_failed(samples, failure_limit) {
            "the last failed one"
        } else {
            "the last one"
        }
    )
}

/// A number as people read it: at most 4 significant digits, no trailing
/// zeros (`0.012`, `1234.5`, `1.5e-7`).
pub fn number(value: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    if !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-5..=12).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Why an answer of Prometheus's `/api/v1/query` gives no value to judge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricsError {
    /// The body is not JSON (`excerpt`: its first 200 characters).
    #[error("the answer is not JSON ({reason}): {excerpt}")]
    NotJson { reason: String, excerpt: String },
    /// Prometheus reported an error (`status` is not `success`).
    #[error("Prometheus answered {error_type}: {message}")]
    Prometheus { error_type: String, message: String },
    /// A sample is not a `[time, "value"]` pair (`sample`: as JSON).
    #[error("unexpected sample {sample}")]
    UnexpectedSample { sample: String },
    /// A sample's value is not a number.
    #[error("unexpected value \"{value}\"")]
    UnexpectedValue { value: String },
    /// An instant vector of more than one series.
    #[error(
        "the query returned {series} series; a gate needs one number (aggregate, e.g. with sum(...))"
    )]
    ManySeries { series: usize },
    /// A range vector (a `[5m]` query without a function over it).
    #[error("the query returned a range vector; a gate needs an instant value")]
    RangeVector,
    /// A `resultType` other than scalar, vector or matrix (`(none)`: absent).
    #[error("unexpected result type {result_type}")]
    UnexpectedResultType { result_type: String },
}

/// The value of an answer of Prometheus's `/api/v1/query`: `Ok(None)` when the
/// query returned no series (or NaN), an error when Prometheus reported one
/// or the result is not one number.
pub fn parse_prometheus_response(body: &str) -> Result<Option<f64>, MetricsError> {
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| MetricsError::NotJson {
            reason: e.to_string(),
            excerpt: excerpt(body),
        })?;
    if json["status"] != "success" {
        return Err(MetricsError::Prometheus {
            error_type: json["errorType"].as_str().unwrap_or("an error").to_string(),
            message: json["error"].as_str().unwrap_or("(no message)").to_string(),
        });
    }
    let data = &json["data"];
    let sample_value = |pair: &serde_json::Value| -> Result<Option<f64>, MetricsError> {
        let text = pair[1]
            .as_str()
            .ok_or_else(|| MetricsError::UnexpectedSample {
                sample: pair.to_string(),
            })?;
        let value = parse_prometheus_float(text)?;
        Ok(Some(value).filter(|v| !v.is_nan()))
    };
    match data["resultType"].as_str() {
        Some("scalar") => sample_value(&data["result"]),
        Some("vector") => {
            let series = data["result"].as_array().map_or(&[][..], Vec::as_slice);
            match series {
                [] => Ok(None),
                [one] => sample_value(&one["value"]),
                many => Err(MetricsError::ManySeries { series: many.len() }),
            }
        }
        Some("matrix") => Err(MetricsError::RangeVector),
        other => Err(MetricsError::UnexpectedResultType {
            result_type: other.unwrap_or("(none)").to_string(),
        }),
    }
}

fn parse_prometheus_float(text: &str) -> Result<f64, MetricsError> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => text.parse().map_err(|_| MetricsError::UnexpectedValue {
            value: text.to_string(),
        }),
    }
}

fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `address` without a `user:password@` part, for messages.
pub fn redact_address(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://(credentials)@{}", &rest[at + 1..]),
        None => address.to_string(),
    }
}

/// The version a `baseline = "previous_version"` gate compares with: what
/// `address` ran before this apply, from the environment's state as it was
/// before the apply started. The recorded version when it differs from
/// `new_version`; else (an earlier apply of `new_version` failed or was
/// rolled back) a host's other version; else the last version of
/// a successful apply in history. `None` for a first deployment.
pub fn baseline_version(state: &State, address: &str, new_version: &str) -> Option<String> {
    let other = |v: &str| (v != new_version).then(|| v.to_string());
    if let Some(deployment) = state.deployments.get(address) {
        if deployment.status != DeploymentStatus::InProgress {
            if let Some(version) = other(&deployment.version) {
                return Some(version);
            }
        }
        for host in deployment.hosts.values() {
            if let Some(version) = other(&host.version) {
                return Some(version);
            }
        }
    }
    state
        .history
        .iter()
        .rev()
        .filter(|entry| entry.result == HistoryResult::Succeeded)
        .filter_map(|entry| entry.versions.get(address))
        .find_map(|v| other(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::placeholders::unknown_placeholders;

    fn ctx() -> QueryContext {
        QueryContext {
            version: "1.1.0".into(),
            baseline_version: Some("1.0.0".into()),
            hosts: vec!["web-1.example".into(), "web-2.example".into()],
            environment: "prod".into(),
            service: "web".into(),
            deployment: "web-prod".into(),
        }
    }

    fn criteria() -> Criteria {
        Criteria {
            min: None,
            max: None,
            tolerance: None,
            lower_is_worse: false,
            no_data: NoData::Fail,
        }
    }

    #[test]
    fn placeholders_are_filled_for_the_measured_version() {
        let query = r#"sum(rate(errors{version="{{version}}",env="{{ environment }}",instance=~"{{hosts}}"}[1m])) / {{baseline_version}} {{service}} {{deployment}}"#;
        assert_eq!(
            render_query(query, &ctx(), "1.1.0"),
            r#"sum(rate(errors{version="1.1.0",env="prod",instance=~"web-1\\.example|web-2\\.example"}[1m])) / 1.0.0 web web-prod"#
        );
        assert!(
            render_query(query, &ctx(), "1.0.0").starts_with(r#"sum(rate(errors{version="1.0.0""#)
        );
    }

    #[test]
    fn unknown_placeholders_stay_and_are_reported() {
        assert_eq!(
            render_query("a {{verison}} b {{ unclosed", &ctx(), "1"),
            "a {{verison}} b {{ unclosed"
        );
        assert_eq!(
            unknown_placeholders("{{version}} {{verison}} {{verison}} {{hsots}}"),
            vec!["verison".to_string(), "hsots".to_string()]
        );
        assert!(unknown_placeholders("{{version}} {{hosts}}").is_empty());
    }

    #[test]
    fn values_are_escaped_for_a_promql_string() {
        let mut ctx = ctx();
        ctx.environment = r#"a"b\c"#.into();
        assert_eq!(
            render_query(r#"{env="{{environment}}"}"#, &ctx, "v"),
            r#"{env="a\"b\\c"}"#
        );
    }

    #[test]
    fn min_and_max_bound_the_value() {
        let c = Criteria {
            min: Some(1.0),
            max: Some(2.0),
            ..criteria()
        };
        let pass = judge_sample(&c, Some(1.5), Baseline::NotUsed);
        assert!(pass.passed);
        assert_eq!(pass.text, "1.5 (min 1, max 2): pass");
        let high = judge_sample(&c, Some(2.5), Baseline::NotUsed);
        assert!(!high.passed);
        assert_eq!(high.text, "2.5 (min 1, max 2): fail, above max 2");
        assert!(!judge_sample(&c, Some(0.5), Baseline::NotUsed).passed);
        assert!(
            judge_sample(&c, Some(2.0), Baseline::NotUsed).passed,
            "bounds are inclusive"
        );
    }

    #[test]
    fn higher_is_worse_compares_with_tolerance_times_baseline() {
        let c = Criteria {
            tolerance: Some(1.5),
            ..criteria()
        };
        let pass = judge_sample(&c, Some(0.012), Baseline::Measured(Some(0.010)));
        assert_eq!(pass.text, "new 0.012 vs baseline 0.01 × 1.5 = 0.015: pass");
        assert!(pass.passed);
        assert_eq!(pass.baseline, Some(0.010));
        let fail = judge_sample(&c, Some(0.05), Baseline::Measured(Some(0.010)));
        assert!(!fail.passed);
        assert_eq!(
            fail.text,
            "new 0.05 vs baseline 0.01 × 1.5 = 0.015: fail, above the baseline's 0.015"
        );
    }

    #[test]
    fn lower_is_worse_divides_the_baseline_by_tolerance() {
        let c = Criteria {
            tolerance: Some(1.25),
            lower_is_worse: true,
            ..criteria()
        };
        let pass = judge_sample(&c, Some(90.0), Baseline::Measured(Some(100.0)));
        assert!(pass.passed, "{}", pass.text);
        assert_eq!(pass.text, "new 90 vs baseline 100 ÷ 1.25 = 80: pass");
        let fail = judge_sample(&c, Some(70.0), Baseline::Measured(Some(100.0)));
        assert!(!fail.passed);
        assert!(
            fail.text.ends_with("fail, below the baseline's 80"),
            "{}",
            fail.text
        );
        // Higher is fine when lower is worse.
        assert!(judge_sample(&c, Some(500.0), Baseline::Measured(Some(100.0))).passed);
    }

    #[test]
    fn baseline_and_bounds_apply_together() {
        let c = Criteria {
            max: Some(0.01),
            tolerance: Some(2.0),
            ..criteria()
        };
        let s = judge_sample(&c, Some(0.02), Baseline::Measured(Some(0.015)));
        assert!(!s.passed);
        assert_eq!(
            s.text,
            "new 0.02 vs baseline 0.015 × 2 = 0.03 (max 0.01): fail, above max 0.01"
        );
    }

    #[test]
    fn no_data_fails_by_default_and_passes_only_when_configured() {
        let fail = judge_sample(&criteria(), None, Baseline::NotUsed);
        assert!(!fail.passed);
        assert_eq!(fail.text, "no data: fail (no_data = \"fail\")");
        assert!(!judge_sample(&criteria(), Some(f64::NAN), Baseline::NotUsed).passed);
        let c = Criteria {
            no_data: NoData::Pass,
            ..criteria()
        };
        let pass = judge_sample(&c, None, Baseline::NotUsed);
        assert!(pass.passed);
        assert_eq!(pass.text, "no data: pass (no_data = \"pass\")");
    }

    #[test]
    fn a_baseline_without_data_follows_no_data() {
        let c = Criteria {
            tolerance: Some(1.5),
            ..criteria()
        };
        let fail = judge_sample(&c, Some(0.01), Baseline::Measured(None));
        assert!(!fail.passed);
        assert_eq!(
            fail.text,
            "new 0.01, baseline: no data: fail (no_data = \"fail\"): fail"
        );
        let c = Criteria {
            no_data: NoData::Pass,
            ..c
        };
        assert!(judge_sample(&c, Some(0.01), Baseline::Measured(Some(f64::NAN))).passed);
    }

    #[test]
    fn a_first_deployment_has_nothing_to_compare_with() {
        let c = Criteria {
            tolerance: Some(1.5),
            max: Some(1.0),
            ..criteria()
        };
        let s = judge_sample(&c, Some(0.5), Baseline::NoPreviousVersion);
        assert!(s.passed);
        assert_eq!(
            s.text,
            "new 0.5 (no previous version to compare with) (max 1): pass"
        );
    }

    #[test]
    fn failure_limit_counts_failed_evaluations() {
        let c = Criteria {
            max: Some(1.0),
            ..criteria()
        };
        let samples: Vec<Sample> = [0.5, 2.0, 0.5, 3.0]
            .iter()
            .map(|v| judge_sample(&c, Some(*v), Baseline::NotUsed))
            .collect();
        assert!(gate_failed(&samples[..2], 1));
        assert!(!gate_failed(&samples[..3], 2));
        assert!(gate_failed(&samples, 2));
        assert!(gate_failed(&samples[1..2], 0), "a limit of 0 counts as 1");
        assert_eq!(
            summary(&samples, 2),
            "2 of 4 evaluations failed (failure_limit 2); the last failed one: 3 (max 1): fail, above max 1"
        );
        assert_eq!(summary(&samples[..1], 1), "0.5 (max 1): pass");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(0.012), "0.012");
        assert_eq!(number(0.0100), "0.01");
        assert_eq!(number(1234.5678), "1235");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(0.000123456), "0.0001235");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(1.5e-9), "1.500e-9");
        assert_eq!(number(f64::INFINITY), "inf");
    }

    #[test]
    fn prometheus_answers_are_read() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"0.0125"]}]}}"#;
        assert_eq!(parse_prometheus_response(vector), Ok(Some(0.0125)));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse_prometheus_response(empty), Ok(None));
        let scalar =
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3"]}}"#;
        assert_eq!(parse_prometheus_response(scalar), Ok(Some(3.0)));
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(parse_prometheus_response(nan), Ok(None));
        let inf = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(parse_prometheus_response(inf), Ok(Some(f64::INFINITY)));
        let two = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#;
        assert!(parse_prometheus_response(two)
            .unwrap_err()
            .to_string()
            .contains("returned 2 series"));
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse_prometheus_response(error).map_err(|e| e.to_string()),
            Err("Prometheus answered bad_data: parse error at char 5".into())
        );
        assert!(parse_prometheus_response("<html>")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
    }

    #[test]
    fn alarms_fail_in_alarm_and_follow_no_data_otherwise() {
        assert!(judge_alarm(&criteria(), "a", Some("OK")).passed);
        let alarm = judge_alarm(&criteria(), "high-errors", Some("ALARM"));
        assert!(!alarm.passed);
        assert_eq!(alarm.text, "alarm high-errors is in ALARM: fail");
        assert!(!judge_alarm(&criteria(), "a", Some("INSUFFICIENT_DATA")).passed);
        assert!(!judge_alarm(&criteria(), "a", None).passed);
        let c = Criteria {
            no_data: NoData::Pass,
            ..criteria()
        };
        assert!(judge_alarm(&c, "a", Some("INSUFFICIENT_DATA")).passed);
        assert!(!judge_alarm(&c, "a", Some("ALARM")).passed);
    }

    #[test]
    fn the_latest_datapoint_counts() {
        assert_eq!(
            latest_datapoint(&[(60, 1.0), (180, 3.0), (120, 2.0)]),
            Some(3.0)
        );
        assert_eq!(latest_datapoint(&[]), None);
    }

    #[test]
    fn credentials_in_an_address_are_not_shown() {
        assert_eq!(
            redact_address("http://user:pw@prom.internal:9090/x"),
            "http://(credentials)@prom.internal:9090/x"
        );
        assert_eq!(redact_address("http://prom:9090"), "http://prom:9090");
    }

    #[test]
    fn the_baseline_is_what_ran_before_this_apply() {
        use crate::state::{DeploymentState, HistoryEntry, HostState};
        let mut state = State::new("prod");
        assert_eq!(baseline_version(&state, "deployment.web", "2.0"), None);
        let host = |version: &str| -> HostState {
            serde_json::from_value(serde_json::json!({
                "version": version,
                "status": "deployed",
                "updated_at": "",
            }))
            .unwrap()
        };
        let mut deployment: DeploymentState = serde_json::from_value(serde_json::json!({
            "service": "service.web",
            "version": "1.0",
            "status": "deployed",
            "updated_at": "",
        }))
        .unwrap();
        deployment.hosts.insert("a".into(), host("1.0"));
        state
            .deployments
            .insert("deployment.web".into(), deployment.clone());
        assert_eq!(
            baseline_version(&state, "deployment.web", "2.0").as_deref(),
            Some("1.0")
        );
        // An earlier apply of 2.0 was rolled back: the hosts say what runs.
        deployment.version = "2.0".into();
        deployment.status = DeploymentStatus::RolledBack;
        state
            .deployments
            .insert("deployment.web".into(), deployment.clone());
        assert_eq!(
            baseline_version(&state, "deployment.web", "2.0").as_deref(),
            Some("1.0")
        );
        // Nothing in the deployment: history.
        deployment.hosts.clear();
        state
            .deployments
            .insert("deployment.web".into(), deployment);
        let entry: HistoryEntry = serde_json::from_value(serde_json::json!({
            "apply_id": "x",
            "operation": "apply",
            "who": "me",
            "started_at": "",
            "versions": { "deployment.web": "0.9" },
            "result": "succeeded",
        }))
        .unwrap();
        state.history.push(entry);
        assert_eq!(
            baseline_version(&state, "deployment.web", "2.0").as_deref(),
            Some("0.9")
        );
    }
}
