//! The plan as a JSON document (`docs/plan-json.md` describes it field by
//! field): the document saved plans are, [`crate::plan::document::encode`].
//! Reading it back, with the format version check, is
//! [`crate::plan::document::parse`].

use crate::plan::model::Plan;

/// Renders the plan as pretty-printed JSON ending with a newline.
pub fn render(plan: &Plan) -> String {
    crate::plan::document::encode(plan).expect("a plan always serializes to JSON")
}

#[cfg(test)]
mod tests {
    use super::render;
    use crate::plan::document::{parse, JsonPlanError};
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
