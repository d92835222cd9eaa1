//! The configuration's outputs for `slipway output`: `NAME = VALUE` lines or one
//! JSON object, and a single value as JSON or raw text.
//!
//! Only formats values the planner already chose to show: a sensitive output
//! arrives without its value (see `plan::planner::output_values`) and is shown
//! as `(sensitive)` or `null`.

use serde_json::{json, Map, Value};

use crate::plan::model::OutputValue;

/// Every output, one `NAME = VALUE` line each (names aligned), or with `json`
/// one object `{"NAME": {"value": ..., "sensitive": bool}}` (as `terraform
/// output -json`, except that a sensitive value is `null`).
pub fn render(outputs: &[OutputValue], json: bool) -> String {
    if json {
        let object: Map<String, Value> = outputs
            .iter()
            .map(|o| {
                let entry = json!({ "value": o.value, "sensitive": o.sensitive });
                (o.name.clone(), entry)
            })
            .collect();
        return format!("{:#}\n", Value::Object(object));
    }
    let width = outputs
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(0);
    outputs
        .iter()
        .map(|o| {
            let value = if o.sensitive {
                "(sensitive)".to_string()
            } else {
                value_text(&o.value)
            };
            format!("{:<width$} = {value}\n", o.name)
        })
        .collect()
}

/// One value: as JSON (a string quoted and escaped, so no control character
/// reaches the terminal), or with `raw` a string as its plain text.
pub fn render_value(value: &Value, raw: bool) -> String {
    match value {
        Value::String(text) if raw => text.clone(),
        _ => value_text(value),
    }
}

/// A value as one line of JSON.
pub fn value_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs() -> Vec<OutputValue> {
        vec![
            OutputValue {
                name: "version".into(),
                value: json!("1.2.0"),
                sensitive: false,
            },
            OutputValue {
                name: "db_password".into(),
                value: Value::Null,
                sensitive: true,
            },
            OutputValue {
                name: "hosts".into(),
                value: json!(["a", "b\u{1b}[31m"]),
                sensitive: false,
            },
        ]
    }

    #[test]
    fn lines_align_names_and_hide_sensitive_values() {
        assert_eq!(
            render(&outputs(), false),
            "version     = \"1.2.0\"\ndb_password = (sensitive)\nhosts       = [\"a\",\"b\\u001b[31m\"]\n"
        );
    }

    #[test]
    fn json_is_one_object_keyed_by_name() {
        let value: Value = serde_json::from_str(&render(&outputs(), true)).unwrap();
        assert_eq!(
            value["version"],
            json!({"value": "1.2.0", "sensitive": false})
        );
        assert_eq!(
            value["db_password"],
            json!({"value": null, "sensitive": true})
        );
    }

    #[test]
    fn one_value_is_json_or_raw_text() {
        assert_eq!(render_value(&json!("1.2.0"), false), "\"1.2.0\"");
        assert_eq!(render_value(&json!("1.2.0"), true), "1.2.0");
        assert_eq!(render_value(&json!([1, 2]), true), "[1,2]");
    }
}
