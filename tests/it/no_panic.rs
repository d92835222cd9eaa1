//! The configuration front end never panics: thousands of deterministic
//! mutations of the example configurations (deleted, inserted and duplicated
//! characters and lines, truncation, invalid UTF-8) go through parse, evaluate
//! and validate, and each either loads or reports diagnostics.

use std::path::Path;

use slipway::config::{load, InputSources};

/// A small deterministic generator (64-bit LCG) so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INSERTS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"${",
    b"%{",
    b"=",
    b"\n",
    b"#",
    b"/*",
    b"<<EOF\n",
    b"var.",
    b"local.",
    b"deployment.",
    b"(",
    b")",
    b",",
    b"?",
    b":",
    b"for x in",
    b"\xff",
    b"\xc3",
    b"0",
    b"\"5m\"",
    b"\"150%\"",
];

fn mutate(source: &[u8], rng: &mut Lcg) -> Vec<u8> {
    let mut bytes = source.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            1 => {
                let insert = INSERTS[rng.below(INSERTS.len())];
                bytes.splice(at..at, insert.iter().copied());
            }
            2 => bytes.truncate(at),
            3 => {
                let lines: Vec<&[u8]> = source.split(|b| *b == b'\n').collect();
                let line = lines[rng.below(lines.len())].to_vec();
                bytes.splice(at..at, line.into_iter().chain([b'\n']));
            }
            _ => {
                if at < bytes.len() {
                    bytes[at] = bytes[at].wrapping_add(1 + rng.below(5) as u8);
                }
            }
        }
    }
    bytes
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn fuzz_example(example: &str, var_file: Option<&str>, cases: usize, seed: u64) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("config");
    copy_dir(Path::new(example), &dir);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "hcl"))
        .collect();
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let inputs = InputSources {
        vars: Vec::new(),
        var_files: var_files(var_file),
        environment: Vec::new(),
    };
    let mut rng = Lcg(seed);
    let mut rejected = 0;
    for case in 0..cases {
        let which = rng.below(files.len());
        let mutated = mutate(&originals[which], &mut rng);
        std::fs::write(&files[which], &mutated).unwrap();
        let outcome = std::panic::catch_unwind(|| {
            let loaded = load(&dir, &inputs);
            assert_eq!(
                loaded.config.is_none(),
                loaded.diagnostics.has_errors(),
                "a configuration is returned exactly when there are no errors"
            );
            loaded.config.is_none()
        });
        match outcome {
            Ok(true) => rejected += 1,
            Ok(false) => {}
            Err(_) => panic!(
                "{example} case {case}: loading panicked on this {} content:\n{}",
                files[which].display(),
                String::from_utf8_lossy(&mutated)
            ),
        }
        std::fs::write(&files[which], &originals[which]).unwrap();
    }
    assert!(
        rejected > cases / 4,
        "mutations should mostly produce errors, got {rejected} of {cases}"
    );
}

fn var_files(var_file: Option<&str>) -> Vec<std::path::PathBuf> {
    var_file
        .map(|f| std::path::PathBuf::from(f).canonicalize().unwrap())
        .into_iter()
        .collect()
}

#[test]
fn mutated_quickstart_never_panics() {
    fuzz_example("examples/quickstart", None, 600, 1);
}

#[test]
fn mutated_vm_myapp_never_panics() {
    fuzz_example(
        "examples/vm-myapp",
        Some("examples/vm-myapp/vars/example.vars.hcl"),
        900,
        2,
    );
}
