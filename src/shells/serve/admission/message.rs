//! The text admission answers carry: warnings kubectl prints and the denial message.

use crate::policy::rules::Finding;

/// kubectl and the API server handle warnings up to this length without truncating.
pub const MAX_WARNING_CHARS: usize = 120;
/// More warnings than this are summarised in one last line.
pub const MAX_WARNINGS: usize = 20;
/// The denial message stays readable in a terminal and far below any size limit.
const MAX_DENIAL_CHARS: usize = 4096;

/// One warning per finding: single line, at most 120 characters, starting with the rule ID.
pub fn warnings(findings: &[&Finding]) -> Vec<String> {
    let mut out: Vec<String> = findings
        .iter()
        .take(MAX_WARNINGS)
        .map(|f| warning(f))
        .collect();
    if findings.len() > MAX_WARNINGS {
        let rest = &findings[MAX_WARNINGS - 1..];
        out.truncate(MAX_WARNINGS - 1);
        out.push(fit(&format!(
            "{} and {} more findings; run `bloodraven lint` for the full report",
            rest[0].rule_id,
            rest.len() - 1
        )));
    }
    out
}

/// `BR-X-001 /spec/path: message`, fitted to one short line.
pub fn warning(f: &Finding) -> String {
    fit(&format!(
        "{} {}: {}",
        f.rule_id,
        display_path(&f.path),
        f.message
    ))
}

/// The denial message: every denying rule ID with its JSON pointer and message.
pub fn denial(findings: &[&Finding]) -> String {
    let parts: Vec<String> = findings
        .iter()
        .map(|f| {
            one_line(&format!(
                "{} at {}: {}",
                f.rule_id,
                display_path(&f.path),
                f.message
            ))
        })
        .collect();
    let noun = if parts.len() == 1 {
        "finding"
    } else {
        "findings"
    };
    let text = format!("{} required {noun}: {}", parts.len(), parts.join("; "));
    cut(&text, MAX_DENIAL_CHARS)
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

/// Collapses every run of whitespace or control characters into one space.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            gap = true;
        } else {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c);
        }
    }
    out
}

fn fit(text: &str) -> String {
    cut(&one_line(text), MAX_WARNING_CHARS)
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 3).collect();
    out.push_str("...");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::{Level, ObjectRef};

    fn finding(id: &str, path: &str, message: &str) -> Finding {
        Finding {
            rule_id: id.into(),
            level: Level::Recommended,
            object: ObjectRef::default().into(),
            path: path.to_owned(),
            message: message.to_owned(),
            remediation: "".into(),
            file: None,
            line: None,
            suppressed: None,
        }
    }

    #[test]
    fn warnings_are_single_short_lines_starting_with_the_rule_id() {
        let long = finding("BR-SEC-001", "/spec/a", &"word\nwith\ttabs ".repeat(40));
        let w = warning(&long);
        assert!(w.starts_with("BR-SEC-001 /spec/a: word with tabs"));
        assert_eq!(w.chars().count(), MAX_WARNING_CHARS);
        assert!(!w.contains('\n') && !w.contains('\t'));
    }

    #[test]
    fn many_warnings_are_summarised() {
        let fs: Vec<Finding> = (0..30)
            .map(|i| finding(&format!("BR-X-{i:03}"), "", "m"))
            .collect();
        let refs: Vec<&Finding> = fs.iter().collect();
        let w = warnings(&refs);
        assert_eq!(w.len(), MAX_WARNINGS);
        assert_eq!(
            w[MAX_WARNINGS - 1],
            "BR-X-019 and 10 more findings; run `bloodraven lint` for the full report"
        );
        assert_eq!(w[0], "BR-X-000 /: m");
    }

    #[test]
    fn denial_names_every_rule_and_pointer() {
        let a = finding("BR-A-001", "/spec/x", "bad x");
        let b = finding("BR-B-002", "/spec/y/0", "bad\ny");
        let text = denial(&[&a, &b]);
        assert_eq!(
            text,
            "2 required findings: BR-A-001 at /spec/x: bad x; BR-B-002 at /spec/y/0: bad y"
        );
    }
}
