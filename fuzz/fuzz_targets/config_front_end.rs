//! One configuration file, any bytes: parse, schema check, evaluation and
//! validation must end in a configuration or in diagnostics, never in a panic,
//! and the diagnostics must render.

#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use slipway::config::{load_sources, InputSources};
use slipway::diagnostics::render;

fuzz_target!(|data: &[u8]| {
    // A directory that does not exist: relative paths in the configuration
    // (modules, file(), artifacts) resolve to nothing, so inputs stay in memory.
    let dir = Path::new("/nonexistent-slipway-fuzz");
    let files = [(PathBuf::from("main.hcl"), data.to_vec())];
    let loaded = load_sources(dir, &files, &InputSources::default());
    assert_eq!(loaded.config.is_none(), loaded.diagnostics.has_errors());
    let _ = render(&loaded.sources, &loaded.diagnostics, false);
});
