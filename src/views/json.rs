//! The plan as a JSON document, and reading it back.
//!
//! The document is the serde form of [`Plan`], pretty-printed with fields in
//! declaration order. Its `format_version` is `MAJOR.MINOR`: a new minor version
//! only adds fields, so readers accept any minor version of their major version
//! and ignore fields they do not know; a different major version is rejected.
//! The format is described field by field in `docs/plan-json.md`.

use serde::Deserialize;

use crate::plan::model::{Plan, FORMAT_VERSION};

/// Why a JSON document could not be read as a plan.
#[derive(Debug, thiserror::Error)]
pub enum JsonPlanError {
    /// Not JSON, or JSON that does not have the shape of a plan.
    #[error("invalid plan JSON: {0}")]
    Invalid(#[from] serde_json::Error),
    /// The document has no `format_version` string.
    #[error(
        "the document has no \"format_version\" string \
         (this slipway writes format version {FORMAT_VERSION})"
    )]
    MissingFormatVersion,
    /// The `format_version` is not `MAJOR.MINOR`.
    #[error(
        "format_version {found:?} is not a version number \
         (expected MAJOR.MINOR, like {FORMAT_VERSION:?})"
    )]
    MalformedFormatVersion { found: String },
    /// The document was written in a major version this slipway does not read.
    #[error(
        "the plan is in format version {found}{}, but this slipway reads format \
         version {}.x only; run `plan` again with this slipway, or use the slipway \
         release that made the plan",
        made_by_clause(.made_by),
        supported_major()
    )]
    UnsupportedFormatVersion {
        found: String,
        /// The `slipway_version` recorded in the document, when there is one.
        made_by: Option<String>,
    },
}

/// Renders the plan as pretty-printed JSON ending with a newline.
pub fn render(plan: &Plan) -> String {
    let mut text = serde_json::to_string_pretty(plan).expect("a plan always serializes to JSON");
    text.push('\n');
    text
}

/// Reads a plan JSON document, rejecting a `format_version` whose major
/// version differs from [`FORMAT_VERSION`]'s before looking at anything else,
/// so a newer document fails with a version message rather than a field error.
pub fn parse(text: &str) -> Result<Plan, JsonPlanError> {
    let header: DocumentHeader = serde_json::from_str(text)?;
    let found = match header.format_version {
        Some(serde_json::Value::String(found)) => found,
        _ => return Err(JsonPlanError::MissingFormatVersion),
    };
    let Some(found_major) = major_version(&found) else {
        return Err(JsonPlanError::MalformedFormatVersion { found });
    };
    if found_major != supported_major() {
        let made_by = match header.slipway_version {
            Some(serde_json::Value::String(version)) => Some(version),
            _ => None,
        };
        return Err(JsonPlanError::UnsupportedFormatVersion { found, made_by });
    }
    Ok(serde_json::from_str(text)?)
}

/// The fields read before the rest of the document, kept loose so that any
/// JSON object gets a version verdict.
#[derive(Deserialize)]
struct DocumentHeader {
    #[serde(default)]
    format_version: Option<serde_json::Value>,
    #[serde(default)]
    slipway_version: Option<serde_json::Value>,
}

/// `1` from `1.0`, `1.3` or `1`; `None` unless every part is a number.
fn major_version(version: &str) -> Option<u64> {
    let mut parts = version.split('.');
    let major = parts.next()?;
    let all_numeric = std::iter::once(major)
        .chain(parts)
        .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()));
    if all_numeric {
        major.parse().ok()
    } else {
        None
    }
}

fn supported_major() -> u64 {
    major_version(FORMAT_VERSION).expect("FORMAT_VERSION is MAJOR.MINOR")
}

fn made_by_clause(made_by: &Option<String>) -> String {
    made_by
        .as_ref()
        .map(|version| format!(" (made by slipway {version})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{parse, render, JsonPlanError};
    use crate::views::test_fixture::{representative_plan, snapshot_settings};

    #[test]
    fn snapshot_of_representative_plan() {
        let text = render(&representative_plan());
        snapshot_settings().bind(|| insta::assert_snapshot!("json_representative_plan", text));
    }

    #[test]
    fn document_ends_with_a_newline() {
        assert!(render(&representative_plan()).ends_with("}\n"));
    }

    #[test]
    fn round_trip_keeps_the_plan() {
        let plan = representative_plan();
        assert_eq!(parse(&render(&plan)).expect("parses"), plan);
    }

    #[test]
    fn newer_minor_version_with_unknown_fields_is_read() {
        let mut document: serde_json::Value =
            serde_json::from_str(&render(&representative_plan())).expect("valid JSON");
        document["format_version"] = "1.7".into();
        document["added_in_a_later_minor_version"] = serde_json::json!({ "any": "thing" });
        let plan = parse(&document.to_string()).expect("a 1.x document is read");
        assert_eq!(plan.format_version, "1.7");
    }

    #[test]
    fn other_major_version_is_rejected_with_a_clear_message() {
        let mut document: serde_json::Value =
            serde_json::from_str(&render(&representative_plan())).expect("valid JSON");
        document["format_version"] = "2.0".into();
        document["slipway_version"] = "2.3.1".into();
        // A later major version may reshape anything; the version is judged first.
        document["deployments"] = serde_json::json!({ "reshaped": true });

        let error = parse(&document.to_string()).expect_err("2.0 is rejected");
        assert!(matches!(
            error,
            JsonPlanError::UnsupportedFormatVersion { .. }
        ));
        assert_eq!(
            error.to_string(),
            "the plan is in format version 2.0 (made by slipway 2.3.1), but this slipway \
             reads format version 1.x only; run `plan` again with this slipway, or use the \
             slipway release that made the plan"
        );
    }

    #[test]
    fn missing_or_malformed_version_is_rejected() {
        assert!(matches!(
            parse(r#"{"deployments": []}"#),
            Err(JsonPlanError::MissingFormatVersion)
        ));
        assert!(matches!(
            parse(r#"{"format_version": 1}"#),
            Err(JsonPlanError::MissingFormatVersion)
        ));
        assert!(matches!(
            parse(r#"{"format_version": "one"}"#),
            Err(JsonPlanError::MalformedFormatVersion { .. })
        ));
        assert!(matches!(
            parse(r#"{"format_version": "1."}"#),
            Err(JsonPlanError::MalformedFormatVersion { .. })
        ));
    }

    #[test]
    fn documented_example_is_a_valid_plan() {
        let documentation = include_str!("../../docs/plan-json.md");
        let example = documentation
            .split_once("## 8. Example")
            .and_then(|(_, rest)| rest.split_once("```json\n"))
            .and_then(|(_, rest)| rest.split_once("\n```\n"))
            .map(|(example, _)| example)
            .expect("the documentation has an example");
        let plan = parse(example).expect("the example parses");
        assert_eq!(plan.format_version, crate::plan::model::FORMAT_VERSION);
        let changes = plan.summary.create + plan.summary.update + plan.summary.destroy;
        let changing = plan
            .deployments
            .iter()
            .filter(|deployment| deployment.action != crate::plan::model::Action::NoOp)
            .count();
        assert_eq!(
            changes, changing,
            "the example's summary matches its deployments"
        );
    }

    #[test]
    fn invalid_documents_are_rejected() {
        assert!(matches!(parse("not json"), Err(JsonPlanError::Invalid(_))));
        assert!(matches!(
            parse("[]"),
            Err(JsonPlanError::MissingFormatVersion)
        ));
        let error = parse(r#"{"format_version": "1.0"}"#).expect_err("fields are missing");
        assert!(error
            .to_string()
            .starts_with("invalid plan JSON: missing field"));
    }
}
