//! `POST /lint`: a YAML/JSON stream in, a report out, with the CLI's findings.

use serde::Serialize;

use crate::engine::manifest::{ParseError, parse_stream};
use crate::engine::rules::{BundleContext, Catalog, Linter, Report};

/// The name findings carry as their file, as when the CLI reads stdin.
pub const BODY_FILE_NAME: &str = "-";

/// Report formats `/lint` can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
    Junit,
}

impl LintFormat {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "text" | "txt" => Self::Text,
            "json" => Self::Json,
            "sarif" => Self::Sarif,
            "junit" | "xml" => Self::Junit,
            _ => return None,
        })
    }

    /// The first supported media type of an Accept header; JSON when none matches.
    pub fn from_accept(accept: &str) -> Self {
        for range in accept.split(',') {
            let media = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            let format = match media.as_str() {
                "application/sarif+json" => Self::Sarif,
                "application/json" => Self::Json,
                "application/xml" | "text/xml" | "application/junit+xml" => Self::Junit,
                "text/plain" => Self::Text,
                _ => continue,
            };
            return format;
        }
        Self::Json
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; charset=utf-8",
            Self::Json => "application/json",
            Self::Sarif => "application/sarif+json",
            Self::Junit => "application/xml",
        }
    }
}

/// Why a body cannot be linted.
#[derive(Debug)]
pub enum LintFailure {
    /// Not UTF-8 or not YAML: 422 with where.
    Unparseable(Vec<ParseError>),
    /// The renderer for the format is not available.
    Format(String),
}

/// Lints a request body exactly as `bloodraven lint -` lints stdin.
pub fn lint_body(linter: &Linter, body: &[u8]) -> Result<Report, LintFailure> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let before = &body[..e.valid_up_to()];
        let line = before.split(|b| *b == b'\n').count();
        let column = before.split(|b| *b == b'\n').next_back().map_or(0, <[u8]>::len) + 1;
        LintFailure::Unparseable(vec![ParseError {
            location: crate::engine::manifest::Location {
                file: Some(BODY_FILE_NAME.into()),
                line: u32::try_from(line).unwrap_or(u32::MAX),
                column: u32::try_from(column).unwrap_or(u32::MAX),
            },
            message: "the body is not UTF-8".to_owned(),
        }])
    })?;
    let stream = parse_stream(Some(BODY_FILE_NAME), text);
    if !stream.errors.is_empty() {
        return Err(LintFailure::Unparseable(stream.errors));
    }
    let ctx = BundleContext::new(stream.documents.iter().map(|d| d.value.clone()));
    Ok(linter.lint(&stream.documents, Vec::new(), &ctx))
}

/// Renders a report. The one place that knows the report renderer, so switching to
/// `crate::engine::report::render` is a one-line change.
pub fn render(report: &Report, catalog: &Catalog, format: LintFormat) -> Result<String, LintFailure> {
    let _ = catalog;
    match format {
        LintFormat::Json => serde_json::to_string_pretty(&JsonReport::of(report))
            .map_err(|e| LintFailure::Format(e.to_string())),
        other => Err(LintFailure::Format(format!(
            "format {other:?} is not available in this build; use format=json"
        ))),
    }
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

/// Interim JSON rendering until the shared report renderer lands.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    findings: &'a [crate::engine::rules::Finding],
    summary: &'a crate::engine::rules::Summary,
}

impl<'a> JsonReport<'a> {
    fn of(report: &'a Report) -> Self {
        Self {
            findings: &report.findings,
            summary: &report.summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_picks_the_first_known_type() {
        assert_eq!(LintFormat::from_accept("application/sarif+json"), LintFormat::Sarif);
        assert_eq!(LintFormat::from_accept("text/html, text/plain;q=0.9"), LintFormat::Text);
        assert_eq!(LintFormat::from_accept("*/*"), LintFormat::Json);
        assert_eq!(LintFormat::from_accept("application/xml"), LintFormat::Junit);
    }
}
