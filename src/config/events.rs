//! What a `notify` block may say: the events its `on` list names (and the
//! older names still accepted), and the form of its webhook URL
//! ([`check_webhook`], refusing with a [`WebhookError`]). Validation
//! checks blocks against these; building and sending the events is
//! [`crate::notify`].

/// Names accepted in a notify block's `on` list, in the order they happen.
pub const EVENT_NAMES: [&str; 5] = [
    "started",
    "approval_waiting",
    "succeeded",
    "failed",
    "rolled_back",
];

/// Older names still accepted in `on` lists.
pub const EVENT_ALIASES: [(&str, EventKind); 1] =
    [("approval_required", EventKind::ApprovalWaiting)];

/// What happened to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Apply starts changing the deployment.
    Started,
    /// Apply stopped at an approval and waits for a decision.
    ApprovalWaiting,
    /// Every target runs the new version and passed its checks.
    Succeeded,
    /// The deployment failed (a `rolled_back` event follows when it was undone).
    Failed,
    /// The deployment failed and its targets are back on the previous version.
    RolledBack,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Started,
        EventKind::ApprovalWaiting,
        EventKind::Succeeded,
        EventKind::Failed,
        EventKind::RolledBack,
    ];

    /// The name used in payloads and in `on` lists.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "started",
            EventKind::ApprovalWaiting => "approval_waiting",
            EventKind::Succeeded => "succeeded",
            EventKind::Failed => "failed",
            EventKind::RolledBack => "rolled_back",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// An event named in an `on` list: its name, or an older name
    /// ([`EVENT_ALIASES`]).
    pub fn from_on(name: &str) -> Option<EventKind> {
        EventKind::parse(name).or_else(|| {
            EVENT_ALIASES
                .iter()
                .find(|(alias, _)| *alias == name)
                .map(|(_, kind)| *kind)
        })
    }
}

/// Why a webhook URL cannot receive notifications.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A URL without a scheme (`hooks.example/x`).
    #[error("the URL has no scheme; a webhook starts with https:// or http://")]
    NoScheme,
    /// Text that does not parse as a URL.
    #[error("not a URL ({0})")]
    NotAUrl(url::ParseError),
    /// A scheme other than `http` and `https`.
    #[error("the scheme is \"{0}\"; a webhook is an http or https URL")]
    Scheme(String),
    /// A URL without a host.
    #[error("the URL has no host")]
    NoHost,
}

/// Whether `url` can receive notifications: an absolute `http` or `https`
/// URL with a host. The error says what is wrong.
pub fn check_webhook(url: &str) -> Result<(), WebhookError> {
    let parsed = url::Url::parse(url).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => WebhookError::NoScheme,
        other => WebhookError::NotAUrl(other),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(WebhookError::Scheme(parsed.scheme().to_string()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(WebhookError::NoHost);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(
            EventKind::ALL.map(EventKind::as_str),
            EVENT_NAMES,
            "EVENT_NAMES lists every kind in order"
        );
        assert_eq!(EventKind::parse("approval_required"), None);
        assert_eq!(
            EventKind::from_on("approval_required"),
            Some(EventKind::ApprovalWaiting)
        );
        assert_eq!(EventKind::from_on("step_completed"), None);
    }

    #[test]
    fn webhooks_must_be_http_urls_with_a_host() {
        assert!(check_webhook("https://hooks.slack.com/services/T0/B0/X").is_ok());
        assert!(check_webhook("http://127.0.0.1:9000/hook").is_ok());
        assert!(check_webhook("ftp://example.com/x")
            .unwrap_err()
            .to_string()
            .contains("\"ftp\""));
        assert!(check_webhook("hooks.slack.com/services")
            .unwrap_err()
            .to_string()
            .contains("no scheme"));
        assert!(check_webhook("").is_err());
        assert!(check_webhook("http://").is_err());
    }
}
