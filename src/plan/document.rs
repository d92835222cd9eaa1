//! The plan JSON document: writing it ([`encode`], for `plan -json` and saved
//! plans alike) and reading it back (saved plans, `show`), with its format
//! version checked first.
//!
//! The document is the serde form of [`Plan`], pretty-printed with fields in
//! declaration order. Its
//! `format_version` is `MAJOR.MINOR`: a new minor version only adds fields, so
//! readers accept any minor version of their major version and ignore fields
//! they do not know; a different major version is rejected. The format is
//! described field by field in `docs/plan-json.md`. The other views of a plan
//! are `crate::views`.

use serde::Deserialize;

use super::model::{Plan, FORMAT_VERSION};

/// The plan as its JSON document, pretty-printed and ending with a newline.
pub fn encode(plan: &Plan) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(plan)?;
    text.push('\n');
    Ok(text)
}

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
