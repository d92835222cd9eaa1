//! Progress of an apply, the one reporter of rollout [`Event`]s: live spinners
//! per deployment on a terminal (indicatif), one plain line per event otherwise
//! (CI logs), or with `apply -json` one JSON object per line ([`json_line`],
//! documented in `docs/apply-json.md`); during waits (bakes, gate intervals, ECS deployments) a heartbeat at least every
//! [`HEARTBEAT`] so a CI log never goes silent. Never prints secrets: callers
//! pass step names and host names, not scripts. Decides nothing about the apply.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::events::{Event, RolloutEvent};

/// Without a terminal, the longest a deployment that is waiting goes without
/// a line in the log.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

pub struct Progress {
    live: Option<MultiProgress>,
    /// `apply -json`: JSON lines instead of text (never spinners).
    json: bool,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Without a terminal: when each deployment last printed a line.
    last_line: Mutex<HashMap<String, Instant>>,
    started: Instant,
}

impl Progress {
    /// `live`: draw spinners (a terminal); otherwise print plain lines.
    pub fn new(live: bool) -> Progress {
        let live = live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            live,
            json: false,
            bars: Mutex::new(HashMap::new()),
            last_line: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    /// `apply -json`: every event, heartbeat and end of a deployment as one
    /// JSON object per line on stdout.
    pub fn json() -> Progress {
        Progress {
            json: true,
            ..Progress::new(false)
        }
    }

    /// Print one JSON line of `kind` about `deployment` (see [`json_line`]),
    /// with the `event` it reports, if any.
    fn emit(&self, kind: &str, deployment: &str, message: Option<&str>, event: Option<&Event>) {
        let mut fields = serde_json::json!({ "deployment": deployment });
        if let Some(message) = message {
            fields["message"] = message.into();
        }
        if let Some(event) = event.and_then(|e| serde_json::to_value(e).ok()) {
            fields["event"] = event;
        }
        println!("{}", json_line(kind, self.started.elapsed(), fields));
    }

    fn stamp(&self) -> String {
        format!("[{:>6.1}s]", self.started.elapsed().as_secs_f64())
    }

    /// Something that happened to `deployment`: a line that stays in the
    /// log (with `apply -json`, a `progress` object holding the event).
    pub fn report(&self, deployment: &str, event: impl Into<Event>) {
        let event = event.into();
        let message = event.to_string();
        if self.json {
            self.lock_last_line()
                .insert(deployment.to_string(), Instant::now());
            return self.emit("progress", deployment, Some(&message), Some(&event));
        }
        let line = self.line(deployment, &message);
        match &self.live {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => {
                self.lock_last_line()
                    .insert(deployment.to_string(), Instant::now());
                println!("{line}");
            }
        }
    }

    /// One log line: the time since the start, the subject and the message.
    /// Messages carry what hosts printed: control characters are shown
    /// escaped, never sent to the terminal.
    fn line(&self, subject: &str, message: &str) -> String {
        crate::encode::text::visible(&format!("{} {subject}: {message}", self.stamp())).into_owned()
    }

    fn lock_last_line(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.last_line.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True, and noted as printed now, when `subject` printed no line for
    /// [`HEARTBEAT`] (or never).
    fn heartbeat_due(&self, subject: &str) -> bool {
        let mut last = self.lock_last_line();
        let due = last.get(subject).is_none_or(|at| at.elapsed() >= HEARTBEAT);
        if due {
            last.insert(subject.to_string(), Instant::now());
        }
        due
    }

    /// What a deployment is doing now: the spinner's text on a terminal;
    /// without one, a line when the deployment printed nothing for
    /// [`HEARTBEAT`] (so waits call this at least that often).
    pub fn status(&self, deployment: &str, message: &str) {
        let Some(multi) = &self.live else {
            if self.heartbeat_due(deployment) {
                if self.json {
                    self.emit("status", deployment, Some(message), None);
                } else {
                    println!("{}", self.line(deployment, message));
                }
            }
            return;
        };
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry(deployment.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(deployment.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        bar.set_message(crate::encode::text::visible(message).into_owned());
    }

    /// Wait `length` (a bake, a gate's interval) showing what is awaited and
    /// the time left, e.g. `step 2/3: bake: 1m50s left`.
    pub async fn wait(&self, deployment: &str, what: &str, length: Duration) {
        let end = Instant::now() + length;
        self.report(
            deployment,
            RolloutEvent::Waiting {
                what: what.to_string(),
                length,
            },
        );
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.status(deployment, &format!("{what}: {} left", short(left)));
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
    }

    /// The deployment is done; its spinner goes away.
    pub fn done(&self, deployment: &str) {
        if self.json {
            self.emit("deployment_done", deployment, None, None);
        }
        if let Some(bar) = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(deployment)
        {
            bar.finish_and_clear();
        }
    }
}

/// One line of `apply -json`: `type`, `@timestamp` (RFC 3339, UTC),
/// `elapsed_seconds` since the apply began, then `fields`. Text is escaped as
/// JSON; no field holds a secret (callers pass what the text output shows).
pub fn json_line(kind: &str, elapsed: Duration, fields: serde_json::Value) -> String {
    let mut line = serde_json::Map::new();
    line.insert("type".into(), kind.into());
    line.insert(
        "@timestamp".into(),
        crate::state::lock::now_rfc3339().into(),
    );
    line.insert(
        "elapsed_seconds".into(),
        ((elapsed.as_secs_f64() * 10.0).round() / 10.0).into(),
    );
    if let serde_json::Value::Object(fields) = fields {
        line.extend(fields);
    }
    serde_json::Value::Object(line).to_string()
}

/// A duration as people write it, to the second above a minute: `2m10s`, `45s`, `1.5s`.
pub(super) fn short(length: Duration) -> String {
    let seconds = length.as_secs();
    if seconds < 10 {
        return format!("{:.1}s", length.as_secs_f64());
    }
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds:02}s"),
        _ => format!("{hours}h{minutes:02}m{seconds:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_reads_like_a_duration() {
        assert_eq!(short(Duration::from_millis(1500)), "1.5s");
        assert_eq!(short(Duration::from_secs(45)), "45s");
        assert_eq!(short(Duration::from_secs(130)), "2m10s");
        assert_eq!(short(Duration::from_secs(3 * 3600 + 65)), "3h01m05s");
    }

    #[test]
    fn without_a_terminal_a_quiet_deployment_gets_a_line_once_per_heartbeat() {
        let progress = Progress::new(false);
        // The first status of a deployment prints; the next ones within
        // HEARTBEAT do not, nor do they after an event line.
        assert!(progress.heartbeat_due("deployment.a"));
        assert!(!progress.heartbeat_due("deployment.a"));
        assert!(progress.heartbeat_due("deployment.b"));
        let long_ago = Instant::now() - HEARTBEAT;
        progress
            .lock_last_line()
            .insert("deployment.a".into(), long_ago);
        assert!(progress.heartbeat_due("deployment.a"));
        progress
            .lock_last_line()
            .insert("deployment.c".into(), long_ago);
        progress.report("deployment.c", crate::apply::events::HostEvent::Paused);
        assert!(!progress.heartbeat_due("deployment.c"));
    }
}
