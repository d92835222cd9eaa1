//! The `{{name}}` placeholders of a metric gate's query: the names the
//! language knows, and finding the others, which validation reports. Filling
//! them in for one measurement is [`crate::metrics::render_query`].

/// The placeholders a metric query may use.
pub const PLACEHOLDERS: &[&str] = &[
    "version",
    "baseline_version",
    "hosts",
    "environment",
    "service",
    "deployment",
];

/// The `{{name}}` placeholders of `query` that are not in [`PLACEHOLDERS`].
pub fn unknown_placeholders(query: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    for_each_placeholder(query, |name| {
        if !PLACEHOLDERS.contains(&name) && !unknown.iter().any(|u| u == name) {
            unknown.push(name.to_string());
        }
        None
    });
    unknown
}

/// Walk the `{{ name }}` placeholders of `text`; `replace` returns the
/// replacement or `None` to keep the placeholder. Returns the new text.
pub(crate) fn for_each_placeholder(
    text: &str,
    mut replace: impl FnMut(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        let name = rest[start + 2..start + 2 + len].trim();
        out.push_str(&rest[..start]);
        let whole = &rest[start..start + 2 + len + 2];
        match replace(name) {
            Some(value) => out.push_str(&value),
            None => out.push_str(whole),
        }
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    out
}
