//! `POST /lint`: a YAML/JSON stream in, a report out, with the CLI's findings.
//!
//! The work per request is bounded: documents and sites per group are refused beyond their
//! limits (413/422, naming the limit), findings beyond theirs are counted but not listed
//! (the report says it is truncated), and the caller's [`Cancel`] is checked between
//! documents, so a request that timed out or whose client left stops using its thread.
//! Documents are parsed, checked and dropped one at a time, as the CLI does, so memory
//! follows the context objects and the findings kept, not the size of the body.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::stream::Cancel;
use crate::policy::manifest::{Document, ParseError, parse_each};
use crate::policy::report::Truncation;
use crate::policy::rules::{BundleContext, Level, Linter, Report};

/// The name findings carry as their file, as when the CLI reads stdin.
pub const BODY_FILE_NAME: &str = "-";

/// The per-request limits of `/lint` (see `bloodraven serve --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LintLimits {
    /// More documents in one body: 413.
    pub max_documents: usize,
    /// A `MysqlFailoverGroup` with more sites: 422.
    pub max_sites_per_group: usize,
    /// Findings listed in one response; the rest are counted and the report is truncated.
    pub max_findings: usize,
    /// Bytes of one response; findings are left out until the report fits.
    pub max_output_bytes: usize,
}

impl Default for LintLimits {
    fn default() -> Self {
        Self {
            max_documents: 5_000,
            // Real groups have two to five sites; rules run per site, so a group with
            // thousands of them costs seconds.
            max_sites_per_group: 64,
            max_findings: 10_000,
            max_output_bytes: 32 * 1024 * 1024,
        }
    }
}

/// Why a body is not linted.
#[derive(Debug)]
pub enum Refusal {
    /// Not UTF-8 or not YAML (422, with where).
    Unparseable(Vec<ParseError>),
    /// More documents than [`LintLimits::max_documents`] (413).
    TooManyDocuments { limit: usize },
    /// A group with more sites than [`LintLimits::max_sites_per_group`] (422).
    TooManySites {
        object: String,
        sites: usize,
        limit: usize,
    },
    /// The request timed out or its client went away; nobody reads the answer.
    Cancelled,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unparseable(errors) => write!(f, "{} parse errors", errors.len()),
            Self::TooManyDocuments { limit } => write!(
                f,
                "the body has more than {limit} documents (serve --lint-max-documents); split it into several requests"
            ),
            Self::TooManySites {
                object,
                sites,
                limit,
            } => write!(
                f,
                "{object} has {sites} sites, more than {limit} (serve --lint-max-sites-per-group)"
            ),
            Self::Cancelled => f.write_str("the request was cancelled"),
        }
    }
}

/// A report and, when findings were left out, by how much.
#[derive(Debug)]
pub struct Linted {
    pub report: Report,
    pub truncation: Option<Truncation>,
}

/// Lints a request body as `bloodraven lint -` lints stdin, within `limits`.
pub fn lint_body(
    linter: &Linter,
    body: &[u8],
    limits: &LintLimits,
    cancel: &Cancel,
) -> Result<Linted, Refusal> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let (line, column) = crate::policy::manifest::utf8_error_location(body, e.valid_up_to());
        Refusal::Unparseable(vec![ParseError {
            location: crate::policy::manifest::Location {
                file: Some(BODY_FILE_NAME.into()),
                line,
                column,
            },
            message: "the body is not UTF-8".to_owned(),
        }])
    })?;
    let ctx = BundleContext::from_texts([text]);
    let mut run = Run {
        linter,
        ctx: &ctx,
        limits,
        cancel,
        report: Report::default(),
        omitted: BTreeMap::new(),
        omitted_suppressed: 0,
        refusal: None,
    };
    let mut errors = Vec::new();
    let mut padded = String::new();
    for (lines_before, piece) in pieces(text) {
        if cancel.is_cancelled() {
            return Err(Refusal::Cancelled);
        }
        // Leading newlines keep line numbers those of the whole body.
        let piece = if lines_before == 0 {
            piece
        } else {
            padded.clear();
            padded.extend(std::iter::repeat_n('\n', lines_before));
            padded.push_str(piece);
            &padded
        };
        errors.extend(parse_each(Some(BODY_FILE_NAME), piece, &mut |doc| {
            run.check(&doc);
        }));
    }
    if !errors.is_empty() {
        return Err(Refusal::Unparseable(errors));
    }
    if let Some(refusal) = run.refusal {
        return Err(refusal);
    }
    let shown = run.report.findings.len();
    let mut report = Linter::finish(run.report, Vec::new());
    let mut omitted_total = run.omitted_suppressed;
    for (level, n) in run.omitted {
        *report.summary.findings.entry(level).or_default() += n;
        omitted_total += n;
    }
    report.summary.suppressed += run.omitted_suppressed;
    let truncation = (omitted_total > 0).then(|| Truncation {
        findings_shown: shown,
        findings_omitted: omitted_total,
        reason: format!(
            "at most {} findings per response (serve --lint-max-findings)",
            limits.max_findings
        ),
    });
    Ok(Linted { report, truncation })
}

/// One body's lint run in progress.
struct Run<'a> {
    linter: &'a Linter,
    ctx: &'a BundleContext,
    limits: &'a LintLimits,
    cancel: &'a Cancel,
    report: Report,
    /// Active findings found beyond the cap, by level.
    omitted: BTreeMap<Level, usize>,
    omitted_suppressed: usize,
    refusal: Option<Refusal>,
}

impl Run<'_> {
    fn check(&mut self, doc: &Document) {
        // The parser still reads to the end (the body is bounded), but nothing is checked.
        if self.refusal.is_some() {
            return;
        }
        if self.cancel.is_cancelled() {
            self.refusal = Some(Refusal::Cancelled);
            return;
        }
        if self.report.summary.documents >= self.limits.max_documents {
            self.refusal = Some(Refusal::TooManyDocuments {
                limit: self.limits.max_documents,
            });
            return;
        }
        if let Some(refusal) = too_many_sites(&doc.value, self.limits.max_sites_per_group) {
            self.refusal = Some(refusal);
            return;
        }
        self.linter.add(&mut self.report, doc, self.ctx);
        if self.report.findings.len() > self.limits.max_findings {
            for f in self.report.findings.drain(self.limits.max_findings..) {
                if f.is_active() {
                    *self.omitted.entry(f.level).or_default() += 1;
                } else {
                    self.omitted_suppressed += 1;
                }
            }
        }
    }
}

/// Bytes of body parsed between two checks of the cancellation.
const PIECE_BYTES: usize = 128 * 1024;

/// The body cut at document markers (`---` at the start of a line, which YAML does not
/// allow inside a scalar) into pieces of about [`PIECE_BYTES`], each with the number of
/// lines before it, so parsing can stop between pieces when the request is cancelled.
fn pieces(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut lines_before = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut offset = 0;
        for (lines, line) in rest.split_inclusive('\n').enumerate() {
            let marker =
                line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
            if offset >= PIECE_BYTES && marker {
                let (piece, tail) = rest.split_at(offset);
                rest = tail;
                let start = lines_before;
                lines_before += lines;
                return Some((start, piece));
            }
            offset += line.len();
        }
        Some((lines_before, std::mem::take(&mut rest)))
    })
}

fn too_many_sites(object: &Value, limit: usize) -> Option<Refusal> {
    if object.get("kind").and_then(Value::as_str) != Some("MysqlFailoverGroup") {
        return None;
    }
    let sites = object
        .pointer("/spec/sites")
        .and_then(Value::as_array)?
        .len();
    (sites > limit).then(|| Refusal::TooManySites {
        object: format!(
            "MysqlFailoverGroup {}",
            object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("<unnamed>")
        ),
        sites,
        limit,
    })
}

/// The JSON body of unparseable input.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParseErrorBody {
    pub error: &'static str,
    pub errors: Vec<ParseErrorItem>,
}

#[derive(Debug, Serialize)]
pub struct ParseErrorItem {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl ParseErrorBody {
    pub fn of(errors: &[ParseError]) -> Self {
        Self {
            error: "the body is not valid YAML or JSON",
            errors: errors
                .iter()
                .map(|e| ParseErrorItem {
                    line: e.location.line,
                    column: e.location.column,
                    message: e.message.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cut_at_markers_and_count_lines() {
        let doc = format!("kind: A\ndata: {}\n", "x".repeat(PIECE_BYTES));
        let text = format!("{doc}---\n{doc}--- # c\n{doc}----\n");
        let cut: Vec<(usize, &str)> = pieces(&text).collect();
        assert_eq!(
            cut.len(),
            3,
            "a marker followed by text is not a marker: {cut:?}"
        );
        assert_eq!(cut[0], (0, doc.as_str()));
        assert_eq!(cut[1].0, 2);
        assert!(cut[1].1.starts_with("---\n"));
        assert_eq!(cut[2].0, 5);
        assert!(cut[2].1.starts_with("--- # c\n") && cut[2].1.ends_with("----\n"));
        assert_eq!(cut.iter().map(|(_, p)| p.len()).sum::<usize>(), text.len());
    }
}
