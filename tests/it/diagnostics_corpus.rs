//! A corpus of malformed configurations, each with the diagnostics it must
//! produce.
//!
//! Every directory under `tests/invalid/` is one case: its `*.hcl` files are the
//! configuration. A case may also have
//!
//! - `vars/*.hcl`: var files, passed in name order as `-var-file` (they live in a
//!   subdirectory because every `*.hcl` file of the case directory itself is
//!   configuration);
//! - `args.txt`: one `-var name=value` flag per line (the `-var ` prefix is
//!   optional; blank lines and lines starting with `#` are skipped).
//!
//! Each case must fail to load, must not panic, and must point at a
//! `file:line:column`; its rendered diagnostics are compared with the snapshot
//! `snapshots/diagnostics_corpus__<case>.snap`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

const CORPUS: &str = "tests/invalid";

fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("the corpus directory exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn var_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("vars")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "hcl"))
        .collect();
    files.sort();
    files
}

fn var_flags(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("args.txt")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.strip_prefix("-var ")
                .unwrap_or(line)
                .trim()
                .to_string()
        })
        .collect()
}

/// Load one case and render its diagnostics; `Err` describes what is wrong
/// with the case's outcome (other than the snapshot).
fn run_case(dir: &Path) -> Result<String, String> {
    let inputs = slipway::config::InputSources {
        vars: var_flags(dir),
        var_files: var_files(dir),
        environment: vec![],
    };
    let loaded = slipway::config::load(dir, &inputs);
    let text = slipway::diagnostics::render(&loaded.sources, &loaded.diagnostics, false);
    if loaded.config.is_some() {
        return Err(format!("loaded without errors; diagnostics:\n{text}"));
    }
    if !has_location(&text) {
        return Err(format!("names no file:line:column:\n{text}"));
    }
    let mut headers = text
        .lines()
        .filter(|line| line.starts_with("error[") || line.starts_with("warning["));
    if let Some(header) = headers.find(|line| !has_location(line)) {
        return Err(format!("a diagnostic has no file:line:column: {header}"));
    }
    Ok(text)
}

/// Whether `text` contains `NAME.hcl:LINE:COLUMN`.
fn has_location(text: &str) -> bool {
    text.match_indices(".hcl:").any(|(index, found)| {
        let rest = &text[index + found.len()..];
        let line = rest.chars().take_while(char::is_ascii_digit).count();
        if line == 0 || !rest[line..].starts_with(':') {
            return false;
        }
        rest[line + 1..].starts_with(|c: char| c.is_ascii_digit())
    })
}

#[test]
fn location_pattern() {
    assert!(has_location("error[syntax]: tests/invalid/x/main.hcl:3:14"));
    assert!(!has_location("error[syntax]: main.hcl:3"));
    assert!(!has_location("error[missing-variable]"));
}

#[test]
fn corpus_has_enough_cases() {
    assert!(
        case_dirs().len() >= 40,
        "the corpus needs at least 40 cases"
    );
}

#[test]
fn invalid_configurations() {
    let mut failures = Vec::new();
    for dir in case_dirs() {
        let case_name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("case directory names are UTF-8")
            .to_string();
        let outcome = catch_unwind(AssertUnwindSafe(|| run_case(&dir)));
        let text = match outcome {
            Ok(Ok(text)) => text,
            Ok(Err(problem)) => {
                failures.push(format!("{case_name}: {problem}"));
                continue;
            }
            Err(_) => {
                failures.push(format!("{case_name}: panicked while loading"));
                continue;
            }
        };
        let snapshot = catch_unwind(AssertUnwindSafe(|| {
            insta::assert_snapshot!(case_name.as_str(), text);
        }));
        if snapshot.is_err() {
            failures.push(format!("{case_name}: output differs from the snapshot"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
