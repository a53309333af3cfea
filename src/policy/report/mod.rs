//! Rendering lint reports: text, JSON, SARIF 2.1.0 and `JUnit`.
//!
//! Pure: every renderer takes a [`Report`] and writes to the writer it is given, in chunks,
//! so the CLI streams a report of any size to stdout; the HTTP endpoint renders into memory
//! and picks the format from the `Accept` header. The same catalog
//! metadata (titles, remediation, docs anchors) feeds every format, so a rule looks the same
//! in a terminal, in GitHub code scanning and in a CI test report.

mod json;
mod junit;
mod sanitize;
mod sarif;
mod sink;
mod text;

use std::fmt;
use std::io;
use std::str::FromStr;

use crate::error::{Categorized, Category};
use crate::policy::rules::{Catalog, Report};

pub use json::SCHEMA_VERSION;

/// The tool's name in every machine-readable format.
pub const TOOL_NAME: &str = "bloodraven";
/// Where the project lives; SARIF's `tool.driver.informationUri`.
pub const INFORMATION_URI: &str = "https://github.com/shipstream/bloodraven";
/// Where `docs/rules.md` is published; rule anchors are appended as `#br-tls-001`.
pub const DEFAULT_DOCS_BASE_URL: &str =
    "https://github.com/shipstream/bloodraven/blob/main/docs/rules.md";

/// An output format of `bloodraven lint` and `POST /lint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Grouped, human-readable; coloured only when asked.
    Text,
    /// The versioned `bloodraven.lint/v1` document (`docs/lint-report.schema.json`).
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// `JUnit` XML, for CI test reports.
    Junit,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Text, Format::Json, Format::Sarif, Format::Junit];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
            Self::Sarif => "sarif",
            Self::Junit => "junit",
        }
    }

    /// The `Content-Type` to answer with.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; charset=utf-8",
            Self::Json => "application/json",
            Self::Sarif => "application/sarif+json",
            Self::Junit => "application/xml",
        }
    }

    /// Picks a format from an HTTP `Accept` header value.
    ///
    /// Media ranges are tried in order of their `q` weight (ties keep header order);
    /// `q=0` excludes a range. Wildcards (`*/*`, `application/*`) mean `default`, and an
    /// empty header means `default`. Returns `None` when nothing we produce is acceptable,
    /// which the endpoint answers with 406.
    pub fn from_accept(accept: &str, default: Format) -> Option<Format> {
        if accept.trim().is_empty() {
            return Some(default);
        }
        let mut ranges: Vec<(f32, Option<Format>)> = accept
            .split(',')
            .filter_map(|range| parse_media_range(range, default))
            .collect();
        // Stable sort: equal weights keep the client's order.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .into_iter()
            .filter(|(q, _)| *q > 0.0)
            .find_map(|(_, format)| format)
    }

    fn for_media_type(media_type: &str, default: Format) -> Option<Format> {
        Some(match media_type {
            "*/*" => default,
            "application/*" if default != Format::Text => default,
            "application/*" | "application/json" => Format::Json,
            "application/sarif+json" | "application/sarif" => Format::Sarif,
            "application/xml" | "text/xml" | "application/junit+xml" => Format::Junit,
            "text/*" | "text/plain" => Format::Text,
            _ => return None,
        })
    }
}

/// `(q, format)` of one media range such as `application/json;q=0.5`.
fn parse_media_range(range: &str, default: Format) -> Option<(f32, Option<Format>)> {
    let mut parts = range.split(';');
    let media_type = parts.next()?.trim().to_ascii_lowercase();
    if media_type.is_empty() {
        return None;
    }
    let mut q = 1.0_f32;
    for param in parts {
        if let Some((name, value)) = param.split_once('=')
            && name.trim().eq_ignore_ascii_case("q")
        {
            // A malformed weight makes the range unusable rather than preferred.
            q = value
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))?;
        }
    }
    Some((q, Format::for_media_type(&media_type, default)))
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name we do not produce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown output format {0:?} (expected text, json, sarif or junit)")]
pub struct UnknownFormat(pub String);

impl Categorized for UnknownFormat {
    fn category(&self) -> Category {
        Category::InvalidInput
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// What the renderers need besides the report and the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// ANSI colour in the text format; the CLI sets it only when stdout is a terminal.
    pub color: bool,
    /// Absolute URL of the rules page; each rule links to `{docs_base_url}#{anchor}`.
    pub docs_base_url: String,
    /// The version reported as the tool's version.
    pub tool_version: String,
    /// Set when the caller left findings out of the report to bound its size; every format
    /// says so (JSON: `truncated`; SARIF: a tool notification and a run property; text
    /// and JUnit: a final line).
    pub truncation: Option<Truncation>,
}

/// Findings a report leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Truncation {
    /// Findings the report lists.
    pub findings_shown: usize,
    /// Findings found but not listed (the summary counts them).
    pub findings_omitted: usize,
    /// Which limit was reached, e.g. "at most 10000 findings per response".
    pub reason: String,
}

impl Truncation {
    /// One line for humans.
    pub fn describe(&self) -> String {
        format!(
            "report truncated: {} of {} findings shown ({})",
            self.findings_shown,
            self.findings_shown + self.findings_omitted,
            self.reason
        )
    }
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            color: false,
            docs_base_url: DEFAULT_DOCS_BASE_URL.to_owned(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            truncation: None,
        }
    }
}

impl RenderOptions {
    /// The documentation link of the rule with `anchor`.
    fn help_uri(&self, anchor: &str) -> String {
        format!("{}#{anchor}", self.docs_base_url.trim_end_matches('#'))
    }
}

/// Writes `report` in `format` to `writer`, as it is rendered. Fails only when the writer
/// does: every report has a rendering.
pub fn render_to(
    report: &Report,
    catalog: &Catalog,
    format: Format,
    opts: &RenderOptions,
    writer: &mut dyn io::Write,
) -> io::Result<()> {
    match format {
        Format::Text => text::write(report, opts, writer)?,
        Format::Json => json::write(report, catalog, opts, writer)?,
        Format::Sarif => sarif::write(report, catalog, opts, writer)?,
        Format::Junit => junit::write(report, writer)?,
    }
    // JSON and SARIF carry the truncation inside the document; the line formats end with it.
    match (&opts.truncation, format) {
        (Some(t), Format::Text) => writeln!(writer, "{}", t.describe())?,
        (Some(t), Format::Junit) => {
            writeln!(writer, "<!-- {} -->", t.describe().replace("--", "- -"))?;
        }
        _ => {}
    }
    writer.flush()
}

/// `report` in `format`, in memory.
pub fn render(report: &Report, catalog: &Catalog, format: Format, opts: &RenderOptions) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every renderer writes UTF-8.
    let _ = render_to(report, catalog, format, opts, &mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// How a finding's or parse error's file is named for humans: `-` is standard input.
fn display_file(file: &str) -> &str {
    if file == "-" { "<stdin>" } else { file }
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_format_names_case_insensitively() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
            assert_eq!(f.as_str().to_uppercase().parse::<Format>(), Ok(f));
        }
        let err = "yaml".parse::<Format>();
        assert_eq!(err, Err(UnknownFormat("yaml".into())));
        if let Err(e) = err {
            assert!(e.to_string().contains("\"yaml\""), "{e}");
            assert_eq!(e.category(), Category::InvalidInput);
        }
    }

    #[test]
    fn picks_format_from_accept_header() {
        let d = Format::Json;
        assert_eq!(
            Format::from_accept("application/sarif+json", d),
            Some(Format::Sarif)
        );
        assert_eq!(
            Format::from_accept("application/json", Format::Text),
            Some(Format::Json)
        );
        assert_eq!(
            Format::from_accept("application/xml", d),
            Some(Format::Junit)
        );
        assert_eq!(Format::from_accept("text/xml", d), Some(Format::Junit));
        assert_eq!(
            Format::from_accept("text/plain; charset=utf-8", d),
            Some(Format::Text)
        );
        assert_eq!(
            Format::from_accept("*/*", Format::Sarif),
            Some(Format::Sarif)
        );
        assert_eq!(Format::from_accept("", Format::Text), Some(Format::Text));
        assert_eq!(Format::from_accept("image/png", d), None);
        assert_eq!(
            Format::from_accept("APPLICATION/SARIF+JSON", d),
            Some(Format::Sarif)
        );
    }

    #[test]
    fn accept_header_honours_weights_and_exclusions() {
        let d = Format::Json;
        assert_eq!(
            Format::from_accept("application/json;q=0.5, application/sarif+json", d),
            Some(Format::Sarif)
        );
        assert_eq!(
            Format::from_accept("text/plain;q=0.9, application/xml;q=0.1", d),
            Some(Format::Text)
        );
        // Equal weights keep the client's order; unknown types are passed over.
        assert_eq!(
            Format::from_accept("image/png, text/xml, application/json", d),
            Some(Format::Junit)
        );
        assert_eq!(Format::from_accept("application/json;q=0", d), None);
        assert_eq!(Format::from_accept("application/json;q=abc", d), None);
        assert_eq!(Format::from_accept("text/*", d), Some(Format::Text));
        assert_eq!(
            Format::from_accept("application/*", Format::Sarif),
            Some(Format::Sarif)
        );
        assert_eq!(
            Format::from_accept("application/*", Format::Text),
            Some(Format::Json)
        );
    }

    #[test]
    fn media_types_round_trip_through_accept() {
        for f in Format::ALL {
            assert_eq!(Format::from_accept(f.media_type(), Format::Text), Some(f));
        }
    }

    #[test]
    fn help_uri_joins_base_and_anchor() {
        let opts = RenderOptions {
            docs_base_url: "https://example.test/rules#".into(),
            ..RenderOptions::default()
        };
        assert_eq!(
            opts.help_uri("br-tls-001"),
            "https://example.test/rules#br-tls-001"
        );
    }
}
