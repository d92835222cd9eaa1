//! Loading a configuration directory: schema check, evaluation, validation.
//!
//! `load` turns a directory of `*.hcl` files (and the modules it calls) into a
//! typed [`Config`], or reports every problem found as diagnostics with file,
//! line and column. It reads files and nothing else: no state, no network.
//!
//! Order within one scope (the root or a module): variables, locals, modules,
//! environments and rollouts, deployments (each evaluating its service with the
//! deployment's environment in scope), outputs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use hcl::eval::Context;
use hcl::Value;
use sha2::{Digest, Sha256};

use super::check::check_body;
use super::confine;
use super::eval::{
    evaluate, function_context, references, to_json, type_name, with_base_dir, Reference,
};
use super::inputs::{parse_var_flag, InputSources, InputValue, InputValues, RawInput, ENV_PREFIX};
use super::model::*;
use super::raw::{read_directory, read_sources, RawAttr, RawBlock, RawBody};
use super::schema::{self, BlockSpec, Schema, Ty};
use super::secrets::{SecretSource, SecretSpec, SecretValues};
use super::taint;
use super::units::{parse_duration, parse_percent};
use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics, FileId, SourceMap, Span};
use crate::encode;
use crate::encode::text::excerpt;

/// Modules may call modules, up to this depth.
const MAX_MODULE_DEPTH: usize = 8;

/// The outcome of loading: the sources read (for rendering diagnostics) and
/// either the configuration or the diagnostics.
pub struct Loaded {
    pub sources: SourceMap,
    pub diagnostics: Diagnostics,
    pub config: Option<Config>,
}

/// Load the configuration in `dir` with the given input values.
/// Only the state backend of the configuration in `dir`: the `slipway`
/// block needs no variables, so state commands work without input values.
pub fn load_backend_only(dir: &Path) -> Result<Backend, (SourceMap, Diagnostics)> {
    let mut loader = Loader::new(dir);
    let bodies = read_directory(dir, &mut loader.sources, &mut loader.diagnostics);
    let slipway_blocks: Vec<RawBlock> = bodies
        .iter()
        .flat_map(|(_, body)| body.blocks_of("slipway").cloned())
        .collect();
    if let Some(block) = slipway_blocks.first() {
        let body = RawBody {
            attrs: Vec::new(),
            blocks: slipway_blocks.clone(),
        };
        check_body(
            &body,
            &schema::ROOT,
            "configuration",
            &loader.sources,
            &mut loader.diagnostics,
        );
        if !loader.diagnostics.has_errors() {
            loader.load_backend(block);
        }
    }
    if loader.diagnostics.has_errors() {
        loader.diagnostics.sort();
        return Err((loader.sources, loader.diagnostics));
    }
    Ok(loader.config.backend)
}

pub fn load(dir: &Path, inputs: &InputSources) -> Loaded {
    load_with(
        dir,
        inputs,
        &SavedInputs::new(),
        &SecretValues::new(),
        |sources, diagnostics| read_directory(dir, sources, diagnostics),
    )
}

/// [`load_with_saved`] with the values of `secret` blocks read from their
/// stores: `secret.NAME` is the value given here, or the empty string for a
/// secret not given (not read). The caller reads the secrets that the
/// deployments it plans use (`Deployment::secrets` of a first load).
pub fn load_with_secrets(
    dir: &Path,
    inputs: &InputSources,
    saved: &SavedInputs,
    secrets: &SecretValues,
) -> Loaded {
    load_with(dir, inputs, saved, secrets, |sources, diagnostics| {
        read_directory(dir, sources, diagnostics)
    })
}

/// Values a saved plan carries, by variable name (JSON, as in the plan).
pub type SavedInputs = std::collections::BTreeMap<String, serde_json::Value>;

/// [`load`] with the values a saved plan was made with underneath: they
/// count as given (origin `the saved plan`), below `SLIPWAY_VAR_*`, var
/// files and `-var`, which the caller compares with them afterwards.
pub fn load_with_saved(dir: &Path, inputs: &InputSources, saved: &SavedInputs) -> Loaded {
    load_with_secrets(dir, inputs, saved, &SecretValues::new())
}

/// The names of the variables `inputs` gives a value (var files read, not
/// evaluated against the configuration); unreadable sources give none here
/// (loading reports them).
pub fn supplied_input_names(dir: &Path, inputs: &InputSources) -> BTreeSet<String> {
    let mut loader = Loader::new(dir);
    loader
        .collect_inputs(inputs, &SavedInputs::new())
        .into_keys()
        .collect()
}

/// Load a configuration whose files are given in memory as (path, bytes),
/// as [`load`] would load a directory holding them. The paths name the files
/// in diagnostics; `dir` is what relative paths in the configuration (module
/// sources, `file()`, local artifacts) resolve against.
pub fn load_sources(dir: &Path, files: &[(PathBuf, Vec<u8>)], inputs: &InputSources) -> Loaded {
    load_with(
        dir,
        inputs,
        &SavedInputs::new(),
        &SecretValues::new(),
        |sources, diagnostics| read_sources(files, sources, diagnostics),
    )
}

/// The pipeline behind [`load`] and [`load_sources`]; `read` supplies the
/// root configuration's parsed files.
fn load_with(
    dir: &Path,
    inputs: &InputSources,
    saved: &SavedInputs,
    secrets: &SecretValues,
    read: impl FnOnce(&mut SourceMap, &mut Diagnostics) -> Vec<(FileId, RawBody)>,
) -> Loaded {
    super::eval::reset_caches();
    let mut loader = Loader::new(dir);
    loader.secrets_read = secrets.clone();
    let values = loader.collect_inputs(inputs, saved);
    let bodies = read(&mut loader.sources, &mut loader.diagnostics);
    if bodies.is_empty() && !loader.diagnostics.has_errors() {
        loader.diagnostics.push(
            Diagnostic::error("no-configuration", format!("no *.hcl files in {}", dir.display()))
                .help("run slipway in a directory with configuration files, or pass the directory as an argument"),
        );
    }
    if !loader.diagnostics.has_errors() {
        let body = merge_bodies(bodies.into_iter().map(|(_, b)| b));
        loader.load_scope(ScopeInput {
            prefix: String::new(),
            dir: dir.to_path_buf(),
            body,
            values,
            tainted_inputs: HashSet::new(),
            input_sources: HashMap::new(),
            depth: 0,
            call_span: None,
        });
    }
    if !loader.diagnostics.has_errors() {
        loader.resolve_deployments();
    }
    if !loader.diagnostics.has_errors() {
        loader
            .diagnostics
            .extend(super::cycles::cycle_diagnostics(&loader.config));
    }
    let has_errors = loader.diagnostics.has_errors();
    loader.diagnostics.sort();
    if !has_errors {
        loader.config.digest = loader.digest();
    }
    Loaded {
        config: (!has_errors).then_some(loader.config),
        sources: loader.sources,
        diagnostics: loader.diagnostics,
    }
}

fn merge_bodies(bodies: impl Iterator<Item = RawBody>) -> RawBody {
    let mut merged = RawBody::default();
    for body in bodies {
        merged.attrs.extend(body.attrs);
        merged.blocks.extend(body.blocks);
    }
    merged
}

/// A service body kept for per-deployment evaluation, with its scope.
struct ServiceTemplate {
    block: std::rc::Rc<RawBlock>,
    scope: std::rc::Rc<ScopeValues>,
}

/// The values visible in one scope: `var`, `local`, `module`, and the names of
/// variables and locals that hold sensitive values.
#[derive(Clone)]
struct ScopeValues {
    prefix: String,
    dir: PathBuf,
    vars: hcl::Map<String, Value>,
    locals: hcl::Map<String, Value>,
    modules: hcl::Map<String, Value>,
    tainted: HashSet<String>,
    /// Output values (modules only; root outputs wait for deployments).
    outputs: hcl::Map<String, Value>,
    /// Outputs marked `sensitive = true` (modules only): the caller's
    /// `module.NAME.OUTPUT` is tainted.
    sensitive_outputs: HashSet<String>,
    /// `secret.NAME` values (root only; a module's is empty).
    secrets: hcl::Map<String, Value>,
    /// For each tainted name (and `output.NAME` of a module), the `secret`
    /// blocks its value comes from: which deployments use which secret.
    secret_sources: HashMap<String, BTreeSet<String>>,
    context_cache: std::cell::OnceCell<Context<'static>>,
}

impl ScopeValues {
    /// The scope's context, built on first use. Only for scopes that no longer
    /// change (services keep a frozen copy of theirs).
    fn cached_context(&self) -> &Context<'static> {
        self.context_cache.get_or_init(|| self.context())
    }

    fn context(&self) -> Context<'static> {
        let mut context = function_context();
        context.declare_var("var", Value::Object(self.vars.clone()));
        context.declare_var("local", Value::Object(self.locals.clone()));
        context.declare_var("module", Value::Object(self.modules.clone()));
        context.declare_var("secret", Value::Object(self.secrets.clone()));
        context.declare_var(
            "path",
            hcl::value!({ module = (self.dir.display().to_string()) }),
        );
        context
    }
}

struct ScopeInput {
    prefix: String,
    dir: PathBuf,
    body: RawBody,
    values: InputValues,
    /// Module variables whose input value is sensitive.
    tainted_inputs: HashSet<String>,
    /// The secrets each such input comes from.
    input_sources: HashMap<String, BTreeSet<String>>,
    depth: usize,
    call_span: Option<Span>,
}

/// A deployment block waiting for every scope to be loaded.
struct PendingDeployment {
    address: String,
    block: RawBlock,
    scope: std::rc::Rc<ScopeValues>,
}

struct Loader {
    sources: SourceMap,
    diagnostics: Diagnostics,
    config: Config,
    services: HashMap<String, ServiceTemplate>,
    deployment_blocks: Vec<PendingDeployment>,
    root_outputs: Vec<RawBlock>,
    root_scope: Option<ScopeValues>,
    /// While a service is evaluated for a deployment: what, for messages, and
    /// the environment's name and variables keys, for checking `env.*`.
    evaluating_service: Option<(String, String, Vec<String>)>,
    /// Digests of local artifacts already computed in this run.
    artifact_digests: HashMap<PathBuf, Option<String>>,
    /// While root outputs are evaluated: the deployments they may refer to.
    output_deployments: Option<Vec<String>>,
    /// Var files read: their values count in the digest, their paths do not.
    var_files: HashSet<FileId>,
    /// The values of `secret` blocks read for this load (see
    /// [`load_with_secrets`]).
    secrets_read: SecretValues,
}

/// Variable types the language knows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum VarType {
    String,
    Number,
    Bool,
    List,
    Map,
    Any,
}

impl VarType {
    fn describe(self) -> &'static str {
        match self {
            VarType::String => "string",
            VarType::Number => "number",
            VarType::Bool => "bool",
            VarType::List => "list",
            VarType::Map => "map",
            VarType::Any => "any",
        }
    }
}

impl Loader {
    fn new(dir: &Path) -> Loader {
        Loader {
            sources: SourceMap::default(),
            diagnostics: Diagnostics::default(),
            config: Config {
                root: dir.to_path_buf(),
                ..Config::default()
            },
            services: HashMap::new(),
            deployment_blocks: Vec::new(),
            root_outputs: Vec::new(),
            root_scope: None,
            evaluating_service: None,
            output_deployments: None,
            artifact_digests: HashMap::new(),
            var_files: HashSet::new(),
            secrets_read: SecretValues::new(),
        }
    }

    /// The sha256 of a local artifact (a directory is packed first), computed
    /// once per run; `None` for a remote source.
    fn local_artifact_digest(
        &mut self,
        base: &Path,
        source: &str,
    ) -> Result<Option<String>, ArtifactDigestError> {
        let key = base.join(source);
        if let Some(digest) = self.artifact_digests.get(&key) {
            return Ok(digest.clone());
        }
        let classified = crate::artifact::classify(base, source)?;
        let digest = crate::artifact::local_digest(&classified).map_err(|error| {
            ArtifactDigestError::Unreadable {
                artifact: source.to_string(),
                error,
            }
        })?;
        self.artifact_digests.insert(key, digest.clone());
        Ok(digest)
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    // ---- inputs -------------------------------------------------------------

    fn collect_inputs(&mut self, inputs: &InputSources, saved: &SavedInputs) -> InputValues {
        let mut values = InputValues::new();
        for (name, value) in saved {
            if let Ok(value) = serde_json::from_value::<Value>(value.clone()) {
                values.insert(
                    name.clone(),
                    InputValue {
                        raw: RawInput::Value(value),
                        origin: "the saved plan".into(),
                        span: None,
                    },
                );
            }
        }
        for (key, value) in &inputs.environment {
            if let Some(name) = key.strip_prefix(ENV_PREFIX) {
                values.insert(
                    name.to_string(),
                    InputValue {
                        raw: RawInput::Text(value.clone()),
                        origin: key.clone(),
                        span: None,
                    },
                );
            }
        }
        for path in &inputs.var_files {
            let bytes = match std::fs::read(path) {
                Ok(bytes) => bytes,
                Err(error) => {
                    self.error(
                        Diagnostic::error(
                            "var-file",
                            format!("cannot read var file {}: {error}", path.display()),
                        )
                        .help("check the path given to -var-file"),
                    );
                    continue;
                }
            };
            let Some(file) =
                super::raw::add_source(path, bytes, &mut self.sources, &mut self.diagnostics)
            else {
                continue;
            };
            self.var_files.insert(file);
            let Some(body) = super::raw::parse_file(file, &self.sources, &mut self.diagnostics)
            else {
                continue;
            };
            for block in &body.blocks {
                self.error(
                    Diagnostic::error("var-file", "a var file holds only name = value lines")
                        .at(block.header_span())
                        .help("remove the block"),
                );
            }
            let context = function_context();
            for attr in &body.attrs {
                match evaluate(&attr.expr, &context) {
                    Ok(value) => {
                        values.insert(
                            attr.name.clone(),
                            InputValue {
                                raw: RawInput::Value(value),
                                origin: self.sources.file(file).display.clone(),
                                span: Some(attr.name_span),
                            },
                        );
                    }
                    Err(error) => {
                        // A reference is what a var file cannot hold; other
                        // errors (a failing function or operation) are
                        // explained as anywhere else.
                        let help = match error.kind() {
                            hcl::eval::ErrorKind::UndefinedVar(_) => {
                                "var files hold values, not references to other values".to_string()
                            }
                            kind => describe_eval_error(kind).1,
                        };
                        self.error(
                            Diagnostic::error(
                                "eval",
                                format!("cannot evaluate \"{}\": {}", attr.name, error.kind()),
                            )
                            .at(attr.span)
                            .help(help),
                        )
                    }
                }
            }
        }
        for flag in &inputs.vars {
            match parse_var_flag(flag) {
                Ok((name, value)) => {
                    values.insert(
                        name,
                        InputValue {
                            raw: RawInput::Text(value),
                            origin: "-var".into(),
                            span: None,
                        },
                    );
                }
                Err(error) => self.error(Diagnostic::error("var-flag", error.to_string())),
            }
        }
        values
    }

    // ---- one scope -----------------------------------------------------------

    fn load_scope(&mut self, input: ScopeInput) -> Option<ScopeValues> {
        let in_module = !input.prefix.is_empty();
        check_body(
            &input.body,
            &schema::ROOT,
            if in_module { "module" } else { "configuration" },
            &self.sources,
            &mut self.diagnostics,
        );
        if self.diagnostics.has_errors() {
            return None;
        }
        let body = &input.body;

        if let Some(block) = body.blocks_of("slipway").next() {
            if in_module {
                self.error(
                    Diagnostic::error(
                        "module-slipway-block",
                        "a module cannot have a slipway block",
                    )
                    .at(block.header_span())
                    .help("configure the backend in the root configuration only"),
                );
            } else {
                self.load_backend(block);
                self.load_ca_file(block);
            }
        }

        let mut scope = ScopeValues {
            prefix: input.prefix.clone(),
            dir: input.dir.clone(),
            vars: hcl::Map::new(),
            locals: hcl::Map::new(),
            modules: hcl::Map::new(),
            tainted: HashSet::new(),
            outputs: hcl::Map::new(),
            sensitive_outputs: HashSet::new(),
            secrets: hcl::Map::new(),
            secret_sources: HashMap::new(),
            context_cache: std::cell::OnceCell::new(),
        };
        let errors_before = self.diagnostics.len();
        self.load_variables(body, &input, &mut scope);
        if self.diagnostics.len() > errors_before {
            // Everything below depends on variables; evaluating it with values
            // missing would only repeat the same problem in other words.
            return None;
        }
        self.load_secret_blocks(body, in_module, &mut scope);
        self.load_locals(body, &mut scope);
        for block in body.blocks_of("module") {
            self.load_module(block, &input, &mut scope);
        }

        for block in body.blocks_of("environment") {
            let address = format!("{}environment.{}", scope.prefix, block.label());
            if let Some(json) =
                self.eval_block(block, &schema::ENVIRONMENT, &scope, &scope.context())
            {
                match serde_json::from_value::<Environment>(json) {
                    Ok(mut environment) => {
                        environment.address = address.clone();
                        environment.name = block.label().to_string();
                        self.validate_environment(block, &environment);
                        self.config.environments.insert(address, environment);
                    }
                    Err(error) => self.decode_error(block, error),
                }
            }
        }
        for block in body.blocks_of("rollout") {
            let address = format!("{}rollout.{}", scope.prefix, block.label());
            if let Some(json) = self.eval_block(block, &schema::ROLLOUT, &scope, &scope.context()) {
                match serde_json::from_value::<Rollout>(json) {
                    Ok(mut rollout) => {
                        rollout.address = address.clone();
                        rollout.name = block.label().to_string();
                        self.validate_rollout(block, &rollout);
                        self.config.rollouts.insert(address, rollout);
                    }
                    Err(error) => self.decode_error(block, error),
                }
            }
        }
        let shared_scope = std::rc::Rc::new(scope.clone());
        for block in body.blocks_of("service") {
            let address = format!("{}service.{}", scope.prefix, block.label());
            self.services.insert(
                address,
                ServiceTemplate {
                    block: std::rc::Rc::new(block.clone()),
                    scope: shared_scope.clone(),
                },
            );
        }
        for block in body.blocks_of("deployment") {
            self.deployment_blocks.push(PendingDeployment {
                address: format!("{}deployment.{}", scope.prefix, block.label()),
                block: block.clone(),
                scope: shared_scope.clone(),
            });
        }
        if in_module {
            for block in body.blocks_of("output") {
                if let Some((value, sensitive)) = self.eval_output(block, &scope, &scope.context())
                {
                    if sensitive {
                        scope.sensitive_outputs.insert(block.label().to_string());
                        if let Some(attr) = block.body.attr("value") {
                            let refs = references(attr.span.file, &attr.edit_expr);
                            let sources = secret_sources_of(&refs, &scope);
                            scope
                                .secret_sources
                                .insert(format!("output.{}", block.label()), sources);
                        }
                    }
                    scope.outputs.insert(block.label().to_string(), value);
                }
            }
        } else {
            self.root_outputs = body.blocks_of("output").cloned().collect();
            self.root_scope = Some(scope.clone());
        }
        Some(scope)
    }

    fn load_backend(&mut self, block: &RawBlock) {
        let scope = ScopeValues {
            prefix: String::new(),
            dir: self.config.root.clone(),
            vars: hcl::Map::new(),
            locals: hcl::Map::new(),
            modules: hcl::Map::new(),
            tainted: HashSet::new(),
            outputs: hcl::Map::new(),
            sensitive_outputs: HashSet::new(),
            secrets: hcl::Map::new(),
            secret_sources: HashMap::new(),
            context_cache: std::cell::OnceCell::new(),
        };
        let Some(backend_block) = block.body.blocks_of("backend").next() else {
            return;
        };
        let kind = backend_block.label();
        if kind != "local" && kind != "s3" {
            self.error(
                Diagnostic::error("backend", format!("unknown backend \"{kind}\""))
                    .at(backend_block.header_span())
                    .help("use backend \"local\" { path = \"state\" } or backend \"s3\" { bucket = ... }"),
            );
            return;
        }
        if kind == "s3" && backend_block.body.attr("bucket").is_none() {
            self.error(
                Diagnostic::error("missing-attribute", "backend \"s3\" needs a bucket")
                    .at(backend_block.header_span())
                    .help("add bucket = \"...\""),
            );
            return;
        }
        if let Some(json) =
            self.eval_block(backend_block, &schema::BACKEND, &scope, &function_context())
        {
            match serde_json::from_value::<Backend>(json) {
                Ok(backend) => self.config.backend = backend,
                Err(error) => self.decode_error(backend_block, error),
            }
        }
    }

    /// `slipway { ca_file }`: like the backend, read before variables; the
    /// file must hold PEM certificates.
    fn load_ca_file(&mut self, block: &RawBlock) {
        let Some(attr) = block.body.attr("ca_file") else {
            return;
        };
        let scope = ScopeValues {
            prefix: String::new(),
            dir: self.config.root.clone(),
            vars: hcl::Map::new(),
            locals: hcl::Map::new(),
            modules: hcl::Map::new(),
            tainted: HashSet::new(),
            outputs: hcl::Map::new(),
            sensitive_outputs: HashSet::new(),
            secrets: hcl::Map::new(),
            secret_sources: HashMap::new(),
            context_cache: std::cell::OnceCell::new(),
        };
        let body = RawBody {
            attrs: vec![attr.clone()],
            blocks: Vec::new(),
        };
        let mut path = vec!["slipway".to_string()];
        let values = self.eval_body(
            &body,
            &schema::SLIPWAY,
            &mut path,
            &scope,
            &function_context(),
        );
        let Some(serde_json::Value::String(file)) = values.get("ca_file") else {
            return;
        };
        let resolved = self.config.root.join(file);
        match crate::http::trust::read_ca_file(&resolved) {
            Ok(_) => self.config.ca_file = Some(resolved),
            Err(problem) => self.error(
                Diagnostic::error("ca-file", format!("ca_file: {problem}"))
                    .at(attr.span)
                    .help("a PEM file with the certificates of the certificate authorities to trust, relative to the configuration directory"),
            ),
        }
    }

    /// A value given for a variable the configuration does not declare is an
    /// error, unless it came from the environment (like TF_VAR_*).
    fn check_undeclared_inputs(&mut self, body: &RawBody, input: &ScopeInput) {
        let declared: BTreeSet<&str> = body.blocks_of("variable").map(|b| b.label()).collect();
        for (name, value) in &input.values {
            // Like TF_VAR_*, an environment variable for a variable this
            // configuration does not declare is ignored.
            let from_environment = value.origin.starts_with(ENV_PREFIX);
            if !declared.contains(name.as_str()) && !from_environment {
                let mut diagnostic = Diagnostic::error(
                    "undeclared-variable",
                    format!(
                        "a value was given for variable \"{name}\" ({}), which is not declared",
                        value.origin
                    ),
                )
                .at_opt(value.span.or(input.call_span));
                diagnostic = match did_you_mean(name, declared.iter().copied()) {
                    Some(s) => diagnostic.help(format!("did you mean \"{s}\"?")),
                    None => diagnostic.help(format!("declare it with variable \"{name}\" {{ type = string }}, or remove the value")),
                };
                self.error(diagnostic);
            }
        }
    }

    /// A declared variable's value: the one given, converted to its type,
    /// else its default, checked against the type. `None` when neither
    /// works (reported).
    fn variable_value(
        &mut self,
        block: &RawBlock,
        input: &ScopeInput,
        var_type: VarType,
        sensitive: bool,
        literal_context: &Context<'static>,
    ) -> Option<Value> {
        let name = block.label();
        let value = match input.values.get(name) {
            Some(given) => match convert_input(&given.raw, var_type, sensitive) {
                Ok(value) => value,
                Err(message) => {
                    self.error(
                        Diagnostic::error(
                            "wrong-type",
                            format!("variable \"{name}\" from {}: {message}", given.origin),
                        )
                        .at_opt(given.span.or(Some(block.header_span())))
                        .help(format!(
                            "variable \"{name}\" is declared as {}",
                            var_type.describe()
                        )),
                    );
                    return None;
                }
            },
            None => match block.body.attr("default") {
                Some(attr) => match evaluate(&attr.expr, literal_context) {
                    Ok(value) => match check_var_type(&value, var_type) {
                        Ok(()) => value,
                        Err(message) => {
                            self.error(
                                Diagnostic::error(
                                    "wrong-type",
                                    format!("default of variable \"{name}\": {message}"),
                                )
                                .at(attr.span)
                                .help(format!(
                                    "the variable is declared as {}",
                                    var_type.describe()
                                )),
                            );
                            return None;
                        }
                    },
                    Err(error) => {
                        self.error(
                            Diagnostic::error(
                                "eval",
                                format!("cannot evaluate the default: {}", error.kind()),
                            )
                            .at(attr.span)
                            .help("a default must be a literal value"),
                        );
                        return None;
                    }
                },
                None => {
                    let module_note = if input.prefix.is_empty() {
                        String::new()
                    } else {
                        format!(" of {}", input.prefix.trim_end_matches('.'))
                    };
                    let how = if input.prefix.is_empty() {
                        format!("pass -var {name}=..., add it to a -var-file, set {ENV_PREFIX}{name}, or give the variable a default")
                    } else {
                        format!("set {name} = ... in the module block that calls this module, or give the variable a default")
                    };
                    self.error(
                        Diagnostic::error(
                            "missing-variable",
                            format!("no value for required variable \"{name}\"{module_note}"),
                        )
                        .at_opt(input.call_span.or(Some(block.header_span())))
                        .help(how),
                    );
                    return None;
                }
            },
        };
        Some(value)
    }

    fn load_variables(&mut self, body: &RawBody, input: &ScopeInput, scope: &mut ScopeValues) {
        self.check_undeclared_inputs(body, input);
        let literal_context = function_context();
        for block in body.blocks_of("variable") {
            let name = block.label().to_string();
            let var_type = match block.body.attr("type") {
                Some(attr) => match parse_type(&attr.expr) {
                    Some(t) => t,
                    None => {
                        self.error(
                            Diagnostic::error("variable-type", format!("unknown type for variable \"{name}\""))
                                .at(attr.span)
                                .help("use string, number, bool, list, map, list(string), map(string) or any"),
                        );
                        continue;
                    }
                },
                None => VarType::Any,
            };
            let sensitive = match block.body.attr("sensitive") {
                Some(attr) => match evaluate(&attr.expr, &literal_context) {
                    Ok(Value::Bool(b)) => b,
                    _ => {
                        self.error(
                            Diagnostic::error("wrong-type", "sensitive must be true or false")
                                .at(attr.span)
                                .help("write sensitive = true"),
                        );
                        false
                    }
                },
                None => false,
            } || input.tainted_inputs.contains(&name);
            let Some(value) =
                self.variable_value(block, input, var_type, sensitive, &literal_context)
            else {
                continue;
            };
            if let Some(sources) = input.input_sources.get(&name) {
                scope
                    .secret_sources
                    .insert(format!("var.{name}"), sources.clone());
            }
            if sensitive {
                scope.tainted.insert(format!("var.{name}"));
                let mut texts = Vec::new();
                collect_strings(&value, &mut texts);
                for text in &texts {
                    self.add_sensitive(text);
                }
            }
            if let (true, Some(given)) = (input.prefix.is_empty(), input.values.get(&name)) {
                self.config.inputs.insert(
                    name.clone(),
                    InputRecord {
                        value: to_json(&value),
                        sensitive,
                        origin: given.origin.clone(),
                    },
                );
            }
            scope.vars.insert(name.clone(), value);
            for validation in block.body.blocks_of("validation") {
                self.check_validation(&name, validation, scope);
            }
        }
    }

    /// `secret "NAME"` blocks (root only): what each names, checked, into
    /// `Config::secrets`; `secret.NAME` in scope, tainted, with the value
    /// read for it or the empty string. Their attributes may use `var.*`.
    fn load_secret_blocks(&mut self, body: &RawBody, in_module: bool, scope: &mut ScopeValues) {
        for block in body.blocks_of("secret") {
            if in_module {
                self.error(
                    Diagnostic::error("module-secret-block", "a module cannot have a secret block")
                        .at(block.header_span())
                        .help("declare the secret in the root configuration and pass secret.NAME to the module as an input"),
                );
                continue;
            }
            let name = block.label().to_string();
            // A block with errors (reported) still defines secret.NAME, so
            // its references are not reported as undefined as well.
            let spec = self.secret_spec(block, scope);
            let value = match self.secrets_read.get(&name).cloned() {
                Some(value) => {
                    self.add_sensitive(&value);
                    self.config
                        .secret_values
                        .insert(name.clone(), value.clone());
                    value
                }
                None => String::new(),
            };
            scope.secrets.insert(name.clone(), Value::String(value));
            scope.tainted.insert(format!("secret.{name}"));
            scope
                .secret_sources
                .insert(format!("secret.{name}"), BTreeSet::from([name.clone()]));
            if let Some(spec) = spec {
                self.config.secrets.insert(name, spec);
            }
        }
    }

    /// A `secret` block's settings, or `None` with the problems reported
    /// where they are: exactly one store, names not empty, `json_key` and
    /// `version_stage` only for Secrets Manager.
    fn secret_spec(&mut self, block: &RawBlock, scope: &ScopeValues) -> Option<SecretSpec> {
        let name = block.label();
        let json = self.eval_block(block, &schema::SECRET, scope, &scope.context())?;
        let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let span_of = |key: &str| block.body.attr(key).map(|a| a.span);
        let name_span_of = |key: &str| block.body.attr(key).map(|a| a.name_span);
        let errors_before = self.diagnostics.len();
        for key in [
            "aws_secrets_manager",
            "ssm_parameter",
            "json_key",
            "region",
            "version_stage",
        ] {
            if text(key).is_some_and(|v| v.trim().is_empty()) {
                self.error(
                    Diagnostic::error("secret", format!("secret \"{name}\": {key} is empty"))
                        .at_opt(span_of(key))
                        .help(match key {
                            "aws_secrets_manager" => "write the secret's name or ARN, e.g. aws_secrets_manager = \"prod/db\"",
                            "ssm_parameter" => "write the parameter's name, e.g. ssm_parameter = \"/prod/db/password\"",
                            _ => "give it a value, or remove it",
                        }),
                );
            }
        }
        let source = match (text("aws_secrets_manager"), text("ssm_parameter")) {
            (Some(_), Some(_)) => {
                self.error(
                    Diagnostic::error(
                        "secret",
                        format!("secret \"{name}\" names two stores: aws_secrets_manager and ssm_parameter"),
                    )
                    .at_opt(name_span_of("ssm_parameter"))
                    .help("a secret block reads one value: keep one of them, and declare another secret block for the other"),
                );
                return None;
            }
            (None, None) => {
                self.error(
                    Diagnostic::error("secret", format!("secret \"{name}\" names no store"))
                        .at(block.header_span())
                        .help("add aws_secrets_manager = \"NAME or ARN\" (Secrets Manager) or ssm_parameter = \"/NAME\" (SSM Parameter Store)"),
                );
                return None;
            }
            (Some(secret_id), None) => SecretSource::SecretsManager {
                secret_id,
                version_stage: text("version_stage"),
            },
            (None, Some(parameter)) => {
                for key in ["json_key", "version_stage"] {
                    if text(key).is_some() {
                        self.error(
                            Diagnostic::error(
                                "secret",
                                format!("secret \"{name}\": {key} applies to Secrets Manager secrets, not to an SSM parameter"),
                            )
                            .at_opt(name_span_of(key))
                            .help(format!("remove {key}: a parameter's value is used whole (keep one value per parameter)")),
                        );
                    }
                }
                SecretSource::SsmParameter { name: parameter }
            }
        };
        (self.diagnostics.len() == errors_before).then(|| SecretSpec {
            name: name.to_string(),
            source,
            json_key: text("json_key"),
            region: text("region"),
            span: block.header_span(),
        })
    }

    fn check_validation(&mut self, name: &str, validation: &RawBlock, scope: &ScopeValues) {
        let (Some(condition), Some(message)) = (
            validation.body.attr("condition"),
            validation.body.attr("error_message"),
        ) else {
            return;
        };
        let context = scope.context();
        let message_refs = references(message.span.file, &message.edit_expr);
        let message = match evaluate(&message.expr, &context) {
            Ok(Value::String(s)) => {
                if message_refs.iter().any(|r| is_tainted(r, &scope.tainted)) {
                    let value = Value::String(s.clone());
                    let derived = self.register_derived(&value, message, scope, &context);
                    if derived.texts.is_empty() {
                        self.config.mask(&s)
                    } else {
                        format!("validation of variable \"{name}\" failed (its error_message is computed from a sensitive value, so it is not shown)")
                    }
                } else {
                    s
                }
            }
            _ => format!("validation of variable \"{name}\" failed"),
        };
        match evaluate(&condition.expr, &context) {
            Ok(Value::Bool(true)) => {}
            Ok(Value::Bool(false)) => self.error(
                Diagnostic::error(
                    "validation",
                    format!("invalid value for variable \"{name}\": {message}"),
                )
                .at(condition.span)
                .label("this condition is false")
                .help(format!(
                    "pass a value for \"{name}\" that meets the condition"
                )),
            ),
            Ok(other) => self.error(
                Diagnostic::error(
                    "wrong-type",
                    format!(
                        "a validation condition must be a bool, not {}",
                        type_name(&other)
                    ),
                )
                .at(condition.span),
            ),
            Err(error) => {
                let refs = references(condition.span.file, &condition.edit_expr);
                let tainted = refs.iter().any(|r| is_tainted(r, &scope.tainted));
                self.eval_error_in(condition, &error, tainted)
            }
        }
    }

    fn load_locals(&mut self, body: &RawBody, scope: &mut ScopeValues) {
        let mut pending: Vec<&RawAttr> = Vec::new();
        let mut seen: HashMap<&str, &RawAttr> = HashMap::new();
        for block in body.blocks_of("locals") {
            for attr in &block.body.attrs {
                if let Some(first) = seen.insert(attr.name.as_str(), attr) {
                    self.error(
                        Diagnostic::error(
                            "duplicate-name",
                            format!("local \"{}\" is defined twice", attr.name),
                        )
                        .at(attr.name_span)
                        .help(format!(
                            "first defined at {}; names must be unique across all locals blocks",
                            super::check::location(&self.sources, first.name_span)
                        )),
                    );
                    continue;
                }
                pending.push(attr);
            }
        }
        let names: HashSet<String> = pending.iter().map(|a| a.name.clone()).collect();
        let deps: HashMap<String, Vec<Reference>> = pending
            .iter()
            .map(|attr| {
                (
                    attr.name.clone(),
                    references(attr.span.file, &attr.edit_expr),
                )
            })
            .collect();
        // Evaluate in dependency order: repeatedly take the locals whose local
        // references are all known.
        loop {
            let before = pending.len();
            let mut still = Vec::new();
            for attr in pending {
                let refs = &deps[&attr.name];
                let waiting = refs.iter().any(|r| {
                    r.path.first().is_some_and(|root| root == "local")
                        && r.path
                            .get(1)
                            .is_some_and(|n| names.contains(n) && !scope.locals.contains_key(n))
                });
                if waiting {
                    still.push(attr);
                    continue;
                }
                if !self.check_references(refs, scope) {
                    scope.locals.insert(attr.name.clone(), Value::Null);
                    continue;
                }
                let tainted = refs.iter().any(|r| is_tainted(r, &scope.tainted));
                let context = scope.context();
                let value = with_base_dir(&scope.dir, || evaluate(&attr.expr, &context));
                if let (true, Ok(value)) = (tainted, &value) {
                    self.register_derived(value, attr, scope, &context);
                }
                if tainted {
                    scope.tainted.insert(format!("local.{}", attr.name));
                    let sources = secret_sources_of(refs, scope);
                    scope
                        .secret_sources
                        .insert(format!("local.{}", attr.name), sources);
                }
                match value {
                    Ok(value) => {
                        scope.locals.insert(attr.name.clone(), value);
                    }
                    Err(error) => {
                        self.eval_error_in(attr, &error, tainted);
                        scope.locals.insert(attr.name.clone(), Value::Null);
                    }
                }
            }
            pending = still;
            if pending.is_empty() || pending.len() == before {
                break;
            }
        }
        if !pending.is_empty() {
            let waiting: HashSet<&str> = pending.iter().map(|a| a.name.as_str()).collect();
            let mut edges = Vec::new();
            for attr in &pending {
                for reference in &deps[&attr.name] {
                    if let (Some("local"), Some(target)) = (
                        reference.path.first().map(String::as_str),
                        reference.path.get(1),
                    ) {
                        if waiting.contains(target.as_str()) {
                            edges.push((format!("local.{}", attr.name), format!("local.{target}")));
                        }
                    }
                }
            }
            for cycle in super::cycles::dependency_cycles(&edges) {
                for member in &cycle[..cycle.len() - 1] {
                    let Some(attr) = pending
                        .iter()
                        .find(|a| format!("local.{}", a.name) == *member)
                    else {
                        continue;
                    };
                    self.error(
                        Diagnostic::error(
                            "cycle",
                            format!(
                                "locals refer to each other in a cycle: {} (→ means refers to)",
                                cycle.join(" → ")
                            ),
                        )
                        .at(attr.name_span)
                        .help("break the cycle: one of these locals must not depend on the others"),
                    );
                }
            }
        }
    }

    fn load_module(&mut self, block: &RawBlock, input: &ScopeInput, scope: &mut ScopeValues) {
        let name = block.label().to_string();
        if input.depth + 1 > MAX_MODULE_DEPTH {
            self.error(
                Diagnostic::error(
                    "module-depth",
                    format!("modules are nested more than {MAX_MODULE_DEPTH} deep"),
                )
                .at(block.header_span())
                .help("a module probably calls itself; check the source paths"),
            );
            return;
        }
        let Some(source_attr) = block.body.attr("source") else {
            return;
        };
        let source = match evaluate(&source_attr.expr, &function_context()) {
            Ok(Value::String(s)) => s,
            _ => {
                self.error(
                    Diagnostic::error("wrong-type", "module source must be a literal string path")
                        .at(source_attr.span)
                        .help("write source = \"./modules/NAME\""),
                );
                return;
            }
        };
        let dir = lexically_normal(&input.dir.join(&source));
        if !dir.is_dir() {
            self.error(
                Diagnostic::error(
                    "module-source",
                    format!("module directory \"{source}\" does not exist"),
                )
                .at(source_attr.span)
                .help(format!(
                    "the path is relative to {}; create it or fix the path",
                    input.dir.display()
                )),
            );
            return;
        }
        let mut values = InputValues::new();
        let mut tainted_inputs = HashSet::new();
        let mut input_sources = HashMap::new();
        let context = scope.context();
        for attr in block.body.attrs.iter().filter(|a| a.name != "source") {
            let refs = references(attr.span.file, &attr.edit_expr);
            if !self.check_references(&refs, scope) {
                continue;
            }
            let tainted = refs.iter().any(|r| is_tainted(r, &scope.tainted));
            if tainted {
                tainted_inputs.insert(attr.name.clone());
                input_sources.insert(attr.name.clone(), secret_sources_of(&refs, scope));
            }
            match with_base_dir(&scope.dir, || evaluate(&attr.expr, &context)) {
                Ok(value) => {
                    values.insert(
                        attr.name.clone(),
                        InputValue {
                            raw: RawInput::Value(value),
                            origin: format!("module \"{name}\""),
                            span: Some(attr.name_span),
                        },
                    );
                }
                Err(error) => self.eval_error_in(attr, &error, tainted),
            }
        }
        let bodies = read_directory(&dir, &mut self.sources, &mut self.diagnostics);
        if bodies.is_empty() {
            self.error(
                Diagnostic::error(
                    "module-source",
                    format!("module directory \"{source}\" has no *.hcl files"),
                )
                .at(source_attr.span)
                .help("point source at a directory with configuration files"),
            );
            return;
        }
        let prefix = format!("{}module.{name}.", input.prefix);
        let Some(module_scope) = self.load_scope(ScopeInput {
            prefix,
            dir: dir.clone(),
            body: merge_bodies(bodies.into_iter().map(|(_, b)| b)),
            values,
            tainted_inputs,
            input_sources,
            depth: input.depth + 1,
            call_span: Some(block.header_span()),
        }) else {
            return;
        };
        for output in &module_scope.sensitive_outputs {
            scope.tainted.insert(format!("module.{name}.{output}"));
            if let Some(sources) = module_scope.secret_sources.get(&format!("output.{output}")) {
                scope
                    .secret_sources
                    .insert(format!("module.{name}.{output}"), sources.clone());
            }
        }
        scope
            .modules
            .insert(name, Value::Object(module_scope.outputs));
    }
}

impl Loader {
    // ---- evaluation helpers ------------------------------------------------------

    /// An evaluation error; when the expression uses a sensitive value
    /// (`tainted`), what failed is named but no value: error texts quote
    /// the values they got, and those would be computed from the secret.
    fn eval_error_in(&mut self, attr: &RawAttr, error: &hcl::eval::Error, tainted: bool) {
        // A function's error points at its call (the first call of that
        // function in the expression), other errors at the expression.
        let span = match error.kind() {
            hcl::eval::ErrorKind::FuncCall(name, _) => {
                super::eval::call_span(attr.span.file, &attr.edit_expr, name.name.as_str())
            }
            _ => None,
        }
        .unwrap_or(attr.span);
        let (message, help) = if tainted {
            let what = match error.kind() {
                hcl::eval::ErrorKind::FuncCall(name, _) => format!("{name}() failed"),
                _ => "the expression failed".to_string(),
            };
            (
                format!(
                    "{what} on a sensitive value (the details are not shown: they would repeat it)"
                ),
                "check this expression with a non-sensitive test value".to_string(),
            )
        } else {
            let (message, help) = describe_eval_error(error.kind());
            (self.config.mask(&message), help)
        };
        self.error(
            Diagnostic::error(
                "eval",
                format!("cannot evaluate \"{}\": {message}", attr.name),
            )
            .at(span)
            .help(help),
        );
    }

    fn decode_error(&mut self, block: &RawBlock, error: serde_json::Error) {
        self.error(
            Diagnostic::error(
                "wrong-type",
                format!("{} \"{}\": {error}", block.kind, block.label()),
            )
            .at(block.header_span())
            .help("check the types of this block's attributes against docs/language.md"),
        );
    }

    /// Check `var.*`, `local.*` and `module.*` references against what the scope
    /// declares. Returns false when any is undefined (errors already reported).
    fn check_references(&mut self, refs: &[Reference], scope: &ScopeValues) -> bool {
        let mut ok = true;
        for reference in refs {
            if !self.check_special_reference(reference, scope) {
                ok = false;
                continue;
            }
            let root = reference.path[0].as_str();
            let (known, what, declare): (Vec<&str>, &str, &str) = match root {
                "var" => (
                    scope.vars.keys().map(String::as_str).collect(),
                    "variable",
                    "declare it with variable \"NAME\" { type = string }",
                ),
                "local" => (
                    scope.locals.keys().map(String::as_str).collect(),
                    "local value",
                    "define it in a locals { } block",
                ),
                "module" => (
                    scope.modules.keys().map(String::as_str).collect(),
                    "module",
                    "call it with module \"NAME\" { source = \"./modules/...\" }",
                ),
                "secret" if !scope.prefix.is_empty() => (
                    Vec::new(),
                    "secret",
                    "a module has no secret blocks: declare the secret in the root configuration and pass secret.NAME to the module as an input",
                ),
                "secret" => (
                    scope.secrets.keys().map(String::as_str).collect(),
                    "secret",
                    "declare it with secret \"NAME\" { aws_secrets_manager = \"NAME or ARN\" } or { ssm_parameter = \"/NAME\" }",
                ),
                _ => continue,
            };
            let Some(name) = reference.path.get(1) else {
                self.error(
                    Diagnostic::error("reference", format!("\"{root}\" alone is not a value"))
                        .at(reference.span)
                        .help(format!("refer to one {what}: {root}.NAME")),
                );
                ok = false;
                continue;
            };
            if known.contains(&name.as_str()) {
                continue;
            }
            ok = false;
            let mut diagnostic = Diagnostic::error(
                "undefined-reference",
                format!("undefined {what} {}", excerpt(&format!("{root}.{name}"))),
            )
            .at(reference.span);
            diagnostic = match did_you_mean(name, known.iter().copied()) {
                Some(suggestion) => diagnostic
                    .label(format!("did you mean {root}.{suggestion}?"))
                    .help(format!("did you mean {root}.{suggestion}?")),
                None => diagnostic.help(declare.to_string()),
            };
            self.error(diagnostic);
        }
        ok
    }

    /// Checks of `env.variables.KEY` in services, `deployment.NAME` in outputs
    /// and `module.NAME.OUTPUT`, which the plain variable check cannot see.
    fn check_special_reference(&mut self, reference: &Reference, scope: &ScopeValues) -> bool {
        let path: Vec<&str> = reference.path.iter().map(String::as_str).collect();
        let (message, candidates, wrong): (String, Vec<String>, &str) = match path.as_slice() {
            ["env", "variables", key, ..] => match &self.evaluating_service {
                Some((what, environment, keys)) if !keys.iter().any(|k| k == key) => (
                    format!("environment \"{environment}\" has no variables key \"{key}\" (evaluating {what})"),
                    keys.clone(),
                    key,
                ),
                _ => return true,
            },
            ["deployment", name, ..] => match &self.output_deployments {
                Some(known) if !known.iter().any(|k| k == name) => {
                    (format!("deployment.{name} is not defined"), known.clone(), name)
                }
                _ => return true,
            },
            ["module", module, output, ..] => match scope.modules.get(*module) {
                Some(Value::Object(outputs)) if !outputs.contains_key(*output) => (
                    format!("module.{module} has no output \"{output}\""),
                    outputs.keys().cloned().collect(),
                    output,
                ),
                _ => return true,
            },
            _ => return true,
        };
        let mut diagnostic = Diagnostic::error("undefined-reference", message).at(reference.span);
        diagnostic = match did_you_mean(wrong, candidates.iter().map(String::as_str)) {
            Some(suggestion) => diagnostic
                .label(format!("did you mean {suggestion}?"))
                .help(format!("did you mean {suggestion}?")),
            None if candidates.is_empty() => {
                diagnostic.help("there is nothing of that kind to refer to here")
            }
            None => diagnostic.help(format!("defined: {}", candidates.join(", "))),
        };
        self.error(diagnostic);
        false
    }

    /// `context` with every leaf of every sensitive name of `scope` replaced
    /// by a marker of `variant` (see [`taint`]).
    fn shadow_context<'a>(
        scope: &ScopeValues,
        context: &Context<'a>,
        variant: usize,
    ) -> (Context<'a>, taint::Markers) {
        let mut markers = taint::Markers::default();
        let mut roots = [
            ("var", scope.vars.clone()),
            ("local", scope.locals.clone()),
            ("module", scope.modules.clone()),
            ("secret", scope.secrets.clone()),
        ];
        let mut names: Vec<&String> = scope.tainted.iter().collect();
        names.sort();
        for name in names {
            let mut parts = name.split('.');
            let Some(root) = parts.next() else { continue };
            let Some((_, map)) = roots.iter_mut().find(|(r, _)| *r == root) else {
                continue;
            };
            let Some(first) = parts.next() else { continue };
            let rest: Vec<&str> = parts.collect();
            if let Some(slot) = map.get_mut(first) {
                shadow_at(slot, &rest, variant, &mut markers);
            }
        }
        let mut shadow = context.clone();
        for (root, map) in roots {
            shadow.declare_var(root, Value::Object(map));
        }
        (shadow, markers)
    }

    /// Sensitivity as taint: `value` was computed by `attr` from sensitive
    /// values. Whatever of it is not a plain copy of them becomes a
    /// sensitive value too, masked wherever it would be shown or stored.
    /// A value computed from a secret that was not read (`secret.NAME` is
    /// then the empty string) is nothing to hide: what it computes from the
    /// placeholder (`length` gives `0`) would only mask unrelated text.
    fn register_derived(
        &mut self,
        value: &Value,
        attr: &RawAttr,
        scope: &ScopeValues,
        context: &Context,
    ) -> taint::Derived {
        let refs = references(attr.span.file, &attr.edit_expr);
        if secret_sources_of(&refs, scope)
            .iter()
            .any(|name| !self.secrets_read.contains_key(name))
        {
            return taint::Derived::default();
        }
        let expr = &attr.expr;
        let (first, markers0) = Self::shadow_context(scope, context, 0);
        let (second, markers1) = Self::shadow_context(scope, context, 1);
        let shadows = [first, second].map(|c| with_base_dir(&scope.dir, || evaluate(expr, &c)));
        let derived = taint::judge(value, shadows, &[markers0, markers1]);
        for text in &derived.texts {
            self.add_sensitive(text);
        }
        derived
    }

    /// Mask `text` wherever it is shown or stored, and each line of it: a
    /// line may be shown on its own (a diff, a host's error).
    fn add_sensitive(&mut self, text: &str) {
        let values = &mut self.config.sensitive_values;
        let lines = text
            .lines()
            .filter(|l| l.len() < text.len() && !l.trim().is_empty());
        for piece in std::iter::once(text).chain(lines) {
            if !piece.is_empty() && !values.iter().any(|v| v == piece) {
                values.push(piece.to_string());
            }
        }
    }

    fn check_sensitive(
        &mut self,
        refs: &[Reference],
        scope: &ScopeValues,
        path: &[&str],
        attr: &RawAttr,
    ) -> bool {
        if schema::accepts_sensitive(path, &attr.name) {
            return true;
        }
        let Some(reference) = refs.iter().find(|r| is_tainted(r, &scope.tainted)) else {
            return true;
        };
        let name = reference.path[..2.min(reference.path.len())].join(".");
        self.error(
            Diagnostic::error(
                "sensitive-value",
                format!("sensitive value {name} is used in \"{}\", which would be printed", attr.name),
            )
            .at(reference.span)
            .label("sensitive")
            .help("sensitive values may only flow into config_file content, ECS secrets, an artifact's headers and password (and outputs marked sensitive = true)"),
        );
        false
    }

    /// Evaluate a block's attributes and nested blocks into JSON, checking types.
    /// Returns `None` when anything failed (errors reported).
    fn eval_block(
        &mut self,
        block: &RawBlock,
        schema: &Schema,
        scope: &ScopeValues,
        context: &Context,
    ) -> Option<serde_json::Value> {
        let errors_before = self.diagnostics.len();
        self.check_labels(block);
        let mut path = vec![block.kind.clone()];
        let mut object = self.eval_body(&block.body, schema, &mut path, scope, context);
        if !block.labels.is_empty() {
            object.insert(
                "name".into(),
                serde_json::Value::String(block.label().to_string()),
            );
        }
        (self.diagnostics.len() == errors_before).then_some(serde_json::Value::Object(object))
    }

    fn eval_body(
        &mut self,
        body: &RawBody,
        schema: &Schema,
        path: &mut Vec<String>,
        scope: &ScopeValues,
        context: &Context,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut object = serde_json::Map::new();
        for attr in &body.attrs {
            let Some(spec) = schema.attr(&attr.name) else {
                continue;
            };
            if matches!(spec.ty, Ty::Ref(_) | Ty::RefList(_)) {
                continue;
            }
            let refs = references(attr.span.file, &attr.edit_expr);
            if !self.check_references(&refs, scope) {
                continue;
            }
            let path_refs: Vec<&str> = path.iter().map(String::as_str).collect();
            if !self.check_sensitive(&refs, scope, &path_refs, attr) {
                continue;
            }
            let tainted = refs.iter().any(|r| is_tainted(r, &scope.tainted));
            match with_base_dir(&scope.dir, || evaluate(&attr.expr, context)) {
                Ok(Value::Null) if !spec.required => {
                    // As in Terraform, null means "not set".
                }
                Ok(value) => {
                    if tainted {
                        self.register_derived(&value, attr, scope, context);
                    }
                    if let Some(json) = self.check_type(&value, spec.ty, attr) {
                        if self.check_text(attr, &json) && self.check_command_size(attr, &json) {
                            object.insert(attr.name.clone(), json);
                        }
                    }
                }
                Err(error) => self.eval_error_in(attr, &error, tainted),
            }
        }
        for block in &body.blocks {
            let Some(spec) = schema.block(&block.kind) else {
                continue;
            };
            self.check_labels(block);
            path.push(block.kind.clone());
            let mut child = self.eval_body(&block.body, spec.schema, path, scope, context);
            path.pop();
            if !block.labels.is_empty() {
                child.insert(
                    "name".into(),
                    serde_json::Value::String(block.label().to_string()),
                );
            }
            insert_block(&mut object, spec, child);
        }
        object
    }

    /// Control characters in an attribute's strings (and map keys): file
    /// content and commands may hold newline, carriage return and tab; every
    /// other value tab only. A NUL would be dropped on the way to a host, and
    /// escape sequences would reach terminals. The value itself is not
    /// repeated (it may be secret); the message says which character and where.
    fn check_text(&mut self, attr: &RawAttr, json: &serde_json::Value) -> bool {
        fn first_bad(
            json: &serde_json::Value,
            find: &dyn Fn(&str) -> Option<char>,
        ) -> Option<(usize, char)> {
            let at = |text: &str| {
                find(text).map(|c| (text.chars().position(|x| x == c).unwrap_or(0) + 1, c))
            };
            match json {
                serde_json::Value::String(text) => at(text),
                serde_json::Value::Array(items) => items.iter().find_map(|i| first_bad(i, find)),
                serde_json::Value::Object(map) => map
                    .iter()
                    .find_map(|(k, v)| at(k).or_else(|| first_bad(v, find))),
                _ => None,
            }
        }
        let multiline = matches!(
            attr.name.as_str(),
            "content" | "command" | "start_command" | "stop_command" | "query"
        );
        let find: &dyn Fn(&str) -> Option<char> = if multiline {
            &encode::text::forbidden_in_content
        } else {
            &encode::text::forbidden_in_line
        };
        let Some((position, c)) = first_bad(json, find) else {
            return true;
        };
        self.error(
            Diagnostic::error(
                "control-character",
                format!(
                    "\"{}\" holds {} (character {position} of its value)",
                    attr.name,
                    encode::text::describe_char(c)
                ),
            )
            .at(attr.span)
            .help(if multiline {
                "file content and commands may hold newlines and tabs, but no other control characters"
            } else {
                "this value is one line of text: tab is the only control character it may hold"
            }),
        );
        false
    }

    /// A command runs as the argument of `/bin/sh -c` on a host, which
    /// Linux limits in size: a longer one is refused here rather than fail
    /// every host at apply.
    fn check_command_size(&mut self, attr: &RawAttr, json: &serde_json::Value) -> bool {
        let is_command = matches!(
            attr.name.as_str(),
            "command" | "start_command" | "stop_command"
        );
        let serde_json::Value::String(command) = json else {
            return true;
        };
        if !is_command || command.len() <= crate::vm::steps::MAX_COMMAND_BYTES {
            return true;
        }
        self.error(
            Diagnostic::error(
                "command-size",
                format!(
                    "\"{}\" is {} bytes long, more than the {} a command may have",
                    attr.name,
                    command.len(),
                    crate::vm::steps::MAX_COMMAND_BYTES
                ),
            )
            .at(attr.span)
            .help("put a long script into the artifact and run it from the command"),
        );
        false
    }

    /// Block labels name files, steps and units: one line of text each.
    fn check_labels(&mut self, block: &RawBlock) {
        for (label, span) in &block.labels {
            if let Some(c) = encode::text::forbidden_in_line(label)
                .or_else(|| label.chars().find(|c| *c == '\t'))
            {
                self.error(
                    Diagnostic::error(
                        "control-character",
                        format!(
                            "the label {} holds {}",
                            excerpt(label),
                            encode::text::describe_char(c)
                        ),
                    )
                    .at(*span)
                    .help("a label is a name: letters, digits and punctuation"),
                );
            }
        }
    }

    fn check_type(&mut self, value: &Value, ty: Ty, attr: &RawAttr) -> Option<serde_json::Value> {
        match typed_json(value, ty) {
            Ok(json) => Some(json),
            Err(TypeProblem { message, code }) => {
                self.error(
                    Diagnostic::error(code, format!("\"{}\": {message}", attr.name))
                        .at(attr.span)
                        .help(format!("\"{}\" must be {}", attr.name, ty.describe())),
                );
                None
            }
        }
    }

    fn eval_output(
        &mut self,
        block: &RawBlock,
        scope: &ScopeValues,
        context: &Context,
    ) -> Option<(Value, bool)> {
        let attr = block.body.attr("value")?;
        let sensitive = matches!(
            block
                .body
                .attr("sensitive")
                .map(|a| evaluate(&a.expr, &function_context())),
            Some(Ok(Value::Bool(true)))
        );
        let refs = references(attr.span.file, &attr.edit_expr);
        if !self.check_references(&refs, scope) {
            return None;
        }
        if !sensitive {
            if let Some(reference) = refs.iter().find(|r| is_tainted(r, &scope.tainted)) {
                self.error(
                    Diagnostic::error(
                        "sensitive-value",
                        format!(
                            "output \"{}\" shows a sensitive value ({})",
                            block.label(),
                            reference.path.join(".")
                        ),
                    )
                    .at(reference.span)
                    .label("sensitive")
                    .help("mark the output sensitive = true, or output something else"),
                );
                return None;
            }
        }
        let tainted = refs.iter().any(|r| is_tainted(r, &scope.tainted));
        match with_base_dir(&scope.dir, || evaluate(&attr.expr, context)) {
            Ok(value) => {
                if tainted {
                    self.register_derived(&value, attr, scope, context);
                }
                Some((value, sensitive))
            }
            Err(error) => {
                self.eval_error_in(attr, &error, tainted);
                None
            }
        }
    }

    // ---- validation of typed blocks ---------------------------------------------

    fn validate_environment(&mut self, block: &RawBlock, environment: &Environment) {
        if environment.vm_hosts.is_none() && environment.ecs_cluster.is_none() {
            self.error(
                Diagnostic::error(
                    "environment-target",
                    format!(
                        "environment \"{}\" has neither vm_hosts nor ecs_cluster",
                        environment.name
                    ),
                )
                .at(block.header_span())
                .help("add a vm_hosts { hosts = [...] } or an ecs_cluster { ... } block"),
            );
        }
        if let Some(vm_hosts) = &environment.vm_hosts {
            let hosts_block = block.body.blocks_of("vm_hosts").next();
            let attr_span =
                |name: &str| hosts_block.and_then(|b| b.body.attr(name)).map(|a| a.span);
            let span = attr_span("hosts");
            if vm_hosts.hosts.is_empty() {
                self.error(
                    Diagnostic::error("empty-hosts", "hosts is empty")
                        .at_opt(span)
                        .help("list at least one host"),
                );
            }
            if let Some(problem) = super::unusable_identity_file(vm_hosts, &self.config.root) {
                let at = hosts_block
                    .and_then(|b| b.body.attr("identity_file"))
                    .map(|a| a.span);
                self.error(
                    Diagnostic::warning("identity-file", problem)
                        .at_opt(at)
                        .help("fix the path or create the key: with it missing, every host would refuse the login, and apply refuses to start"),
                );
            }
            let local = vm_hosts.transport == TransportKind::Local;
            let mut seen = HashSet::new();
            for host in &vm_hosts.hosts {
                if !seen.insert(host) {
                    self.error(
                        Diagnostic::error(
                            "duplicate-host",
                            format!("host {} is listed twice", excerpt(host)),
                        )
                        .at_opt(span)
                        .help("each host may appear once"),
                    );
                }
                let checked = if local {
                    confine::local_host(host).map_err(|e| e.to_string())
                } else {
                    encode::ssh::parse_target(host)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                };
                if let Err(problem) = checked {
                    self.error(
                        Diagnostic::error(
                            "invalid-host",
                            format!("{} is not a host: {problem}", excerpt(host)),
                        )
                        .at_opt(span)
                        .help(if local {
                            "with the local transport a host is one directory name, such as \"host-1\""
                        } else {
                            "write a host name, an IP address, or host:port, optionally with user@ in front"
                        }),
                    );
                }
            }
            // Values that reach the ssh command line or the ssh config written
            // for a bastion: checked against their grammars, never escaped.
            let mut check = |name: &str,
                             value: Option<&String>,
                             result: Result<(), encode::ssh::SshValueError>,
                             help: &str| {
                if value.is_some() {
                    if let Err(problem) = result {
                        self.error(
                            Diagnostic::error(
                                "invalid-ssh-value",
                                format!("\"{name}\": {problem}"),
                            )
                            .at_opt(attr_span(name))
                            .help(help.to_string()),
                        );
                    }
                }
            };
            let ok = Ok(());
            let bastion = vm_hosts.bastion.as_ref();
            check(
                "bastion",
                bastion,
                bastion.map_or(ok.clone(), |b| encode::ssh::parse_target(b).map(|_| ())),
                "write the jump host as host, host:port or user@host:port",
            );
            let user = vm_hosts.user.as_ref();
            check(
                "user",
                user,
                user.map_or(ok.clone(), |u| encode::ssh::check_user(u)),
                "a user name has letters, digits, '_', '.' and '-'",
            );
            for name in ["identity_file", "known_hosts_file"] {
                let value = if name == "identity_file" {
                    vm_hosts.identity_file.as_ref()
                } else {
                    vm_hosts.known_hosts_file.as_ref()
                };
                check(
                    name,
                    value,
                    value.map_or(ok.clone(), |p| encode::ssh::check_path(p)),
                    "ssh expands % and $ in paths: use a path without them",
                );
            }
            if let Some(root) = &vm_hosts.root {
                if let Err(problem) = confine::local_root(root) {
                    self.error(
                        Diagnostic::error("invalid-root", format!("\"root\": {problem}"))
                            .at_opt(attr_span("root"))
                            .help("use a directory inside the configuration's directory, such as \".slipway/hosts\""),
                    );
                }
            }
        }
    }

    fn validate_rollout(&mut self, block: &RawBlock, rollout: &Rollout) {
        self.validate_notify(block, rollout);
        self.validate_strategy(block, rollout);
        self.validate_batches_and_approvals(block, rollout);
        for gate in &rollout.verify {
            self.validate_gate(block, gate);
        }
    }

    /// The strategy takes the attributes it moves by (batches or steps, or
    /// none), and steps increase from above 0% to 100%.
    fn validate_strategy(&mut self, block: &RawBlock, rollout: &Rollout) {
        let attr_span = |name: &str| block.body.attr(name).map(|a| a.span);
        let header = block.header_span();
        match rollout.strategy {
            Strategy::AllAtOnce => {
                for name in ["batches", "steps"] {
                    if let Some(span) = attr_span(name) {
                        self.error(
                            Diagnostic::error("rollout", format!("strategy \"all_at_once\" takes no {name}"))
                                .at(span)
                                .help("remove it, or use strategy = \"rolling\" (batches) or \"canary\" (steps)"),
                        );
                    }
                }
            }
            Strategy::Rolling => {
                if let Some(span) = attr_span("steps") {
                    self.error(
                        Diagnostic::error(
                            "rollout",
                            "strategy \"rolling\" uses batches, not steps",
                        )
                        .at(span)
                        .help("rename steps to batches, e.g. batches = [1, \"25%\", \"100%\"]"),
                    );
                }
            }
            Strategy::Canary | Strategy::BlueGreen => {
                if let Some(span) = attr_span("batches") {
                    self.error(
                        Diagnostic::error(
                            "rollout",
                            format!("strategy \"{}\" uses steps, not batches", rollout.strategy),
                        )
                        .at(span)
                        .help("remove batches: this strategy moves by steps, e.g. steps = [\"10%\", \"50%\", \"100%\"]"),
                    );
                }
                if rollout.strategy == Strategy::Canary && rollout.steps.is_empty() {
                    self.error(
                        Diagnostic::error("rollout", "a canary rollout needs steps")
                            .at(header)
                            .help("add steps = [\"10%\", \"25%\", \"50%\", \"100%\"]"),
                    );
                }
                let percents: Vec<u32> = rollout.steps.iter().map(|s| s.get()).collect();
                if percents.windows(2).any(|w| w[0] >= w[1]) {
                    self.error(
                        Diagnostic::error("rollout", "steps must increase")
                            .at_opt(attr_span("steps"))
                            .help("each step's share must be larger than the one before"),
                    );
                }
                if percents.last().is_some_and(|last| *last != 100) {
                    self.error(
                        Diagnostic::error("rollout", "the last step must be \"100%\"")
                            .at_opt(attr_span("steps"))
                            .help("end with \"100%\" so the rollout completes"),
                    );
                }
                if percents.first() == Some(&0) {
                    self.error(
                        Diagnostic::error("rollout", "a step of 0% moves nothing")
                            .at_opt(attr_span("steps"))
                            .help("start with a share above 0%"),
                    );
                }
            }
        }
    }

    /// No batch is empty, and each approval comes after one of the steps.
    fn validate_batches_and_approvals(&mut self, block: &RawBlock, rollout: &Rollout) {
        let attr_span = |name: &str| block.body.attr(name).map(|a| a.span);
        for batch in &rollout.batches {
            let zero = match batch {
                BatchSize::Count(n) => *n == 0,
                BatchSize::Share(share) => share.get() == 0,
            };
            if zero {
                self.error(
                    Diagnostic::error("rollout", "a batch of 0 hosts deploys nothing")
                        .at_opt(attr_span("batches"))
                        .help("use at least 1 host or 1%"),
                );
            }
        }
        if !rollout.steps.is_empty() {
            for approval in &rollout.approvals {
                if approval.after_step == 0 || approval.after_step as usize > rollout.steps.len() {
                    let span = block
                        .body
                        .blocks_of("approval")
                        .find(|b| b.label() == approval.name)
                        .and_then(|b| b.body.attr("after_step"))
                        .map(|a| a.span);
                    self.error(
                        Diagnostic::error(
                            "rollout",
                            format!(
                                "approval \"{}\" is after step {}, but the rollout has {} steps",
                                approval.name,
                                approval.after_step,
                                rollout.steps.len()
                            ),
                        )
                        .at_opt(span)
                        .help(format!("use a step between 1 and {}", rollout.steps.len())),
                    );
                }
            }
        }
    }

    /// A verify block has exactly one check, and its baseline, failure limit,
    /// tolerance and metric settings make sense.
    fn validate_gate(&mut self, block: &RawBlock, gate: &Gate) {
        let gate_block = block
            .body
            .blocks_of("verify")
            .find(|b| b.label() == gate.name);
        let span = gate_block.map(RawBlock::header_span);
        let kinds = [
            gate.http.is_some(),
            gate.command.is_some(),
            gate.prometheus.is_some(),
            gate.cloudwatch.is_some(),
        ]
        .iter()
        .filter(|k| **k)
        .count();
        if kinds != 1 {
            self.error(
                Diagnostic::error("verify", format!("verify \"{}\" must have exactly one of http, command, prometheus or cloudwatch (found {kinds})", gate.name))
                    .at_opt(span)
                    .help("add one check block, e.g. http { url = \"...\" }"),
            );
        }
        if gate.baseline.is_some() && gate.prometheus.is_none() {
            self.error(
                Diagnostic::error("verify", "baseline comparison needs a prometheus check")
                    .at_opt(
                        gate_block
                            .and_then(|b| b.body.attr("baseline"))
                            .map(|a| a.span),
                    )
                    .help("remove baseline, or use a prometheus { query = ... } check"),
            );
        }
        if gate.failure_limit == Some(0) {
            self.error(
                Diagnostic::error("verify", "failure_limit must be at least 1")
                    .at_opt(gate_block.and_then(|b| b.body.attr("failure_limit")).map(|a| a.span))
                    .help("failure_limit is the number of failed evaluations that fails the gate; 1 fails it at the first"),
            );
        }
        if gate.tolerance.is_some_and(|t| t <= 0.0) {
            self.error(
                Diagnostic::error("verify", "tolerance must be above 0")
                    .at_opt(
                        gate_block
                            .and_then(|b| b.body.attr("tolerance"))
                            .map(|a| a.span),
                    )
                    .help("e.g. tolerance = 1.2 fails when the new version is 20% worse"),
            );
        }
        self.validate_metric_gate(gate_block, gate);
    }

    /// What a prometheus or cloudwatch gate needs to judge anything: bounds
    /// that some value can meet, a baseline's settings only with a baseline,
    /// known query placeholders, an alarm or a complete metric.
    fn validate_metric_gate(&mut self, gate_block: Option<&RawBlock>, gate: &Gate) {
        let attr_span = |name: &str| gate_block.and_then(|b| b.body.attr(name)).map(|a| a.span);
        if let (Some(min), Some(max)) = (gate.min, gate.max) {
            if min > max {
                self.error(
                    Diagnostic::error(
                        "verify",
                        format!(
                            "verify \"{}\": min ({min}) is above max ({max}), so no value can pass",
                            gate.name
                        ),
                    )
                    .at_opt(attr_span("min"))
                    .help("min is the lowest value that passes, max the highest"),
                );
            }
        }
        let judged_once = gate.http.is_some() || gate.command.is_some();
        if judged_once && gate.prometheus.is_none() && gate.cloudwatch.is_none() {
            let check = if gate.http.is_some() {
                "an http"
            } else {
                "a command"
            };
            for name in METRIC_ONLY {
                if let Some(span) = attr_span(name) {
                    self.error(
                        Diagnostic::error(
                            "verify",
                            format!(
                                "verify \"{}\": {name} applies only to prometheus and cloudwatch checks; {check} check is judged once per step",
                                gate.name
                            ),
                        )
                        .at(span)
                        .help("remove it; to check again later, add a step (or a bake) to the rollout"),
                    );
                }
            }
        }
        if gate.count == Some(0) {
            self.error(
                Diagnostic::error("verify", "count must be at least 1")
                    .at_opt(attr_span("count"))
                    .help("count is the number of evaluations, interval apart"),
            );
        }
        if gate.baseline.is_none() {
            for name in ["tolerance", "direction"] {
                if let Some(span) = attr_span(name) {
                    self.error(
                        Diagnostic::error(
                            "verify",
                            format!(
                                "verify \"{}\": {name} applies only to a baseline comparison",
                                gate.name
                            ),
                        )
                        .at(span)
                        .help("add baseline = \"previous_version\", or remove it"),
                    );
                }
            }
        }
        if let Some(prometheus) = &gate.prometheus {
            self.validate_prometheus_gate(gate_block, gate, prometheus);
        }
        if let Some(cloudwatch) = &gate.cloudwatch {
            self.validate_cloudwatch_gate(gate_block, gate, cloudwatch);
        }
    }

    /// A prometheus check has something to judge its value by, and its query
    /// names known placeholders only.
    fn validate_prometheus_gate(
        &mut self,
        gate_block: Option<&RawBlock>,
        gate: &Gate,
        prometheus: &PrometheusGate,
    ) {
        let check_span = |check: &str, name: &str| {
            gate_block
                .and_then(|b| b.body.blocks_of(check).next())
                .and_then(|c| c.body.attr(name).map(|a| a.span).or(Some(c.header_span())))
        };
        if gate.min.is_none() && gate.max.is_none() && gate.baseline.is_none() {
            self.error(
                Diagnostic::error(
                    "verify",
                    format!("verify \"{}\": a prometheus check needs min, max or baseline to judge its value", gate.name),
                )
                .at_opt(gate_block.map(RawBlock::header_span))
                .help("e.g. max = 0.01, or baseline = \"previous_version\" with a tolerance"),
            );
        }
        for name in super::placeholders::unknown_placeholders(&prometheus.query) {
            let help = match did_you_mean(&name, super::placeholders::PLACEHOLDERS.iter().copied())
            {
                Some(known) => format!("did you mean {{{{{known}}}}}?"),
                None => format!(
                    "known placeholders: {}",
                    super::placeholders::PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{{{p}}}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.error(
                Diagnostic::error(
                    "verify",
                    format!("unknown placeholder {{{{{name}}}}} in the query"),
                )
                .at_opt(check_span("prometheus", "query"))
                .help(help),
            );
        }
    }

    /// A cloudwatch check names an alarm or a complete metric, a known
    /// statistic, and for a metric the bounds to judge it by.
    fn validate_cloudwatch_gate(
        &mut self,
        gate_block: Option<&RawBlock>,
        gate: &Gate,
        cloudwatch: &CloudwatchGate,
    ) {
        let check_span = |check: &str, name: &str| {
            gate_block
                .and_then(|b| b.body.blocks_of(check).next())
                .and_then(|c| c.body.attr(name).map(|a| a.span).or(Some(c.header_span())))
        };
        let metric = [
            &cloudwatch.namespace,
            &cloudwatch.metric_name,
            &cloudwatch.statistic,
        ];
        let metric_parts = metric.iter().filter(|m| m.is_some()).count();
        if cloudwatch.alarm_name.is_some() == (metric_parts > 0)
            || (metric_parts > 0 && metric_parts < 3)
        {
            self.error(
                Diagnostic::error(
                    "verify",
                    format!("verify \"{}\": a cloudwatch check needs either alarm_name, or namespace, metric_name and statistic", gate.name),
                )
                .at_opt(check_span("cloudwatch", "alarm_name").or_else(|| check_span("cloudwatch", "namespace")))
                .help("use alarm_name = \"...\" for an alarm, or all three of namespace, metric_name and statistic for a metric"),
            );
        }
        if let Some(statistic) = &cloudwatch.statistic {
            const STATISTICS: &[&str] = &["Average", "Sum", "Minimum", "Maximum", "SampleCount"];
            if !STATISTICS.contains(&statistic.as_str()) {
                self.error(
                    Diagnostic::error(
                        "verify",
                        format!("unknown statistic {}", excerpt(statistic)),
                    )
                    .at_opt(check_span("cloudwatch", "statistic"))
                    .help(
                        match did_you_mean(statistic, STATISTICS.iter().copied()) {
                            Some(known) => format!("did you mean \"{known}\"?"),
                            None => format!("one of {}", STATISTICS.join(", ")),
                        },
                    ),
                );
            }
        }
        if metric_parts == 3 && gate.min.is_none() && gate.max.is_none() {
            self.error(
                Diagnostic::error(
                    "verify",
                    format!(
                        "verify \"{}\": a cloudwatch metric needs min or max to judge its value",
                        gate.name
                    ),
                )
                .at_opt(gate_block.map(RawBlock::header_span))
                .help("e.g. max = 5"),
            );
        }
    }

    /// A notify block's webhook is an http(s) URL and its `on` names events.
    fn validate_notify(&mut self, block: &RawBlock, rollout: &Rollout) {
        for notify in &rollout.notify {
            let notify_block = block
                .body
                .blocks_of("notify")
                .find(|b| b.label() == notify.name);
            let span = |name: &str| notify_block.and_then(|b| b.body.attr(name)).map(|a| a.span);
            if let Err(problem) = super::events::check_webhook(&notify.webhook) {
                self.error(
                    Diagnostic::error(
                        "notify",
                        format!("notify \"{}\": webhook: {problem}", notify.name),
                    )
                    .at_opt(span("webhook"))
                    .help("use the full URL that receives a POST, e.g. \"https://hooks.slack.com/services/...\""),
                );
            }
            for event in &notify.on {
                if super::events::EventKind::from_on(event).is_some() {
                    continue;
                }
                let names = super::events::EVENT_NAMES;
                let message = match did_you_mean(event, names) {
                    Some(suggestion) => format!(
                        "notify \"{}\": {} is not an event; did you mean \"{suggestion}\"?",
                        notify.name,
                        excerpt(event)
                    ),
                    None => format!(
                        "notify \"{}\": {} is not an event",
                        notify.name,
                        excerpt(event)
                    ),
                };
                self.error(
                    Diagnostic::error("notify", message)
                        .at_opt(span("on"))
                        .help(format!("events: {}", names.join(", "))),
                );
            }
        }
    }

    /// Check an artifact's source and settings, and digest a local one that
    /// has no `sha256`; `false` (after a located error) when it cannot be used.
    fn check_artifact(&mut self, block: &RawBlock, artifact: &mut Artifact) -> bool {
        let artifact_block = block.body.blocks_of("artifact").next();
        let span_of = |name: &str| {
            artifact_block
                .and_then(|b| b.body.attr(name))
                .map(|a| a.span)
        };
        let source = match crate::artifact::classify(&artifact.base_dir, &artifact.source) {
            Ok(source) => source,
            Err(problem) => {
                self.error(
                    Diagnostic::error("artifact", format!("\"source\": {problem}"))
                        .at_opt(span_of("source"))
                        .help("point source at a directory or .tar.gz relative to this configuration, an https:// URL, s3://bucket/key or oci://registry/repository:tag"),
                );
                return false;
            }
        };
        let mut usable = true;
        if let Some(sha256) = &artifact.sha256 {
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.error(
                    Diagnostic::error("artifact", "\"sha256\" must be 64 hexadecimal digits")
                        .at_opt(span_of("sha256"))
                        .help("give the artifact's sha256 as `sha256sum` prints it, or leave sha256 out and plan pins the digest it finds"),
                );
                usable = false;
            }
        }
        use crate::artifact::{ArtifactSource, RemoteSource};
        let is_http = matches!(source, ArtifactSource::Remote(RemoteSource::Http(_)));
        let is_s3 = matches!(source, ArtifactSource::Remote(RemoteSource::S3 { .. }));
        let is_oci = matches!(source, ArtifactSource::Remote(RemoteSource::Oci(_)));
        if !artifact.headers.is_empty() && !is_http {
            self.error(
                Diagnostic::error(
                    "artifact",
                    "\"headers\" applies only to an https:// or http:// source",
                )
                .at_opt(span_of("headers"))
                .help("remove it, or point source at the repository's URL"),
            );
            usable = false;
        }
        for (name, set) in [
            ("username", artifact.username.is_some()),
            ("password", artifact.password.is_some()),
        ] {
            if set && !is_http && !is_oci {
                self.error(
                    Diagnostic::error(
                        "artifact",
                        format!("\"{name}\" applies only to an https://, http:// or oci:// source"),
                    )
                    .at_opt(span_of(name))
                    .help("remove it; s3 sources use the standard AWS credentials"),
                );
                usable = false;
            }
        }
        if is_oci && artifact.sha256.is_some() {
            self.error(
                Diagnostic::error("artifact", "\"sha256\" does not apply to an image: the archive is its layers flattened")
                    .at_opt(span_of("sha256"))
                    .help("pin the image in the reference instead: oci://REGISTRY/REPOSITORY@sha256:MANIFEST_DIGEST"),
            );
            usable = false;
        }
        if artifact.password.is_some() && artifact.username.is_none() {
            self.error(
                Diagnostic::error("artifact", "\"password\" needs \"username\" (basic auth)")
                    .at_opt(span_of("password"))
                    .help("set username too (an https source can send a token in headers = { Authorization = \"Bearer ...\" })"),
            );
            usable = false;
        }
        if artifact.region.is_some() && !is_s3 {
            self.error(
                Diagnostic::error("artifact", "\"region\" applies only to an s3:// source")
                    .at_opt(span_of("region"))
                    .help("remove it"),
            );
            usable = false;
        }
        if !self.check_delivery(&source, artifact, span_of("delivery")) {
            usable = false;
        }
        if usable && artifact.sha256.is_none() {
            match self.local_artifact_digest(&artifact.base_dir.clone(), &artifact.source) {
                Ok(digest) => artifact.sha256 = digest,
                Err(error) => {
                    self.error(
                        Diagnostic::error("artifact", error.to_string())
                            .at_opt(span_of("source"))
                            .help("point source at a directory or .tar.gz relative to this configuration, an https:// URL, s3://bucket/key or oci://registry/repository:tag"),
                    );
                    return false;
                }
            }
        }
        usable
    }

    /// Check a configured `delivery` against the source and set the
    /// source's default when none is configured: hosts pull an https URL
    /// without credentials and an s3 object (through a presigned URL); the
    /// runner pushes a local path, an image (flattened on the runner) and an
    /// https URL that needs credentials (they never leave the runner).
    fn check_delivery(
        &mut self,
        source: &crate::artifact::ArtifactSource,
        artifact: &mut Artifact,
        span: Option<Span>,
    ) -> bool {
        use crate::artifact::{ArtifactSource, RemoteSource};
        let refusal = match source {
            ArtifactSource::LocalDirectory(_) | ArtifactSource::LocalFile(_) => Some((
                "hosts cannot download a path on the machine running slipway",
                "remove delivery: the runner sends a local artifact to every host",
            )),
            ArtifactSource::Remote(RemoteSource::Oci(_)) => Some((
                "an image is flattened into one archive on the runner, which the registry does not hold, so hosts cannot pull it",
                "remove delivery: the runner sends the flattened image to every host",
            )),
            ArtifactSource::Remote(RemoteSource::Http(_)) if artifact.has_credentials() => Some((
                "the artifact's headers and username / password stay on the runner, and hosts would need them",
                "remove delivery (the runner downloads the artifact and sends it), or serve it at a URL hosts can read without credentials",
            )),
            ArtifactSource::Remote(_) => None,
        };
        match (artifact.delivery, refusal) {
            (Some(ArtifactDelivery::Pull), Some((problem, help))) => {
                self.error(
                    Diagnostic::error("artifact", format!("\"delivery\" = \"pull\": {problem}"))
                        .at_opt(span)
                        .help(help),
                );
                false
            }
            (Some(_), _) => true,
            (None, refusal) => {
                artifact.delivery = Some(if refusal.is_some() {
                    ArtifactDelivery::Push
                } else {
                    ArtifactDelivery::Pull
                });
                true
            }
        }
    }

    fn validate_service(&mut self, block: &RawBlock, service: &Service) {
        let Some(vm) = &service.vm else { return };
        if let Err(problem) = confine::release_name(&service.version) {
            self.error(
                Diagnostic::error("version", format!("\"version\": {problem}"))
                    .at_opt(block.body.attr("version").map(|a| a.span))
                    .help("a VM service's version names its release directory: a file name such as \"2.4.1\""),
            );
        }
        let vm_block = block.body.blocks_of("vm").next();
        let vm_attr = |name: &str| vm_block.and_then(|b| b.body.attr(name)).map(|a| a.span);
        // Confinement: the directories the service writes to (see `confine`).
        let install_dir = match confine::service_dir(&vm.install_dir) {
            Ok(dir) => Some(dir),
            Err(problem) => {
                self.error(
                    Diagnostic::error("install-dir", format!("\"install_dir\": {problem}"))
                        .at_opt(vm_attr("install_dir"))
                        .help("use an absolute directory of the service's own, such as /opt/myapp"),
                );
                None
            }
        };
        let mut config_dirs = Vec::new();
        for dir in &vm.config_dirs {
            match confine::service_dir(dir) {
                Ok(dir) => config_dirs.push(dir),
                Err(problem) => self.error(
                    Diagnostic::error("config-dirs", format!("\"config_dirs\": {problem}"))
                        .at_opt(vm_attr("config_dirs"))
                        .help("list absolute directories of the service's own, such as /etc/myapp"),
                ),
            }
        }
        for file in &vm.config_files {
            let file_block = vm_block.and_then(|b| {
                b.body
                    .blocks_of("config_file")
                    .find(|f| f.label() == file.name)
            });
            let file_attr = |name: &str| file_block.and_then(|b| b.body.attr(name)).map(|a| a.span);
            if let Err(problem) =
                confine::destination(&file.destination, install_dir.as_deref(), &config_dirs)
            {
                self.error(
                    Diagnostic::error(
                        "config-destination",
                        format!("config file {}: {problem}", excerpt(&file.name)),
                    )
                    .at_opt(file_attr("destination"))
                    .help(format!(
                        "write it under install_dir ({}) or add its directory to config_dirs",
                        crate::encode::text::short(&vm.install_dir)
                    )),
                );
            }
            if let Some(mode) = &file.mode {
                let octal = (3..=4).contains(&mode.len())
                    && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
                if !octal {
                    self.error(
                        Diagnostic::error(
                            "config-mode",
                            format!("mode {} is not octal permissions", excerpt(mode)),
                        )
                        .at_opt(file_attr("mode"))
                        .help("write the mode in octal, such as \"0644\" or \"0600\""),
                    );
                }
            }
            if let Some(owner) = &file.owner {
                let checked = match owner.split_once(':') {
                    Some((user, group)) => {
                        encode::ssh::check_user(user).and_then(|()| encode::ssh::check_user(group))
                    }
                    None => encode::ssh::check_user(owner),
                };
                if let Err(problem) = checked {
                    self.error(
                        Diagnostic::error("config-owner", format!("\"owner\": {problem}"))
                            .at_opt(file_attr("owner"))
                            .help("write a user name, or user:group"),
                    );
                }
            }
        }
        if let Some(run_as) = &vm.run_as {
            if let Err(problem) = encode::ssh::check_user(run_as) {
                self.error(
                    Diagnostic::error("invalid-user", format!("\"run_as\": {problem}"))
                        .at_opt(vm_attr("run_as"))
                        .help("a user name has letters, digits, '_', '.' and '-'"),
                );
            }
        }
        if let Some(unit) = &vm.systemd_unit {
            let unit_block = vm_block.and_then(|b| b.body.blocks_of("systemd_unit").next());
            self.validate_unit(unit_block, unit);
        }
        for check in &vm.health {
            if check.url.is_some() == check.command.is_some() {
                let span = vm_block
                    .and_then(|b| b.body.blocks_of("health").find(|h| h.label() == check.name))
                    .map(RawBlock::header_span);
                self.error(
                    Diagnostic::error("health", format!("health \"{}\" needs exactly one of url or command", check.name))
                        .at_opt(span)
                        .help("set url = \"http://...\" for an HTTP check, or command = \"...\" for a check on the host"),
                );
            }
        }
    }

    /// What the systemd unit encoder (`encode::systemd`) cannot write exactly.
    fn validate_unit(&mut self, block: Option<&RawBlock>, unit: &SystemdUnit) {
        for (attr, problem) in encode::systemd::unit_problems(unit) {
            let (span, help) = match attr {
                "name" => (
                    block.map(RawBlock::header_span),
                    "name the unit like \"myapp.service\"".to_string(),
                ),
                "restart" => (
                    None,
                    format!(
                        "use one of {}",
                        schema::quoted_list(encode::systemd::RESTART)
                    ),
                ),
                "exec_start" | "exec_stop" => (
                    None,
                    "write the command on one line; for more, run a script".to_string(),
                ),
                "environment" => (
                    None,
                    "environment names are letters, digits and '_' (not starting with a digit)"
                        .to_string(),
                ),
                "after" => (
                    None,
                    "list unit names such as \"network-online.target\"".to_string(),
                ),
                _ => (
                    None,
                    "a user name has letters, digits, '_', '.' and '-'".to_string(),
                ),
            };
            let span = span.or_else(|| block.and_then(|b| b.body.attr(attr)).map(|a| a.span));
            let message = if attr == "name" {
                format!("systemd_unit: {problem}")
            } else {
                format!("\"{attr}\": {problem}")
            };
            self.error(
                Diagnostic::error("systemd-unit", message)
                    .at_opt(span)
                    .help(help),
            );
        }
    }

    // ---- deployments ---------------------------------------------------------------

    fn resolve_ref(
        &mut self,
        expr: &hcl::edit::expr::Expression,
        span: Span,
        kind: &str,
        prefix: &str,
        known: &BTreeSet<String>,
    ) -> Option<String> {
        let refs = references(span.file, expr);
        let is_bare = matches!(expr, hcl::edit::expr::Expression::Traversal(_)) && refs.len() == 1;
        let address = if is_bare {
            let path = &refs[0].path;
            match path
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                [k, name] if *k == kind => Some(format!("{prefix}{kind}.{name}")),
                ["module", module, k, name] if *k == kind => {
                    Some(format!("{prefix}module.{module}.{kind}.{name}"))
                }
                _ => None,
            }
        } else {
            None
        };
        let Some(address) = address else {
            self.error(
                Diagnostic::error("reference", format!("expected a reference to a {kind}"))
                    .at(span)
                    .help(format!(
                        "write {kind}.NAME (or module.MODULE.{kind}.NAME), without quotes"
                    )),
            );
            return None;
        };
        if known.contains(&address) {
            return Some(address);
        }
        let short = address.strip_prefix(prefix).unwrap_or(&address).to_string();
        let candidates: Vec<String> = known
            .iter()
            .filter_map(|k| k.strip_prefix(prefix).map(str::to_string))
            .filter(|k| k.starts_with(&format!("{kind}.")) || k.starts_with("module."))
            .collect();
        let mut diagnostic = Diagnostic::error(
            "undefined-reference",
            format!("{} is not defined", encode::text::short(&short)),
        )
        .at(span);
        diagnostic = match did_you_mean(&short, candidates.iter().map(String::as_str)) {
            Some(s) => diagnostic
                .label(format!("did you mean {s}?"))
                .help(format!("did you mean {s}?")),
            None if candidates.is_empty() => {
                diagnostic.help(format!("define it with {kind} \"NAME\" {{ ... }}"))
            }
            None => diagnostic.help(format!("defined: {}", candidates.join(", "))),
        };
        self.error(diagnostic);
        None
    }

    fn resolve_deployments(&mut self) {
        let pending = std::mem::take(&mut self.deployment_blocks);
        let names = DeploymentNames {
            services: self.services.keys().cloned().collect(),
            environments: self.config.environments.keys().cloned().collect(),
            rollouts: self.config.rollouts.keys().cloned().collect(),
            deployments: pending.iter().map(|p| p.address.clone()).collect(),
        };
        let mut ecs_spans: std::collections::BTreeMap<String, EcsSpans> = Default::default();
        for item in &pending {
            ecs_spans.insert(item.address.clone(), EcsSpans::of(&item.block));
            if let Some(deployment) = self.resolve_deployment(item, &names) {
                self.config
                    .deployments
                    .insert(item.address.clone(), deployment);
            }
        }
        self.validate_ecs_conflicts(&ecs_spans);
        if !self.diagnostics.has_errors() {
            // Outputs refer to deployments; with one missing they would only
            // repeat its error.
            self.load_root_outputs();
        }
    }

    /// One deployment block resolved: its references, desired count and ECS
    /// settings, its service evaluated for its environment, and the pairing
    /// checked. `None` when any of it failed (the errors are reported).
    fn resolve_deployment(
        &mut self,
        item: &PendingDeployment,
        names: &DeploymentNames,
    ) -> Option<Deployment> {
        let block = &item.block;
        let refs = self.deployment_refs(item, names);
        let depends_on = self.deployment_depends_on(item, &names.deployments);
        let desired_count = self.deployment_desired_count(item);
        let ecs = match block.body.blocks_of("ecs").next() {
            Some(ecs_block) => {
                let json = self.eval_block(
                    ecs_block,
                    &schema::DEPLOYMENT_ECS,
                    &item.scope,
                    item.scope.cached_context(),
                )?;
                match serde_json::from_value::<DeploymentEcs>(json) {
                    Ok(ecs) => Some(ecs),
                    Err(error) => {
                        self.decode_error(ecs_block, error);
                        return None;
                    }
                }
            }
            None => None,
        };
        let (Some(service_address), Some(environment_address), Some(rollout), Some(promote_from)) =
            refs
        else {
            return None;
        };
        let environment = self
            .config
            .environments
            .get(&environment_address)
            .cloned()?;
        let service = self.evaluate_service(&service_address, &environment, block)?;
        let secrets = self.service_secrets(&service_address);
        if !self.check_deployment_target(
            item,
            (&service_address, &service),
            (&environment_address, &environment),
            rollout.as_deref(),
        ) {
            return None;
        }
        Some(Deployment {
            address: item.address.clone(),
            name: block.label().to_string(),
            service,
            environment: environment_address,
            rollout,
            depends_on,
            promote_from,
            desired_count,
            ecs,
            span: block.header_span(),
            secrets,
        })
    }

    /// A deployment's `service`, `environment`, `rollout` and `promote_from`
    /// references, each `None` when it does not resolve (reported); the
    /// optional ones are `Some(None)` when absent.
    #[allow(clippy::type_complexity)]
    fn deployment_refs(
        &mut self,
        item: &PendingDeployment,
        names: &DeploymentNames,
    ) -> (
        Option<String>,
        Option<String>,
        Option<Option<String>>,
        Option<Option<DeploymentRef>>,
    ) {
        let attr = |name: &str| item.block.body.attr(name);
        let prefix = &item.scope.prefix;
        let service = attr("service").and_then(|a| {
            self.resolve_ref(&a.edit_expr, a.span, "service", prefix, &names.services)
        });
        let environment = attr("environment").and_then(|a| {
            self.resolve_ref(
                &a.edit_expr,
                a.span,
                "environment",
                prefix,
                &names.environments,
            )
        });
        let rollout = match attr("rollout") {
            Some(a) => self
                .resolve_ref(&a.edit_expr, a.span, "rollout", prefix, &names.rollouts)
                .map(Some),
            None => Some(None),
        };
        let promote_from = match attr("promote_from") {
            Some(a) => self
                .resolve_ref(
                    &a.edit_expr,
                    a.span,
                    "deployment",
                    prefix,
                    &names.deployments,
                )
                .map(|address| {
                    Some(DeploymentRef {
                        address,
                        span: a.span,
                    })
                }),
            None => Some(None),
        };
        (service, environment, rollout, promote_from)
    }

    /// The deployments a deployment's `depends_on` list names, those that
    /// resolve; the others, and a `depends_on` that is not a list, are
    /// reported.
    fn deployment_depends_on(
        &mut self,
        item: &PendingDeployment,
        deployments: &BTreeSet<String>,
    ) -> Vec<DeploymentRef> {
        let mut depends_on = Vec::new();
        let Some(a) = item.block.body.attr("depends_on") else {
            return depends_on;
        };
        match &a.edit_expr {
            hcl::edit::expr::Expression::Array(items) => {
                for element in items.iter() {
                    use hcl::edit::Span as _;
                    let span = Span::new(
                        a.span.file,
                        element.span().unwrap_or(a.span.start..a.span.end),
                    );
                    if let Some(address) = self.resolve_ref(
                        element,
                        span,
                        "deployment",
                        &item.scope.prefix,
                        deployments,
                    ) {
                        depends_on.push(DeploymentRef { address, span });
                    }
                }
            }
            _ => self.error(
                Diagnostic::error("reference", "depends_on must be a list of deployments")
                    .at(a.span)
                    .help("write depends_on = [deployment.NAME]"),
            ),
        }
        depends_on
    }

    /// A deployment's `desired_count`, when given and a whole number (any
    /// other value is reported).
    fn deployment_desired_count(&mut self, item: &PendingDeployment) -> Option<u32> {
        let a = item.block.body.attr("desired_count")?;
        match evaluate(&a.expr, item.scope.cached_context()) {
            Ok(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().map(|n| n as u32),
            _ => {
                self.error(
                    Diagnostic::error("wrong-type", "desired_count must be a whole number")
                        .at(a.span)
                        .help("e.g. desired_count = 3"),
                );
                None
            }
        }
    }

    /// Whether a deployment's service can run in its environment with its
    /// rollout: the service has the environment's kind of target, a
    /// `systemd_unit` is not run through the local transport, and blue/green
    /// is on ECS only. A mismatch is reported and the answer is `false`.
    fn check_deployment_target(
        &mut self,
        item: &PendingDeployment,
        (service_address, service): (&str, &Service),
        (environment_address, environment): (&str, &Environment),
        rollout: Option<&str>,
    ) -> bool {
        let attr = |name: &str| item.block.body.attr(name);
        let target_ok = (service.vm.is_some() && environment.vm_hosts.is_some())
            || (service.ecs.is_some() && environment.ecs_cluster.is_some());
        if !target_ok {
            let span = attr("environment").map(|a| a.span);
            self.error(
                Diagnostic::error(
                    "target-mismatch",
                    format!(
                        "{service_address} cannot run in {environment_address}: the service has {} and the environment has {}",
                        describe_service_targets(service),
                        describe_environment_targets(environment),
                    ),
                )
                .at_opt(span)
                .help("give the service a vm block for vm_hosts environments, or an ecs block for ecs_cluster environments"),
            );
            return false;
        }
        let local = environment
            .vm_hosts
            .as_ref()
            .is_some_and(|hosts| hosts.transport == TransportKind::Local);
        if local
            && service
                .vm
                .as_ref()
                .is_some_and(|vm| vm.systemd_unit.is_some())
        {
            self.error(
                Diagnostic::error(
                    "systemd-unit",
                    format!(
                        "{service_address} has a systemd_unit, but {environment_address} uses the local transport, which has no systemd: starting and stopping the unit would run systemctl on this machine"
                    ),
                )
                .at_opt(attr("environment").map(|a| a.span))
                .help("with transport = \"local\", start and stop the service with start_command and stop_command"),
            );
            return false;
        }
        let strategy = rollout
            .and_then(|address| self.config.rollouts.get(address))
            .map(|r| r.strategy);
        if environment.vm_hosts.is_some() && strategy == Some(Strategy::BlueGreen) {
            self.error(
                Diagnostic::error(
                    "unsupported-strategy",
                    format!(
                        "{} uses a blue_green rollout, which slipway runs on ECS only: on VM hosts it would need two host groups behind ALB target groups",
                        item.address
                    ),
                )
                .at_opt(attr("rollout").map(|a| a.span))
                .help("use a rolling or canary rollout for VM hosts (a canary with steps = [\"50%\", \"100%\"] moves half the hosts, then the rest)"),
            );
            return false;
        }
        true
    }

    /// ECS deployments of one environment must not share a service (a canary's
    /// second service, `NAME-green`, included), a listener that canaries move,
    /// or a target group: in one wave they would race on it. A canary or
    /// blue/green needs a container with a port to register with the
    /// listener's target groups.
    fn validate_ecs_conflicts(&mut self, spans: &std::collections::BTreeMap<String, EcsSpans>) {
        struct Claim {
            address: String,
            span: Span,
        }
        use std::collections::BTreeMap;
        let mut services: BTreeMap<(String, String, String), Claim> = BTreeMap::new();
        let mut listeners: BTreeMap<(String, String), Claim> = BTreeMap::new();
        let mut groups: BTreeMap<(String, String), Claim> = BTreeMap::new();
        let mut found = Vec::new();
        for deployment in self.config.deployments.values() {
            let Some(environment) = self.config.environments.get(&deployment.environment) else {
                continue;
            };
            let (Some(spec), Some(settings)) = (
                deployment.service.ecs.as_ref(),
                deployment.ecs_settings(environment),
            ) else {
                continue;
            };
            if deployment.service.vm.is_some() && environment.vm_hosts.is_some() {
                continue;
            }
            let Some(spans) = spans.get(&deployment.address) else {
                continue;
            };
            let strategy = deployment
                .rollout
                .as_ref()
                .and_then(|r| self.config.rollouts.get(r))
                .map(|r| r.strategy);
            let by_steps = strategy.is_some_and(|s| s.moves_by_steps());
            let location = |span: Span| super::check::location(&self.sources, span);
            let environment_name = deployment.environment.clone();
            let name = settings.service_name.clone().unwrap_or_default();
            let mut names = vec![name.clone()];
            if by_steps {
                names.push(format!("{name}-green"));
            }
            let service_span = spans.service_name.unwrap_or(spans.header);
            for service in names {
                let key = (
                    environment_name.clone(),
                    settings.cluster.clone(),
                    service.clone(),
                );
                match services.get(&key) {
                    Some(first) => found.push(
                        Diagnostic::error(
                            "ecs-conflict",
                            format!(
                                "{} and {} both use ECS service {service} in cluster {}: deployed in one wave they would race on one service",
                                first.address, deployment.address, settings.cluster
                            ),
                        )
                        .at(service_span)
                        .label(format!("{} uses it at {}", first.address, location(first.span)))
                        .help("give each deployment its own service_name in its ecs block (a canary or blue/green also uses NAME-green)"),
                    ),
                    None => {
                        services.insert(
                            key,
                            Claim {
                                address: deployment.address.clone(),
                                span: service_span,
                            },
                        );
                    }
                }
            }
            if let (true, Some(listener)) = (by_steps, &settings.listener_arn) {
                let span = spans.listener_arn.unwrap_or(spans.header);
                let key = (environment_name.clone(), listener.clone());
                match listeners.get(&key) {
                    Some(first) => found.push(
                        Diagnostic::error(
                            "ecs-conflict",
                            format!(
                                "{} and {} both move the weights of listener {listener}: each rollout would undo the other's traffic steps",
                                first.address, deployment.address
                            ),
                        )
                        .at(span)
                        .label(format!("{} uses it at {}", first.address, location(first.span)))
                        .help("give each canary or blue/green deployment its own listener (listener_arn in its ecs block)"),
                    ),
                    None => {
                        listeners.insert(
                            key,
                            Claim {
                                address: deployment.address.clone(),
                                span,
                            },
                        );
                    }
                }
            }
            let span = spans.target_groups.unwrap_or(spans.header);
            let mut reported = BTreeSet::new();
            for group in &settings.target_groups {
                let key = (environment_name.clone(), group.clone());
                match groups.get(&key) {
                    Some(first)
                        if first.address != deployment.address
                            && reported.insert(first.address.clone()) =>
                    {
                        found.push(
                        Diagnostic::error(
                            "ecs-conflict",
                            format!(
                                "{} and {} both register their tasks with target group {group}: traffic meant for one would reach the other",
                                first.address, deployment.address
                            ),
                        )
                        .at(span)
                        .label(format!("{} uses it at {}", first.address, location(first.span)))
                        .help("give each deployment its own target_groups in its ecs block"),
                    )
                    }
                    Some(_) => {}
                    None => {
                        groups.insert(
                            key,
                            Claim {
                                address: deployment.address.clone(),
                                span,
                            },
                        );
                    }
                }
            }
            found.extend(ecs_port_missing(deployment, spec, strategy, spans));
        }
        for diagnostic in found {
            self.error(diagnostic);
        }
    }

    /// The `secret` blocks a service's expressions take values from.
    fn service_secrets(&self, address: &str) -> BTreeSet<String> {
        fn walk(body: &RawBody, scope: &ScopeValues, out: &mut BTreeSet<String>) {
            for attr in &body.attrs {
                let refs = references(attr.span.file, &attr.edit_expr);
                out.extend(secret_sources_of(&refs, scope));
            }
            for block in &body.blocks {
                walk(&block.body, scope, out);
            }
        }
        let mut found = BTreeSet::new();
        if let Some(template) = self.services.get(address) {
            walk(&template.block.body, &template.scope, &mut found);
        }
        found
    }

    fn evaluate_service(
        &mut self,
        address: &str,
        environment: &Environment,
        deployment: &RawBlock,
    ) -> Option<Service> {
        let template = self.services.get(address)?;
        let block = template.block.clone();
        let scope = template.scope.clone();
        let mut context = scope.cached_context().clone();
        let variables: hcl::Map<String, Value> = environment
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        context.declare_var(
            "env",
            hcl::value!({
                name = (environment.name.clone()),
                protected = (environment.protected),
                variables = (Value::Object(variables)),
            }),
        );
        context.declare_var(
            "deployment",
            hcl::value!({ name = (deployment.label().to_string()) }),
        );
        self.evaluating_service = Some((
            format!("{address} for deployment.{}", deployment.label()),
            environment.name.clone(),
            environment.variables.keys().cloned().collect(),
        ));
        let json = self.eval_block(&block, &schema::SERVICE, &scope, &context);
        self.evaluating_service = None;
        let json = json?;
        match serde_json::from_value::<Service>(json) {
            Ok(mut service) => {
                service.address = address.to_string();
                if let Some(artifact) = service.artifact.as_mut() {
                    artifact.base_dir = scope.dir.clone();
                    if !self.check_artifact(&block, artifact) {
                        return None;
                    }
                }
                self.validate_service(&block, &service);
                Some(service)
            }
            Err(error) => {
                self.decode_error(&block, error);
                None
            }
        }
    }

    fn load_root_outputs(&mut self) {
        let Some(scope) = self.root_scope.clone() else {
            return;
        };
        let mut context = scope.context();
        let mut deployments = hcl::Map::new();
        for deployment in self
            .config
            .deployments
            .values()
            .filter(|d| !d.address.starts_with("module."))
        {
            deployments.insert(
                deployment.name.clone(),
                hcl::value!({
                    name = (deployment.name.clone()),
                    version = (deployment.service.version.clone()),
                    service = (deployment.service.address.clone()),
                    environment = (deployment.environment.trim_start_matches("environment.").to_string()),
                }),
            );
        }
        self.output_deployments = Some(deployments.keys().cloned().collect());
        context.declare_var("deployment", Value::Object(deployments));
        for block in std::mem::take(&mut self.root_outputs) {
            if let Some((value, sensitive)) = self.eval_output(&block, &scope, &context) {
                let description = match block
                    .body
                    .attr("description")
                    .map(|a| evaluate(&a.expr, &function_context()))
                {
                    Some(Ok(Value::String(s))) => Some(s),
                    _ => None,
                };
                self.config.outputs.push(Output {
                    name: block.label().to_string(),
                    value: to_json(&value),
                    sensitive,
                    description,
                });
            }
        }
    }

    /// A file's path as the digest counts it: relative to the configuration
    /// directory when it is inside it, so a plan made in one checkout applies
    /// in another.
    fn digest_path(&self, path: &Path) -> String {
        path.strip_prefix(&self.config.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Over the configuration's files and the files they read (path and
    /// content), then every root variable given a value (name and value as
    /// JSON), so a value digests the same from `-var`, a var file, the
    /// environment or a saved plan.
    fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        let mut files: Vec<(String, Vec<u8>)> = self
            .sources
            .files()
            .iter()
            .enumerate()
            .filter(|(index, _)| !self.var_files.contains(index))
            .map(|(_, f)| (self.digest_path(&f.path), f.text.as_bytes().to_vec()))
            .collect();
        files.extend(
            super::eval::take_files_read()
                .into_iter()
                .map(|(p, b)| (self.digest_path(&p), b)),
        );
        files.sort();
        files.dedup();
        for (path, bytes) in files {
            hasher.update(path.as_bytes());
            hasher.update([0]);
            hasher.update(Sha256::digest(&bytes));
        }
        for (name, input) in &self.config.inputs {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(input.value.to_string().as_bytes());
            hasher.update([0]);
        }
        hex::encode(hasher.finalize())
    }
}

/// The `verify` settings that only metric checks (prometheus, cloudwatch) use:
/// http and command checks are judged once per step. (`baseline` has its own
/// message: it needs a prometheus check.)
const METRIC_ONLY: [&str; 8] = [
    "min",
    "max",
    "tolerance",
    "direction",
    "interval",
    "count",
    "failure_limit",
    "no_data",
];

/// A deployment whose rollout moves traffic on a listener needs a container
/// with a port to register with the target groups: the error when none has
/// one.
fn ecs_port_missing(
    deployment: &Deployment,
    spec: &EcsSpec,
    strategy: Option<Strategy>,
    spans: &EcsSpans,
) -> Option<Diagnostic> {
    let by_steps = strategy.is_some_and(|s| s.moves_by_steps());
    if !by_steps || spec.containers.iter().any(|c| c.port.is_some()) {
        return None;
    }
    Some(
        Diagnostic::error(
            "ecs-no-port",
            format!(
                "{} moves traffic on a listener with a {} rollout, but no container of {} has a port: its tasks could not be registered with the target groups",
                deployment.address,
                strategy.map(|s| s.to_string()).unwrap_or_default(),
                deployment.service.address
            ),
        )
        .at(spans.rollout.unwrap_or(spans.header))
        .help("set `port` on the container that serves traffic, or use a rolling rollout"),
    )
}

fn describe_service_targets(service: &Service) -> &'static str {
    match (service.vm.is_some(), service.ecs.is_some()) {
        (true, true) => "vm and ecs blocks",
        (true, false) => "only a vm block",
        (false, true) => "only an ecs block",
        (false, false) => "neither a vm nor an ecs block",
    }
}

fn describe_environment_targets(environment: &Environment) -> &'static str {
    match (
        environment.vm_hosts.is_some(),
        environment.ecs_cluster.is_some(),
    ) {
        (true, true) => "vm_hosts and ecs_cluster",
        (true, false) => "only vm_hosts",
        (false, true) => "only ecs_cluster",
        (false, false) => "no targets",
    }
}

fn insert_block(
    object: &mut serde_json::Map<String, serde_json::Value>,
    spec: &BlockSpec,
    child: serde_json::Map<String, serde_json::Value>,
) {
    if spec.repeatable {
        let entry = object
            .entry(spec.name.to_string())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(items) = entry {
            items.push(serde_json::Value::Object(child));
        }
    } else {
        object.insert(spec.name.to_string(), serde_json::Value::Object(child));
    }
}

/// Replace the value at `path` inside `value` by its shadow.
fn shadow_at(value: &mut Value, path: &[&str], variant: usize, markers: &mut taint::Markers) {
    match path.split_first() {
        None => *value = taint::shadow(value, variant, markers),
        Some((first, rest)) => {
            if let Value::Object(map) = value {
                if let Some(inner) = map.get_mut(*first) {
                    shadow_at(inner, rest, variant, markers);
                }
            }
        }
    }
}

/// The `secret` blocks the tainted names `refs` reach take their values from.
fn secret_sources_of(refs: &[Reference], scope: &ScopeValues) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for reference in refs {
        for name in &scope.tainted {
            if reaches(reference, name) {
                if let Some(sources) = scope.secret_sources.get(name) {
                    found.extend(sources.iter().cloned());
                }
            }
        }
    }
    found
}

/// Whether `reference` is the tainted `name`, a part of it, or holds it.
fn reaches(reference: &Reference, name: &str) -> bool {
    let path = reference.path.join(".");
    path == name
        || path
            .strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('.'))
        || name
            .strip_prefix(path.as_str())
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether a reference reaches a sensitive name: the name itself, a part of
/// it (`var.db.password`) or something holding it (`module.db`, `var`).
fn is_tainted(reference: &Reference, tainted: &HashSet<String>) -> bool {
    tainted.iter().any(|name| reaches(reference, name))
}

fn collect_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}

fn describe_eval_error(kind: &hcl::eval::ErrorKind) -> (String, String) {
    use hcl::eval::ErrorKind as K;
    match kind {
        K::UndefinedVar(name) => (
            format!("\"{name}\" is not defined here"),
            match name.as_str() {
                "env" | "deployment" => format!(
                    "{name} is only available inside service blocks (and deployment in outputs)"
                ),
                "service" | "environment" | "rollout" => {
                    format!("{name}.NAME references are only allowed in deployment blocks")
                }
                _ => "refer to var.NAME, local.NAME, module.NAME.OUTPUT, or env.* inside a service"
                    .to_string(),
            },
        ),
        K::UndefinedFunc(name) => (
            format!("there is no function \"{name}\""),
            match did_you_mean(
                &name.to_string(),
                super::eval::FUNCTION_NAMES.iter().copied(),
            ) {
                Some(s) => format!(
                    "did you mean {s}()? Available: {}",
                    super::eval::FUNCTION_NAMES.join(", ")
                ),
                None => format!(
                    "available functions: {}",
                    super::eval::FUNCTION_NAMES.join(", ")
                ),
            },
        ),
        K::NoSuchKey(key) => (
            format!("there is no attribute \"{key}\""),
            "check the name of the attribute or map key".to_string(),
        ),
        K::FuncCall(name, message) => (
            format!("{name}(): {message}"),
            format!("see {name} in the functions section of docs/language.md"),
        ),
        other => (
            other.to_string(),
            "check the values in this expression and their types".to_string(),
        ),
    }
}

fn parse_type(expr: &hcl::Expression) -> Option<VarType> {
    let name = match expr {
        hcl::Expression::Variable(v) => v.as_str().to_string(),
        hcl::Expression::FuncCall(call) => call.name.name.as_str().to_string(),
        hcl::Expression::String(s) => s.clone(),
        _ => return None,
    };
    Some(match name.as_str() {
        "string" => VarType::String,
        "number" => VarType::Number,
        "bool" => VarType::Bool,
        "list" | "set" | "tuple" => VarType::List,
        "map" | "object" => VarType::Map,
        "any" => VarType::Any,
        _ => return None,
    })
}

/// Where a deployment sets what ECS deployments must not share, for
/// [`Loader::validate_ecs_conflicts`]: its own `ecs` block's attributes, else
/// the deployment's header.
struct EcsSpans {
    header: Span,
    service_name: Option<Span>,
    listener_arn: Option<Span>,
    target_groups: Option<Span>,
    rollout: Option<Span>,
}

impl EcsSpans {
    /// The spans of a deployment block's header, its own `ecs` block's
    /// attributes and its `rollout`.
    fn of(block: &RawBlock) -> EcsSpans {
        let own_ecs = |name: &str| {
            block
                .body
                .blocks_of("ecs")
                .next()
                .and_then(|b| b.body.attr(name))
                .map(|a| a.span)
        };
        EcsSpans {
            header: block.header_span(),
            service_name: own_ecs("service_name"),
            listener_arn: own_ecs("listener_arn"),
            target_groups: own_ecs("target_groups"),
            rollout: block.body.attr("rollout").map(|a| a.span),
        }
    }
}

/// The addresses a deployment block's references may name.
struct DeploymentNames {
    services: BTreeSet<String>,
    environments: BTreeSet<String>,
    rollouts: BTreeSet<String>,
    deployments: BTreeSet<String>,
}

/// Why the value given for a variable, or its default, is not of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum VarValueError {
    /// A value of another type (`expected` and `found` describe types).
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    /// Text that does not parse or evaluate as a value of the type; `text`
    /// is `None` for a sensitive value, which the message does not repeat.
    #[error("{} is not a valid {expected} value", describe_input(.text.as_deref()))]
    NotValid {
        text: Option<String>,
        expected: &'static str,
    },
}

/// An input as [`VarValueError::NotValid`] shows it: quoted, or not at all
/// when sensitive.
fn describe_input(text: Option<&str>) -> String {
    match text {
        Some(text) => format!("\"{text}\""),
        None => "the sensitive value (not shown)".to_string(),
    }
}

/// Why the digest of a local artifact cannot be computed.
#[derive(Debug, thiserror::Error)]
enum ArtifactDigestError {
    /// The source is not a usable artifact source.
    #[error(transparent)]
    Source(#[from] crate::artifact::SourceError),
    /// The file or directory cannot be read.
    #[error("cannot read artifact {}: {error}", excerpt(.artifact))]
    Unreadable {
        artifact: String,
        error: std::io::Error,
    },
}

fn check_var_type(value: &Value, var_type: VarType) -> Result<(), VarValueError> {
    let ok = match var_type {
        VarType::String => matches!(value, Value::String(_)),
        VarType::Number => matches!(value, Value::Number(_)),
        VarType::Bool => matches!(value, Value::Bool(_)),
        VarType::List => matches!(value, Value::Array(_)),
        VarType::Map => matches!(value, Value::Object(_)),
        VarType::Any => true,
    };
    if ok {
        Ok(())
    } else {
        Err(VarValueError::WrongType {
            expected: var_type.describe(),
            found: type_name(value),
        })
    }
}

/// A value given from outside as the variable's type. The message for a value
/// that is not one repeats it, unless it is `sensitive`.
fn convert_input(
    raw: &RawInput,
    var_type: VarType,
    sensitive: bool,
) -> Result<Value, VarValueError> {
    let not_valid = |text: &str| VarValueError::NotValid {
        text: (!sensitive).then(|| text.to_string()),
        expected: var_type.describe(),
    };
    let value = match (raw, var_type) {
        (RawInput::Value(Value::Number(n)), VarType::String) => Value::String(n.to_string()),
        (RawInput::Value(Value::Bool(b)), VarType::String) => Value::String(b.to_string()),
        (RawInput::Value(value), _) => value.clone(),
        (RawInput::Text(text), VarType::String | VarType::Any) => Value::String(text.clone()),
        (RawInput::Text(text), _) => {
            let expr: hcl::Expression = text.parse().map_err(|_| not_valid(text))?;
            evaluate(&expr, &function_context()).map_err(|_| not_valid(text))?
        }
    };
    check_var_type(&value, var_type)?;
    Ok(value)
}

struct TypeProblem {
    message: String,
    code: &'static str,
}

fn wrong(expected: Ty, found: &Value) -> TypeProblem {
    TypeProblem {
        message: format!(
            "expected {}, found {}",
            expected.describe(),
            type_name(found)
        ),
        code: "wrong-type",
    }
}

fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Convert a value to JSON if it has type `ty`.
fn typed_json(value: &Value, ty: Ty) -> Result<serde_json::Value, TypeProblem> {
    use serde_json::Value as J;
    let invalid = |code: &'static str, message: String| TypeProblem { message, code };
    match ty {
        Ty::Any | Ty::Ref(_) | Ty::RefList(_) => Ok(to_json(value)),
        Ty::String => scalar_string(value)
            .map(J::String)
            .ok_or_else(|| wrong(ty, value)),
        Ty::Number => match value {
            Value::Number(_) => Ok(to_json(value)),
            _ => Err(wrong(ty, value)),
        },
        Ty::Bool => match value {
            Value::Bool(b) => Ok(J::Bool(*b)),
            _ => Err(wrong(ty, value)),
        },
        Ty::List => match value {
            Value::Array(_) => Ok(to_json(value)),
            _ => Err(wrong(ty, value)),
        },
        Ty::Map => match value {
            Value::Object(_) => Ok(to_json(value)),
            _ => Err(wrong(ty, value)),
        },
        Ty::StringList => match value {
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    scalar_string(item)
                        .map(J::String)
                        .ok_or_else(|| wrong(ty, value))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(J::Array),
            _ => Err(wrong(ty, value)),
        },
        Ty::StringMap => match value {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    scalar_string(v)
                        .map(|s| (k.clone(), J::String(s)))
                        .ok_or_else(|| wrong(ty, value))
                })
                .collect::<Result<serde_json::Map<_, _>, _>>()
                .map(J::Object),
            _ => Err(wrong(ty, value)),
        },
        Ty::Duration => match value {
            Value::String(s) => parse_duration(s)
                .map(|_| J::String(s.clone()))
                .map_err(|e| invalid("invalid-duration", format!("invalid duration: {e}"))),
            _ => Err(wrong(ty, value)),
        },
        Ty::Percent => match value {
            Value::String(s) => parse_percent(s)
                .map(|_| J::String(s.clone()))
                .map_err(|e| invalid("invalid-percentage", format!("invalid percentage: {e}"))),
            _ => Err(wrong(ty, value)),
        },
        Ty::PercentList => match value {
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|item| typed_json(item, Ty::Percent))
                .collect::<Result<Vec<_>, _>>()
                .map(J::Array),
            Value::Array(_) => Err(invalid("wrong-type", "the list is empty".into())),
            _ => Err(wrong(ty, value)),
        },
        Ty::CountOrPercent => match value {
            Value::Number(n) if n.as_u64().is_some() => Ok(to_json(value)),
            Value::Number(_) => Err(invalid(
                "wrong-type",
                format!("{value} is not a whole number"),
            )),
            Value::String(_) => typed_json(value, Ty::Percent),
            _ => Err(wrong(ty, value)),
        },
        Ty::BatchList => match value {
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|item| typed_json(item, Ty::CountOrPercent))
                .collect::<Result<Vec<_>, _>>()
                .map(J::Array),
            Value::Array(_) => Err(invalid("wrong-type", "the list is empty".into())),
            _ => Err(wrong(ty, value)),
        },
        Ty::OneOf(options) => match value {
            Value::String(s) if options.contains(&s.as_str()) => Ok(J::String(s.clone())),
            Value::String(s) => Err(invalid(
                "invalid-value",
                match did_you_mean(s, options.iter().copied()) {
                    Some(suggestion) => {
                        format!(
                            "{} is not allowed; did you mean \"{suggestion}\"?",
                            excerpt(s)
                        )
                    }
                    None => format!("{} is not allowed", excerpt(s)),
                },
            )),
            _ => Err(wrong(ty, value)),
        },
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system (so messages show
/// the path the user would write).
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_without_losing_parent_steps() {
        let normal = |p: &str| lexically_normal(Path::new(p)).display().to_string();
        assert_eq!(normal("examples/ecs-workshop/../../modules/x"), "modules/x");
        assert_eq!(normal("./../../x"), "../../x");
        assert_eq!(normal("a/./b/../c"), "a/c");
        assert_eq!(normal("/a/../../b"), "/b");
        assert_eq!(normal("."), ".");
    }
}

#[cfg(test)]
mod secret_block_tests {
    use super::*;

    /// Two environments: `a` runs a service taking `secret.db` through a
    /// local, `b` one taking `secret.token` through a module input and
    /// output; `unused` is used by nothing.
    const MAIN: &str = r#"
secret "db" {
  aws_secrets_manager = "prod/db"
  json_key            = "password"
  region              = "eu-west-1"
}

secret "token" {
  ssm_parameter = "/prod/token"
}

secret "unused" {
  aws_secrets_manager = "prod/unused"
  version_stage       = "AWSPREVIOUS"
}

locals {
  db_line = "DB=${upper(secret.db)}"
}

module "wrap" {
  source = "./wrap"
  token  = secret.token
}

service "a" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/a"
    config_file "a.env" {
      destination = "/opt/a/a.env"
      content     = "${local.db_line}\nPLAIN=1\n"
    }
  }
}

service "b" {
  version = "1.0.0"
  vm {
    install_dir = "/opt/b"
    config_file "b.env" {
      destination = "/opt/b/b.env"
      content     = "TOKEN=${module.wrap.token}\n"
    }
  }
}

environment "a" {
  vm_hosts {
    transport = "local"
    root      = "hosts"
    hosts     = ["h1"]
  }
}

environment "b" {
  vm_hosts {
    transport = "local"
    root      = "hosts"
    hosts     = ["h2"]
  }
}

deployment "a" {
  service     = service.a
  environment = environment.a
}

deployment "b" {
  service     = service.b
  environment = environment.b
}
"#;

    const MODULE: &str = r#"
variable "token" {
  type = string
}

output "token" {
  value     = "t:${var.token}"
  sensitive = true
}
"#;

    fn directory(main: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.hcl"), main).unwrap();
        std::fs::create_dir(dir.path().join("wrap")).unwrap();
        std::fs::write(dir.path().join("wrap/main.hcl"), MODULE).unwrap();
        dir
    }

    fn load_dir(dir: &Path, secrets: &[(&str, &str)]) -> Loaded {
        let secrets: SecretValues = secrets
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_with_secrets(dir, &InputSources::default(), &SavedInputs::new(), &secrets)
    }

    /// Each diagnostic as `file:line:col message`.
    fn located(loaded: &Loaded) -> Vec<String> {
        loaded
            .diagnostics
            .iter()
            .map(|d| {
                let span = d.span.expect("located");
                let (line, column) = loaded.sources.line_column(span.file, span.start);
                let file = loaded.sources.file(span.file).path.file_name().unwrap();
                format!("{}:{line}:{column} {}", file.to_string_lossy(), d.message)
            })
            .collect()
    }

    #[test]
    fn each_deployment_knows_the_secrets_it_uses_through_locals_and_modules() {
        let dir = directory(MAIN);
        let loaded = load_dir(dir.path(), &[]);
        let config = loaded.config.expect("loads");
        let used = |address: &str| -> Vec<String> {
            config.deployments[address]
                .secrets
                .iter()
                .cloned()
                .collect()
        };
        assert_eq!(used("deployment.a"), ["db"]);
        assert_eq!(used("deployment.b"), ["token"]);
        assert_eq!(
            config.secrets.keys().collect::<Vec<_>>(),
            ["db", "token", "unused"]
        );
        assert_eq!(
            config.secrets["db"].source,
            SecretSource::SecretsManager {
                secret_id: "prod/db".into(),
                version_stage: None
            }
        );
        assert_eq!(config.secrets["db"].region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.secrets["db"].json_key.as_deref(), Some("password"));
        // Not read: the empty string, and nothing to mask or digest.
        assert!(config.secret_values.is_empty());
        assert!(config.sensitive_values.is_empty());
    }

    #[test]
    fn values_read_are_sensitive_and_masked_in_what_is_computed_from_them() {
        let dir = directory(MAIN);
        let loaded = load_dir(
            dir.path(),
            &[("db", "hunter2-Zq9"), ("token", "tok-Zq9-en")],
        );
        let config = loaded.config.expect("loads");
        let file_of = |address: &str| {
            config.deployments[address]
                .service
                .vm
                .as_ref()
                .unwrap()
                .config_files[0]
                .content
                .clone()
        };
        assert_eq!(file_of("deployment.a"), "DB=HUNTER2-ZQ9\nPLAIN=1\n");
        assert_eq!(file_of("deployment.b"), "TOKEN=t:tok-Zq9-en\n");
        assert_eq!(
            config.mask(&file_of("deployment.a")),
            "(sensitive)\nPLAIN=1\n"
        );
        assert_eq!(
            config.mask(&file_of("deployment.b")),
            "TOKEN=t:(sensitive)\n"
        );
        assert_eq!(config.secret_values.len(), 2);
        // Not part of the configuration digest: a rotation is judged by the
        // digests of the files holding it, and a saved plan by its own.
        let unread = load_dir(dir.path(), &[]).config.unwrap();
        assert_eq!(config.digest, unread.digest);
    }

    #[test]
    fn a_secret_may_not_flow_into_a_command() {
        let main = MAIN.replace(
            "install_dir = \"/opt/a\"",
            "install_dir = \"/opt/a\"\n    start_command = \"run ${secret.token}\"",
        );
        let dir = directory(&main);
        let loaded = load_dir(dir.path(), &[]);
        assert!(loaded.config.is_none());
        let found = located(&loaded);
        assert!(
            found.iter().any(|d| d.contains(
                "sensitive value secret.token is used in \"start_command\", which would be printed"
            )),
            "{found:?}"
        );
    }

    #[test]
    fn a_template_loop_over_a_secret_is_tainted_and_a_loop_variable_named_secret_is_not() {
        // The directive's collection is what makes the text secret: before
        // it counted as a reference, this text was shown and stored as is.
        let looped = MAIN.replace(
            "content     = \"${local.db_line}\\nPLAIN=1\\n\"",
            "content     = \"X=%{ for p in split(\"Zq9\", secret.db) }${upper(p)}%{ endfor }\\n\"",
        );
        assert_ne!(looped, MAIN);
        let dir = directory(&looped);
        let loaded = load_dir(dir.path(), &[("db", "alpha-Zq9-omega")]);
        let found = located(&loaded);
        let config = loaded.config.unwrap_or_else(|| panic!("{found:?}"));
        let deployment = &config.deployments["deployment.a"];
        let file = &deployment.service.vm.as_ref().unwrap().config_files[0].content;
        assert_eq!(file, "X=ALPHA--OMEGA\n");
        assert_eq!(config.mask(file), "(sensitive)\n");
        assert_eq!(deployment.secrets.iter().collect::<Vec<_>>(), ["db"]);
        // A command that loops over it is refused.
        let command = MAIN.replace(
            "install_dir = \"/opt/a\"",
            "install_dir = \"/opt/a\"\n    start_command = \"run %{ for p in [secret.db] }${p}%{ endfor }\"",
        );
        let dir = directory(&command);
        let found = located(&load_dir(dir.path(), &[]));
        assert!(
            found
                .iter()
                .any(|d| d.contains("sensitive value secret.db is used in \"start_command\"")),
            "{found:?}"
        );
        // `secret` as a for variable is the loop's value, not a secret block.
        let named = MAIN.replace(
            "install_dir = \"/opt/a\"",
            "install_dir = \"/opt/a\"\n    start_command = join(\" \", [for secret in [\"x\", \"y\"] : secret])",
        );
        let dir = directory(&named);
        let loaded = load_dir(dir.path(), &[]);
        assert!(loaded.config.is_some(), "{:?}", located(&loaded));
    }

    #[test]
    fn malformed_secret_blocks_are_located() {
        let cases: [(&str, &str, &str); 8] = [
            (
                "secret \"x\" {\n  aws_secrets_manager = \"a\"\n  ssm_parameter = \"/b\"\n}\n",
                "main.hcl:3:3",
                "secret \"x\" names two stores",
            ),
            (
                "secret \"x\" {\n  region = \"eu-west-1\"\n}\n",
                "main.hcl:1:1",
                "secret \"x\" names no store",
            ),
            (
                "secret \"x\" {\n  aws_secrets_manager = \"\"\n}\n",
                "main.hcl:2:25",
                "secret \"x\": aws_secrets_manager is empty",
            ),
            (
                "secret \"x\" {\n  ssm_parameter = \" \"\n}\n",
                "main.hcl:2:19",
                "secret \"x\": ssm_parameter is empty",
            ),
            (
                "secret \"x\" {\n  ssm_parameter = \"/b\"\n  json_key = \"k\"\n}\n",
                "main.hcl:3:3",
                "secret \"x\": json_key applies to Secrets Manager secrets, not to an SSM parameter",
            ),
            (
                "secret \"x\" {\n  ssm_parameter = \"/b\"\n  version_stage = \"AWSCURRENT\"\n}\n",
                "main.hcl:3:3",
                "secret \"x\": version_stage applies to Secrets Manager secrets",
            ),
            (
                "secret \"x\" {\n  aws_secrets_manager = \"a\"\n  json_kee = \"k\"\n}\n",
                "main.hcl:3:3",
                "json_kee",
            ),
            (
                "secret \"x\" {\n  aws_secrets_manager = \"a\"\n}\nlocals {\n  y = secret.z\n}\n",
                "main.hcl:5:7",
                "undefined secret \"secret.z\"",
            ),
        ];
        for (text, at, message) in cases {
            let dir = directory(text);
            let loaded = load_dir(dir.path(), &[]);
            assert!(loaded.config.is_none(), "{text}");
            let found = located(&loaded);
            assert!(
                found
                    .iter()
                    .any(|d| d.starts_with(&format!("{at} ")) && d.contains(message)),
                "{text}: expected {at} {message:?}, found {found:?}"
            );
        }
    }

    #[test]
    fn a_module_cannot_declare_a_secret() {
        let dir = directory("module \"wrap\" {\n  source = \"./wrap\"\n  token = \"x\"\n}\n");
        std::fs::write(
            dir.path().join("wrap/secret.hcl"),
            "secret \"s\" {\n  ssm_parameter = \"/s\"\n}\n",
        )
        .unwrap();
        let loaded = load_dir(dir.path(), &[]);
        let found = located(&loaded);
        assert!(
            found
                .iter()
                .any(|d| d.starts_with("secret.hcl:1:1 a module cannot have a secret block")),
            "{found:?}"
        );
    }
}

#[cfg(test)]
mod artifact_delivery_tests {
    use super::*;

    /// A one-service configuration whose artifact block is `artifact`.
    fn load_artifact(artifact: &str) -> Loaded {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        std::fs::write(dir.path().join("app/run.sh"), "true\n").unwrap();
        let main = format!(
            r#"
service "app" {{
  version = "1.0.0"
  artifact {{
{artifact}
  }}
  vm {{
    install_dir = "/opt/app"
  }}
}}

environment "prod" {{
  vm_hosts {{
    transport = "local"
    root      = "hosts"
    hosts     = ["h1"]
  }}
}}

deployment "app" {{
  service     = service.app
  environment = environment.prod
}}
"#
        );
        std::fs::write(dir.path().join("main.hcl"), main).unwrap();
        load_with_secrets(
            dir.path(),
            &InputSources::default(),
            &SavedInputs::new(),
            &SecretValues::new(),
        )
    }

    fn delivery(artifact: &str) -> ArtifactDelivery {
        let loaded = load_artifact(artifact);
        let config = loaded.config.unwrap_or_else(|| {
            panic!(
                "{artifact}: {:?}",
                loaded.diagnostics.iter().collect::<Vec<_>>()
            )
        });
        config.deployments["deployment.app"]
            .service
            .artifact
            .as_ref()
            .unwrap()
            .delivery()
    }

    /// The one error loading `artifact` gives, as `line:column message`.
    fn refusal(artifact: &str) -> String {
        let loaded = load_artifact(artifact);
        assert!(loaded.config.is_none(), "{artifact} loaded");
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .map(|d| {
                let span = d.span.expect("located");
                let (line, column) = loaded.sources.line_column(span.file, span.start);
                format!("{line}:{column} {}", d.message)
            })
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors[0].clone()
    }

    #[test]
    fn each_source_gets_the_delivery_that_needs_nothing_more_from_its_hosts() {
        use ArtifactDelivery::{Pull, Push};
        assert_eq!(delivery(r#"source = "./app""#), Push);
        assert_eq!(
            delivery(r#"source = "https://repo.example/app.tar.gz""#),
            Pull
        );
        assert_eq!(delivery(r#"source = "s3://releases/app.tar.gz""#), Pull);
        assert_eq!(
            delivery(r#"source = "oci://registry.example/app:1.0""#),
            Push
        );
        assert_eq!(
            delivery(
                r#"source = "https://repo.example/app.tar.gz"
headers = { Authorization = "Bearer x" }"#
            ),
            Push,
            "credentials stay on the runner"
        );
        assert_eq!(
            delivery(r#"source = "https://ci:token@repo.example/app.tar.gz""#),
            Push,
            "so do credentials in the URL"
        );
        assert_eq!(
            delivery(
                r#"source = "https://repo.example/app.tar.gz"
delivery = "push""#
            ),
            Push
        );
    }

    #[test]
    fn a_pull_hosts_cannot_make_is_refused_at_the_attribute() {
        let local = refusal("source = \"./app\"\ndelivery = \"pull\"");
        assert!(
            local.starts_with("6:12 \"delivery\" = \"pull\": hosts cannot download a path"),
            "{local}"
        );
        let image = refusal("source = \"oci://registry.example/app:1.0\"\ndelivery = \"pull\"");
        assert!(image.contains("an image is flattened"), "{image}");
        let credentials = refusal(
            "source = \"https://repo.example/app.tar.gz\"\nusername = \"ci\"\npassword = \"x\"\ndelivery = \"pull\"",
        );
        assert!(
            credentials.starts_with("8:12 ") && credentials.contains("stay on the runner"),
            "{credentials}"
        );
        let word = refusal("source = \"./app\"\ndelivery = \"download\"");
        assert!(
            word.starts_with("6:12 ") && word.contains("\"download\" is not allowed"),
            "{word}"
        );
    }
}
