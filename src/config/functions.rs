//! The functions Terraform users reach for: `range`, `format` (flags, width,
//! precision), `substr`, `base64encode`/`base64decode`, `regex`/`regexall`,
//! `coalesce`, `lookup`, `flatten`, `distinct`, `element`, `slice`, `zipmap`,
//! `startswith`/`endswith`, with Terraform's semantics. (`try` is not a
//! function of values: see [`super::eval::evaluate`].)
//!
//! Each function checks its own arguments, so a wrong count or type is
//! reported as `name(): ...` with the usage; a refusal is a
//! [`FunctionError`], whose messages name types, never the values (a value
//! may be sensitive).

use hcl::eval::FuncArgs;
use hcl::{Map, Number, Value};

use super::eval::{to_json, type_name};

type Result<T> = std::result::Result<T, FunctionError>;

/// Why a function of this library refuses its arguments. `usage` is the
/// function's call forms (`"substr(string, offset, length)"`); `found` names
/// a value's type (`"a list"`); `argument` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FunctionError {
    /// Too few or too many arguments.
    #[error("takes {}, got {got}: {usage}", describe_arity(*.min, *.max))]
    Arity {
        min: usize,
        max: usize,
        got: usize,
        usage: &'static str,
    },
    /// An argument of the wrong type.
    #[error("argument {argument} must be {wanted}, not {found}: {usage}")]
    WrongType {
        argument: usize,
        wanted: &'static str,
        found: &'static str,
        usage: &'static str,
    },
    /// A number argument that must be whole.
    #[error("argument {argument} must be a whole number: {usage}")]
    NotWhole {
        argument: usize,
        usage: &'static str,
    },
    /// `range` with a step of zero.
    #[error("the step must not be zero: {usage}")]
    ZeroStep { usage: &'static str },
    /// `range` of more than 1024 numbers.
    #[error("more than 1024 numbers: narrow the range or use a larger step")]
    TooManyNumbers,
    /// `base64decode` of text that is not Base64.
    #[error("the string is not valid Base64")]
    InvalidBase64,
    /// `base64decode` of bytes that are not UTF-8.
    #[error("the decoded bytes are not UTF-8 text")]
    DecodedNotUtf8,
    /// A pattern that does not compile.
    #[error("invalid regular expression ({error}): {usage}")]
    InvalidRegex {
        error: regex_lite::Error,
        usage: &'static str,
    },
    /// A pattern with both named and unnamed groups.
    #[error("the pattern must use either only named or only unnamed capture groups")]
    MixedGroups,
    /// `regex` without a match.
    #[error("the pattern did not match any part of the string")]
    NoMatch,
    /// `coalesce` with nothing to choose.
    #[error("every argument is null or an empty string")]
    AllEmpty,
    /// `lookup` of a missing key without a default.
    #[error("the map has no such key, and no default was given")]
    NoSuchKey,
    /// `element` of an empty list.
    #[error("the list is empty")]
    EmptyList,
    /// `element` with a negative index.
    #[error("the index must not be negative (for the last element use length(list) - 1)")]
    NegativeIndex,
    /// `slice` with a negative start.
    #[error("start_index must not be negative")]
    NegativeStart,
    /// `slice` ending past the list.
    #[error("end_index must not be greater than the length of the list ({length})")]
    EndPastLength { length: usize },
    /// `slice` starting after its end.
    #[error("start_index must not be greater than end_index")]
    StartAfterEnd,
    /// `zipmap` of lists of different lengths.
    #[error("{keys} keys but {values} values: the lists must have the same length")]
    LengthMismatch { keys: usize, values: usize },
    /// `zipmap` with a key that is not a string, number or bool.
    #[error("keys must be strings, not {found}")]
    KeyNotString { found: &'static str },
    /// `format`: `%[n]` where `n` is not a number from 1.
    #[error("%[{digits}]: an argument index is a number from 1")]
    BadArgumentIndex { digits: String },
    /// `format`: a `%` directive without its verb.
    #[error("the format ends in the middle of a % directive")]
    UnfinishedDirective,
    /// `format`: a directive past the last value (`argument` counts the
    /// format itself).
    #[error("not enough arguments: %{verb} needs argument {argument}")]
    NotEnoughArguments { verb: char, argument: usize },
    /// `format`: values no directive uses.
    #[error("too many arguments: the format uses {used} of {given}")]
    TooManyArguments { used: usize, given: usize },
    /// `format`: a number hcl cannot give as a float.
    #[error("a number is out of range")]
    NumberOutOfRange,
    /// `format`: a numeric verb given something else.
    #[error("%{verb} needs a number, not {found}")]
    NeedsNumber { verb: char, found: &'static str },
    /// `format`: an integer verb given a fraction.
    #[error("%{verb} needs a whole number")]
    NeedsWholeNumber { verb: char },
    /// `format`: a text verb given null.
    #[error("%{verb} cannot format null")]
    FormatsNull { verb: char },
    /// `format`: a text verb given a list or map.
    #[error("%{verb} needs a string, not {found}")]
    NeedsString { verb: char, found: &'static str },
    /// `format`: `%t` given something other than a bool.
    #[error("%t needs a bool, not {found}")]
    NeedsBool { found: &'static str },
    /// `format`: a verb Terraform's format does not have.
    #[error("unsupported verb %{verb} (use %v, %t, %d, %b, %o, %x, %X, %e, %E, %f, %g, %G, %s, %q or %%)")]
    UnsupportedVerb { verb: char },
}

/// How many arguments a function takes, for [`FunctionError::Arity`].
fn describe_arity(min: usize, max: usize) -> String {
    match (min, max) {
        (a, b) if a == b => format!("{a} argument{}", if a == 1 { "" } else { "s" }),
        (a, usize::MAX) => format!("at least {a} argument{}", if a == 1 { "" } else { "s" }),
        (a, b) => format!("{a} to {b} arguments"),
    }
}

/// Check the number of arguments against `usage` (`"substr(string, offset, length)"`).
fn arity(args: &FuncArgs, usage: &'static str, min: usize, max: usize) -> Result<()> {
    let got = args.len();
    if got >= min && got <= max {
        return Ok(());
    }
    Err(FunctionError::Arity {
        min,
        max,
        got,
        usage,
    })
}

fn wrong(index: usize, wanted: &'static str, value: &Value, usage: &'static str) -> FunctionError {
    FunctionError::WrongType {
        argument: index + 1,
        wanted,
        found: type_name(value),
        usage,
    }
}

fn string<'a>(args: &'a FuncArgs, index: usize, usage: &'static str) -> Result<&'a str> {
    match &args[index] {
        Value::String(s) => Ok(s),
        other => Err(wrong(index, "a string", other, usage)),
    }
}

fn number(args: &FuncArgs, index: usize, usage: &'static str) -> Result<f64> {
    match &args[index] {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| wrong(index, "a number", &args[index], usage)),
        // Terraform converts numeric strings where a number is expected.
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| wrong(index, "a number", &args[index], usage)),
        other => Err(wrong(index, "a number", other, usage)),
    }
}

fn whole(args: &FuncArgs, index: usize, usage: &'static str) -> Result<i64> {
    let n = number(args, index, usage)?;
    if n.fract() != 0.0 || n.abs() > 9.0e15 {
        return Err(FunctionError::NotWhole {
            argument: index + 1,
            usage,
        });
    }
    Ok(n as i64)
}

fn list<'a>(args: &'a FuncArgs, index: usize, usage: &'static str) -> Result<&'a Vec<Value>> {
    match &args[index] {
        Value::Array(items) => Ok(items),
        other => Err(wrong(index, "a list", other, usage)),
    }
}

fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// `range(limit)`, `range(start, limit)`, `range(start, limit, step)`: the
/// numbers from `start` (default 0) up to but not including `limit`. The step
/// defaults to 1, or -1 when `start` > `limit`; a step against the direction
/// gives an empty list. At most 1024 numbers.
pub fn range(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "range(limit), range(start, limit) or range(start, limit, step)";
    arity(&args, USAGE, 1, 3)?;
    let (start, limit) = match args.len() {
        1 => (0.0, number(&args, 0, USAGE)?),
        _ => (number(&args, 0, USAGE)?, number(&args, 1, USAGE)?),
    };
    let step = match args.len() {
        3 => number(&args, 2, USAGE)?,
        _ if start > limit => -1.0,
        _ => 1.0,
    };
    if step == 0.0 {
        return Err(FunctionError::ZeroStep { usage: USAGE });
    }
    let mut values = Vec::new();
    let mut at = start;
    while (step > 0.0 && at < limit) || (step < 0.0 && at > limit) {
        if values.len() == 1024 {
            return Err(FunctionError::TooManyNumbers);
        }
        values.push(number_value(at));
        at = start + step * values.len() as f64;
    }
    Ok(Value::Array(values))
}

/// `substr(string, offset, length)`, in characters. A negative offset counts
/// from the end; a negative length (`-1`) takes the rest; an offset past the
/// end gives "".
pub fn substr(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "substr(string, offset, length)";
    arity(&args, USAGE, 3, 3)?;
    let text = string(&args, 0, USAGE)?;
    let (offset, length) = (whole(&args, 1, USAGE)?, whole(&args, 2, USAGE)?);
    let count = text.chars().count() as i64;
    let start = if offset < 0 {
        (count + offset).max(0)
    } else {
        offset.min(count)
    };
    let taken: String = if length < 0 {
        text.chars().skip(start as usize).collect()
    } else {
        text.chars()
            .skip(start as usize)
            .take(length as usize)
            .collect()
    };
    Ok(Value::String(taken))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `base64encode(string)`: the UTF-8 bytes in standard Base64, with padding.
pub fn base64encode(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "base64encode(string)";
    arity(&args, USAGE, 1, 1)?;
    let bytes = string(&args, 0, USAGE)?.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    Ok(Value::String(out))
}

/// `base64decode(string)`: standard Base64 (padding required) to UTF-8 text.
pub fn base64decode(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "base64decode(string)";
    arity(&args, USAGE, 1, 1)?;
    let text = string(&args, 0, USAGE)?.as_bytes();
    let invalid = || FunctionError::InvalidBase64;
    if text.len() % 4 != 0 {
        return Err(invalid());
    }
    let mut bytes = Vec::with_capacity(text.len() / 4 * 3);
    for (index, chunk) in text.chunks(4).enumerate() {
        let last = index == text.len() / 4 - 1;
        let padding = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return Err(invalid());
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - padding] {
            let digit = BASE64.iter().position(|&b| b == c).ok_or_else(invalid)?;
            n = (n << 6) | digit as u32;
        }
        n <<= 6 * padding as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        bytes.extend_from_slice(&decoded[..3 - padding]);
    }
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| FunctionError::DecodedNotUtf8)
}

fn compile(pattern: &str, usage: &'static str) -> Result<regex_lite::Regex> {
    regex_lite::Regex::new(pattern).map_err(|error| FunctionError::InvalidRegex { error, usage })
}

/// One match as Terraform gives it: the matched text without capture groups;
/// a list of the groups when they are unnamed; a map when they are named
/// (an unmatched optional group is null).
fn match_value(re: &regex_lite::Regex, captures: &regex_lite::Captures<'_>) -> Result<Value> {
    let groups = re.captures_len() - 1;
    if groups == 0 {
        return Ok(Value::from(captures.get(0).map_or("", |m| m.as_str())));
    }
    let named: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    let group = |i: usize| {
        captures
            .get(i)
            .map_or(Value::Null, |m| Value::from(m.as_str()))
    };
    if named.iter().all(Option::is_some) {
        let mut map = Map::new();
        for (i, name) in named.iter().enumerate() {
            map.insert(name.unwrap_or_default().to_string(), group(i + 1));
        }
        Ok(Value::Object(map))
    } else if named.iter().all(Option::is_none) {
        Ok(Value::Array((1..=groups).map(group).collect()))
    } else {
        Err(FunctionError::MixedGroups)
    }
}

/// `regex(pattern, string)`: the first match (see [`match_value`]); no match
/// is an error.
pub fn regex(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "regex(pattern, string)";
    arity(&args, USAGE, 2, 2)?;
    let re = compile(string(&args, 0, USAGE)?, USAGE)?;
    let captures = re
        .captures(string(&args, 1, USAGE)?)
        .ok_or(FunctionError::NoMatch)?;
    match_value(&re, &captures)
}

/// `regexall(pattern, string)`: every match, as a list (empty when none).
pub fn regexall(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "regexall(pattern, string)";
    arity(&args, USAGE, 2, 2)?;
    let re = compile(string(&args, 0, USAGE)?, USAGE)?;
    re.captures_iter(string(&args, 1, USAGE)?)
        .map(|c| match_value(&re, &c))
        .collect::<Result<Vec<_>>>()
        .map(Value::Array)
}

/// `coalesce(a, b, ...)`: the first argument that is neither null nor "".
pub fn coalesce(args: FuncArgs) -> Result<Value> {
    arity(&args, "coalesce(value, ...)", 1, usize::MAX)?;
    args.iter()
        .find(|v| !matches!(v, Value::Null) && !matches!(v, Value::String(s) if s.is_empty()))
        .cloned()
        .ok_or(FunctionError::AllEmpty)
}

/// `lookup(map, key, default)`: the map's value for `key`, or `default`.
/// Without a default a missing key is an error.
pub fn lookup(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "lookup(map, key, default)";
    arity(&args, USAGE, 2, 3)?;
    let Value::Object(map) = &args[0] else {
        return Err(wrong(0, "a map", &args[0], USAGE));
    };
    let key = match &args[1] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => return Err(wrong(1, "a string", other, USAGE)),
    };
    match (map.get(&key), args.get(2)) {
        (Some(value), _) => Ok(value.clone()),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(FunctionError::NoSuchKey),
    }
}

/// `flatten(list)`: nested lists replaced by their elements, at any depth.
pub fn flatten(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "flatten(list)";
    arity(&args, USAGE, 1, 1)?;
    fn into(items: &[Value], out: &mut Vec<Value>) {
        for item in items {
            match item {
                Value::Array(inner) => into(inner, out),
                other => out.push(other.clone()),
            }
        }
    }
    let mut out = Vec::new();
    into(list(&args, 0, USAGE)?, &mut out);
    Ok(Value::Array(out))
}

/// `distinct(list)`: the list without repeated elements, first ones kept.
pub fn distinct(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "distinct(list)";
    arity(&args, USAGE, 1, 1)?;
    let mut out: Vec<Value> = Vec::new();
    for item in list(&args, 0, USAGE)? {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    Ok(Value::Array(out))
}

/// `element(list, index)`: an index past the end wraps around (index modulo
/// the length); a negative index or an empty list is an error.
pub fn element(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "element(list, index)";
    arity(&args, USAGE, 2, 2)?;
    let items = list(&args, 0, USAGE)?;
    let index = whole(&args, 1, USAGE)?;
    if items.is_empty() {
        return Err(FunctionError::EmptyList);
    }
    if index < 0 {
        return Err(FunctionError::NegativeIndex);
    }
    Ok(items[(index as usize) % items.len()].clone())
}

/// `slice(list, start, end)`: elements from `start` up to but not including
/// `end`; both within 0..=length and start <= end.
pub fn slice(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "slice(list, start_index, end_index)";
    arity(&args, USAGE, 3, 3)?;
    let items = list(&args, 0, USAGE)?;
    let (start, end) = (whole(&args, 1, USAGE)?, whole(&args, 2, USAGE)?);
    if start < 0 {
        return Err(FunctionError::NegativeStart);
    }
    if end > items.len() as i64 {
        return Err(FunctionError::EndPastLength {
            length: items.len(),
        });
    }
    if start > end {
        return Err(FunctionError::StartAfterEnd);
    }
    Ok(Value::Array(items[start as usize..end as usize].to_vec()))
}

/// `zipmap(keys, values)`: a map from a list of string keys and a list of
/// values of the same length (a repeated key keeps its last value).
pub fn zipmap(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "zipmap(keys, values)";
    arity(&args, USAGE, 2, 2)?;
    let (keys, values) = (list(&args, 0, USAGE)?, list(&args, 1, USAGE)?);
    if keys.len() != values.len() {
        return Err(FunctionError::LengthMismatch {
            keys: keys.len(),
            values: values.len(),
        });
    }
    let mut map = Map::new();
    for (key, value) in keys.iter().zip(values) {
        let key = match key {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                return Err(FunctionError::KeyNotString {
                    found: type_name(other),
                })
            }
        };
        map.insert(key, value.clone());
    }
    Ok(Value::Object(map))
}

/// `startswith(string, prefix)`.
pub fn startswith(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "startswith(string, prefix)";
    arity(&args, USAGE, 2, 2)?;
    Ok(Value::Bool(
        string(&args, 0, USAGE)?.starts_with(string(&args, 1, USAGE)?),
    ))
}

/// `endswith(string, suffix)`.
pub fn endswith(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "endswith(string, suffix)";
    arity(&args, USAGE, 2, 2)?;
    Ok(Value::Bool(
        string(&args, 0, USAGE)?.ends_with(string(&args, 1, USAGE)?),
    ))
}

// ---- format ---------------------------------------------------------------

/// One `%` directive: flags, width, precision, argument index and verb.
#[derive(Default)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Spec {
    /// `body` padded to the width: spaces on the left (or right with `-`),
    /// or zeros after the sign with `0` (numbers only).
    fn pad(&self, body: String, numeric: bool) -> String {
        let len = body.chars().count();
        let Some(width) = self.width.filter(|w| *w > len) else {
            return body;
        };
        let fill = width - len;
        if self.minus {
            format!("{body}{}", " ".repeat(fill))
        } else if self.zero && numeric {
            let sign_len = usize::from(body.starts_with(['-', '+', ' ']));
            format!(
                "{}{}{}",
                &body[..sign_len],
                "0".repeat(fill),
                &body[sign_len..]
            )
        } else {
            format!("{}{body}", " ".repeat(fill))
        }
    }

    fn sign(&self, negative: bool) -> &'static str {
        match (negative, self.plus, self.space) {
            (true, _, _) => "-",
            (false, true, _) => "+",
            (false, false, true) => " ",
            _ => "",
        }
    }
}

/// `format(spec, values...)`: Terraform's (Go's) verbs with flags (`-`, `+`,
/// space, `0`, `#`), width, precision and `%[n]` argument indexes: `%v`
/// (`%#v` JSON), `%t`, `%d`, `%b`, `%o`, `%x`, `%X`, `%e`, `%E`, `%f`, `%g`,
/// `%G`, `%s`, `%q`, `%%`.
pub fn format(args: FuncArgs) -> Result<Value> {
    const USAGE: &str = "format(spec, values...)";
    arity(&args, USAGE, 1, usize::MAX)?;
    let spec = string(&args, 0, USAGE)?;
    let values = &args[1..];
    let mut next = 0usize;
    let mut used = vec![false; values.len()];
    let mut out = String::new();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut directive = Spec::default();
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => directive.minus = true,
                '+' => directive.plus = true,
                ' ' => directive.space = true,
                '0' => directive.zero = true,
                '#' => directive.sharp = true,
                _ => break,
            }
            chars.next();
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            let digits: String = chars.by_ref().take_while(|c| *c != ']').collect();
            let index: usize = digits.parse().ok().filter(|i| *i >= 1).ok_or_else(|| {
                FunctionError::BadArgumentIndex {
                    digits: digits.clone(),
                }
            })?;
            next = index - 1;
        }
        let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let mut n: Option<usize> = None;
            while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
                chars.next();
            }
            n
        };
        directive.width = digits(&mut chars);
        if chars.peek() == Some(&'.') {
            chars.next();
            directive.precision = Some(digits(&mut chars).unwrap_or(0));
        }
        let verb = chars.next().ok_or(FunctionError::UnfinishedDirective)?;
        let value = values.get(next).ok_or(FunctionError::NotEnoughArguments {
            verb,
            argument: next + 2,
        })?;
        used[next] = true;
        next += 1;
        out.push_str(&format_one(&directive, verb, value)?);
    }
    if used.iter().any(|u| !u) {
        return Err(FunctionError::TooManyArguments {
            used: used.iter().filter(|u| **u).count(),
            given: values.len(),
        });
    }
    Ok(Value::String(out))
}

fn format_one(spec: &Spec, verb: char, value: &Value) -> Result<String> {
    let number = |value: &Value| -> Result<f64> {
        match value {
            Value::Number(n) => n.as_f64().ok_or(FunctionError::NumberOutOfRange),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| FunctionError::NeedsNumber {
                    verb,
                    found: "a string",
                }),
            other => Err(FunctionError::NeedsNumber {
                verb,
                found: type_name(other),
            }),
        }
    };
    let integer = |value: &Value| -> Result<i128> {
        let n = number(value)?;
        if n.fract() != 0.0 {
            return Err(FunctionError::NeedsWholeNumber { verb });
        }
        Ok(n as i128)
    };
    let text = |value: &Value| -> Result<String> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Err(FunctionError::FormatsNull { verb }),
            other => Err(FunctionError::NeedsString {
                verb,
                found: type_name(other),
            }),
        }
    };
    let precise = |s: String| match spec.precision {
        Some(p) => s.chars().take(p).collect(),
        None => s,
    };
    Ok(match verb {
        'v' if spec.sharp => spec.pad(to_json(value).to_string(), false),
        'v' => match value {
            Value::String(s) => spec.pad(precise(s.clone()), false),
            Value::Number(_) => format_one(spec, 'g', value)?,
            Value::Bool(b) => spec.pad(b.to_string(), false),
            Value::Null => spec.pad("null".to_string(), false),
            other => spec.pad(to_json(other).to_string(), false),
        },
        't' => match value {
            Value::Bool(b) => spec.pad(b.to_string(), false),
            Value::String(s) if s == "true" || s == "false" => spec.pad(s.clone(), false),
            other => {
                return Err(FunctionError::NeedsBool {
                    found: type_name(other),
                })
            }
        },
        'd' | 'b' | 'o' | 'x' | 'X'
            if !matches!(value, Value::String(_)) || verb == 'd' || verb == 'b' || verb == 'o' =>
        {
            let n = integer(value)?;
            let digits = match verb {
                'd' => n.unsigned_abs().to_string(),
                'b' => format!("{:b}", n.unsigned_abs()),
                'o' => format!("{:o}", n.unsigned_abs()),
                'x' => format!("{:x}", n.unsigned_abs()),
                _ => format!("{:X}", n.unsigned_abs()),
            };
            let prefix = match (spec.sharp, verb) {
                (true, 'b') => "0b",
                (true, 'o') => "0",
                (true, 'x') => "0x",
                (true, 'X') => "0X",
                _ => "",
            };
            let digits = match spec.precision {
                Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
                _ => digits,
            };
            spec.pad(format!("{}{prefix}{digits}", spec.sign(n < 0)), true)
        }
        // %x and %X of a string: its bytes in hexadecimal.
        'x' | 'X' => {
            let s = precise(text(value)?);
            let hex = hex::encode(s.as_bytes());
            spec.pad(if verb == 'X' { hex.to_uppercase() } else { hex }, false)
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let n = number(value)?;
            let body = match verb {
                'f' | 'F' => format!("{:.*}", spec.precision.unwrap_or(6), n.abs()),
                'e' | 'E' => exponent(n.abs(), spec.precision.unwrap_or(6), verb == 'E'),
                _ => general(n.abs(), spec.precision, verb == 'G'),
            };
            spec.pad(
                format!(
                    "{}{body}",
                    spec.sign(n < 0.0 || (n == 0.0 && n.is_sign_negative()))
                ),
                true,
            )
        }
        's' => spec.pad(precise(text(value)?), false),
        'q' => spec.pad(
            serde_json::to_string(&precise(text(value)?)).unwrap_or_default(),
            false,
        ),
        other => return Err(FunctionError::UnsupportedVerb { verb: other }),
    })
}

/// `n` (not negative) as Go's `%e`: `1.234560e+03`.
fn exponent(n: f64, precision: usize, upper: bool) -> String {
    let text = format!("{n:.precision$e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let e = if upper { 'E' } else { 'e' };
    format!(
        "{mantissa}{e}{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

/// `n` (not negative) as Go's `%g`: the shortest text that reads back as
/// the same number, in exponent form for very large or small numbers (or
/// `precision` significant digits).
fn general(n: f64, precision: Option<usize>, upper: bool) -> String {
    let exp = if n == 0.0 {
        0
    } else {
        n.log10().floor() as i32
    };
    match precision {
        None => {
            if n != 0.0 && !(-4..21).contains(&exp) {
                let shortest = format!("{n:e}");
                let (mantissa, e) = shortest.split_once('e').unwrap_or((&shortest, "0"));
                let e: i32 = e.parse().unwrap_or(0);
                let letter = if upper { 'E' } else { 'e' };
                format!(
                    "{mantissa}{letter}{}{:02}",
                    if e < 0 { '-' } else { '+' },
                    e.abs()
                )
            } else {
                format!("{n}")
            }
        }
        Some(p) => {
            let p = p.max(1);
            if exp < -4 || exp >= p as i32 {
                let text = exponent(n, p - 1, upper);
                trim_zeros_exponent(&text)
            } else {
                let decimals = (p as i32 - 1 - exp).max(0) as usize;
                let text = format!("{n:.decimals$}");
                if text.contains('.') {
                    text.trim_end_matches('0').trim_end_matches('.').to_string()
                } else {
                    text
                }
            }
        }
    }
}

fn trim_zeros_exponent(text: &str) -> String {
    match text.find(['e', 'E']) {
        Some(at) if text[..at].contains('.') => {
            let mantissa = text[..at].trim_end_matches('0').trim_end_matches('.');
            format!("{mantissa}{}", &text[at..])
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::eval::{evaluate, function_context};
    use hcl::Value;

    fn eval(source: &str) -> Result<Value, String> {
        let expr: hcl::Expression = source.parse().map_err(|e: hcl::Error| e.to_string())?;
        evaluate(&expr, &function_context()).map_err(|e| e.to_string())
    }

    fn ok(source: &str) -> Value {
        eval(source).unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    fn err(source: &str) -> String {
        match eval(source) {
            Ok(value) => panic!("{source} gave {value}"),
            Err(e) => e,
        }
    }

    #[test]
    fn range_counts_like_terraform() {
        assert_eq!(ok("range(3)"), hcl::value!([0, 1, 2]));
        assert_eq!(ok("range(1, 4)"), hcl::value!([1, 2, 3]));
        assert_eq!(ok("range(4, 1)"), hcl::value!([4, 3, 2]));
        assert_eq!(ok("range(0, 10, 4)"), hcl::value!([0, 4, 8]));
        assert_eq!(ok("range(0, 1, 0.25)"), hcl::value!([0, 0.25, 0.5, 0.75]));
        assert_eq!(ok("range(0)"), hcl::value!([]));
        assert_eq!(ok("range(1, 4, -1)"), hcl::value!([]));
        assert!(err("range(1, 2, 0)").contains("step must not be zero"));
        assert!(err("range(2000)").contains("more than 1024"));
        assert!(err("range()").contains("takes 1 to 3 arguments, got 0"));
        assert!(err("range(\"a\")").contains("argument 1 must be a number, not a string"));
    }

    #[test]
    fn format_has_flags_width_and_precision() {
        assert_eq!(ok(r#"format("%-10s|", "ab")"#), Value::from("ab        |"));
        assert_eq!(ok(r#"format("%10s|", "ab")"#), Value::from("        ab|"));
        assert_eq!(ok(r#"format("%05d", 42)"#), Value::from("00042"));
        assert_eq!(ok(r#"format("%05d", -42)"#), Value::from("-0042"));
        assert_eq!(ok(r#"format("%02d:%02d", 5, 7)"#), Value::from("05:07"));
        assert_eq!(ok(r#"format("%+d % d", 5, 5)"#), Value::from("+5  5"));
        assert_eq!(ok(r#"format("%.2f", 3.14159)"#), Value::from("3.14"));
        assert_eq!(
            ok(r#"format("%8.3f|", -3.14159)"#),
            Value::from("  -3.142|")
        );
        assert_eq!(ok(r#"format("%.3s", "abcdef")"#), Value::from("abc"));
        assert_eq!(
            ok(r#"format("%x %X %o %b", 255, 255, 8, 5)"#),
            Value::from("ff FF 10 101")
        );
        assert_eq!(ok(r#"format("%#x", 255)"#), Value::from("0xff"));
        assert_eq!(ok(r#"format("%x", "hi")"#), Value::from("6869"));
        assert_eq!(
            ok(r#"format("%e", 1234.5678)"#),
            Value::from("1.234568e+03")
        );
        assert_eq!(
            ok(r#"format("%g %g", 1.5, 100000000000000000000000)"#),
            Value::from("1.5 1e+23")
        );
        assert_eq!(
            ok(r#"format("%t %v %v", true, 3, [1, "a"])"#),
            Value::from(r#"true 3 [1,"a"]"#)
        );
        assert_eq!(ok(r#"format("%#v", "a")"#), Value::from(r#""a""#));
        assert_eq!(ok(r#"format("%q", "a\"b")"#), Value::from(r#""a\"b""#));
        assert_eq!(
            ok(r#"format("%[2]s %[1]s %s", "a", "b")"#),
            Value::from("b a b")
        );
        assert_eq!(ok(r#"format("100%%")"#), Value::from("100%"));
        assert_eq!(ok(r#"format("%d", "12")"#), Value::from("12"));
        assert!(err(r#"format("%d", 1.5)"#).contains("%d needs a whole number"));
        assert!(err(r#"format("%d", true)"#).contains("%d needs a number, not a bool"));
        assert!(err(r#"format("%s %s", "a")"#).contains("not enough arguments"));
        assert!(err(r#"format("%s", "a", "b")"#).contains("too many arguments"));
        assert!(err(r#"format("%y", 1)"#).contains("unsupported verb %y"));
        assert!(err(r#"format("%5")"#).contains("ends in the middle"));
        assert!(err(r#"format()"#).contains("at least 1 argument"));
    }

    #[test]
    fn substr_counts_characters_from_either_end() {
        assert_eq!(ok(r#"substr("hello world", 1, 4)"#), Value::from("ello"));
        assert_eq!(ok(r#"substr("hello world", -5, -1)"#), Value::from("world"));
        assert_eq!(ok(r#"substr("hello world", 6, 10)"#), Value::from("world"));
        assert_eq!(ok(r#"substr("hello", 10, 2)"#), Value::from(""));
        assert_eq!(ok(r#"substr("hello", -10, 2)"#), Value::from("he"));
        assert_eq!(ok(r#"substr("ünï日本", 1, 3)"#), Value::from("nï日"));
        assert!(err(r#"substr("hello", 1)"#).contains("takes 3 arguments, got 2"));
        assert!(err(r#"substr("hello", 1.5, 1)"#).contains("argument 2 must be a whole number"));
        assert!(err(r#"substr(1, 1, 1)"#).contains("argument 1 must be a string, not a number"));
    }

    #[test]
    fn base64_round_trips() {
        for (text, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("Hello World", "SGVsbG8gV29ybGQ="),
            ("ünï", "w7xuw68="),
        ] {
            assert_eq!(ok(&format!("base64encode({text:?})")), Value::from(encoded));
            assert_eq!(ok(&format!("base64decode({encoded:?})")), Value::from(text));
        }
        assert!(err(r#"base64decode("Zg=")"#).contains("not valid Base64"));
        assert!(err(r#"base64decode("Z===")"#).contains("not valid Base64"));
        assert!(err(r#"base64decode("/w==")"#).contains("not UTF-8"));
        assert!(err(r#"base64encode(["a"])"#).contains("must be a string, not a list"));
    }

    #[test]
    fn regex_returns_what_terraform_returns() {
        assert_eq!(
            ok(r#"regex("[a-z]+", "53453453.345345aaabbbccc23454")"#),
            Value::from("aaabbbccc")
        );
        assert_eq!(
            ok(r#"regex("(\\d\\d\\d\\d)-(\\d\\d)-(\\d\\d)", "2019-02-01")"#),
            hcl::value!(["2019", "02", "01"])
        );
        assert_eq!(
            ok(
                r#"regex("^(?:(?P<scheme>[^:/?#]+):)?(?://(?P<authority>[^/?#]*))?", "https://example.com/x")"#
            ),
            hcl::value!({ scheme = "https", authority = "example.com" })
        );
        assert_eq!(ok(r#"regex("a(b)?", "a")"#), hcl::value!([null]));
        assert!(err(r#"regex("x", "abc")"#).contains("did not match"));
        assert!(err(r#"regex("(", "abc")"#).contains("invalid regular expression"));
        assert!(err(r#"regex("(?P<a>x)(y)", "xy")"#).contains("only named or only unnamed"));
        assert_eq!(
            ok(r#"regexall("[a-z]+", "1a2bb3")"#),
            hcl::value!(["a", "bb"])
        );
        assert_eq!(ok(r#"length(regexall("z", "abc"))"#), Value::from(0));
    }

    #[test]
    fn collections() {
        assert_eq!(ok(r#"coalesce(null, "", "b", "c")"#), Value::from("b"));
        assert_eq!(ok(r#"coalesce(null, 1)"#), Value::from(1));
        assert!(err(r#"coalesce(null, "")"#).contains("null or an empty string"));
        assert_eq!(ok(r#"lookup({ a = 1 }, "a", 0)"#), Value::from(1));
        assert_eq!(ok(r#"lookup({ a = 1 }, "b", 0)"#), Value::from(0));
        assert!(err(r#"lookup({ a = 1 }, "b")"#).contains("no such key"));
        assert!(err(r#"lookup([1], "b", 0)"#).contains("argument 1 must be a map, not a list"));
        assert_eq!(ok(r#"flatten([[1, [2]], [], 3])"#), hcl::value!([1, 2, 3]));
        assert_eq!(
            ok(r#"distinct(["a", "b", "a", "c", "b"])"#),
            hcl::value!(["a", "b", "c"])
        );
        assert_eq!(ok(r#"element(["a", "b", "c"], 1)"#), Value::from("b"));
        assert_eq!(ok(r#"element(["a", "b", "c"], 5)"#), Value::from("c"));
        assert!(err(r#"element(["a"], -1)"#).contains("must not be negative"));
        assert!(err(r#"element([], 0)"#).contains("the list is empty"));
        assert_eq!(
            ok(r#"slice(["a", "b", "c", "d"], 1, 3)"#),
            hcl::value!(["b", "c"])
        );
        assert_eq!(ok(r#"slice(["a"], 1, 1)"#), hcl::value!([]));
        assert!(err(r#"slice(["a"], 0, 2)"#).contains("greater than the length"));
        assert!(err(r#"slice(["a", "b"], 2, 1)"#).contains("start_index must not be greater"));
        assert!(err(r#"slice(["a"], -1, 1)"#).contains("must not be negative"));
        assert_eq!(
            ok(r#"zipmap(["a", "b"], [1, 2])"#),
            hcl::value!({ a = 1, b = 2 })
        );
        assert!(err(r#"zipmap(["a"], [1, 2])"#).contains("1 keys but 2 values"));
        assert_eq!(ok(r#"startswith("hello", "he")"#), Value::from(true));
        assert_eq!(ok(r#"endswith("hello", "he")"#), Value::from(false));
        assert!(err(r#"startswith("hello")"#).contains("takes 2 arguments, got 1"));
    }

    #[test]
    fn try_returns_the_first_argument_that_evaluates() {
        assert_eq!(
            ok(r#"try({ a = 1 }.b, "fallback")"#),
            Value::from("fallback")
        );
        assert_eq!(ok(r#"try({ a = 1 }.a, "fallback")"#), Value::from(1));
        assert_eq!(ok(r#""x-${try(upper(1), "y")}""#), Value::from("x-y"));
        assert_eq!(ok(r#"try(try([][0], null), "z")"#), Value::Null);
        assert_eq!(
            ok(r#"[for x in [1, 2] : try(x + 1, 0)]"#),
            hcl::value!([2, 3])
        );
        assert!(err(r#"try({}.a, [][1])"#).contains("no argument of try() evaluated"));
        assert!(err(r#"try()"#).contains("at least 1 argument"));
    }
}
