//! Expression evaluation: the function library and reference discovery.
//!
//! Evaluation itself is hcl-rs's; this module supplies the functions the
//! language offers (`file`, `templatefile`, `sha256`, `jsonencode`, ...; their
//! refusals are [`EvalError`]s, given to hcl-rs as messages), finds
//! the references an expression makes (`var.x`, `local.y`, `deployment.z`) so the
//! loader can check them before evaluating, and turns values into JSON. Reading
//! files for `file`/`templatefile` is the only I/O, always below the directory
//! of the configuration being evaluated.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use hcl::edit::expr::{Expression as EditExpr, TraversalOperator};
use hcl::edit::visit::{self, Visit};
use hcl::edit::visit_mut;
use hcl::edit::Span as _;
use hcl::eval::{Context, Func, FuncArgs, FuncDef, ParamType};
use hcl::Value;
use sha2::{Digest, Sha256};

use super::arithmetic;
use crate::diagnostics::{FileId, Span};

/// Why a function of this module refuses its arguments. The message is what
/// hcl-rs reports for the call.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file `file` or `templatefile` reads cannot be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// A template file that does not parse.
    #[error("template \"{path}\" is invalid: {error}")]
    InvalidTemplate { path: String, error: hcl::Error },
    /// A template that does not evaluate with the variables given.
    #[error("template \"{path}\": {error}")]
    Template {
        path: String,
        error: hcl::eval::Error,
    },
    /// An argument that must be a string (`argument` counts from 1).
    #[error("argument {argument} must be a string")]
    NotAString { argument: usize },
    /// `jsonencode` of a value JSON cannot hold.
    #[error("{0}")]
    JsonEncode(serde_json::Error),
    /// `jsondecode` of text that is not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(serde_json::Error),
    /// `jsondecode` of JSON that is no HCL value.
    #[error("{0}")]
    JsonValue(hcl::Error),
    /// `shellquote` of text holding NUL.
    #[error("shellquote: a NUL byte cannot be part of a shell word")]
    NulInShellWord,
    /// A list or map where a string is needed.
    #[error("cannot use {found} as a string")]
    NotScalar { found: &'static str },
    /// `join` given something other than lists.
    #[error("join(separator, list): the list must be a list")]
    JoinNotList,
    /// `length` of a value that has none.
    #[error("length of {found} is undefined")]
    NoLength { found: &'static str },
    /// `merge` given something other than maps.
    #[error("merge takes maps, got {found}")]
    MergeNotMap { found: &'static str },
    /// `concat` given something other than lists.
    #[error("concat takes lists, got {found}")]
    ConcatNotList { found: &'static str },
    /// `contains` of something other than a list.
    #[error("contains takes a list, got {found}")]
    ContainsNotList { found: &'static str },
    /// `keys` of something other than a map.
    #[error("keys takes a map, got {found}")]
    KeysNotMap { found: &'static str },
    /// `values` of something other than a map.
    #[error("values takes a map, got {found}")]
    ValuesNotMap { found: &'static str },
    /// `try()` without arguments.
    #[error("takes at least 1 argument, got 0: try(expression, ...)")]
    TryWithoutArguments,
}

/// Why a file `file` or `templatefile` names cannot be read. Kept in the
/// per-load cache with the files read, so it is `Clone`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FileError {
    /// The file cannot be read (`path` as the configuration wrote it).
    #[error("cannot read \"{path}\": {problem}")]
    Unreadable { path: String, problem: ReadProblem },
    /// The file is not UTF-8 text.
    #[error("\"{path}\" is not UTF-8 text")]
    NotUtf8 { path: String },
}

/// Why `read_regular_file` refuses a file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadProblem {
    /// Opening or reading it failed.
    #[error("{0}")]
    Io(Rc<std::io::Error>),
    /// A device, FIFO, directory...
    #[error("not a regular file")]
    NotRegular,
    /// Larger than `MAX_FILE_BYTES`.
    #[error("{bytes} bytes, more than the {} MiB a configuration may read from one file", MAX_FILE_BYTES / (1024 * 1024))]
    TooLarge { bytes: u64 },
    /// It grew past `MAX_FILE_BYTES` while it was read.
    #[error("the file grew past the size limit while it was read")]
    Grew,
}

impl From<std::io::Error> for ReadProblem {
    fn from(error: std::io::Error) -> ReadProblem {
        ReadProblem::Io(Rc::new(error))
    }
}

/// A function of this module or of [`super::functions`] as hcl-rs calls it:
/// hcl-rs takes an error as its message.
macro_rules! hcl_func {
    ($f:path) => {{
        let f: Func = |args| $f(args).map_err(|e| e.to_string());
        f
    }};
}

thread_local! {
    /// Directory that relative paths in `file` and `templatefile` resolve against.
    static BASE_DIR: RefCell<PathBuf> = RefCell::new(PathBuf::from("."));
    /// Files read by functions, so the configuration digest covers them.
    static FILES_READ: RefCell<Vec<(PathBuf, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` with relative function paths resolved against `dir`.
pub fn with_base_dir<T>(dir: &Path, f: impl FnOnce() -> T) -> T {
    let previous = BASE_DIR.with(|b| b.replace(dir.to_path_buf()));
    let result = f();
    BASE_DIR.with(|b| *b.borrow_mut() = previous);
    result
}

/// Files read by `file`/`templatefile` since the last call, with their content.
pub fn take_files_read() -> Vec<(PathBuf, Vec<u8>)> {
    FILES_READ.with(|f| std::mem::take(&mut *f.borrow_mut()))
}

thread_local! {
    /// Files read by functions in this load, by full path (each read once).
    static FILE_CACHE: RefCell<HashMap<PathBuf, Result<Rc<str>, FileError>>> = RefCell::new(HashMap::new());
    /// Templates parsed in this load, by full path.
    static TEMPLATE_CACHE: RefCell<HashMap<PathBuf, Rc<hcl::Template>>> = RefCell::new(HashMap::new());
    /// The function library, built once per thread.
    static FUNCTIONS: Context<'static> = build_function_context();
}

/// Forget files and templates read by an earlier load (they may have changed).
pub fn reset_caches() {
    FILE_CACHE.with(|c| c.borrow_mut().clear());
    TEMPLATE_CACHE.with(|c| c.borrow_mut().clear());
    FILES_READ.with(|f| f.borrow_mut().clear());
}

fn full_path(path: &str) -> PathBuf {
    BASE_DIR.with(|b| b.borrow().join(Path::new(path)))
}

fn read_relative(path: &str) -> Result<Rc<str>, FileError> {
    let full = full_path(path);
    if let Some(cached) = FILE_CACHE.with(|c| c.borrow().get(&full).cloned()) {
        return cached;
    }
    let result = read_regular_file(&full)
        .map_err(|problem| FileError::Unreadable {
            path: path.to_string(),
            problem,
        })
        .and_then(|bytes| {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| FileError::NotUtf8 {
                    path: path.to_string(),
                })?
                .into();
            FILES_READ.with(|f| f.borrow_mut().push((full.clone(), bytes)));
            Ok(text)
        });
    FILE_CACHE.with(|c| c.borrow_mut().insert(full, result.clone()));
    result
}

/// The most `file()` and `templatefile()` read from one file.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The bytes of a regular file of at most [`MAX_FILE_BYTES`]: a device, a
/// FIFO or a directory is refused before anything is read from it.
fn read_regular_file(path: &Path) -> Result<Vec<u8>, ReadProblem> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(ReadProblem::NotRegular);
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(ReadProblem::TooLarge {
            bytes: metadata.len(),
        });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadProblem::Grew);
    }
    Ok(bytes)
}

fn parsed_template(path: &str) -> Result<Rc<hcl::Template>, EvalError> {
    let full = full_path(path);
    if let Some(template) = TEMPLATE_CACHE.with(|c| c.borrow().get(&full).cloned()) {
        return Ok(template);
    }
    let text = read_relative(path)?;
    let mut template: hcl::edit::template::Template = text.parse().map_err(
        |error: hcl::edit::parser::Error| EvalError::InvalidTemplate {
            path: path.to_string(),
            error: hcl::Error::from(error),
        },
    )?;
    visit_mut::VisitMut::visit_template_mut(&mut arithmetic::Rewrite, &mut template);
    let template = hcl::Template::from(template);
    let template = Rc::new(template);
    TEMPLATE_CACHE.with(|c| c.borrow_mut().insert(full, template.clone()));
    Ok(template)
}

fn str_arg(args: &FuncArgs, index: usize) -> Result<&str, EvalError> {
    args.get(index)
        .and_then(Value::as_str)
        .ok_or(EvalError::NotAString {
            argument: index + 1,
        })
}

fn fn_file(args: FuncArgs) -> Result<Value, EvalError> {
    Ok(Value::String(
        read_relative(str_arg(&args, 0)?)?.to_string(),
    ))
}

fn fn_templatefile(args: FuncArgs) -> Result<Value, EvalError> {
    let path = str_arg(&args, 0)?;
    let template = parsed_template(path)?;
    let mut context = function_context();
    if let Some(Value::Object(vars)) = args.get(1) {
        for (name, value) in vars {
            context.declare_var(name.as_str(), value.clone());
        }
    }
    use hcl::eval::Evaluate;
    template
        .evaluate(&context)
        .map(Value::String)
        .map_err(|error| EvalError::Template {
            path: path.to_string(),
            error: arithmetic::plain_error(error),
        })
}

fn fn_sha256(args: FuncArgs) -> Result<Value, EvalError> {
    Ok(Value::String(hex::encode(Sha256::digest(
        str_arg(&args, 0)?.as_bytes(),
    ))))
}

fn fn_jsonencode(args: FuncArgs) -> Result<Value, EvalError> {
    let value = to_json(&args[0]);
    serde_json::to_string(&value)
        .map(Value::String)
        .map_err(EvalError::JsonEncode)
}

fn fn_jsondecode(args: FuncArgs) -> Result<Value, EvalError> {
    let json: serde_json::Value =
        serde_json::from_str(str_arg(&args, 0)?).map_err(EvalError::InvalidJson)?;
    hcl::to_value(json).map_err(EvalError::JsonValue)
}

fn fn_lower(args: FuncArgs) -> Result<Value, EvalError> {
    Ok(Value::String(str_arg(&args, 0)?.to_lowercase()))
}

fn fn_upper(args: FuncArgs) -> Result<Value, EvalError> {
    Ok(Value::String(str_arg(&args, 0)?.to_uppercase()))
}

fn fn_trimspace(args: FuncArgs) -> Result<Value, EvalError> {
    Ok(Value::String(str_arg(&args, 0)?.trim().to_string()))
}

/// The value as one POSIX shell word, always in single quotes (each `'` as
/// `'\''`): interpolated into a `command`, the shell gives back exactly the
/// value, whatever it holds. NUL cannot be in a shell word at all.
fn fn_shellquote(args: FuncArgs) -> Result<Value, EvalError> {
    let value = str_arg(&args, 0)?;
    if value.contains('\0') {
        return Err(EvalError::NulInShellWord);
    }
    Ok(Value::String(format!("'{}'", value.replace('\'', "'\\''"))))
}

fn fn_replace(args: FuncArgs) -> Result<Value, EvalError> {
    let (text, from, to) = (str_arg(&args, 0)?, str_arg(&args, 1)?, str_arg(&args, 2)?);
    Ok(Value::String(text.replace(from, to)))
}

fn scalar_to_string(value: &Value) -> Result<String, EvalError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(EvalError::NotScalar {
            found: type_name(other),
        }),
    }
}

fn fn_tostring(args: FuncArgs) -> Result<Value, EvalError> {
    scalar_to_string(&args[0]).map(Value::String)
}

fn fn_join(args: FuncArgs) -> Result<Value, EvalError> {
    let separator = str_arg(&args, 0)?;
    let mut parts = Vec::new();
    for list in args.iter().skip(1) {
        let Value::Array(items) = list else {
            return Err(EvalError::JoinNotList);
        };
        for item in items {
            parts.push(scalar_to_string(item)?);
        }
    }
    Ok(Value::String(parts.join(separator)))
}

fn fn_split(args: FuncArgs) -> Result<Value, EvalError> {
    let (separator, text) = (str_arg(&args, 0)?, str_arg(&args, 1)?);
    if separator.is_empty() {
        // As Terraform: one string per character.
        return Ok(Value::Array(
            text.chars().map(|c| Value::String(c.to_string())).collect(),
        ));
    }
    Ok(Value::Array(
        text.split(separator)
            .map(|s| Value::String(s.to_string()))
            .collect(),
    ))
}

fn fn_length(args: FuncArgs) -> Result<Value, EvalError> {
    let length = match &args[0] {
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        Value::String(s) => s.chars().count(),
        other => {
            return Err(EvalError::NoLength {
                found: type_name(other),
            })
        }
    };
    Ok(Value::from(length as u64))
}

fn fn_merge(args: FuncArgs) -> Result<Value, EvalError> {
    let mut merged = hcl::Map::new();
    for value in args.iter() {
        match value {
            Value::Object(map) => merged.extend(map.clone()),
            Value::Null => {}
            other => {
                return Err(EvalError::MergeNotMap {
                    found: type_name(other),
                })
            }
        }
    }
    Ok(Value::Object(merged))
}

fn fn_concat(args: FuncArgs) -> Result<Value, EvalError> {
    let mut all = Vec::new();
    for value in args.iter() {
        match value {
            Value::Array(items) => all.extend(items.iter().cloned()),
            other => {
                return Err(EvalError::ConcatNotList {
                    found: type_name(other),
                })
            }
        }
    }
    Ok(Value::Array(all))
}

fn fn_contains(args: FuncArgs) -> Result<Value, EvalError> {
    match &args[0] {
        Value::Array(items) => Ok(Value::Bool(items.contains(&args[1]))),
        other => Err(EvalError::ContainsNotList {
            found: type_name(other),
        }),
    }
}

fn fn_keys(args: FuncArgs) -> Result<Value, EvalError> {
    match &args[0] {
        Value::Object(map) => Ok(Value::Array(
            map.keys().map(|k| Value::String(k.clone())).collect(),
        )),
        other => Err(EvalError::KeysNotMap {
            found: type_name(other),
        }),
    }
}

fn fn_values(args: FuncArgs) -> Result<Value, EvalError> {
    match &args[0] {
        Value::Object(map) => Ok(Value::Array(map.values().cloned().collect())),
        other => Err(EvalError::ValuesNotMap {
            found: type_name(other),
        }),
    }
}

/// Names of every function the language offers, for suggestions.
pub const FUNCTION_NAMES: &[&str] = &[
    "base64decode",
    "base64encode",
    "coalesce",
    "concat",
    "contains",
    "distinct",
    "element",
    "endswith",
    "file",
    "flatten",
    "format",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "merge",
    "range",
    "regex",
    "regexall",
    "replace",
    "sha256",
    "shellquote",
    "slice",
    "split",
    "startswith",
    "substr",
    "templatefile",
    "tostring",
    "trimspace",
    "try",
    "upper",
    "values",
    "zipmap",
];

/// Evaluate `expr` in `context`, with checked arithmetic (see
/// [`arithmetic`](super::arithmetic)) and `try(...)` as Terraform has it: its
/// arguments are evaluated in order and the first that evaluates without an
/// error is its value. (Other functions get their arguments evaluated first,
/// so `try` cannot be one of them: its calls are resolved here, before the
/// expression is evaluated.) Inside a `for` expression, an argument that uses
/// the loop's variables is evaluated with the loop, and an error there is not
/// caught.
pub fn evaluate(expr: &hcl::Expression, context: &Context) -> Result<Value, hcl::eval::Error> {
    use hcl::eval::Evaluate;
    // Cheap test first: almost no expression calls try or computes.
    let debug = format!("{expr:?}");
    let calls_try = debug.contains("Identifier(try)") || debug.contains("try(");
    let computes = arithmetic::may_hold_arithmetic(&debug);
    if !calls_try && !computes {
        return expr.evaluate(context);
    }
    let mut edit = EditExpr::from(expr.clone());
    if computes {
        arithmetic::rewrite(&mut edit);
    }
    if calls_try {
        let mut resolver = TryResolver {
            context,
            bound: Vec::new(),
            error: None,
        };
        visit_mut::VisitMut::visit_expr_mut(&mut resolver, &mut edit);
        if let Some(error) = resolver.error {
            return Err(error);
        }
    }
    hcl::Expression::from(edit)
        .evaluate(context)
        .map_err(arithmetic::plain_error)
}

struct TryResolver<'a, 'b> {
    context: &'a Context<'b>,
    /// Names bound by the `for` expressions around the node visited.
    bound: Vec<String>,
    error: Option<hcl::eval::Error>,
}

impl visit_mut::VisitMut for TryResolver<'_, '_> {
    fn visit_for_expr_mut(&mut self, node: &mut hcl::edit::expr::ForExpr) {
        let before = self.bound.len();
        if let Some(key) = &node.intro.key_var {
            self.bound.push(key.as_str().to_string());
        }
        self.bound.push(node.intro.value_var.as_str().to_string());
        visit_mut::visit_for_expr_mut(self, node);
        self.bound.truncate(before);
    }

    fn visit_expr_mut(&mut self, node: &mut EditExpr) {
        visit_mut::visit_expr_mut(self, node);
        if self.error.is_some() {
            return;
        }
        let EditExpr::FuncCall(call) = &*node else {
            return;
        };
        if call.name.name.as_str() != "try" || !call.name.namespace.is_empty() {
            return;
        }
        let args: Vec<&EditExpr> = call.args.iter().collect();
        let loop_bound = args.iter().any(|arg| {
            references(0, arg)
                .iter()
                .any(|r| self.bound.iter().any(|b| r.path.first() == Some(b)))
        });
        if loop_bound {
            // Left to the runtime `try`, which gets values (see `evaluate`).
            return;
        }
        let mut last = None;
        for arg in args {
            use hcl::eval::Evaluate;
            match hcl::Expression::from(arg.clone()).evaluate(self.context) {
                Ok(value) => {
                    *node = EditExpr::from(hcl::Expression::from(value));
                    return;
                }
                Err(error) => last = Some(arithmetic::plain_error(error)),
            }
        }
        let message = match last {
            None => EvalError::TryWithoutArguments.to_string(),
            Some(error) => format!(
                "no argument of try() evaluated without an error (the last: {})",
                error.kind()
            ),
        };
        self.error = Some(hcl::eval::Error::from(hcl::eval::ErrorKind::FuncCall(
            hcl::expr::FuncName::new("try"),
            message,
        )));
    }
}

/// `try` inside a `for` expression, with its arguments already evaluated:
/// the first (an error in one has already stopped the evaluation).
fn fn_try(args: FuncArgs) -> Result<Value, EvalError> {
    args.first().cloned().ok_or(EvalError::TryWithoutArguments)
}

/// A context holding the function library and no variables.
pub fn function_context() -> Context<'static> {
    FUNCTIONS.with(Context::clone)
}

fn build_function_context() -> Context<'static> {
    use ParamType as P;
    let mut context = Context::new();
    let string = || FuncDef::builder().param(P::String);
    context.declare_func("file", string().build(hcl_func!(fn_file)));
    context.declare_func(
        "templatefile",
        FuncDef::builder()
            .param(P::String)
            .param(P::object_of(P::Any))
            .build(hcl_func!(fn_templatefile)),
    );
    context.declare_func("sha256", string().build(hcl_func!(fn_sha256)));
    context.declare_func(
        "jsonencode",
        FuncDef::builder()
            .param(P::Any)
            .build(hcl_func!(fn_jsonencode)),
    );
    context.declare_func("jsondecode", string().build(hcl_func!(fn_jsondecode)));
    context.declare_func("lower", string().build(hcl_func!(fn_lower)));
    context.declare_func("upper", string().build(hcl_func!(fn_upper)));
    context.declare_func("trimspace", string().build(hcl_func!(fn_trimspace)));
    context.declare_func("shellquote", string().build(hcl_func!(fn_shellquote)));
    context.declare_func(
        "replace",
        FuncDef::builder()
            .params([P::String, P::String, P::String])
            .build(hcl_func!(fn_replace)),
    );
    context.declare_func(
        "tostring",
        FuncDef::builder()
            .param(P::Any)
            .build(hcl_func!(fn_tostring)),
    );
    context.declare_func(
        "join",
        FuncDef::builder()
            .param(P::String)
            .variadic_param(P::array_of(P::Any))
            .build(hcl_func!(fn_join)),
    );
    context.declare_func(
        "split",
        FuncDef::builder()
            .params([P::String, P::String])
            .build(hcl_func!(fn_split)),
    );
    // These check their own arguments (count and types), for messages that
    // give the usage.
    let own = |f: Func| FuncDef::builder().variadic_param(P::Any).build(f);
    use super::functions as lib;
    context.declare_func("format", own(hcl_func!(lib::format)));
    context.declare_func("range", own(hcl_func!(lib::range)));
    context.declare_func("substr", own(hcl_func!(lib::substr)));
    context.declare_func("base64encode", own(hcl_func!(lib::base64encode)));
    context.declare_func("base64decode", own(hcl_func!(lib::base64decode)));
    context.declare_func("regex", own(hcl_func!(lib::regex)));
    context.declare_func("regexall", own(hcl_func!(lib::regexall)));
    context.declare_func("coalesce", own(hcl_func!(lib::coalesce)));
    context.declare_func("lookup", own(hcl_func!(lib::lookup)));
    context.declare_func("flatten", own(hcl_func!(lib::flatten)));
    context.declare_func("distinct", own(hcl_func!(lib::distinct)));
    context.declare_func("element", own(hcl_func!(lib::element)));
    context.declare_func("slice", own(hcl_func!(lib::slice)));
    context.declare_func("zipmap", own(hcl_func!(lib::zipmap)));
    context.declare_func("startswith", own(hcl_func!(lib::startswith)));
    context.declare_func("endswith", own(hcl_func!(lib::endswith)));
    context.declare_func("try", own(hcl_func!(fn_try)));
    context.declare_func(
        arithmetic::FUNCTION,
        FuncDef::builder()
            .params([P::String, P::Any, P::Any])
            .build(hcl_func!(arithmetic::call)),
    );
    context.declare_func(
        "length",
        FuncDef::builder().param(P::Any).build(hcl_func!(fn_length)),
    );
    context.declare_func(
        "merge",
        FuncDef::builder()
            .variadic_param(P::Any)
            .build(hcl_func!(fn_merge)),
    );
    context.declare_func(
        "concat",
        FuncDef::builder()
            .variadic_param(P::Any)
            .build(hcl_func!(fn_concat)),
    );
    context.declare_func(
        "contains",
        FuncDef::builder()
            .params([P::Any, P::Any])
            .build(hcl_func!(fn_contains)),
    );
    context.declare_func(
        "keys",
        FuncDef::builder().param(P::Any).build(hcl_func!(fn_keys)),
    );
    context.declare_func(
        "values",
        FuncDef::builder().param(P::Any).build(hcl_func!(fn_values)),
    );
    context
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

pub fn to_json(value: &Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// Where `expr` first calls the function `name` (for locating its errors),
/// or `None` when it does not (or the call has no span).
pub fn call_span(file: FileId, expr: &EditExpr, name: &str) -> Option<Span> {
    struct Finder<'a> {
        name: &'a str,
        found: Option<std::ops::Range<usize>>,
    }
    impl Visit for Finder<'_> {
        fn visit_func_call(&mut self, node: &hcl::edit::expr::FuncCall) {
            if self.found.is_none() && node.name.name.as_str() == self.name {
                self.found = node.span();
            }
            visit::visit_func_call(self, node);
        }
    }
    let mut finder = Finder { name, found: None };
    finder.visit_expr(expr);
    finder.found.map(|range| Span::new(file, range))
}

/// A reference an expression makes: the root name and the attribute names that
/// follow it (`deployment.web.version` → `["deployment", "web", "version"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub path: Vec<String>,
    pub span: Span,
}

/// Every reference in an expression, in source order, the collections of
/// `for` expressions and template `%{ for }` directives included. Names a
/// `for` binds (`[for secret in var.list : secret.arn]`) are not references
/// inside it.
pub fn references(file: FileId, expr: &EditExpr) -> Vec<Reference> {
    struct Collector {
        file: FileId,
        found: Vec<Reference>,
        /// Names bound by the `for` expressions and directives around.
        bound: Vec<String>,
    }
    impl Collector {
        fn is_bound(&self, name: &str) -> bool {
            self.bound.iter().any(|b| b == name)
        }

        /// Visit `inside` with the `for` variables bound.
        fn with_bound(
            &mut self,
            key_var: Option<&str>,
            value_var: &str,
            inside: impl FnOnce(&mut Collector),
        ) {
            let before = self.bound.len();
            self.bound.extend(key_var.map(str::to_string));
            self.bound.push(value_var.to_string());
            inside(self);
            self.bound.truncate(before);
        }
    }
    impl Visit for Collector {
        fn visit_expr(&mut self, node: &EditExpr) {
            match node {
                EditExpr::Variable(name) if self.is_bound(name.as_str()) => {}
                EditExpr::Variable(name) => self.found.push(Reference {
                    path: vec![name.as_str().to_string()],
                    span: Span::new(self.file, node.span().unwrap_or(0..0)),
                }),
                EditExpr::Traversal(traversal) => {
                    if let EditExpr::Variable(root) = &traversal.expr {
                        if !self.is_bound(root.as_str()) {
                            let mut path = vec![root.as_str().to_string()];
                            for operator in &traversal.operators {
                                match operator.value() {
                                    TraversalOperator::GetAttr(ident) => {
                                        path.push(ident.as_str().to_string())
                                    }
                                    _ => break,
                                }
                            }
                            self.found.push(Reference {
                                path,
                                span: Span::new(self.file, node.span().unwrap_or(0..0)),
                            });
                        }
                        for operator in &traversal.operators {
                            if let TraversalOperator::Index(index) = operator.value() {
                                self.visit_expr(index);
                            }
                        }
                    } else {
                        visit::visit_expr(self, node);
                    }
                }
                EditExpr::ForExpr(for_expr) => {
                    let intro = &for_expr.intro;
                    self.visit_expr(&intro.collection_expr);
                    self.with_bound(
                        intro.key_var.as_ref().map(|k| k.as_str()),
                        intro.value_var.as_str(),
                        |inner| {
                            if let Some(key_expr) = &for_expr.key_expr {
                                inner.visit_expr(key_expr);
                            }
                            inner.visit_expr(&for_expr.value_expr);
                            if let Some(cond) = &for_expr.cond {
                                inner.visit_expr(&cond.expr);
                            }
                        },
                    );
                }
                _ => visit::visit_expr(self, node),
            }
        }

        // hcl-edit's own walk of a `%{ for }` directive skips its
        // collection: a template looping over a secret would not be
        // tainted.
        fn visit_for_template_expr(&mut self, node: &hcl::edit::template::ForTemplateExpr) {
            self.visit_expr(&node.collection_expr);
            self.with_bound(
                node.key_var.as_ref().map(|k| k.as_str()),
                node.value_var.as_str(),
                |inner| inner.visit_template(&node.template),
            );
        }
    }
    let mut collector = Collector {
        file,
        found: Vec::new(),
        bound: Vec::new(),
    };
    collector.visit_expr(expr);
    collector.found
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl::eval::Evaluate;

    fn eval(source: &str) -> Result<Value, String> {
        let expr: hcl::Expression = source.parse().map_err(|e: hcl::Error| e.to_string())?;
        expr.evaluate(&function_context())
            .map_err(|e| e.to_string())
    }

    /// Resolving try goes through the parsed form of the expression and back:
    /// what does not call try evaluates exactly as before.
    #[test]
    fn resolving_try_keeps_the_rest_of_the_expression() {
        let source = "<<-EOT\n    a=${\"x\"} $${literal} %%{ no }\n      indented ${try({}.a, \"t\")}\n    %{ if true }yes%{ endif }\n    %{ for i in [1, 2] }${i},%{ endfor }\n    EOT";
        let expr: hcl::Expression = source.parse().unwrap();
        let resolved = evaluate(&expr, &function_context()).unwrap();
        let plain: hcl::Expression = source.replace("try({}.a, \"t\")", "\"t\"").parse().unwrap();
        assert_eq!(resolved, plain.evaluate(&function_context()).unwrap());
        assert_eq!(
            resolved,
            Value::from("a=x ${literal} %{ no }\n  indented t\nyes\n1,2,\n")
        );
    }

    /// Arithmetic is checked wherever it is written: bare, in a template, in a
    /// heredoc, in a `for` body, under `try`, in a template file. Values it
    /// has are what hcl-rs computes; the rest are errors, never a panic.
    #[test]
    fn arithmetic_is_checked_everywhere() {
        let run = |source: &str| {
            let expr: hcl::Expression = source.parse().unwrap();
            evaluate(&expr, &function_context()).map_err(|e| e.kind().to_string())
        };
        let values = [
            ("7 / 2 + 6 % 4 * 3", Value::from(9.5)),
            ("-(2 - 5)", Value::from(3)),
            (r#""n=${10 / 4}""#, Value::from("n=2.5")),
            (
                "<<-EOT\n    a=${3 * 3}\n      b\n    EOT",
                Value::from("a=9\n  b\n"),
            ),
            ("[for n in [1, 2] : 10 / n]", Value::from(vec![10, 5])),
            ("try(1 / 0, 5)", Value::from(5)),
            ("try(18446744073709551615 + 1, \"big\")", Value::from("big")),
            ("1 + 2 == 3 && 4 > 3", Value::from(true)),
        ];
        for (source, expected) in values {
            assert_eq!(run(source), Ok(expected), "{source}");
        }
        let refusals = [
            ("1 / 0", "`1 / 0`: division by zero"),
            ("10 % (3 - 3)", "`10 % 0`: division by zero"),
            ("[for n in [1, 0] : 10 / n]", "`10 / 0`: division by zero"),
            (
                r#""${1e308 * 10}""#,
                "`1e308 * 10`: the result is out of the range of a number",
            ),
            ("\"a\" + 1", "`\"a\" + 1`: both sides must be numbers"),
        ];
        for (source, expected) in refusals {
            assert_eq!(run(source), Err(expected.to_string()), "{source}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.tpl"), "share=${100 % n}").unwrap();
        let template = |n: i64| {
            with_base_dir(dir.path(), || {
                run(&format!(r#"templatefile("t.tpl", {{ n = {n} }})"#))
            })
        };
        assert_eq!(template(7), Ok(Value::from("share=2")));
        let refused = template(0).unwrap_err();
        assert!(refused.contains("`100 % 0`: division by zero"), "{refused}");
        assert!(!refused.contains(super::arithmetic::FUNCTION), "{refused}");
    }

    #[test]
    fn references_include_for_collections_and_not_the_names_a_for_binds() {
        let paths = |source: &str| -> Vec<String> {
            let expr: EditExpr = source.parse().unwrap();
            references(0, &expr)
                .into_iter()
                .map(|r| r.path.join("."))
                .collect()
        };
        assert_eq!(paths("[for secret in var.list : secret.arn]"), ["var.list"]);
        assert_eq!(
            paths("{ for k, v in local.m : k => upper(v) if v != var.x }"),
            ["local.m", "var.x"]
        );
        assert_eq!(
            paths(r#""%{ for p in split(",", var.pw) }${p}${local.sep}%{ endfor }""#),
            ["var.pw", "local.sep"]
        );
        // Outside the loop the name is a reference again.
        assert_eq!(
            paths("concat([for v in var.a : v], [v.x])"),
            ["var.a", "v.x"]
        );
    }

    #[test]
    fn shellquote_gives_the_shell_back_the_bytes() {
        assert_eq!(eval(r#"shellquote("abc")"#), Ok(Value::from("'abc'")));
        assert_eq!(eval(r#"shellquote("it's")"#), Ok(Value::from("'it'\\''s'")));
        assert_eq!(eval(r#"shellquote("")"#), Ok(Value::from("''")));
        assert!(eval(r#"shellquote("a\u0000b")"#).is_err());
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("PWNED");
        for hostile in [
            format!("$(touch {})", marker.display()),
            format!("`touch {}`", marker.display()),
            format!("'; touch {}; '", marker.display()),
            format!("\"; touch {} #", marker.display()),
            "a\nb\r\tc $HOME ${PATH} \\ \u{1b}[2J ünï * ? ~".to_string(),
            "'".repeat(7),
            "-n".to_string(),
        ] {
            let mut context = function_context();
            context.declare_var("v", hostile.clone());
            let expr: hcl::Expression = "shellquote(v)".parse().unwrap();
            let Value::String(quoted) = expr.evaluate(&context).unwrap() else {
                panic!("a string")
            };
            let output = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {quoted}"))
                .output()
                .unwrap();
            assert!(output.status.success(), "{quoted}");
            assert_eq!(String::from_utf8(output.stdout).unwrap(), hostile);
            assert!(!marker.exists(), "{quoted} ran a command");
        }
    }

    #[test]
    fn string_functions() {
        assert_eq!(eval(r#"upper("ab")"#), Ok(Value::from("AB")));
        assert_eq!(eval(r#"lower("AB")"#), Ok(Value::from("ab")));
        assert_eq!(eval(r#"join(",", ["a", "b"])"#), Ok(Value::from("a,b")));
        assert_eq!(
            eval(r#"length(split(",", "a,b,c"))"#),
            Ok(Value::from(3u64))
        );
        assert_eq!(
            eval(r#"format("%s-%d-%q%%", "a", 2, "b")"#),
            Ok(Value::from("a-2-\"b\"%"))
        );
        assert!(eval(r#"format("%s")"#).is_err());
        assert_eq!(eval(r#"split("", "aé")"#), Ok(hcl::value!(["a", "é"])));
        assert_eq!(
            eval(r#"sha256("abc")"#),
            Ok(Value::from(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ))
        );
    }

    #[test]
    fn file_refuses_devices_and_directories_before_reading() {
        let devices = read_regular_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert_eq!(devices, "not a regular file");
        let directories = read_regular_file(Path::new("/")).unwrap_err().to_string();
        assert_eq!(directories, "not a regular file");
        let file = std::env::temp_dir().join(format!("slipway-eval-{}", std::process::id()));
        std::fs::write(&file, "hello").unwrap();
        assert_eq!(
            read_regular_file(&file).map_err(|e| e.to_string()),
            Ok(b"hello".to_vec())
        );
        std::fs::remove_file(file).unwrap();
    }

    #[test]
    fn collection_and_json_functions() {
        assert_eq!(
            eval(r#"jsonencode({a = [1, true]})"#),
            Ok(Value::from(r#"{"a":[1,true]}"#))
        );
        assert_eq!(eval(r#"jsondecode("{\"a\": 1}").a"#), Ok(Value::from(1u64)));
        assert_eq!(
            eval(r#"length(merge({a = 1}, {b = 2}, {a = 3}))"#),
            Ok(Value::from(2u64))
        );
        assert_eq!(eval(r#"concat([1], [2, 3])"#), Ok(hcl::value!([1, 2, 3])));
        assert!(eval(r#"merge(1)"#).is_err());
    }

    #[test]
    fn files_resolve_against_the_base_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("t.tpl"),
            "port=${port}\n%{ for h in hosts }${h};%{ endfor }",
        )
        .unwrap();
        let value = with_base_dir(dir.path(), || {
            eval(r#"templatefile("t.tpl", { port = 80, hosts = ["a", "b"] })"#)
        });
        assert_eq!(value, Ok(Value::from("port=80\na;b;")));
        assert_eq!(take_files_read().len(), 1);
        let missing = with_base_dir(dir.path(), || eval(r#"file("nope.txt")"#));
        assert!(missing.unwrap_err().contains("nope.txt"));
    }

    #[test]
    fn references_are_found_in_templates_and_calls() {
        let expr: EditExpr = r#"format("%s", "${var.a}-${local.b.c}") == deployment.x.version ? [for k in env.list : k] : null"#
            .parse()
            .unwrap();
        let paths: Vec<Vec<String>> = references(0, &expr).into_iter().map(|r| r.path).collect();
        assert!(paths.contains(&vec!["var".into(), "a".into()]));
        assert!(paths.contains(&vec!["local".into(), "b".into(), "c".into()]));
        assert!(paths.contains(&vec!["deployment".into(), "x".into(), "version".into()]));
        assert!(paths.contains(&vec!["env".into(), "list".into()]));
        // `k` is the loop's own name, not a reference.
        assert!(!paths.contains(&vec!["k".into()]));
    }
}
