//! Sensitivity as taint: which parts of a value computed from sensitive
//! values may be shown.
//!
//! The loader knows which names are sensitive (`var.x`, a local or a module
//! output computed from one). A value whose expression mentions one of them
//! is judged by evaluating the same expression twice more, in *shadow*
//! contexts where every leaf (string, number, bool) of every sensitive name is
//! replaced by a marker that the secret cannot influence. The two shadows use
//! markers of different lengths and letters, so a function that transforms
//! its input (`upper`, `replace`, `base64encode`, `substr`, `length`, a
//! comparison, ...) changes them differently.
//!
//! A string of the result is a *copy* when, in both shadows, putting each
//! marker's real text back gives exactly the real string: it is then plain
//! text with sensitive values copied into it, and masking those values'
//! text (`Config::mask`) hides all there is to hide. Any other string — a
//! shadow that failed to evaluate, or a result that differs — is *derived*:
//! the whole string becomes a sensitive value of its own (and so do its
//! lines that no shadow has), so masking hides it wherever it appears.
//!
//! Bools, nulls and map keys of sensitive values never have a real text to
//! put back: a result that depends on them is derived.

use hcl::Value;

/// Opening and closing characters of the markers of shadow 0 and 1 (private
/// use code points, which configurations do not contain in practice; when
/// one does, a string is judged derived, never a copy by mistake).
const MARKS: [(char, char); 2] = [('\u{E000}', '\u{E001}'), ('\u{E002}', '\u{E003}')];

fn marker(variant: usize, index: usize) -> String {
    let (open, close) = MARKS[variant];
    match variant {
        0 => format!("{open}{index}{close}"),
        _ => format!("{open}sensitive-{index:06}-Value{close}"),
    }
}

/// The texts markers stand for, by index; `None` for a marker that has no
/// text to put back (bools, nulls, map keys).
#[derive(Debug, Default)]
pub struct Markers {
    texts: Vec<Option<String>>,
}

impl Markers {
    fn add(&mut self, variant: usize, text: Option<String>) -> Value {
        self.texts.push(text);
        Value::String(marker(variant, self.texts.len() - 1))
    }
}

/// `value` with every leaf replaced by a marker of `variant`.
pub fn shadow(value: &Value, variant: usize, markers: &mut Markers) -> Value {
    match value {
        Value::String(s) => markers.add(variant, Some(s.clone())),
        Value::Number(n) => markers.add(variant, Some(n.to_string())),
        Value::Bool(_) | Value::Null => markers.add(variant, None),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| shadow(item, variant, markers))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.values()
                .map(|item| {
                    let Value::String(key) = markers.add(variant, None) else {
                        unreachable!("markers are strings")
                    };
                    (key, shadow(item, variant, markers))
                })
                .collect(),
        ),
    }
}

/// Stands for a marker with no text to put back: a real value never holds it
/// (a value holding it, or a marker character, is always judged derived).
const NO_TEXT: char = '\u{FFFF}';

/// `text` with each marker of `variant` replaced by its real text ([`NO_TEXT`]
/// for a marker without one; marker-like text that is not one of ours stays).
fn unshadow(text: &str, variant: usize, markers: &Markers) -> String {
    let (open, close) = MARKS[variant];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start + open.len_utf8()]);
        let after = &rest[start + open.len_utf8()..];
        let Some(end) = after.find(close) else {
            rest = after;
            continue;
        };
        let inner = &after[..end];
        let index = match variant {
            0 => Some(inner),
            _ => inner
                .strip_prefix("sensitive-")
                .and_then(|i| i.strip_suffix("-Value")),
        }
        .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| markers.texts.get(i));
        match index {
            Some(text) => {
                out.truncate(out.len() - open.len_utf8());
                match text {
                    Some(text) => out.push_str(text),
                    None => out.push(NO_TEXT),
                }
                rest = &after[end + close.len_utf8()..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

/// Whether `text` could be confused with marker text.
fn marker_like(text: &str) -> bool {
    text.chars()
        .any(|c| c == NO_TEXT || MARKS.iter().any(|(o, c2)| c == *o || c == *c2))
}

/// What judging a value found: the strings (and lines of them) that are
/// derived from sensitive values rather than copies of them.
#[derive(Debug, Default, PartialEq)]
pub struct Derived {
    pub texts: Vec<String>,
}

/// Judge `real` against its two shadows (`Err` when a shadow failed to
/// evaluate). Every derived string of `real` is collected, with its lines
/// that neither shadow has.
pub fn judge<E>(real: &Value, shadows: [Result<Value, E>; 2], markers: &[Markers; 2]) -> Derived {
    let mut derived = Derived::default();
    let shadows: Vec<Option<Value>> = shadows.into_iter().map(Result::ok).collect();
    walk(
        real,
        [shadows[0].as_ref(), shadows[1].as_ref()],
        markers,
        &mut derived,
    );
    derived
}

fn walk(real: &Value, shadows: [Option<&Value>; 2], markers: &[Markers; 2], out: &mut Derived) {
    match real {
        Value::String(text) => {
            let unshadowed: Vec<Option<String>> = (0..2)
                .map(|v| match shadows[v] {
                    Some(Value::String(s)) => Some(unshadow(s, v, &markers[v])),
                    _ => None,
                })
                .collect();
            if marker_like(text) || unshadowed.iter().any(Option::is_none) {
                derived_whole(text, &unshadowed, out);
                return;
            }
            let unshadowed: Vec<&str> = unshadowed.iter().flatten().map(String::as_str).collect();
            if unshadowed.iter().all(|u| *u == text) {
                return;
            }
            let real_lines: Vec<&str> = text.split('\n').collect();
            if real_lines.len() == 1 {
                if !text.is_empty() {
                    out.texts.push(text.clone());
                }
                return;
            }
            // Line by line: a line is a copy when both shadows have it, in
            // order (a loop over a secret may add or remove lines); only the
            // others are derived. A shadow's lines are unshadowed one by one,
            // so a secret with a newline matches no line: masking its text
            // as a whole would not hide a line of it shown on its own.
            let mut copy = vec![true; real_lines.len()];
            for v in 0..2 {
                let Some(Value::String(raw)) = shadows[v] else {
                    unreachable!("checked above")
                };
                let shadow_lines: Vec<String> = raw
                    .split('\n')
                    .map(|line| unshadow(line, v, &markers[v]))
                    .collect();
                let shadow_lines: Vec<&str> = shadow_lines.iter().map(String::as_str).collect();
                let mut seen = vec![false; real_lines.len()];
                for op in similar::capture_diff_slices(
                    similar::Algorithm::Myers,
                    &real_lines,
                    &shadow_lines,
                ) {
                    if let similar::DiffOp::Equal { old_index, len, .. } = op {
                        seen[old_index..old_index + len].fill(true);
                    }
                }
                for (c, s) in copy.iter_mut().zip(seen) {
                    *c &= s;
                }
            }
            for (line, copy) in real_lines.iter().zip(copy) {
                if !copy && !line.trim().is_empty() {
                    out.texts.push(line.to_string());
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let pick = |v: usize| match shadows[v] {
                    Some(Value::Array(s)) if s.len() == items.len() => s.get(index),
                    _ => None,
                };
                walk(item, [pick(0), pick(1)], markers, out);
            }
        }
        Value::Object(map) => {
            // Keys: a key that is not a copy in both shadows is derived too.
            for (position, (key, item)) in map.iter().enumerate() {
                let pick = |v: usize| match shadows[v] {
                    Some(Value::Object(s)) if s.len() == map.len() => s.iter().nth(position),
                    _ => None,
                };
                let key_copies = !marker_like(key)
                    && (0..2)
                        .all(|v| pick(v).is_some_and(|(k, _)| unshadow(k, v, &markers[v]) == *key));
                if !key_copies && !key.is_empty() {
                    out.texts.push(key.clone());
                }
                walk(
                    item,
                    [pick(0).map(|(_, s)| s), pick(1).map(|(_, s)| s)],
                    markers,
                    out,
                );
            }
        }
        Value::Number(n) => {
            let same = (0..2).all(|v| shadows[v] == Some(real));
            if !same {
                out.texts.push(n.to_string());
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// `text` is derived as a whole: it is sensitive, and so is each of its lines
/// that no shadow has (a line may be shown on its own, in a host's error).
fn derived_whole(text: &str, unshadowed: &[Option<String>], out: &mut Derived) {
    if text.is_empty() {
        return;
    }
    out.texts.push(text.to_string());
    if text.contains('\n') {
        for line in text.lines() {
            let shared = unshadowed
                .iter()
                .flatten()
                .any(|u| u.lines().any(|l| l == line));
            if !shared && !line.trim().is_empty() {
                out.texts.push(line.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl::eval::{Context, Evaluate};

    /// Judge `expr` with `var.s` = `secret` (sensitive) and `var.p` = "plain".
    fn judged(expr: &str, secret: &str) -> (Value, Derived) {
        let expr: hcl::Expression = expr.parse().unwrap();
        let context_with = |s: Value| {
            let mut context: Context = crate::config::eval::function_context();
            context.declare_var("var", hcl::value!({ s = (s), p = "plain" }));
            context
        };
        let real = expr.evaluate(&context_with(Value::from(secret))).unwrap();
        let mut markers = [Markers::default(), Markers::default()];
        let shadows = [0, 1].map(|v| {
            let value = shadow(&Value::from(secret), v, &mut markers[v]);
            expr.evaluate(&context_with(value))
        });
        let derived = judge(&real, shadows, &markers);
        (real, derived)
    }

    #[test]
    fn copies_need_no_more_than_the_secret_masked() {
        for expr in [
            r#""a=${var.s}\nb=${var.p}\n""#,
            r#"join(",", [var.s, var.p])"#,
            r#"format("%s/%s", var.p, var.s)"#,
            r#"[for x in [var.s, var.p] : x]"#,
        ] {
            let (_, derived) = judged(expr, "hunter2");
            assert_eq!(derived, Derived::default(), "{expr}");
        }
    }

    #[test]
    fn transformed_secrets_are_derived_whole() {
        for (expr, secret, shown) in [
            ("upper(var.s)", "hunter2", "HUNTER2"),
            (r#"replace(var.s, "h", "j")"#, "hunter2", "junter2"),
            ("length(var.s)", "hunter2", "7"),
            (r#"join("-", split("t", var.s))"#, "hunter2", "hun-er2"),
            (r#"var.s == "hunter2" ? "yes" : "no""#, "hunter2", "yes"),
            (r#""${var.p}:${upper(var.s)}""#, "hunter2", "plain:HUNTER2"),
            // JSON escapes the quote: not a copy of the secret's text.
            (
                r#"jsonencode({ k = var.s })"#,
                "hun\"ter2",
                r#"{"k":"hun\"ter2"}"#,
            ),
        ] {
            let (real, derived) = judged(expr, secret);
            let text = match real {
                Value::String(s) => s,
                other => other.to_string(),
            };
            assert_eq!(text, shown);
            assert!(derived.texts.contains(&text), "{expr}: {derived:?}");
        }
        // Without anything to escape, JSON holds a copy: masking the secret's
        // text is enough.
        let (_, derived) = judged(r#"jsonencode({ k = var.s })"#, "hunter2");
        assert_eq!(derived, Derived::default());
    }

    #[test]
    fn only_the_lines_a_secret_changed_are_derived_as_lines() {
        let (_, derived) = judged(r#""A=1\nB=${upper(var.s)}\nC=${var.p}\n""#, "hunter2");
        assert_eq!(derived.texts, vec!["B=HUNTER2".to_string()]);
        // A copied secret may hold newlines: still a copy (the loader masks
        // each line of a sensitive value too).
        let (_, derived) = judged(r#""A=1\nB=${var.s}\nC=${var.p}\n""#, "hun\nter2");
        assert_eq!(derived, Derived::default());
        // Beside a transformed one, its lines are judged one by one (a
        // line of a secret is no copy of a line) and all are derived.
        let (_, derived) = judged(
            r#""A=${var.s}\nB=${replace(var.s, "h", "j")}\nC=1""#,
            "w\nhun\nter2",
        );
        assert_eq!(derived.texts, ["A=w", "hun", "ter2", "B=w", "jun", "ter2"]);
        // A transformed one with a newline adds a line: the lines it made
        // are derived, the others are not.
        let (_, derived) = judged(r#""A=1\nB=${upper(var.s)}\nC=2""#, "hun\nter2");
        assert_eq!(derived.texts, vec!["B=HUN".to_string(), "TER2".to_string()]);
        // A comparison with a secret: a marker equals nothing, so the
        // shadows say false; a true result is derived. (A false one is shown:
        // that it is false is all it tells.)
        let (_, derived) = judged(r#""A=${var.s == "x"}""#, "x");
        assert_eq!(derived.texts, vec!["A=true".to_string()]);
    }

    #[test]
    fn marker_like_text_is_never_taken_for_a_copy() {
        let (_, derived) = judged(r#"upper(var.s)"#, "\u{E000}0\u{E001}");
        assert_eq!(derived.texts, vec!["\u{E000}0\u{E001}".to_string()]);
    }
}
