//! Reading configuration files into a raw block tree with source spans.
//!
//! A configuration directory's `*.hcl` files are parsed with hcl-edit (which keeps
//! byte spans) and turned into [`RawBody`] trees: attribute expressions are kept
//! unevaluated. Syntax errors become diagnostics. This module neither checks the
//! schema nor evaluates anything.

use std::path::{Path, PathBuf};

use hcl::edit::structure::{self, BlockLabel, Structure};
use hcl::edit::Span as _;

use crate::diagnostics::{Diagnostic, Diagnostics, FileId, SourceMap, Span};

#[derive(Debug, Clone)]
pub struct RawAttr {
    pub name: String,
    pub name_span: Span,
    pub expr: hcl::Expression,
    /// The expression as parsed, for spans of its parts.
    pub edit_expr: hcl::edit::expr::Expression,
    /// Span of the value expression.
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct RawBlock {
    pub kind: String,
    pub kind_span: Span,
    pub labels: Vec<(String, Span)>,
    pub body: RawBody,
    pub span: Span,
}

impl RawBlock {
    pub fn label(&self) -> &str {
        self.labels.first().map_or("", |(l, _)| l.as_str())
    }

    /// Span of the block header (its type and labels), the best place to point at.
    pub fn header_span(&self) -> Span {
        match self.labels.last() {
            Some((_, last)) => Span {
                end: last.end,
                ..self.kind_span
            },
            None => self.kind_span,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RawBody {
    pub attrs: Vec<RawAttr>,
    pub blocks: Vec<RawBlock>,
}

impl RawBody {
    pub fn attr(&self, name: &str) -> Option<&RawAttr> {
        self.attrs.iter().find(|a| a.name == name)
    }

    pub fn blocks_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a RawBlock> + 'a {
        self.blocks.iter().filter(move |b| b.kind == kind)
    }
}

/// The `*.hcl` files of a directory, sorted by name (entries that are not
/// regular files left out; [`hcl_entries`] says why).
pub fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(hcl_entries(dir)?
        .into_iter()
        .filter_map(|(path, readable)| readable.is_ok().then_some(path))
        .collect())
}

/// Every `*.hcl` entry of a directory, sorted by name, each with whether it
/// can be read as a configuration file: a regular file, or a link to one. A
/// dangling link, a directory, a FIFO, a socket or a device gets the reason it
/// cannot ([`Unreadable`]). The type is read without opening the entry, so a FIFO never blocks.
pub fn hcl_entries(dir: &Path) -> std::io::Result<Vec<(PathBuf, Result<(), Unreadable>)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "hcl") {
            continue;
        }
        let readable = match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(()),
            Ok(meta) => Err(Unreadable::NotAFile(describe_type(&meta.file_type()))),
            Err(error) if std::fs::symlink_metadata(&path).is_ok() => {
                Err(Unreadable::DanglingLink(error))
            }
            Err(error) => Err(Unreadable::Io(error)),
        };
        entries.push((path, readable));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

/// Why a `*.hcl` entry of a configuration directory cannot be read as a
/// configuration file.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    /// A directory, FIFO, socket or device (described).
    #[error("it is {0}, not a file")]
    NotAFile(&'static str),
    /// A symbolic link whose target cannot be read.
    #[error("it is a symbolic link to nothing readable ({0})")]
    DanglingLink(std::io::Error),
    /// Its metadata cannot be read.
    #[error("{0}")]
    Io(std::io::Error),
}

fn describe_type(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Read and parse every `*.hcl` file of `dir`. Each parsed file's body is
/// returned with its file id; files that fail to parse add diagnostics instead.
pub fn read_directory(
    dir: &Path,
    sources: &mut SourceMap,
    diagnostics: &mut Diagnostics,
) -> Vec<(FileId, RawBody)> {
    let entries = match hcl_entries(dir) {
        Ok(entries) => entries,
        Err(error) => {
            diagnostics.push(
                Diagnostic::error(
                    "unreadable-directory",
                    format!(
                        "cannot read configuration directory {}: {error}",
                        dir.display()
                    ),
                )
                .help("pass the directory that holds your *.hcl files"),
            );
            return Vec::new();
        }
    };
    let mut read = Vec::new();
    for (path, readable) in entries {
        if let Err(why) = readable {
            diagnostics.push(
                Diagnostic::error(
                    "unreadable-file",
                    format!("cannot read {}: {why}", path.display()),
                )
                .help("every *.hcl entry of a configuration directory is read: remove or rename this one"),
            );
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                diagnostics.push(Diagnostic::error(
                    "unreadable-file",
                    format!("cannot read {}: {error}", path.display()),
                ));
                continue;
            }
        };
        read.extend(add_source(&path, bytes, sources, diagnostics));
    }
    parse_added(&read, sources, diagnostics)
}

/// Parse configuration files given in memory as (path, bytes), in the order
/// given, exactly as [`read_directory`] parses the files it reads: the paths
/// only name the files in diagnostics.
pub fn read_sources(
    files: &[(PathBuf, Vec<u8>)],
    sources: &mut SourceMap,
    diagnostics: &mut Diagnostics,
) -> Vec<(FileId, RawBody)> {
    let read: Vec<FileId> = files
        .iter()
        .filter_map(|(path, bytes)| add_source(path, bytes.clone(), sources, diagnostics))
        .collect();
    parse_added(&read, sources, diagnostics)
}

/// Add a file's bytes to the source map; `None` (and a diagnostic pointing at
/// the first byte that is not UTF-8) when they are not UTF-8.
pub fn add_source(
    path: &Path,
    bytes: Vec<u8>,
    sources: &mut SourceMap,
    diagnostics: &mut Diagnostics,
) -> Option<FileId> {
    match String::from_utf8(bytes) {
        Ok(text) => Some(sources.add(path, text)),
        Err(error) => {
            let valid_up_to = error.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(error.as_bytes()).into_owned();
            let file = sources.add(path, lossy);
            diagnostics.push(
                Diagnostic::error("invalid-utf8", "the file is not valid UTF-8")
                    .at(Span::new(file, valid_up_to..valid_up_to + 1))
                    .help("save the file as UTF-8"),
            );
            None
        }
    }
}

/// Parse files already in the source map.
fn parse_added(
    read: &[FileId],
    sources: &SourceMap,
    diagnostics: &mut Diagnostics,
) -> Vec<(FileId, RawBody)> {
    let mut bodies = Vec::new();
    for (file, parsed) in parse_files(read, sources) {
        match parsed {
            Ok(body) => bodies.push((file, body)),
            Err(diagnostic) => diagnostics.push(*diagnostic),
        }
    }
    bodies
}

/// Parse one file already in the source map.
pub fn parse_file(
    file: FileId,
    sources: &SourceMap,
    diagnostics: &mut Diagnostics,
) -> Option<RawBody> {
    match parse_text(file, &sources.file(file).text) {
        Ok(body) => Some(body),
        Err(diagnostic) => {
            diagnostics.push(*diagnostic);
            None
        }
    }
}

/// Parse files on every core: files are independent until they are merged.
fn parse_files(
    files: &[FileId],
    sources: &SourceMap,
) -> Vec<(FileId, Result<RawBody, Box<Diagnostic>>)> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|ids| {
                scope.spawn(move || {
                    ids.iter()
                        .map(|id| (*id, parse_text(*id, &sources.file(*id).text)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn parse_text(file: FileId, text: &str) -> Result<RawBody, Box<Diagnostic>> {
    match hcl::edit::parser::parse_body(text) {
        Ok(body) => Ok(convert_body(file, &body)),
        Err(error) => {
            let location = error.location();
            let start = location.offset().min(text.len());
            let end = (start + 1).min(text.len()).max(start);
            let message = error.message().trim().replace('\n', "; ");
            Err(Box::new(
                Diagnostic::error("syntax", format!("syntax error: {message}"))
                    .at(Span::new(file, start..end))
                    .label("here")
                    .help("fix the HCL syntax at the marked position"),
            ))
        }
    }
}

fn span_of(file: FileId, range: Option<std::ops::Range<usize>>) -> Span {
    Span::new(file, range.unwrap_or(0..0))
}

fn convert_body(file: FileId, body: &structure::Body) -> RawBody {
    let mut raw = RawBody::default();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                let edit_expr = attr.value.clone();
                raw.attrs.push(RawAttr {
                    name: attr.key.as_str().to_string(),
                    name_span: span_of(file, attr.key.span()),
                    span: span_of(file, attr.value.span()),
                    expr: hcl::Expression::from(edit_expr.clone()),
                    edit_expr,
                });
            }
            Structure::Block(block) => {
                let labels = block
                    .labels
                    .iter()
                    .map(|label| {
                        let text = match label {
                            BlockLabel::Ident(ident) => ident.as_str().to_string(),
                            BlockLabel::String(string) => string.as_str().to_string(),
                        };
                        (text, span_of(file, label.span()))
                    })
                    .collect();
                raw.blocks.push(RawBlock {
                    kind: block.ident.as_str().to_string(),
                    kind_span: span_of(file, block.ident.span()),
                    labels,
                    body: convert_body(file, &block.body),
                    span: span_of(file, block.span()),
                });
            }
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_that_are_not_files_are_errors_naming_them_and_a_fifo_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.hcl"), "a = 1\n").unwrap();
        std::fs::create_dir(dir.path().join("dir.hcl")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("missing"), dir.path().join("dangling.hcl"))
            .unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("pipe.hcl"))
            .status()
            .unwrap();
        assert!(status.success());
        let mut sources = SourceMap::default();
        let mut diagnostics = Diagnostics::default();
        // Would block forever on the FIFO if it were opened.
        let bodies = read_directory(dir.path(), &mut sources, &mut diagnostics);
        assert_eq!(bodies.len(), 1, "main.hcl is read");
        let messages: Vec<String> = diagnostics.iter().map(|d| d.message.clone()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        for (name, why) in [
            ("dangling.hcl", "symbolic link"),
            ("dir.hcl", "a directory"),
            ("pipe.hcl", "FIFO"),
        ] {
            assert!(
                messages.iter().any(|m| m.contains(name) && m.contains(why)),
                "{name}: {messages:?}"
            );
        }
    }
}
