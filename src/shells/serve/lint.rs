//! `POST /lint`: a YAML/JSON stream in, a report out, with the CLI's findings.

use serde::Serialize;

use crate::engine::manifest::{ParseError, parse_stream};
use crate::engine::report::{self, Format, RenderOptions};
use crate::engine::rules::{BundleContext, Catalog, Linter, Report};

/// The name findings carry as their file, as when the CLI reads stdin.
pub const BODY_FILE_NAME: &str = "-";

/// Why a body cannot be linted: not UTF-8 or not YAML (422, with where).
#[derive(Debug)]
pub struct Unparseable(pub Vec<ParseError>);

/// Lints a request body exactly as `bloodraven lint -` lints stdin.
pub fn lint_body(linter: &Linter, body: &[u8]) -> Result<Report, Unparseable> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let before = &body[..e.valid_up_to()];
        let line = before.split(|b| *b == b'\n').count();
        let column = before
            .split(|b| *b == b'\n')
            .next_back()
            .map_or(0, <[u8]>::len)
            + 1;
        Unparseable(vec![ParseError {
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
        return Err(Unparseable(stream.errors));
    }
    let ctx = BundleContext::new(stream.documents.iter().map(|d| d.value.clone()));
    Ok(linter.lint(&stream.documents, Vec::new(), &ctx))
}

/// Renders a report exactly as `bloodraven lint --format F` prints it.
pub fn render(report: &Report, catalog: &Catalog, format: Format) -> String {
    report::render(report, catalog, format, &RenderOptions::default())
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
