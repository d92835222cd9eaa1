//! Schema checks on the raw block tree: unknown names (with suggestions),
//! missing required attributes, label counts, duplicates.
//!
//! Runs before evaluation so that a misspelt attribute is reported even when
//! its value would fail to evaluate. Does not look at values.

use std::collections::HashMap;

use super::raw::{RawBlock, RawBody};
use super::schema::{BlockSpec, Schema};
use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics, SourceMap, Span};
use crate::encode::text::excerpt;

/// Check `body` (the contents of a block whose path is `path`) against `schema`.
pub fn check_body(
    body: &RawBody,
    schema: &Schema,
    path: &str,
    sources: &SourceMap,
    diagnostics: &mut Diagnostics,
) {
    let mut seen_attrs: HashMap<&str, &super::raw::RawAttr> = HashMap::new();
    for attr in &body.attrs {
        if let Some(first) = seen_attrs.insert(attr.name.as_str(), attr) {
            diagnostics.push(
                Diagnostic::error(
                    "duplicate-attribute",
                    format!("attribute \"{}\" is set twice in {path}", attr.name),
                )
                .at(attr.name_span)
                .label("set again here")
                .help(format!(
                    "first set at {}; remove one of the two",
                    location(sources, first.name_span)
                )),
            );
            continue;
        }
        if schema.open || schema.attr(&attr.name).is_some() {
            continue;
        }
        let mut diagnostic = Diagnostic::error(
            "unknown-attribute",
            format!("unknown attribute {} in {path}", excerpt(&attr.name)),
        )
        .at(attr.name_span);
        if schema.block(&attr.name).is_some() {
            diagnostic = diagnostic.help(format!(
                "\"{0}\" is a block: write {0} {{ ... }}",
                attr.name
            ));
        } else if let Some(suggestion) =
            did_you_mean(&attr.name, schema.attrs.iter().map(|a| a.name))
        {
            diagnostic = diagnostic
                .label(format!("did you mean \"{suggestion}\"?"))
                .help(format!(
                    "did you mean \"{suggestion}\"? Valid attributes: {}",
                    attr_names(schema)
                ));
        } else {
            diagnostic = diagnostic.help(valid_names_help(schema));
        }
        diagnostics.push(diagnostic);
    }

    let mut seen_blocks: HashMap<(String, String), &RawBlock> = HashMap::new();
    for block in &body.blocks {
        let Some(spec) = schema.block(&block.kind) else {
            let mut diagnostic = Diagnostic::error(
                "unknown-block",
                format!("unknown block {} in {path}", excerpt(&block.kind)),
            )
            .at(block.kind_span);
            if schema.attr(&block.kind).is_some() {
                diagnostic = diagnostic.help(format!(
                    "\"{0}\" is an attribute: write {0} = ...",
                    block.kind
                ));
            } else if let Some(suggestion) =
                did_you_mean(&block.kind, schema.blocks.iter().map(|b| b.name))
            {
                diagnostic = diagnostic
                    .label(format!("did you mean \"{suggestion}\"?"))
                    .help(format!("did you mean \"{suggestion}\"?"));
            } else {
                diagnostic = diagnostic.help(valid_names_help(schema));
            }
            diagnostics.push(diagnostic);
            continue;
        };
        if block.labels.len() != spec.labels.len() {
            diagnostics.push(label_count_error(block, spec));
            continue;
        }
        let key = (block.kind.clone(), block.label().to_string());
        if let Some(first) = seen_blocks.insert(key, block) {
            let first_at = location(sources, first.header_span());
            if spec.repeatable && !spec.labels.is_empty() {
                diagnostics.push(
                    Diagnostic::error(
                        "duplicate-name",
                        format!("{} \"{}\" is defined twice", block.kind, block.label()),
                    )
                    .at(block.header_span())
                    .label("second definition")
                    .help(format!("first defined at {first_at}; names must be unique: rename or remove one of them")),
                );
            } else if !spec.repeatable {
                diagnostics.push(
                    Diagnostic::error(
                        "duplicate-block",
                        format!("only one \"{}\" block is allowed in {path}", block.kind),
                    )
                    .at(block.header_span())
                    .help("merge the two blocks into one"),
                );
            }
            continue;
        }
        let child_path = if block.labels.is_empty() {
            format!("{path}.{}", block.kind)
        } else {
            format!("{}.{}", block.kind, block.label())
        };
        check_body(&block.body, spec.schema, &child_path, sources, diagnostics);
        for required in spec.schema.attrs.iter().filter(|a| a.required) {
            let misspelt = block.body.attrs.iter().any(|a| {
                spec.schema.attr(&a.name).is_none()
                    && did_you_mean(&a.name, [required.name]).is_some()
            });
            if block.body.attr(required.name).is_none() && !misspelt {
                diagnostics.push(
                    Diagnostic::error(
                        "missing-attribute",
                        format!(
                            "{child_path} is missing the required attribute \"{}\"",
                            required.name
                        ),
                    )
                    .at(block.header_span())
                    .help(format!(
                        "add {} = <{}>",
                        required.name,
                        required.ty.describe()
                    )),
                );
            }
        }
    }
}

fn label_count_error(block: &RawBlock, spec: &BlockSpec) -> Diagnostic {
    let expected = if spec.labels.is_empty() {
        format!("{} {{ ... }}", spec.name)
    } else {
        format!(
            "{} {} {{ ... }}",
            spec.name,
            spec.labels
                .iter()
                .map(|l| format!("\"{l}\""))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    Diagnostic::error(
        "block-labels",
        format!(
            "block \"{}\" takes {} label{}, found {}",
            block.kind,
            spec.labels.len(),
            if spec.labels.len() == 1 { "" } else { "s" },
            block.labels.len()
        ),
    )
    .at(block.header_span())
    .help(format!("write it as {expected}"))
}

fn attr_names(schema: &Schema) -> String {
    schema
        .attrs
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn valid_names_help(schema: &Schema) -> String {
    let blocks: Vec<&str> = schema.blocks.iter().map(|b| b.name).collect();
    match (schema.attrs.is_empty(), blocks.is_empty()) {
        (false, false) => format!(
            "valid attributes: {}; valid blocks: {}",
            attr_names(schema),
            blocks.join(", ")
        ),
        (false, true) => format!("valid attributes: {}", attr_names(schema)),
        (true, false) => format!("valid blocks: {}", blocks.join(", ")),
        (true, true) => "this block takes no attributes or blocks".to_string(),
    }
}

/// `file:line:column` of a span, for "first defined at" hints.
pub fn location(sources: &SourceMap, span: Span) -> String {
    let (line, column) = sources.line_column(span.file, span.start);
    format!("{}:{line}:{column}", sources.file(span.file).display)
}
