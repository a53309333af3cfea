//! `JUnit` XML, for CI systems that show test reports (Jenkins, GitLab, Azure DevOps).
//!
//! One `<testsuite>` per file, one `<testcase>` per (object, rule) that produced findings:
//! `<failure>` when any of them is active, `<skipped>` when all are suppressed. A parse
//! error is a `<testcase>` with an `<error>` in its file's suite. Clean objects produce no
//! test case: the report carries findings, not the list of every check that passed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;

use super::display_file;
use super::sanitize::xml;
use super::sink::Sink;
use crate::policy::manifest::ParseError;
use crate::policy::rules::{Finding, ObjectRef, Report};

/// Findings of one rule on one object.
struct Case<'r> {
    object: &'r ObjectRef,
    rule_id: &'r str,
    findings: Vec<&'r Finding>,
}

#[derive(Default)]
struct Suite<'r> {
    name: &'r str,
    cases: Vec<Case<'r>>,
    errors: Vec<&'r ParseError>,
}

impl Suite<'_> {
    fn failures(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.findings.iter().any(|f| f.is_active()))
            .count()
    }

    fn skipped(&self) -> usize {
        self.cases.len() - self.failures()
    }

    fn tests(&self) -> usize {
        self.cases.len() + self.errors.len()
    }
}

const NO_FILE: &str = "<input>";

pub fn write(report: &Report, writer: &mut dyn io::Write) -> io::Result<()> {
    let suites = suites(report);
    let (tests, failures, skipped, errors) = suites.iter().fold((0, 0, 0, 0), |acc, s| {
        (
            acc.0 + s.tests(),
            acc.1 + s.failures(),
            acc.2 + s.skipped(),
            acc.3 + s.errors.len(),
        )
    });
    let mut sink = Sink::new(writer);
    let out = &mut sink;
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"bloodraven lint\" tests=\"{tests}\" failures=\"{failures}\" \
         errors=\"{errors}\" skipped=\"{skipped}\">"
    );
    for suite in &suites {
        write_suite(out, suite);
    }
    out.push_str("</testsuites>\n");
    sink.finish()
}

fn suites(report: &Report) -> Vec<Suite<'_>> {
    let mut suites: Vec<Suite<'_>> = Vec::new();
    let mut by_file: HashMap<&str, usize> = HashMap::new();
    let mut by_case: HashMap<(&str, &ObjectRef, &str), usize> = HashMap::new();
    for e in &report.parse_errors {
        let name = e.location.file.as_deref().unwrap_or(NO_FILE);
        let si = suite_index(&mut suites, &mut by_file, name);
        suites[si].errors.push(e);
    }
    for f in &report.findings {
        let name = f.file.as_deref().unwrap_or(NO_FILE);
        let si = suite_index(&mut suites, &mut by_file, name);
        let cases = &mut suites[si].cases;
        let ci = *by_case
            .entry((name, &f.object, &f.rule_id))
            .or_insert_with(|| {
                cases.push(Case {
                    object: &f.object,
                    rule_id: &f.rule_id,
                    findings: Vec::new(),
                });
                cases.len() - 1
            });
        cases[ci].findings.push(f);
    }
    suites
}

fn suite_index<'r>(
    suites: &mut Vec<Suite<'r>>,
    by_file: &mut HashMap<&'r str, usize>,
    name: &'r str,
) -> usize {
    *by_file.entry(name).or_insert_with(|| {
        suites.push(Suite {
            name,
            ..Suite::default()
        });
        suites.len() - 1
    })
}

fn write_suite(out: &mut Sink<'_>, suite: &Suite<'_>) {
    let name = display_file(suite.name);
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
        xml(name, true),
        suite.tests(),
        suite.failures(),
        suite.errors.len(),
        suite.skipped()
    );
    for e in &suite.errors {
        let _ = writeln!(
            out,
            "    <testcase classname=\"{}\" name=\"parse\" file=\"{}\" line=\"{}\">\n      \
             <error type=\"parse-error\" message=\"{}\">{}:{}:{}: {}</error>\n    </testcase>",
            xml(name, true),
            xml(name, true),
            e.location.line,
            xml(&e.message, true),
            xml(name, false),
            e.location.line,
            e.location.column,
            xml(&e.message, false),
        );
    }
    for case in &suite.cases {
        write_case(out, name, case);
    }
    out.push_str("  </testsuite>\n");
}

fn write_case(out: &mut Sink<'_>, file: &str, case: &Case<'_>) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\"",
        xml(&case.object.display_name(), true),
        xml(case.rule_id, true),
    );
    if file != NO_FILE {
        let _ = write!(out, " file=\"{}\"", xml(file, true));
    }
    if let Some(line) = case.findings.iter().find_map(|f| f.line) {
        let _ = write!(out, " line=\"{line}\"");
    }
    out.push_str(">\n");
    let active: Vec<&&Finding> = case.findings.iter().filter(|f| f.is_active()).collect();
    if let Some(worst) = active.iter().map(|f| f.level).max() {
        let message = if active.len() == 1 {
            active[0].message.clone()
        } else {
            format!("{} findings: {}", active.len(), active[0].message)
        };
        let _ = write!(
            out,
            "      <failure type=\"{worst}\" message=\"{}\">",
            xml(&message, true)
        );
        for f in &case.findings {
            out.push_str(&xml(&detail(f), false));
        }
        out.push_str("</failure>\n");
    } else {
        let reasons: Vec<&str> = case
            .findings
            .iter()
            .filter_map(|f| f.suppressed.as_ref().map(|s| s.reason.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "      <skipped message=\"suppressed: {}\"/>",
            xml(&reasons.join("; "), true)
        );
    }
    out.push_str("    </testcase>\n");
}

/// One finding as a few lines of the failure's body.
fn detail(f: &Finding) -> String {
    let at = match (&f.file, f.line) {
        (Some(file), Some(line)) => format!("{}:{line} ", display_file(file)),
        _ => String::new(),
    };
    let mut text = format!(
        "{at}{} {}: {} (at {})\n",
        f.level, f.rule_id, f.message, f.path
    );
    match &f.suppressed {
        None => {
            let _ = writeln!(text, "remediation: {}", f.remediation);
        }
        Some(s) => {
            let _ = writeln!(text, "suppressed: {}", s.reason);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::report::fixtures;

    fn render(report: &Report) -> String {
        crate::policy::report::render(
            report,
            &fixtures::catalog(),
            crate::policy::report::Format::Junit,
            &crate::policy::report::RenderOptions::default(),
        )
    }

    /// A minimal XML 1.0 reader, strict enough to catch what a renderer can get wrong:
    /// unbalanced or misnamed tags, unquoted attributes, stray `<` or `&`, forbidden
    /// characters, more than one root.
    #[derive(Debug, Default)]
    struct Element {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<Element>,
        text: String,
    }

    impl Element {
        fn attr(&self, name: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
        fn count(&self, name: &str) -> usize {
            self.attr(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(usize::MAX)
        }
        fn all<'a>(&'a self, name: &str, out: &mut Vec<&'a Element>) {
            for c in &self.children {
                if c.name == name {
                    out.push(c);
                }
                c.all(name, out);
            }
        }
        fn find(&self, name: &str) -> Vec<&Element> {
            let mut out = Vec::new();
            self.all(name, &mut out);
            out
        }
    }

    fn unescape(s: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            out.push_str(&rest[..i]);
            let end = rest[i..]
                .find(';')
                .ok_or(format!("unterminated entity in {s:?}"))?;
            let entity = &rest[i + 1..i + end];
            out.push(match entity {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                "apos" => '\'',
                _ => entity
                    .strip_prefix('#')
                    .and_then(|n| n.parse::<u32>().ok())
                    .and_then(char::from_u32)
                    .ok_or(format!("bad entity &{entity};"))?,
            });
            rest = &rest[i + end + 1..];
        }
        out.push_str(rest);
        if out.contains('<') && s.contains('<') {
            return Err(format!("raw < in {s:?}"));
        }
        Ok(out)
    }

    fn parse(doc: &str) -> Result<Element, String> {
        if let Some(bad) = doc
            .chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
        {
            return Err(format!("forbidden character {bad:?}"));
        }
        let body = doc
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
            .ok_or("missing XML declaration")?;
        let mut stack: Vec<Element> = vec![Element::default()];
        let mut rest = body;
        while let Some(open) = rest.find('<') {
            let text = unescape(&rest[..open])?;
            if let Some(top) = stack.last_mut() {
                top.text.push_str(&text);
            }
            let close = rest[open..].find('>').ok_or("unterminated tag")? + open;
            let tag = &rest[open + 1..close];
            rest = &rest[close + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                let done = stack.pop().ok_or("close without open")?;
                if done.name != name {
                    return Err(format!("</{name}> closes <{}>", done.name));
                }
                stack
                    .last_mut()
                    .ok_or("close of the root")?
                    .children
                    .push(done);
                continue;
            }
            let (tag, self_closing) = match tag.strip_suffix('/') {
                Some(t) => (t, true),
                None => (tag, false),
            };
            let (name, mut attrs_text) = tag.split_once(' ').unwrap_or((tag, ""));
            let mut el = Element {
                name: name.to_owned(),
                ..Element::default()
            };
            loop {
                attrs_text = attrs_text.trim_start();
                if attrs_text.is_empty() {
                    break;
                }
                let (key, after) = attrs_text
                    .split_once("=\"")
                    .ok_or(format!("bad attribute in <{tag}>"))?;
                let end = after.find('"').ok_or("unterminated attribute")?;
                el.attrs.push((key.to_owned(), unescape(&after[..end])?));
                attrs_text = &after[end + 1..];
            }
            if self_closing {
                stack.last_mut().ok_or("no parent")?.children.push(el);
            } else {
                stack.push(el);
            }
        }
        if !rest.trim().is_empty() {
            return Err(format!("text after the root: {rest:?}"));
        }
        let mut doc = stack.pop().ok_or("no document")?;
        if !stack.is_empty() || doc.children.len() != 1 {
            return Err("unbalanced tags or several roots".into());
        }
        doc.children.pop().ok_or_else(|| "no root".into())
    }

    fn counts_are_consistent(root: &Element) -> Result<(), String> {
        let suites = root.find("testsuite");
        for key in ["tests", "failures", "errors", "skipped"] {
            let sum: usize = suites.iter().map(|s| s.count(key)).sum();
            if root.count(key) != sum {
                return Err(format!(
                    "testsuites {key}={} but suites sum to {sum}",
                    root.count(key)
                ));
            }
        }
        for s in &suites {
            let cases = s.find("testcase");
            let with = |child: &str| cases.iter().filter(|c| !c.find(child).is_empty()).count();
            let expected = [
                ("tests", cases.len()),
                ("failures", with("failure")),
                ("errors", with("error")),
                ("skipped", with("skipped")),
            ];
            for (key, n) in expected {
                if s.count(key) != n {
                    return Err(format!(
                        "suite {:?}: {key}={} but {n} found",
                        s.attr("name"),
                        s.count(key)
                    ));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn one_suite_per_file_one_case_per_object_and_rule() -> Result<(), String> {
        let root = parse(&render(&fixtures::report()))?;
        assert_eq!(root.name, "testsuites");
        counts_are_consistent(&root)?;
        let suites = root.find("testsuite");
        let names: Vec<&str> = suites.iter().filter_map(|s| s.attr("name")).collect();
        assert_eq!(
            names,
            [
                "broken.yaml",
                "<stdin>",
                "deploy/prod.yaml",
                "deploy/dev.yaml",
                "<input>"
            ]
        );
        assert_eq!(root.count("tests"), 8);
        assert_eq!(root.count("failures"), 4);
        assert_eq!(root.count("skipped"), 2);
        assert_eq!(root.count("errors"), 2);
        let prod = suites[2].find("testcase");
        assert_eq!(prod.len(), 3);
        assert_eq!(
            prod[0].attr("classname"),
            Some("MysqlFailoverGroup prod/db")
        );
        assert_eq!(prod[0].attr("name"), Some("BR-TEST-001"));
        assert_eq!(prod[0].attr("file"), Some("deploy/prod.yaml"));
        assert_eq!(prod[0].attr("line"), Some("12"));
        let failure = &prod[0].find("failure")[0];
        assert_eq!(failure.attr("type"), Some("required"));
        assert_eq!(failure.attr("message"), Some("TLS is not configured"));
        assert!(
            failure.text.contains("remediation: Set spec.tls.issuerRef"),
            "{}",
            failure.text
        );
        Ok(())
    }

    #[test]
    fn escapes_markup_in_messages_and_names() -> Result<(), String> {
        let out = render(&fixtures::report());
        let root = parse(&out)?;
        let prod = &root.find("testsuite")[2];
        let pitr = &prod.find("testcase")[1];
        let failure = &pitr.find("failure")[0];
        let raw = r#"PITR <disabled> & "binlogs" aren't kept"#;
        assert_eq!(failure.attr("message"), Some(raw));
        assert!(failure.text.contains(raw), "{}", failure.text);
        assert!(out.contains("PITR &lt;disabled&gt; &amp; &quot;binlogs&quot; aren&apos;t kept"));
        let error = &root.find("error")[0];
        assert_eq!(
            error.attr("message"),
            Some("did not find expected key <&>\"'")
        );
        assert_eq!(
            error.text,
            "broken.yaml:3:7: did not find expected key <&>\"'"
        );
        Ok(())
    }

    #[test]
    fn suppressed_cases_are_skipped_with_reasons() -> Result<(), String> {
        let root = parse(&render(&fixtures::report()))?;
        let skipped = root.find("skipped");
        let messages: Vec<&str> = skipped.iter().filter_map(|s| s.attr("message")).collect();
        assert_eq!(
            messages,
            [
                "suppressed: scraped by the platform agent",
                "suppressed: dev namespace"
            ]
        );
        Ok(())
    }

    #[test]
    fn several_findings_of_one_rule_are_one_case() -> Result<(), String> {
        let mut report = fixtures::report();
        let mut again = report.findings[0].clone();
        again.path = "/spec/tls/secretName".into();
        again.line = Some(14);
        report.findings.insert(1, again);
        let root = parse(&render(&report))?;
        counts_are_consistent(&root)?;
        let prod = &root.find("testsuite")[2];
        let cases = prod.find("testcase");
        assert_eq!(cases.len(), 3);
        let failure = &cases[0].find("failure")[0];
        assert_eq!(
            failure.attr("message"),
            Some("2 findings: TLS is not configured")
        );
        assert!(
            failure
                .text
                .contains("deploy/prod.yaml:14 required BR-TEST-001"),
            "{}",
            failure.text
        );
        Ok(())
    }

    #[test]
    fn forbidden_characters_never_reach_the_xml() -> Result<(), String> {
        let mut report = fixtures::report();
        report.findings[0].message = "nul\u{0} esc\u{1b} ok".into();
        parse(&render(&report)).map(|_| ())
    }

    #[test]
    fn empty_report_is_an_empty_valid_document() -> Result<(), String> {
        let root = parse(&render(&Report::default()))?;
        assert!(root.children.is_empty());
        assert_eq!(root.count("tests"), 0);
        counts_are_consistent(&root)
    }

    #[test]
    fn reader_rejects_broken_xml() {
        assert!(parse("<?xml version=\"1.0\" encoding=\"UTF-8\"?><a><b></a></b>").is_err());
        assert!(parse("<?xml version=\"1.0\" encoding=\"UTF-8\"?><a x=\"<\"/>").is_err());
        assert!(parse("<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>&bogus;</a>").is_err());
        assert!(parse("<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/><b/>").is_err());
    }
}
