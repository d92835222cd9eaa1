//! `slipway fmt`: find `*.hcl` files and rewrite them in the canonical style
//! (or, with `-check`, list the ones that need it).
//!
//! The formatting itself is `crate::fmt::format_source`; this module only
//! walks files, writes them, and chooses the exit code.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use super::{EXIT_ERROR, EXIT_OK, EXIT_UNFORMATTED};

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Directory or file to format.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Do not write; exit 3 when any file needs formatting.
    #[arg(long)]
    pub check: bool,
    /// Also format subdirectories.
    #[arg(long)]
    pub recursive: bool,
}

pub(super) fn fmt(args: &FmtArgs) -> anyhow::Result<u8> {
    let mut files = Vec::new();
    collect_hcl_files(&args.path, args.recursive, &mut files)?;
    let mut unformatted = Vec::new();
    let mut failed = false;
    for file in files {
        let source = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        match crate::fmt::format_source(&source) {
            Ok(formatted) if formatted != source => {
                if !args.check {
                    std::fs::write(&file, &formatted)
                        .with_context(|| format!("cannot write {}", file.display()))?;
                }
                println!("{}", file.display());
                unformatted.push(file);
            }
            Ok(_) => {}
            Err(error) => {
                eprintln!("{}: {error}", file.display());
                failed = true;
            }
        }
    }
    if failed {
        return Ok(EXIT_ERROR);
    }
    Ok(if args.check && !unformatted.is_empty() {
        EXIT_UNFORMATTED
    } else {
        EXIT_OK
    })
}

fn collect_hcl_files(path: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("cannot read directory {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() && recursive {
            collect_hcl_files(&entry, recursive, out)?;
        } else if entry.extension().is_some_and(|e| e == "hcl") {
            out.push(entry);
        }
    }
    Ok(())
}
