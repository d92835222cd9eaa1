//! Several configuration files and `-var` flags from one input, so
//! cross-file checks (duplicates, references between files) and input
//! conversion are fuzzed too.
//!
//! The input is split at lines starting with `#--- `: a section headed
//! `#--- NAME.hcl` is a file, one headed `#--- -var` holds one `-var` flag
//! per line, and one headed `#--- env` holds `SLIPWAY_VAR_name=value`
//! lines. Text before the first header is `main.hcl`.

#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use slipway::config::{load_sources, InputSources};
use slipway::diagnostics::render;

const HEADER: &[u8] = b"#--- ";

fuzz_target!(|data: &[u8]| {
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut inputs = InputSources::default();
    let mut name: Vec<u8> = b"main.hcl".to_vec();
    let mut body: Vec<u8> = Vec::new();
    let mut finish = |name: &[u8], body: &mut Vec<u8>, files: &mut Vec<(PathBuf, Vec<u8>)>| {
        let text = || String::from_utf8_lossy(body).into_owned();
        match name {
            b"-var" => inputs.vars.extend(text().lines().map(str::to_string)),
            b"env" => inputs.environment.extend(
                text()
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            ),
            _ => files.push((
                PathBuf::from(String::from_utf8_lossy(name).replace('/', "_")),
                std::mem::take(body),
            )),
        }
        body.clear();
    };
    for line in data.split_inclusive(|b| *b == b'\n') {
        if let Some(header) = line.strip_prefix(HEADER) {
            finish(&name, &mut body, &mut files);
            name = header.trim_ascii().to_vec();
        } else {
            body.extend_from_slice(line);
        }
    }
    finish(&name, &mut body, &mut files);

    let dir = Path::new("/nonexistent-slipway-fuzz");
    let loaded = load_sources(dir, &files, &inputs);
    assert_eq!(loaded.config.is_none(), loaded.diagnostics.has_errors());
    let _ = render(&loaded.sources, &loaded.diagnostics, false);
});
