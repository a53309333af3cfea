//! The human format: parse errors first (they make the run exit 2), then findings grouped
//! by file and object, then one summary line.
//!
//! ```text
//! bad.yaml:3:7: error: did not find expected key
//! deploy/prod.yaml
//!   MysqlFailoverGroup prod/db
//!     deploy/prod.yaml:12  REQUIRED  BR-TLS-001  TLS is not configured  (at /spec/tls)
//!       remediation: Set spec.tls.issuerRef.
//!     deploy/prod.yaml:30  SUPPRESSED  BR-OBS-001  No PodMonitor  (at /spec)
//!       suppressed recommended finding, by annotation: scraped by the platform agent
//! Summary: 1 finding (1 required), 1 suppressed; 1 object checked, 0 skipped; 1 parse error.
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;

use super::sanitize::one_line;
use super::sink::Sink;
use super::{RenderOptions, display_file};
use crate::policy::rules::{Finding, Level, ObjectRef, Report, Summary, SuppressionSource};

/// ANSI styles, applied only when colour is on.
#[derive(Clone, Copy)]
enum Style {
    Bold,
    Red,
    Yellow,
    Cyan,
    Dim,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Self::Bold => "\x1b[1m",
            Self::Red => "\x1b[1;31m",
            Self::Yellow => "\x1b[33m",
            Self::Cyan => "\x1b[36m",
            Self::Dim => "\x1b[2m",
        }
    }

    fn of(level: Level) -> Self {
        match level {
            Level::Required => Self::Red,
            Level::EnvironmentSpecific => Self::Yellow,
            Level::Recommended => Self::Cyan,
        }
    }
}

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, out: &mut Sink<'_>, style: Style, text: &str) {
        if self.color {
            let _ = write!(out, "{}{text}\x1b[0m", style.code());
        } else {
            out.push_str(text);
        }
    }
}

/// Findings of one object, in report order.
struct ObjectGroup<'r> {
    object: &'r ObjectRef,
    findings: Vec<&'r Finding>,
}

/// Findings of one file (or of no file, for in-memory input), in report order.
struct FileGroup<'r> {
    file: Option<&'r str>,
    objects: Vec<ObjectGroup<'r>>,
}

pub fn write(report: &Report, opts: &RenderOptions, writer: &mut dyn io::Write) -> io::Result<()> {
    let painter = Painter { color: opts.color };
    let mut sink = Sink::new(writer);
    let out = &mut sink;
    for e in &report.parse_errors {
        let file = e.location.file.as_deref().map_or("<input>", display_file);
        let location = format!("{file}:{}:{}", e.location.line, e.location.column);
        painter.paint(out, Style::Bold, &location);
        out.push_str(": ");
        painter.paint(out, Style::Red, "error");
        let _ = writeln!(out, ": {}", one_line(&e.message));
    }
    for group in group_by_file(&report.findings) {
        let header = group.file.map_or("<input>", display_file);
        painter.paint(out, Style::Bold, &one_line(header));
        out.push('\n');
        for object in &group.objects {
            let _ = writeln!(out, "  {}", one_line(&object.object.display_name()));
            for finding in &object.findings {
                finding_lines(out, &painter, finding);
            }
        }
    }
    summary_line(out, &painter, &report.summary);
    sink.finish()
}

fn group_by_file(findings: &[Finding]) -> Vec<FileGroup<'_>> {
    let mut files: Vec<FileGroup<'_>> = Vec::new();
    let mut file_index: HashMap<Option<&str>, usize> = HashMap::new();
    let mut object_index: HashMap<(Option<&str>, &ObjectRef), usize> = HashMap::new();
    for f in findings {
        let file = f.file.as_deref();
        let fi = *file_index.entry(file).or_insert_with(|| {
            files.push(FileGroup {
                file,
                objects: Vec::new(),
            });
            files.len() - 1
        });
        let objects = &mut files[fi].objects;
        let oi = *object_index.entry((file, &f.object)).or_insert_with(|| {
            objects.push(ObjectGroup {
                object: &f.object,
                findings: Vec::new(),
            });
            objects.len() - 1
        });
        objects[oi].findings.push(f);
    }
    files
}

fn finding_lines(out: &mut Sink<'_>, painter: &Painter, f: &Finding) {
    let location = match (f.file.as_deref(), f.line) {
        (Some(file), Some(line)) => format!("{}:{line}", display_file(file)),
        (Some(file), None) => display_file(file).to_owned(),
        (None, _) => "<input>".to_owned(),
    };
    out.push_str("    ");
    out.push_str(&one_line(&location));
    out.push_str("  ");
    if f.is_active() {
        painter.paint(
            out,
            Style::of(f.level),
            &f.level.as_str().to_ascii_uppercase(),
        );
    } else {
        painter.paint(out, Style::Dim, "SUPPRESSED");
    }
    let _ = write!(out, "  {}  {}", one_line(&f.rule_id), one_line(&f.message));
    if !f.path.is_empty() {
        let _ = write!(out, "  (at {})", one_line(&f.path));
    }
    out.push('\n');
    match &f.suppressed {
        None => {
            let _ = writeln!(out, "      remediation: {}", one_line(&f.remediation));
        }
        Some(s) => {
            let by = match s.source {
                SuppressionSource::Annotation => "by annotation",
                SuppressionSource::Config => "by the lint config",
            };
            let line = format!(
                "      suppressed {} finding, {by}: {}",
                f.level,
                one_line(&s.reason)
            );
            painter.paint(out, Style::Dim, &line);
            out.push('\n');
        }
    }
}

fn summary_line(out: &mut Sink<'_>, painter: &Painter, s: &Summary) {
    let active: usize = s.findings.values().sum();
    painter.paint(out, Style::Bold, "Summary:");
    if active == 0 {
        out.push_str(" no findings");
    } else {
        let by_level: Vec<String> = Level::ALL
            .iter()
            .filter_map(|l| {
                s.findings
                    .get(l)
                    .filter(|n| **n > 0)
                    .map(|n| format!("{n} {l}"))
            })
            .collect();
        let _ = write!(
            out,
            " {} ({})",
            plural(active, "finding"),
            by_level.join(", ")
        );
    }
    if s.suppressed > 0 {
        let _ = write!(out, ", {} suppressed", s.suppressed);
    }
    let _ = write!(
        out,
        "; {} checked, {} skipped",
        plural(s.objects_checked, "object"),
        s.objects_skipped
    );
    if !s.skipped_kinds.is_empty() {
        let kinds: Vec<String> = s
            .skipped_kinds
            .iter()
            .map(|(kind, n)| format!("{}: {n}", one_line(kind)))
            .collect();
        let _ = write!(out, " ({})", kinds.join(", "));
    }
    let _ = writeln!(out, "; {}.", plural(s.parse_errors, "parse error"));
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::report::fixtures;

    fn render(report: &Report, opts: &RenderOptions) -> String {
        crate::policy::report::render(
            report,
            &fixtures::catalog(),
            crate::policy::report::Format::Text,
            opts,
        )
    }

    fn plain(report: &Report) -> String {
        render(report, &RenderOptions::default())
    }

    #[test]
    fn groups_by_file_then_object_with_remediation() {
        let out = plain(&fixtures::report());
        let prod = out.find("deploy/prod.yaml\n");
        let object = out.find("\n  MysqlFailoverGroup prod/db\n");
        let finding = out.find(
            "    deploy/prod.yaml:12  REQUIRED  BR-TEST-001  TLS is not configured  (at /spec/tls)\n",
        );
        assert!(
            matches!((prod, object, finding), (Some(p), Some(o), Some(f)) if p < o && o < f),
            "file header, object header, finding line in order: {out}"
        );
        assert!(
            out.contains("      remediation: Set spec.tls.issuerRef to a cert-manager issuer.\n"),
            "{out}"
        );
        // The second finding of the same object is listed under the same header.
        assert_eq!(
            out.matches("MysqlFailoverGroup prod/db\n").count(),
            1,
            "{out}"
        );
        // In-memory findings (admission) have their own group.
        assert!(
            out.contains("<input>\n  MysqlFailoverGroup <unnamed>\n    <input>  RECOMMENDED"),
            "{out}"
        );
        assert!(
            out.contains("<stdin>\n"),
            "stdin is named for humans: {out}"
        );
    }

    #[test]
    fn shows_suppressed_findings_with_reason() {
        let out = plain(&fixtures::report());
        assert!(out.contains("  SUPPRESSED  BR-TEST-002  "), "{out}");
        assert!(
            out.contains(
                "suppressed recommended finding, by annotation: scraped by the platform agent"
            ),
            "{out}"
        );
        assert!(
            out.contains("suppressed required finding, by the lint config: dev namespace"),
            "{out}"
        );
    }

    #[test]
    fn prints_parse_errors_with_location() {
        let out = plain(&fixtures::report());
        assert!(
            out.starts_with("broken.yaml:3:7: error: did not find expected key <&>\"'\n"),
            "{out}"
        );
        assert!(out.contains("<stdin>:1:1: error: "), "{out}");
    }

    #[test]
    fn summary_counts_levels_suppressions_and_skips() {
        let out = plain(&fixtures::report());
        let last = out.lines().last().unwrap_or_default();
        assert_eq!(
            last,
            "Summary: 4 findings (2 required, 1 environment-specific, 1 recommended), 2 suppressed; \
             4 objects checked, 2 skipped (ConfigMap: 1, Service: 1); 2 parse errors."
        );
    }

    #[test]
    fn empty_report_is_one_clean_summary_line() {
        let out = plain(&Report::default());
        assert_eq!(
            out,
            "Summary: no findings; 0 objects checked, 0 skipped; 0 parse errors.\n"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let report = fixtures::report();
        let plain = plain(&report);
        assert!(
            !plain.contains('\x1b'),
            "no escape bytes without colour: {plain:?}"
        );
        let coloured = render(
            &report,
            &RenderOptions {
                color: true,
                ..RenderOptions::default()
            },
        );
        assert!(
            coloured.contains("\x1b[1;31mREQUIRED\x1b[0m"),
            "{coloured:?}"
        );
        // Stripping the styles gives back the plain rendering.
        let stripped = coloured
            .replace("\x1b[0m", "")
            .replace("\x1b[1;31m", "")
            .replace("\x1b[1m", "")
            .replace("\x1b[33m", "")
            .replace("\x1b[36m", "")
            .replace("\x1b[2m", "");
        assert_eq!(stripped, plain);
    }

    #[test]
    fn values_cannot_forge_lines_or_drive_the_terminal() {
        let mut report = fixtures::report();
        report.findings[0].message = "bad\nREQUIRED  BR-FAKE\u{1b}[2J".into();
        let out = plain(&report);
        assert!(out.contains("bad\\nREQUIRED  BR-FAKE\\u{1b}[2J"), "{out}");
        assert!(!out.contains('\x1b'));
    }
}
