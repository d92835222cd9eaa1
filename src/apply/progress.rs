//! Progress of an apply: live spinners per deployment on a terminal (indicatif),
//! one plain line per event otherwise (CI logs). Never prints secrets: callers
//! pass step names and host names, not scripts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    live: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
    started: Instant,
}

impl Progress {
    /// `live`: draw spinners (a terminal); otherwise print plain lines.
    pub fn new(live: bool) -> Progress {
        let live = live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            live,
            bars: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    fn stamp(&self) -> String {
        format!("[{:>6.1}s]", self.started.elapsed().as_secs_f64())
    }

    /// A line that stays in the log.
    pub fn event(&self, subject: &str, message: &str) {
        // Messages carry what hosts printed: control characters are shown
        // escaped, never sent to the terminal.
        let line = crate::encode::text::visible(&format!("{} {subject}: {message}", self.stamp()))
            .into_owned();
        match &self.live {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => println!("{line}"),
        }
    }

    /// What a deployment is doing now (the spinner's text on a terminal).
    pub fn status(&self, deployment: &str, message: &str) {
        let Some(multi) = &self.live else { return };
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

    /// The deployment is done; its spinner goes away.
    pub fn done(&self, deployment: &str) {
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
