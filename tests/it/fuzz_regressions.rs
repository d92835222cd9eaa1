//! Inputs the fuzzer (`fuzz/`, see docs/fuzzing.md) found or that stress the
//! parser's limits: each must load without panicking or overflowing the stack
//! and end in diagnostics that point at a file, line and column.
//!
//! - `tests/fuzz_regressions/*.hcl`: one configuration file each, as the
//!   `config_front_end` target saw it (bytes, not necessarily UTF-8);
//! - `tests/fuzz_regressions/<case>/`: a configuration directory (as found by
//!   `config_files_and_vars`), with an optional `args.txt` of `-var` flags, one
//!   per line.
//!
//! The nesting tests build expressions and blocks 10,000 levels deep; they
//! run on the test harness's threads, whose stacks are smaller than the main
//! thread's.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use slipway::config::{load, load_sources, InputSources, Loaded};
use slipway::diagnostics::render;

const REGRESSIONS: &str = "tests/fuzz_regressions";
const DEEP: usize = 10_000;

/// Loading must not panic, must return a configuration exactly when there are
/// no errors, and its diagnostics must render.
fn check(what: &str, load: impl FnOnce() -> Loaded) -> (Loaded, String) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let loaded = load();
        assert_eq!(
            loaded.config.is_none(),
            loaded.diagnostics.has_errors(),
            "a configuration is returned exactly when there are no errors"
        );
        let rendered = render(&loaded.sources, &loaded.diagnostics, false);
        (loaded, rendered)
    }));
    outcome.unwrap_or_else(|_| panic!("{what}: loading panicked"))
}

fn load_one(name: &str, bytes: Vec<u8>, vars: Vec<String>) -> Loaded {
    load_sources(
        Path::new("config"),
        &[(PathBuf::from(name), bytes)],
        &InputSources {
            vars,
            ..InputSources::default()
        },
    )
}

/// `text` must be rejected with a diagnostic at a position in `main.hcl`.
fn assert_rejected_at_position(what: &str, text: String) {
    let (loaded, rendered) = check(what, || load_one("main.hcl", text.into_bytes(), Vec::new()));
    assert!(loaded.config.is_none(), "{what}: loaded");
    assert!(
        loaded.diagnostics.iter().any(|d| d.span.is_some()),
        "{what}: no diagnostic points into the file:\n{rendered}"
    );
    assert!(
        rendered.contains("main.hcl:"),
        "{what}: no file:line:column in\n{rendered}"
    );
}

fn nested(open: &str, inner: &str, close: &str) -> String {
    format!("{}{inner}{}", open.repeat(DEEP), close.repeat(DEEP))
}

#[test]
fn deeply_nested_expressions_are_diagnostics() {
    let cases = [
        ("parentheses", nested("(", "1", ")")),
        ("lists", nested("[", "1", "]")),
        ("objects", nested("{ a = ", "1", " }")),
        ("function calls", nested("max(", "1", ")")),
        ("conditionals", nested("true ? ", "1", " : 2")),
        (
            "conditional chain",
            format!("{}2", "true ? 1 : ".repeat(DEEP)),
        ),
        ("negations", format!("{}1", "-".repeat(DEEP))),
        ("nots", format!("{}true", "!".repeat(DEEP))),
        ("binary chain", format!("{}1", "1 + ".repeat(DEEP))),
        ("interpolations", nested("\"${", "1", "}\"")),
        ("for expressions", nested("[for a in ", "[1]", " : a]")),
        ("unclosed parentheses", "(".repeat(DEEP)),
        (
            "template directives",
            format!(
                "<<EOT\n{}\nEOT\n",
                nested("%{ if true }", "a", "%{ endif }")
            ),
        ),
    ];
    for (what, expr) in cases {
        assert_rejected_at_position(what, format!("locals {{\n  x = {expr}\n}}\n"));
    }
}

#[test]
fn deeply_nested_blocks_are_diagnostics() {
    assert_rejected_at_position("blocks", nested("a {\n", "", "}\n"));
    assert_rejected_at_position("unclosed blocks", "a {\n".repeat(DEEP));
    assert_rejected_at_position(
        "blocks inside a service",
        format!("service \"s\" {{\n{}}}\n", nested("vm {\n", "", "}\n")),
    );
}

#[test]
fn deeply_nested_var_flags_are_diagnostics() {
    let config = b"variable \"x\" {\n  type = list\n}\n".to_vec();
    for value in [nested("[", "1", "]"), nested("(", "1", ")")] {
        let (loaded, rendered) = check("-var", || {
            load_one("main.hcl", config.clone(), vec![format!("x={value}")])
        });
        assert!(loaded.config.is_none(), "a deep -var value loaded");
        assert!(!rendered.is_empty());
    }
}

#[test]
fn deeply_nested_var_files_and_templates_are_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(
        config.join("main.hcl"),
        "variable \"x\" {\n  type = list\n}\n\nlocals {\n  t = templatefile(\"deep.tpl\", {})\n}\n",
    )
    .unwrap();
    std::fs::write(
        config.join("deep.tpl"),
        nested("%{ if true }", "a", "%{ endif }"),
    )
    .unwrap();
    let var_file = dir.path().join("deep.vars.hcl");
    std::fs::write(&var_file, format!("x = {}\n", nested("[", "1", "]"))).unwrap();
    let inputs = InputSources {
        var_files: vec![var_file],
        ..InputSources::default()
    };
    let (loaded, rendered) = check("var file", || load(&config, &inputs));
    assert!(loaded.config.is_none());
    assert!(rendered.contains("deep.vars.hcl:"), "{rendered}");

    std::fs::write(
        config.join("main.hcl"),
        "locals {\n  t = templatefile(\"deep.tpl\", {})\n}\n",
    )
    .unwrap();
    let (loaded, rendered) = check("template", || load(&config, &InputSources::default()));
    assert!(loaded.config.is_none());
    assert!(rendered.contains("deep.tpl"), "{rendered}");
}

#[test]
fn in_memory_sources_load_like_a_directory() {
    for (example, loads) in [("examples/quickstart", true), ("examples/vm-myapp", false)] {
        let dir = Path::new(example);
        let files: Vec<(PathBuf, Vec<u8>)> = slipway::config::raw::config_files(dir)
            .unwrap()
            .into_iter()
            .map(|path| {
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        let inputs = InputSources::default();
        let from_dir = load(dir, &inputs);
        let from_memory = load_sources(dir, &files, &inputs);
        assert_eq!(from_memory.config.is_some(), loads, "{example}");
        assert_eq!(from_dir.diagnostics, from_memory.diagnostics, "{example}");
        assert_eq!(
            format!("{:?}", from_dir.config),
            format!("{:?}", from_memory.config),
            "{example}"
        );
    }
}

fn regression_cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(REGRESSIONS)
        .expect("the regression directory exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_dir() || path.extension().is_some_and(|e| e == "hcl"))
        .collect();
    cases.sort();
    cases
}

fn case_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "hcl"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (PathBuf::from(path.file_name().unwrap()), bytes)
        })
        .collect()
}

fn case_vars(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("args.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.strip_prefix("-var ").unwrap_or(line).to_string())
        .collect()
}

#[test]
fn fuzzer_findings_end_in_diagnostics() {
    let cases = regression_cases();
    assert!(!cases.is_empty(), "no cases in {REGRESSIONS}");
    for case in cases {
        let what = case.display().to_string();
        let (files, vars) = if case.is_dir() {
            (case_files(&case), case_vars(&case))
        } else {
            let bytes = std::fs::read(&case).unwrap();
            (vec![(PathBuf::from("main.hcl"), bytes)], Vec::new())
        };
        let inputs = InputSources {
            vars,
            ..InputSources::default()
        };
        let (loaded, rendered) =
            check(&what, || load_sources(Path::new("config"), &files, &inputs));
        assert!(
            loaded.config.is_none(),
            "{what}: expected diagnostics, the configuration loaded"
        );
        assert!(!rendered.is_empty(), "{what}: nothing rendered");
    }
}
