//! A state file changed by hand, truncated or hostile, planned against a real
//! configuration: reading it must end in a state or in the error that names
//! the file, never in a panic; a state that reads must plan (or give
//! diagnostics, which must render) and every view of the plan must render;
//! and what slipway
//! would write back for it must read back as the same state.
//!
//! The input's first byte picks the configuration (an example of the
//! repository: `quickstart`, `vm-myapp`, `ecs-workshop`), the second the
//! environment the state belongs to; the rest is the state file.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use slipway::config::{load, Config, InputSources};
use slipway::diagnostics::{render as render_diagnostics, SourceMap};
use slipway::plan::planner::environment_state_name;
use slipway::plan::{plan, PlanOptions, States};
use slipway::state::{decode_state, encode_state};
use slipway::views::{render, ViewFormat};

/// A configuration of the repository, loaded once, with the sources its
/// diagnostics point into and its environments' state names.
struct Example {
    config: Config,
    sources: SourceMap,
    environments: Vec<String>,
}

fn examples() -> &'static [Example] {
    static EXAMPLES: OnceLock<Vec<Example>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let load_example = |name: &str, vars: &[&str], var_files: &[&str]| {
            let dir = root.join(name);
            let inputs = InputSources {
                vars: vars.iter().map(|v| v.to_string()).collect(),
                var_files: var_files.iter().map(|f| dir.join(f)).collect(),
                environment: vec![],
            };
            let loaded = load(&dir, &inputs);
            let config = loaded
                .config
                .unwrap_or_else(|| panic!("the example {name} loads"));
            let environments = config
                .environments
                .keys()
                .map(|address| environment_state_name(address))
                .collect();
            Example {
                config,
                sources: loaded.sources,
                environments,
            }
        };
        vec![
            load_example("quickstart", &[], &[]),
            load_example("vm-myapp", &[], &["vars/example.vars.hcl"]),
            load_example(
                "ecs-workshop",
                &["backend_version=2.0.0", "frontend_version=2.0.0"],
                &[],
            ),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let [pick_config, pick_environment, contents @ ..] = data else {
        return;
    };
    let example = &examples()[usize::from(*pick_config) % examples().len()];
    let environments = &example.environments;
    let environment = &environments[usize::from(*pick_environment) % environments.len()];
    let path = PathBuf::from(format!("state/{environment}.json"));
    let state = match decode_state(contents, Some(environment), &path, || None) {
        Ok(state) => state,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    // What slipway writes for this state reads back as the same state.
    let encoded = encode_state(&state).expect("a state read encodes");
    let again = decode_state(&encoded, Some(environment), &path, || None)
        .expect("what slipway writes reads back");
    assert_eq!(again, state, "a state changes through a write and a read");

    let mut states: States = environments.iter().map(|e| (e.clone(), None)).collect();
    states.insert(environment.clone(), Some(state));
    match plan(&example.config, &states, &PlanOptions::default()) {
        Ok(plan) => {
            for format in [
                ViewFormat::Human { color: false },
                ViewFormat::Json,
                ViewFormat::Markdown,
            ] {
                let _ = render(&plan, format);
            }
        }
        Err(diagnostics) => {
            let _ = render_diagnostics(&example.sources, &diagnostics, false);
        }
    }
});
