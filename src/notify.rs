//! Notifications: the events a rollout's `notify` blocks receive, and their
//! delivery.
//!
//! - The payloads are built by pure functions, tested as JSON text: slipway's
//!   own versioned event document ([`event_json`]) or, with
//!   `format = "slack"`, a Slack-compatible message ([`slack_json`]).
//! - Every string of a payload is masked with the configuration's sensitive
//!   values ([`mask_json`]); no variable value is ever put into one.
//! - [`Notifier`] holds what the events of one deployment in one apply share
//!   and POSTs them through [`crate::http::Client`] (a short timeout, one
//!   retry). A delivery that fails ([`DeliveryError`]) comes back as a
//!   warning text, never as an error: a notification cannot fail a deployment.
//!
//! Not here: deciding when an event happens (apply does) or printing the
//! warnings (apply's progress does).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

pub use crate::config::events::EventKind;
use crate::config::model::mask_values;
use crate::config::{Config, Notify, NotifyFormat};
use crate::plan::DeploymentChange;

/// Version of the JSON event document; raised on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

/// The Slack emoji that opens a message about `kind`.
fn emoji(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Started => ":rocket:",
        EventKind::ApprovalWaiting => ":hourglass_flowing_sand:",
        EventKind::Succeeded => ":white_check_mark:",
        EventKind::Failed => ":x:",
        EventKind::RolledBack => ":leftwards_arrow_with_hook:",
    }
}

/// What every event of one deployment in one apply shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContext {
    /// Deployment address, e.g. `deployment.hello`.
    pub deployment: String,
    /// Environment name, e.g. `prod`.
    pub environment: String,
    /// Service address, e.g. `service.hello`.
    pub service: String,
    /// Rollout address, `None` for the default all-at-once rollout.
    pub rollout: Option<String>,
    /// The version being deployed.
    pub version: Option<String>,
    /// The version the deployment ran before this apply, if any.
    pub previous_version: Option<String>,
    pub apply_id: String,
}

/// What is particular to one event. Texts here may come from hosts or from
/// configuration; they are masked before they are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    /// A sentence about what happened (a failure's cause, for example).
    pub message: Option<String>,
    /// `approval_waiting`: the approval block's name.
    pub approval: Option<String>,
    /// `approval_waiting`: the step after which apply waits (1-based).
    pub step: Option<u32>,
    /// `approval_waiting`: who may approve (empty: anyone).
    pub approvers: Vec<String>,
}

/// One event, ready to be rendered.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub kind: EventKind,
    pub context: &'a EventContext,
    pub details: &'a Details,
    /// Time since the deployment started.
    pub duration: Duration,
    /// RFC 3339.
    pub time: &'a str,
}

/// Whether `notify` wants events of `kind` (an empty `on` wants all).
pub fn wants(notify: &Notify, kind: EventKind) -> bool {
    notify.on.is_empty()
        || notify
            .on
            .iter()
            .any(|on| EventKind::from_on(on) == Some(kind))
}

/// slipway's event document.
pub fn event_json(event: &Event) -> Value {
    let context = event.context;
    let details = event.details;
    let mut document = Map::new();
    document.insert("format_version".into(), json!(FORMAT_VERSION));
    document.insert("event".into(), json!(event.kind.as_str()));
    document.insert("deployment".into(), json!(context.deployment));
    document.insert("environment".into(), json!(context.environment));
    document.insert("service".into(), json!(context.service));
    document.insert("rollout".into(), json!(context.rollout));
    document.insert("version".into(), json!(context.version));
    document.insert("previous_version".into(), json!(context.previous_version));
    document.insert("apply_id".into(), json!(context.apply_id));
    document.insert("duration_seconds".into(), json!(seconds(event.duration)));
    document.insert("message".into(), json!(message(event)));
    if let Some(approval) = &details.approval {
        document.insert("approval".into(), json!(approval));
    }
    if let Some(step) = details.step {
        document.insert("step".into(), json!(step));
    }
    if event.kind == EventKind::ApprovalWaiting {
        document.insert("approvers".into(), json!(details.approvers));
    }
    document.insert("time".into(), json!(event.time));
    Value::Object(document)
}

/// A Slack-compatible message (incoming webhooks): a plain `text` for
/// notifications and clients without blocks, and `blocks` with the details.
pub fn slack_json(event: &Event) -> Value {
    let context = event.context;
    let headline = format!("{} {}", emoji(event.kind), slack_escape(&headline(event)));
    let mut section = format!("*{headline}*");
    if let Some(text) = &event.details.message {
        section.push('\n');
        section.push_str(&slack_escape(&truncate(text, 2500)));
    }
    let field = |name: &str, value: &str| json!({ "type": "mrkdwn", "text": format!("*{name}*\n{}", slack_escape(value)) });
    let none = "–".to_string();
    let mut fields = vec![
        field("Deployment", &context.deployment),
        field("Environment", &context.environment),
        field("Version", context.version.as_ref().unwrap_or(&none)),
        field(
            "Previous version",
            context.previous_version.as_ref().unwrap_or(&none),
        ),
    ];
    if let Some(approval) = &event.details.approval {
        fields.push(field("Approval", approval));
    }
    if !event.details.approvers.is_empty() {
        fields.push(field("Approvers", &event.details.approvers.join(", ")));
    }
    let footer = format!(
        "{} · apply {} · {}",
        event.kind.as_str(),
        context.apply_id,
        human_duration(event.duration)
    );
    json!({
        "text": format!("{} {}", emoji(event.kind), headline_plain(event)),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": section } },
            { "type": "section", "fields": fields },
            { "type": "context", "elements": [
                { "type": "mrkdwn", "text": slack_escape(&footer) }
            ] }
        ]
    })
}

/// The body `notify` receives for `event`, masked with `sensitive`.
pub fn payload(notify: &Notify, event: &Event, sensitive: &[String]) -> Value {
    let value = match notify.format {
        Some(NotifyFormat::Slack) => slack_json(event),
        Some(NotifyFormat::Json) | None => event_json(event),
    };
    mask_json(value, sensitive)
}

/// Replace every sensitive value in every string of `value` with
/// `(sensitive)` (object keys included).
pub fn mask_json(value: Value, sensitive: &[String]) -> Value {
    match value {
        Value::String(text) => Value::String(mask_values(&text, sensitive)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| mask_json(item, sensitive))
                .collect(),
        ),
        Value::Object(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(key, item)| (mask_values(&key, sensitive), mask_json(item, sensitive)))
                .collect(),
        ),
        other => other,
    }
}

/// A webhook URL as it may be shown: scheme, host and port only. Webhook
/// paths and queries often carry the token that authorises posting.
pub fn describe_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => {
            let mut shown = format!("{}://{}", parsed.scheme(), parsed.host_str().unwrap_or(""));
            if let Some(port) = parsed.port() {
                shown.push_str(&format!(":{port}"));
            }
            if parsed.path() != "/" || parsed.query().is_some() {
                shown.push_str("/…");
            }
            shown
        }
        Err(_) => "(an invalid URL)".into(),
    }
}

fn headline(event: &Event) -> String {
    let context = event.context;
    let version = context.version.as_deref().unwrap_or("(no version)");
    let target = format!(
        "{} {version} to {}",
        context.deployment, context.environment
    );
    match event.kind {
        EventKind::Started => match &context.previous_version {
            Some(previous) if previous != version => {
                format!("Deploying {target} (from {previous})")
            }
            _ => format!("Deploying {target}"),
        },
        EventKind::ApprovalWaiting => {
            let approval = event
                .details
                .approval
                .as_deref()
                .map(|a| format!(" \"{a}\""))
                .unwrap_or_default();
            let step = event
                .details
                .step
                .map(|s| format!(" after step {s}"))
                .unwrap_or_default();
            format!("Deploying {target}: waiting for approval{approval}{step}")
        }
        EventKind::Succeeded => format!("Deployed {target} in {}", human_duration(event.duration)),
        EventKind::Failed => format!(
            "Deploying {target} failed after {}",
            human_duration(event.duration)
        ),
        EventKind::RolledBack => match &context.previous_version {
            Some(previous) => format!(
                "{} in {} rolled back to {previous}",
                context.deployment, context.environment
            ),
            None => format!(
                "{} in {} rolled back (there was no previous version)",
                context.deployment, context.environment
            ),
        },
    }
}

fn headline_plain(event: &Event) -> String {
    headline(event)
}

/// The event's message: the one given, or the headline.
fn message(event: &Event) -> String {
    event
        .details
        .message
        .clone()
        .unwrap_or_else(|| headline(event))
}

fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

fn human_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 {
        format!("{}m {}s", secs / 60, secs % 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max_chars).collect();
        cut.push('…');
        cut
    }
}

// ---- delivery --------------------------------------------------------------

/// How a notification is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Per attempt, connecting included.
    pub timeout: Duration,
    /// Attempts in all (the first and the retries).
    pub attempts: u32,
    /// Pause before a retry.
    pub retry_delay: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            timeout: Duration::from_secs(5),
            attempts: 2,
            retry_delay: Duration::from_millis(500),
        }
    }
}

/// The notify blocks of one deployment in one apply, and what their events
/// share. Create it when the deployment starts: durations count from then.
#[derive(Debug, Clone)]
pub struct Notifier {
    targets: Vec<Notify>,
    context: EventContext,
    sensitive: Vec<String>,
    started: Instant,
    delivery: Delivery,
    /// The configuration's `ca_file`, trusted for https webhooks.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    ca_file: Option<PathBuf>,
}

impl Notifier {
    /// The notifier of `change` in the apply `apply_id`: the notify blocks
    /// of its rollout (none for the default rollout).
    pub fn new(config: &Config, change: &DeploymentChange, apply_id: &str) -> Notifier {
        let deployment = config.deployments.get(&change.address);
        let targets = deployment
            .and_then(|d| config.rollout_of(d))
            .map(|r| r.notify.clone())
            .unwrap_or_default();
        let environment = deployment
            .and_then(|d| config.environment_of(d))
            .map(|e| e.name.clone())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| {
                change
                    .environment
                    .rsplit("environment.")
                    .next()
                    .unwrap_or(&change.environment)
                    .to_string()
            });
        let version = change
            .version_after
            .clone()
            .or_else(|| deployment.map(|d| d.service.version.clone()));
        Notifier {
            targets,
            context: EventContext {
                deployment: change.address.clone(),
                environment,
                service: change.service.clone(),
                rollout: change.rollout.clone(),
                version,
                previous_version: change.version_before.clone(),
                apply_id: apply_id.to_string(),
            },
            sensitive: config.sensitive_values.clone(),
            started: Instant::now(),
            delivery: Delivery::default(),
            ca_file: config.ca_file.clone(),
        }
    }

    /// Durations count from `started` instead of from [`Notifier::new`].
    pub fn started_at(mut self, started: Instant) -> Notifier {
        self.started = started;
        self
    }

    pub fn with_delivery(mut self, delivery: Delivery) -> Notifier {
        self.delivery = delivery;
        self
    }

    /// No notify block: nothing will ever be sent.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn context(&self) -> &EventContext {
        &self.context
    }

    /// The bodies an event of `kind` sends: one per notify block that wants
    /// it, with the block's name and webhook.
    pub fn payloads(&self, kind: EventKind, details: &Details) -> Vec<(&Notify, String)> {
        let time = crate::state::lock::now_rfc3339();
        let event = Event {
            kind,
            context: &self.context,
            details,
            duration: self.started.elapsed(),
            time: &time,
        };
        self.targets
            .iter()
            .filter(|notify| wants(notify, kind))
            .map(|notify| (notify, payload(notify, &event, &self.sensitive).to_string()))
            .collect()
    }

    /// Send an event to every notify block that wants it, all at once, and
    /// wait for them. Returns one warning per delivery that failed.
    #[cfg(feature = "aws")]
    pub async fn send(&self, kind: EventKind, details: &Details) -> Vec<String> {
        let client = crate::http::Client::new(self.ca_file.as_deref()).map_err(std::sync::Arc::new);
        let mut pending = Vec::new();
        for (notify, body) in self.payloads(kind, details) {
            let (url, delivery, client) = (notify.webhook.clone(), self.delivery, client.clone());
            let task = tokio::spawn(async move {
                match client {
                    Ok(client) => post(&client, &url, body, delivery).await,
                    Err(error) => Err(DeliveryError::Client(error)),
                }
            });
            pending.push((notify, task));
        }
        let mut warnings = Vec::new();
        for (notify, task) in pending {
            let result = task
                .await
                .unwrap_or_else(|e| Err(DeliveryError::SenderStopped(e)));
            if let Err(reason) = result {
                warnings.push(mask_values(
                    &format!(
                        "notify \"{}\": could not deliver \"{}\" to {}: {reason}",
                        notify.name,
                        kind.as_str(),
                        describe_url(&notify.webhook)
                    ),
                    &self.sensitive,
                ));
            }
        }
        warnings
    }
}

/// Why an event was not delivered to a webhook. The text never names the
/// URL, whose path may hold a token.
#[cfg(feature = "aws")]
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The HTTP client could not be made (shared by every delivery of an
    /// event).
    #[error("{0}")]
    Client(std::sync::Arc<crate::http::HttpError>),
    /// The webhook answered with a status other than 2xx; `said`: the first
    /// line of its body, shortened (may be empty).
    #[error("answered {status}{}", parenthesized(.said))]
    Answered { status: u16, said: String },
    /// No answer (no connection, a timeout, TLS).
    #[error("{0}")]
    NoAnswer(crate::http::HttpError),
    /// The task sending it ended abnormally.
    #[error("the sender stopped: {0}")]
    SenderStopped(tokio::task::JoinError),
}

/// " (TEXT)", or nothing for an empty text.
#[cfg(feature = "aws")]
fn parenthesized(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// POST `body` to `url`: success is a 2xx answer. No answer (no
/// connection, a timeout), 429 and 5xx are retried; the error never names
/// the URL, whose path may hold a token.
#[cfg(feature = "aws")]
async fn post(
    client: &crate::http::Client,
    url: &str,
    body: String,
    delivery: Delivery,
) -> Result<(), DeliveryError> {
    let mut last = None;
    for attempt in 0..delivery.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(delivery.retry_delay).await;
        }
        let (retry, reason) = match client.post_json(url, body.clone(), delivery.timeout).await {
            Ok(response) if (200..300).contains(&response.status) => return Ok(()),
            Ok(response) => {
                let code = response.status;
                let said = truncate(response.body.lines().next().unwrap_or("").trim(), 120);
                (
                    code == 429 || code >= 500,
                    DeliveryError::Answered { status: code, said },
                )
            }
            Err(error) => (error.is_transient(), DeliveryError::NoAnswer(error)),
        };
        last = Some(reason);
        if !retry {
            break;
        }
    }
    Err(last.expect("at least one attempt is made"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> EventContext {
        EventContext {
            deployment: "deployment.hello".into(),
            environment: "prod".into(),
            service: "service.hello".into(),
            rollout: Some("rollout.rolling".into()),
            version: Some("1.1.0".into()),
            previous_version: Some("1.0.0".into()),
            apply_id: "a1b2".into(),
        }
    }

    fn notify(format: Option<NotifyFormat>, on: &[&str]) -> Notify {
        Notify {
            name: "chatops".into(),
            webhook: "https://hooks.example.com/services/T0/B0/SECRET".into(),
            format,
            on: on.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn render(
        kind: EventKind,
        details: &Details,
        format: Option<NotifyFormat>,
        sensitive: &[&str],
    ) -> String {
        let context = context();
        let event = Event {
            kind,
            context: &context,
            details,
            duration: Duration::from_millis(12_345),
            time: "2024-05-02T09:30:00Z",
        };
        let sensitive: Vec<String> = sensitive.iter().map(|s| s.to_string()).collect();
        payload(&notify(format, &[]), &event, &sensitive).to_string()
    }

    mod encoders {
        //! Every string of an event, whatever it holds, arrives byte-exact in
        //! its own field of the body serde_json reads back; in the Slack
        //! format, a value can add no mrkdwn control sequence (`<...>`).
        use super::*;
        use proptest::prelude::*;

        fn strings() -> impl Strategy<Value = String> {
            prop_oneof![any::<String>(), "[a-z\"\\\\<>&|*_`\n\u{0}\u{1b}é✓]{0,16}"]
        }

        fn event_parts() -> impl Strategy<Value = (EventContext, Details)> {
            (
                proptest::collection::vec(strings(), 10),
                proptest::collection::vec(strings(), 0..3),
            )
                .prop_map(|(s, approvers)| {
                    (
                        EventContext {
                            deployment: s[0].clone(),
                            environment: s[1].clone(),
                            service: s[2].clone(),
                            rollout: Some(s[3].clone()),
                            version: Some(s[4].clone()),
                            previous_version: Some(s[5].clone()),
                            apply_id: s[6].clone(),
                        },
                        Details {
                            message: Some(s[7].clone()),
                            approval: Some(s[8].clone()),
                            step: Some(2),
                            approvers,
                        },
                    )
                })
        }

        fn body(context: &EventContext, details: &Details, format: Option<NotifyFormat>) -> Value {
            let event = Event {
                kind: EventKind::ApprovalWaiting,
                context,
                details,
                duration: Duration::from_millis(1500),
                time: "2024-05-02T09:30:00Z",
            };
            let text = payload(&notify(format, &[]), &event, &[]).to_string();
            serde_json::from_str(&text).expect("the body is JSON")
        }

        fn unescape_slack(text: &str) -> String {
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            #[test]
            fn the_event_document_holds_every_value_exactly((context, details) in event_parts()) {
                let document = body(&context, &details, None);
                prop_assert_eq!(&document["deployment"], &json!(context.deployment));
                prop_assert_eq!(&document["environment"], &json!(context.environment));
                prop_assert_eq!(&document["service"], &json!(context.service));
                prop_assert_eq!(&document["rollout"], &json!(context.rollout));
                prop_assert_eq!(&document["version"], &json!(context.version));
                prop_assert_eq!(&document["previous_version"], &json!(context.previous_version));
                prop_assert_eq!(&document["apply_id"], &json!(context.apply_id));
                prop_assert_eq!(&document["message"], &json!(details.message));
                prop_assert_eq!(&document["approval"], &json!(details.approval));
                prop_assert_eq!(&document["approvers"], &json!(details.approvers));
                prop_assert_eq!(document.as_object().unwrap().len(), 15);
            }

            #[test]
            fn slack_fields_hold_every_value_and_no_control_sequence((context, details) in event_parts()) {
                let document = body(&context, &details, Some(NotifyFormat::Slack));
                let fields = document["blocks"][1]["fields"].as_array().unwrap();
                let mut expected = vec![
                    ("Deployment", context.deployment.clone()),
                    ("Environment", context.environment.clone()),
                    ("Version", context.version.clone().unwrap()),
                    ("Previous version", context.previous_version.clone().unwrap()),
                    ("Approval", details.approval.clone().unwrap()),
                ];
                if !details.approvers.is_empty() {
                    expected.push(("Approvers", details.approvers.join(", ")));
                }
                prop_assert_eq!(fields.len(), expected.len());
                for (field, (name, value)) in fields.iter().zip(expected) {
                    let text = field["text"].as_str().unwrap();
                    let head = format!("*{name}*\n");
                    prop_assert!(text.starts_with(&head), "{}", text);
                    prop_assert!(!text.contains(['<', '>']), "{}", text);
                    prop_assert_eq!(unescape_slack(&text[head.len()..]), value);
                }
                let section = document["blocks"][0]["text"]["text"].as_str().unwrap();
                prop_assert!(!section.contains(['<', '>']), "{}", section);
                let message = details.message.as_deref().unwrap();
                if message.chars().count() <= 2500 {
                    let shown = format!("*\n{}", slack_escape(message));
                    prop_assert!(section.ends_with(&shown), "{}", section);
                }
            }
        }
    }

    #[test]
    fn the_event_document_is_versioned_json_with_every_field() {
        assert_eq!(
            render(EventKind::Succeeded, &Details::default(), None, &[]),
            r#"{"format_version":1,"event":"succeeded","deployment":"deployment.hello","environment":"prod","service":"service.hello","rollout":"rollout.rolling","version":"1.1.0","previous_version":"1.0.0","apply_id":"a1b2","duration_seconds":12.345,"message":"Deployed deployment.hello 1.1.0 to prod in 12.3s","time":"2024-05-02T09:30:00Z"}"#
        );
    }

    #[test]
    fn a_first_deployment_has_no_previous_version() {
        let mut context = context();
        context.previous_version = None;
        let details = Details::default();
        let event = Event {
            kind: EventKind::Started,
            context: &context,
            details: &details,
            duration: Duration::ZERO,
            time: "2024-05-02T09:30:00Z",
        };
        let text = event_json(&event).to_string();
        assert!(text.contains(r#""previous_version":null"#), "{text}");
        assert!(
            text.contains(r#""message":"Deploying deployment.hello 1.1.0 to prod""#),
            "{text}"
        );
    }

    #[test]
    fn approval_waiting_names_the_approval_the_step_and_the_approvers() {
        let details = Details {
            message: None,
            approval: Some("release-manager".into()),
            step: Some(1),
            approvers: vec!["release-managers".into()],
        };
        let text = render(EventKind::ApprovalWaiting, &details, None, &[]);
        assert!(text.contains(r#""event":"approval_waiting""#), "{text}");
        assert!(
            text.contains(
                r#""approval":"release-manager","step":1,"approvers":["release-managers"]"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"waiting for approval \"release-manager\" after step 1"#),
            "{text}"
        );
    }

    #[test]
    fn sensitive_values_are_masked_everywhere_in_the_payload() {
        let details = Details {
            message: Some("health failed: password=hunter2 rejected".into()),
            ..Details::default()
        };
        for format in [None, Some(NotifyFormat::Slack)] {
            let text = render(EventKind::Failed, &details, format, &["hunter2"]);
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("password=(sensitive) rejected"), "{text}");
        }
    }

    #[test]
    fn the_slack_format_has_text_and_blocks() {
        let details = Details {
            message: Some("host-1: health.http failed: <exit 1> & more".into()),
            ..Details::default()
        };
        let text = render(EventKind::Failed, &details, Some(NotifyFormat::Slack), &[]);
        assert_eq!(
            text,
            r#"{"text":":x: Deploying deployment.hello 1.1.0 to prod failed after 12.3s","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*:x: Deploying deployment.hello 1.1.0 to prod failed after 12.3s*\nhost-1: health.http failed: &lt;exit 1&gt; &amp; more"}},{"type":"section","fields":[{"type":"mrkdwn","text":"*Deployment*\ndeployment.hello"},{"type":"mrkdwn","text":"*Environment*\nprod"},{"type":"mrkdwn","text":"*Version*\n1.1.0"},{"type":"mrkdwn","text":"*Previous version*\n1.0.0"}]},{"type":"context","elements":[{"type":"mrkdwn","text":"failed · apply a1b2 · 12.3s"}]}]}"#
        );
    }

    #[test]
    fn rolled_back_names_the_version_it_went_back_to() {
        let text = render(EventKind::RolledBack, &Details::default(), None, &[]);
        assert!(
            text.contains(r#""message":"deployment.hello in prod rolled back to 1.0.0""#),
            "{text}"
        );
    }

    #[test]
    fn on_filters_events_and_an_empty_list_wants_all() {
        let all = notify(None, &[]);
        assert!(EventKind::ALL.iter().all(|k| wants(&all, *k)));
        let failures = notify(None, &["failed", "rolled_back"]);
        let wanted: Vec<&str> = EventKind::ALL
            .into_iter()
            .filter(|k| wants(&failures, *k))
            .map(EventKind::as_str)
            .collect();
        assert_eq!(wanted, ["failed", "rolled_back"]);
    }

    #[test]
    fn shown_urls_hide_the_path_and_query() {
        assert_eq!(
            describe_url("https://hooks.slack.com/services/T0/B0/SECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(describe_url("http://127.0.0.1:9/"), "http://127.0.0.1:9");
        assert_eq!(describe_url("http://h/?token=x"), "http://h/…");
    }

    /// A one-shot receiver on loopback answering `status`.
    #[cfg(feature = "aws")]
    fn receiver(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook/TOKEN", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut bodies = Vec::new();
            for status in statuses {
                let (mut stream, _) = listener.accept().unwrap();
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).unwrap();
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if data.len() >= end + 4 + length {
                            bodies.push(text[end + 4..].to_string());
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"
                )
                .unwrap();
            }
            bodies
        });
        (url, handle)
    }

    #[cfg(feature = "aws")]
    fn quick() -> Delivery {
        Delivery {
            timeout: Duration::from_secs(5),
            attempts: 2,
            retry_delay: Duration::from_millis(10),
        }
    }

    #[cfg(feature = "aws")]
    fn client() -> crate::http::Client {
        crate::http::Client::new(None).unwrap()
    }

    #[cfg(feature = "aws")]
    #[tokio::test]
    async fn a_server_error_is_retried_once() {
        let (url, receiver) = receiver(vec![503, 200]);
        assert_eq!(
            post(&client(), &url, "{\"a\":1}".into(), quick())
                .await
                .map_err(|e| e.to_string()),
            Ok(())
        );
        assert_eq!(receiver.join().unwrap(), ["{\"a\":1}", "{\"a\":1}"]);
    }

    #[cfg(feature = "aws")]
    #[tokio::test]
    async fn a_client_error_is_not_retried_and_is_described() {
        let (url, receiver) = receiver(vec![404]);
        assert_eq!(
            post(&client(), &url, "{}".into(), quick())
                .await
                .map_err(|e| e.to_string()),
            Err("answered 404 (no)".into())
        );
        assert_eq!(receiver.join().unwrap().len(), 1);
    }

    #[cfg(feature = "aws")]
    #[tokio::test]
    async fn a_closed_port_is_a_failure_without_the_url() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = post(
            &client(),
            &format!("http://127.0.0.1:{port}/hook/TOKEN"),
            "{}".into(),
            quick(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(!error.contains("TOKEN"), "{error}");
        assert!(!error.is_empty());
    }

    #[cfg(feature = "aws")]
    #[tokio::test]
    async fn https_goes_through_tls() {
        // A plain HTTP server on the other end: the TLS handshake must fail
        // (rather than "no TLS backend").
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let delivery = Delivery {
            attempts: 1,
            ..quick()
        };
        let error = post(
            &client(),
            &format!("https://localhost:{port}/"),
            "{}".into(),
            delivery,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(!error.contains("no TLS backend"), "{error}");
        assert!(
            error.contains("corrupt message"),
            "rustls read the answer: {error}"
        );
        server.join().unwrap();
    }
}
