//! AWS SDK configuration: one place that turns a configuration's `region` and
//! `endpoint` settings into an SDK configuration.
//!
//! Credentials and region come from aws-config's standard provider chain
//! (environment, profile files, SSO, instance metadata); a region or endpoint
//! written in the configuration overrides the chain's. An `endpoint` points
//! the SDK at a compatible service or a local emulator.
//!
//! Not here: any AWS call. Callers build the clients they need.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where AWS requests go: region and endpoint as the configuration sets them.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub region: Option<String>,
    pub endpoint: Option<String>,
}

impl Target {
    pub fn new(region: Option<&str>, endpoint: Option<&str>) -> Target {
        Target {
            region: region.map(str::to_string),
            endpoint: endpoint.map(str::to_string),
        }
    }
}

/// The SDK configuration for `target`, loaded through the standard chain.
pub async fn sdk_config(target: &Target) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &target.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &target.endpoint {
        loader = loader.endpoint_url(endpoint.clone());
    }
    loader.load().await
}

/// The message of an SDK error with its service error code and message, not
/// the bare "service error" the SDK's `Display` prints.
pub fn error_text<E>(
    error: &aws_sdk_ecs::error::SdkError<E, aws_sdk_ecs::config::http::HttpResponse>,
) -> String
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_ecs::error::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => {
                    let raw = service.raw();
                    unparsed_error_text(raw.status().as_u16(), raw.body().bytes())
                        .unwrap_or_else(|| format!("{inner} (HTTP {})", raw.status().as_u16()))
                }
            }
        }
        SdkError::TimeoutError(_) => "the AWS request timed out".to_string(),
        other => {
            // The SDK's own text ("dispatch failure") says little; its causes
            // say what to fix (no credentials, endpoint refused, ...).
            let mut text = String::from(match other {
                SdkError::DispatchFailure(_) => "the AWS request could not be sent",
                _ => "the AWS request failed",
            });
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

/// An error answer the SDK could not read as its protocol's (no code): an
/// XML `<Code>`/`<Message>` body (what a proxy or an emulator may answer
/// to a JSON service, e.g. an access denial), as `HTTP STATUS CODE:
/// MESSAGE`; `None` when the body has no code.
fn unparsed_error_text(status: u16, body: Option<&[u8]>) -> Option<String> {
    let body = std::str::from_utf8(body?).ok()?;
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = start + body[start..].find(&format!("</{name}>"))?;
        Some(body[start..end].trim().to_string())
    };
    let code = tag("Code").filter(|c| !c.is_empty())?;
    Some(match tag("Message").filter(|m| !m.is_empty()) {
        Some(message) => format!("HTTP {status} {code}: {message}"),
        None => format!("HTTP {status} {code}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_xml_error_body_gives_its_code_and_message() {
        let body = b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>User: u is not authorized</Message></Error></ErrorResponse>";
        assert_eq!(
            unparsed_error_text(403, Some(body)).as_deref(),
            Some("HTTP 403 AccessDenied: User: u is not authorized")
        );
        assert_eq!(
            unparsed_error_text(403, Some(b"<Error><Code>Throttled</Code></Error>")).as_deref(),
            Some("HTTP 403 Throttled")
        );
        assert_eq!(unparsed_error_text(500, Some(b"{}")), None);
        assert_eq!(unparsed_error_text(500, None), None);
    }
}
