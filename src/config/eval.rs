//! Expression evaluation: the function library and reference discovery.
//!
//! Evaluation itself is hcl-rs's; this module supplies the functions the
//! language offers (`file`, `templatefile`, `sha256`, `jsonencode`, ...), finds
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
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::Value;
use sha2::{Digest, Sha256};

use crate::diagnostics::{FileId, Span};

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
    static FILE_CACHE: RefCell<HashMap<PathBuf, Result<Rc<str>, String>>> = RefCell::new(HashMap::new());
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

fn read_relative(path: &str) -> Result<Rc<str>, String> {
    let full = full_path(path);
    if let Some(cached) = FILE_CACHE.with(|c| c.borrow().get(&full).cloned()) {
        return cached;
    }
    let result = read_regular_file(&full)
        .map_err(|e| format!("cannot read \"{path}\": {e}"))
        .and_then(|bytes| {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| format!("\"{path}\" is not UTF-8 text"))?
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
fn read_regular_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".to_string());
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{} bytes, more than the {} MiB a configuration may read from one file",
            metadata.len(),
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err("the file grew past the size limit while it was read".to_string());
    }
    Ok(bytes)
}

fn parsed_template(path: &str) -> Result<Rc<hcl::Template>, String> {
    let full = full_path(path);
    if let Some(template) = TEMPLATE_CACHE.with(|c| c.borrow().get(&full).cloned()) {
        return Ok(template);
    }
    let text = read_relative(path)?;
    let template: hcl::Template = text
        .parse()
        .map_err(|e: hcl::Error| format!("template \"{path}\" is invalid: {e}"))?;
    let template = Rc::new(template);
    TEMPLATE_CACHE.with(|c| c.borrow_mut().insert(full, template.clone()));
    Ok(template)
}

fn str_arg(args: &FuncArgs, index: usize) -> Result<&str, String> {
    args.get(index)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("argument {} must be a string", index + 1))
}

fn fn_file(args: FuncArgs) -> Result<Value, String> {
    read_relative(str_arg(&args, 0)?).map(|text| Value::String(text.to_string()))
}

fn fn_templatefile(args: FuncArgs) -> Result<Value, String> {
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
        .map_err(|e| format!("template \"{path}\": {e}"))
}

fn fn_sha256(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(hex::encode(Sha256::digest(
        str_arg(&args, 0)?.as_bytes(),
    ))))
}

fn fn_jsonencode(args: FuncArgs) -> Result<Value, String> {
    let value = to_json(&args[0]);
    serde_json::to_string(&value)
        .map(Value::String)
        .map_err(|e| e.to_string())
}

fn fn_jsondecode(args: FuncArgs) -> Result<Value, String> {
    let json: serde_json::Value =
        serde_json::from_str(str_arg(&args, 0)?).map_err(|e| format!("invalid JSON: {e}"))?;
    hcl::to_value(json).map_err(|e| e.to_string())
}

fn fn_lower(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(str_arg(&args, 0)?.to_lowercase()))
}

fn fn_upper(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(str_arg(&args, 0)?.to_uppercase()))
}

fn fn_trimspace(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::String(str_arg(&args, 0)?.trim().to_string()))
}

/// The value as one POSIX shell word, always in single quotes (each `'` as
/// `'\''`): interpolated into a `command`, the shell gives back exactly the
/// value, whatever it holds. NUL cannot be in a shell word at all.
fn fn_shellquote(args: FuncArgs) -> Result<Value, String> {
    let value = str_arg(&args, 0)?;
    if value.contains('\0') {
        return Err("shellquote: a NUL byte cannot be part of a shell word".to_string());
    }
    Ok(Value::String(format!("'{}'", value.replace('\'', "'\\''"))))
}

fn fn_replace(args: FuncArgs) -> Result<Value, String> {
    let (text, from, to) = (str_arg(&args, 0)?, str_arg(&args, 1)?, str_arg(&args, 2)?);
    Ok(Value::String(text.replace(from, to)))
}

fn scalar_to_string(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!("cannot use {} as a string", type_name(other))),
    }
}

fn fn_tostring(args: FuncArgs) -> Result<Value, String> {
    scalar_to_string(&args[0]).map(Value::String)
}

fn fn_join(args: FuncArgs) -> Result<Value, String> {
    let separator = str_arg(&args, 0)?;
    let mut parts = Vec::new();
    for list in args.iter().skip(1) {
        let Value::Array(items) = list else {
            return Err("join(separator, list): the list must be a list".into());
        };
        for item in items {
            parts.push(scalar_to_string(item)?);
        }
    }
    Ok(Value::String(parts.join(separator)))
}

fn fn_split(args: FuncArgs) -> Result<Value, String> {
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

fn fn_length(args: FuncArgs) -> Result<Value, String> {
    let length = match &args[0] {
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        Value::String(s) => s.chars().count(),
        other => return Err(format!("length of {} is undefined", type_name(other))),
    };
    Ok(Value::from(length as u64))
}

fn fn_merge(args: FuncArgs) -> Result<Value, String> {
    let mut merged = hcl::Map::new();
    for value in args.iter() {
        match value {
            Value::Object(map) => merged.extend(map.clone()),
            Value::Null => {}
            other => return Err(format!("merge takes maps, got {}", type_name(other))),
        }
    }
    Ok(Value::Object(merged))
}

fn fn_concat(args: FuncArgs) -> Result<Value, String> {
    let mut all = Vec::new();
    for value in args.iter() {
        match value {
            Value::Array(items) => all.extend(items.iter().cloned()),
            other => return Err(format!("concat takes lists, got {}", type_name(other))),
        }
    }
    Ok(Value::Array(all))
}

fn fn_contains(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Array(items) => Ok(Value::Bool(items.contains(&args[1]))),
        other => Err(format!("contains takes a list, got {}", type_name(other))),
    }
}

fn fn_keys(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Object(map) => Ok(Value::Array(
            map.keys().map(|k| Value::String(k.clone())).collect(),
        )),
        other => Err(format!("keys takes a map, got {}", type_name(other))),
    }
}

fn fn_values(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Object(map) => Ok(Value::Array(map.values().cloned().collect())),
        other => Err(format!("values takes a map, got {}", type_name(other))),
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

/// Evaluate `expr` in `context`, with `try(...)` as Terraform has it: its
/// arguments are evaluated in order and the first that evaluates without an
/// error is its value. (Other functions get their arguments evaluated first,
/// so `try` cannot be one of them: its calls are resolved here, before the
/// expression is evaluated.) Inside a `for` expression, an argument that uses
/// the loop's variables is evaluated with the loop, and an error there is not
/// caught.
pub fn evaluate(expr: &hcl::Expression, context: &Context) -> Result<Value, hcl::eval::Error> {
    use hcl::eval::Evaluate;
    // Cheap test first: almost no expression calls try.
    let debug = format!("{expr:?}");
    if !debug.contains("Identifier(try)") && !debug.contains("try(") {
        return expr.evaluate(context);
    }
    let mut edit = EditExpr::from(expr.clone());
    let mut resolver = TryResolver {
        context,
        bound: Vec::new(),
        error: None,
    };
    visit_mut::VisitMut::visit_expr_mut(&mut resolver, &mut edit);
    if let Some(error) = resolver.error {
        return Err(error);
    }
    hcl::Expression::from(edit).evaluate(context)
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
                Err(error) => last = Some(error),
            }
        }
        let message = match last {
            None => "takes at least 1 argument, got 0: try(expression, ...)".to_string(),
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
fn fn_try(args: FuncArgs) -> Result<Value, String> {
    args.first()
        .cloned()
        .ok_or_else(|| "takes at least 1 argument, got 0: try(expression, ...)".to_string())
}

/// A context holding the function library and no variables.
pub fn function_context() -> Context<'static> {
    FUNCTIONS.with(Context::clone)
}

fn build_function_context() -> Context<'static> {
    use ParamType as P;
    let mut context = Context::new();
    let string = || FuncDef::builder().param(P::String);
    context.declare_func("file", string().build(fn_file));
    context.declare_func(
        "templatefile",
        FuncDef::builder()
            .param(P::String)
            .param(P::object_of(P::Any))
            .build(fn_templatefile),
    );
    context.declare_func("sha256", string().build(fn_sha256));
    context.declare_func(
        "jsonencode",
        FuncDef::builder().param(P::Any).build(fn_jsonencode),
    );
    context.declare_func("jsondecode", string().build(fn_jsondecode));
    context.declare_func("lower", string().build(fn_lower));
    context.declare_func("upper", string().build(fn_upper));
    context.declare_func("trimspace", string().build(fn_trimspace));
    context.declare_func("shellquote", string().build(fn_shellquote));
    context.declare_func(
        "replace",
        FuncDef::builder()
            .params([P::String, P::String, P::String])
            .build(fn_replace),
    );
    context.declare_func(
        "tostring",
        FuncDef::builder().param(P::Any).build(fn_tostring),
    );
    context.declare_func(
        "join",
        FuncDef::builder()
            .param(P::String)
            .variadic_param(P::array_of(P::Any))
            .build(fn_join),
    );
    context.declare_func(
        "split",
        FuncDef::builder()
            .params([P::String, P::String])
            .build(fn_split),
    );
    // These check their own arguments (count and types), for messages that
    // give the usage.
    let own = |f: fn(FuncArgs) -> Result<Value, String>| {
        FuncDef::builder().variadic_param(P::Any).build(f)
    };
    use super::functions as lib;
    context.declare_func("format", own(lib::format));
    context.declare_func("range", own(lib::range));
    context.declare_func("substr", own(lib::substr));
    context.declare_func("base64encode", own(lib::base64encode));
    context.declare_func("base64decode", own(lib::base64decode));
    context.declare_func("regex", own(lib::regex));
    context.declare_func("regexall", own(lib::regexall));
    context.declare_func("coalesce", own(lib::coalesce));
    context.declare_func("lookup", own(lib::lookup));
    context.declare_func("flatten", own(lib::flatten));
    context.declare_func("distinct", own(lib::distinct));
    context.declare_func("element", own(lib::element));
    context.declare_func("slice", own(lib::slice));
    context.declare_func("zipmap", own(lib::zipmap));
    context.declare_func("startswith", own(lib::startswith));
    context.declare_func("endswith", own(lib::endswith));
    context.declare_func("try", own(fn_try));
    context.declare_func("length", FuncDef::builder().param(P::Any).build(fn_length));
    context.declare_func(
        "merge",
        FuncDef::builder().variadic_param(P::Any).build(fn_merge),
    );
    context.declare_func(
        "concat",
        FuncDef::builder().variadic_param(P::Any).build(fn_concat),
    );
    context.declare_func(
        "contains",
        FuncDef::builder()
            .params([P::Any, P::Any])
            .build(fn_contains),
    );
    context.declare_func("keys", FuncDef::builder().param(P::Any).build(fn_keys));
    context.declare_func("values", FuncDef::builder().param(P::Any).build(fn_values));
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
        let devices = read_regular_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(devices, "not a regular file");
        let directories = read_regular_file(Path::new("/")).unwrap_err();
        assert_eq!(directories, "not a regular file");
        let file = std::env::temp_dir().join(format!("slipway-eval-{}", std::process::id()));
        std::fs::write(&file, "hello").unwrap();
        assert_eq!(read_regular_file(&file), Ok(b"hello".to_vec()));
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
