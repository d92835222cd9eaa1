//! Gates judged from the machine running apply: HTTP requests and commands
//! with `on = "runner"`. Shared by the VM and ECS executors.
//!
//! Not here: commands run on a deployment's hosts (the VM executor runs those
//! through its transports) and metric queries.

use std::path::Path;
use std::time::Duration;

use crate::config::units::parse_duration;
use crate::config::Gate;

/// Judge `gate` here if it is judged from the runner; `None` when it must
/// run on the hosts of a step (a command without `on = "runner"`).
pub async fn judge_on_runner(gate: &Gate, config_root: &Path) -> Option<Result<(), String>> {
    if let Some(http) = &gate.http {
        let timeout = http
            .timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(10));
        let mut result = Err(String::new());
        for _ in 0..=http.retries.unwrap_or(0) {
            result = http_check(
                &http.url,
                http.expect_status.unwrap_or(200),
                timeout,
                http.body_contains.as_deref(),
            )
            .await;
            if result.is_ok() {
                break;
            }
        }
        return Some(result.map_err(|e| format!("gate \"{}\" failed: {e}", gate.name)));
    }
    let command = gate.command.as_ref()?;
    if command.on.as_deref() != Some("runner") {
        return None;
    }
    let output = match tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&command.command)
        .current_dir(config_root)
        .output()
        .await
    {
        Ok(output) => output,
        Err(error) => return Some(Err(format!("gate \"{}\": {error}", gate.name))),
    };
    Some(if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "gate \"{}\" failed: `{}` exited with {}",
            gate.name, command.command, output.status
        ))
    })
}

/// GET `url` and compare the status (and optionally the body).
pub async fn http_check(
    url: &str,
    expect_status: u16,
    timeout: Duration,
    body_contains: Option<&str>,
) -> Result<(), String> {
    let (url, body_contains) = (url.to_string(), body_contains.map(str::to_string));
    tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        let (status, body) = match agent.get(&url).call() {
            Ok(response) => (
                response.status(),
                response.into_string().unwrap_or_default(),
            ),
            Err(ureq::Error::Status(code, response)) => {
                (code, response.into_string().unwrap_or_default())
            }
            Err(error) => return Err(format!("GET {url}: {error}")),
        };
        if status != expect_status {
            return Err(format!(
                "GET {url} answered {status}, expected {expect_status}"
            ));
        }
        if let Some(needle) = body_contains {
            if !body.contains(&needle) {
                return Err(format!("GET {url}: the body does not contain \"{needle}\""));
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
}
