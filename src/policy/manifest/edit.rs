//! Adding missing fields to YAML text without disturbing anything else.
//!
//! `lint --fix` must not reformat a user's manifest or drop its comments, and every safe
//! fix only *adds a missing key to an existing mapping*. So instead of re-serializing, we
//! insert one line, indented like the mapping's other keys, after the mapping's last line.
//! A key written with a `null` or empty value reads as missing to the rules; its line gets
//! the value instead of a second, duplicate key. New lines end like the file's lines do
//! (CRLF files stay CRLF).

use serde_json::Value;

use super::Document;
use crate::error::{Categorized, Category};

/// A key to add to the mapping at `parent` (a JSON pointer) in `document`.
#[derive(Debug, Clone)]
pub struct FieldInsert<'a> {
    pub document: &'a Document,
    pub parent: String,
    pub key: String,
    pub value: Value,
}

/// A field that cannot be inserted textually.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: cannot add {key:?} under {parent:?}: {reason}")]
pub struct EditError {
    pub line: u32,
    pub parent: String,
    pub key: String,
    pub reason: &'static str,
}

impl Categorized for EditError {
    fn category(&self) -> Category {
        Category::InvalidInput
    }
}

/// Values that read as unset: YAML's nulls and the empty collections and string.
const VACANT: [&str; 9] = ["", "~", "null", "Null", "NULL", "{}", "[]", "\"\"", "''"];

/// One planned change: a new line before index `at`, or line `at` rewritten.
enum Edit {
    Insert { at: usize, line: String },
    Replace { at: usize, line: String },
}

/// Applies every insertion to `text`. All-or-nothing: on error `text` is not changed.
pub fn insert_fields(text: &str, inserts: &[FieldInsert<'_>]) -> Result<String, EditError> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let eol = if lines.first().is_some_and(|l| l.ends_with("\r\n")) {
        "\r\n"
    } else {
        "\n"
    };
    let mut planned: Vec<(usize, String)> = Vec::with_capacity(inserts.len());
    for insert in inserts {
        match plan(&lines, insert, eol)? {
            Edit::Insert { at, line } => planned.push((at, line)),
            // Rewriting keeps the line count, so the planned insertions stay valid.
            Edit::Replace { at, line } => lines[at] = line,
        }
    }
    // Insert bottom-up so earlier line numbers stay valid. Lines for the same position end
    // up deeper-indented first (a nested mapping ending where its parent ends keeps its new
    // key inside it), otherwise in the order given.
    let indent = |i: usize| planned[i].1.len() - planned[i].1.trim_start_matches(' ').len();
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by(|a, b| {
        planned[*b]
            .0
            .cmp(&planned[*a].0)
            .then(indent(*a).cmp(&indent(*b)))
            .then(b.cmp(a))
    });
    for i in order {
        let (at, line) = &planned[i];
        if *at > 0 && !lines[*at - 1].ends_with('\n') {
            lines[*at - 1].push_str(eol);
        }
        lines.insert(*at, line.clone());
    }
    Ok(lines.concat())
}

/// Where (0-based index in `lines`) and what to insert or rewrite.
fn plan(lines: &[String], insert: &FieldInsert<'_>, eol: &str) -> Result<Edit, EditError> {
    let fail = |line: u32, reason| EditError {
        line,
        parent: insert.parent.clone(),
        key: insert.key.clone(),
        reason,
    };
    let doc = insert.document;
    let member = format!(
        "{}/{}",
        insert.parent,
        super::escape_pointer_token(&insert.key)
    );
    if let Some(position) = doc.position(&member)
        && let Some(line) = lines.get(line_index(position.line))
        && let Some((rewritten, bare)) = fill_vacant_value(line, position.column as usize, insert)
    {
        let at = line_index(position.line);
        if bare && continues_below(lines, at, position.column as usize) {
            return Err(fail(
                position.line,
                "the existing value spans several lines",
            ));
        }
        return Ok(Edit::Replace {
            at,
            line: rewritten,
        });
    }
    let parent_line = doc.line_of(&insert.parent);
    let Some(first_child) = doc.child_positions(&insert.parent).min_by_key(|p| p.line) else {
        return Err(fail(parent_line, "the mapping has no keys to align with"));
    };
    let child_line = line_index(first_child.line);
    let column = first_child.column as usize;
    let child_text = lines.get(child_line).map_or("", String::as_str);
    let before_child = child_text.get(..column).unwrap_or("");
    // Block-style keys are preceded only by indentation (or a sequence dash).
    if !before_child.chars().all(|c| c == ' ' || c == '-') {
        return Err(fail(first_child.line, "flow-style mappings are not edited"));
    }
    let Some(last) = doc.last_line_under(&insert.parent) else {
        return Err(fail(parent_line, "the mapping is empty"));
    };
    let mut end = line_index(last) + 1;
    let mut i = end;
    while let Some(l) = lines.get(i) {
        let content = l.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let indent = content.len() - trimmed.len();
        if indent < column || content.starts_with("---") || content.starts_with("...") {
            break;
        }
        i += 1;
        end = i;
    }
    let text = format!(
        "{}{}: {}{eol}",
        " ".repeat(column),
        yaml_scalar_key(&insert.key),
        yaml_inline(&insert.value)
    );
    Ok(Edit::Insert {
        at: end,
        line: text,
    })
}

/// `line` with the key at `column` given the insert's value, when the line is a block
/// mapping entry of that key whose value is `null` or empty; `None` otherwise (the member
/// then comes from a merge key, and an explicit key is inserted, which wins over it).
/// The flag says whether nothing followed the colon, so the value may be on later lines.
fn fill_vacant_value(
    line: &str,
    column: usize,
    insert: &FieldInsert<'_>,
) -> Option<(String, bool)> {
    let (body, ending) = match line.strip_suffix("\r\n") {
        Some(body) => (body, "\r\n"),
        None => line
            .strip_suffix('\n')
            .map_or((line, ""), |body| (body, "\n")),
    };
    let before = body.get(..column)?;
    if !before.chars().all(|c| c == ' ' || c == '-') {
        return None;
    }
    let from_key = &body[column..];
    let after_key = [
        insert.key.clone(),
        format!("\"{}\"", insert.key),
        format!("'{}'", insert.key),
    ]
    .iter()
    .find_map(|k| from_key.strip_prefix(k.as_str()))?;
    let after_colon = after_key.trim_start_matches(' ').strip_prefix(':')?;
    let (value, comment) = match after_colon.find('#') {
        Some(0) => ("", Some(after_colon)),
        Some(i) if after_colon[..i].ends_with([' ', '\t']) => {
            (&after_colon[..i], Some(&after_colon[i..]))
        }
        _ => (after_colon, None),
    };
    if !VACANT.contains(&value.trim()) {
        return None;
    }
    let key_end = body.len() - after_colon.len();
    let comment = comment.map(|c| format!(" {c}")).unwrap_or_default();
    let rewritten = format!(
        "{} {}{comment}{ending}",
        &body[..key_end],
        yaml_inline(&insert.value),
    );
    Some((rewritten, value.trim().is_empty()))
}

/// Whether the value of the key on line `at` (at `column`) continues on the next lines: a
/// more indented line, or a block sequence at the key's own indentation.
fn continues_below(lines: &[String], at: usize, column: usize) -> bool {
    lines[at + 1..]
        .iter()
        .map(|l| l.trim_end_matches(['\n', '\r']))
        .find(|l| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#')
        })
        .is_some_and(|next| {
            let indent = next.len() - next.trim_start().len();
            indent > column || (indent == column && next.trim_start().starts_with('-'))
        })
}

fn line_index(line: u32) -> usize {
    (line as usize).saturating_sub(1)
}

fn yaml_scalar_key(key: &str) -> String {
    if is_plain_safe(key) {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

/// A value on one line: plain when unambiguous, JSON (valid YAML flow) otherwise.
fn yaml_inline(value: &Value) -> String {
    match value {
        Value::String(s) if is_plain_safe(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Strings that YAML reads back as the same string when written plain.
fn is_plain_safe(s: &str) -> bool {
    const RESERVED: [&str; 14] = [
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~", "True", "False", "Null",
        "NULL",
    ];
    s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        && !RESERVED.contains(&s)
        && super::resolve_plain(s).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::manifest::parse_stream;
    use serde_json::json;

    fn insert(text: &str, parent: &str, key: &str, value: Value) -> Result<String, EditError> {
        let s = parse_stream(Some("f"), text);
        let doc = &s.documents[0];
        insert_fields(
            text,
            &[FieldInsert {
                document: doc,
                parent: parent.into(),
                key: key.into(),
                value,
            }],
        )
    }

    #[test]
    fn inserts_after_the_mapping_keeping_comments() {
        let text = "kind: X\nspec:\n  # keep me\n  image: a # trailing\n  nested:\n    deep: 1\n\n# footer\nother: 1\n";
        let out = insert(text, "/spec", "failoverCooldown", json!("5m")).unwrap();
        assert_eq!(
            out,
            "kind: X\nspec:\n  # keep me\n  image: a # trailing\n  nested:\n    deep: 1\n  failoverCooldown: 5m\n\n# footer\nother: 1\n"
        );
        let reparsed = parse_stream(None, &out);
        assert_eq!(
            reparsed.documents[0].value["spec"]["failoverCooldown"],
            json!("5m")
        );
    }

    #[test]
    fn inserts_into_sequence_items_and_quotes_when_needed() {
        let text = "spec:\n  sites:\n  - name: a\n    zone: z\n  - name: b\n";
        let out = insert(text, "/spec/sites/0", "role", json!("yes")).unwrap();
        assert_eq!(
            out,
            "spec:\n  sites:\n  - name: a\n    zone: z\n    role: \"yes\"\n  - name: b\n"
        );
        let out = insert(text, "/spec/sites/1", "x", json!(false)).unwrap();
        assert!(out.ends_with("  - name: b\n    x: false\n"), "{out}");
    }

    #[test]
    fn refuses_flow_mappings_and_empty_mappings() {
        assert!(insert("spec: {a: 1}\n", "/spec", "b", json!(1)).is_err());
        assert!(insert("{\"spec\": {\"a\": 1}}", "/spec", "b", json!(1)).is_err());
    }

    #[test]
    fn a_nested_mapping_ending_with_its_parent_keeps_its_new_key() {
        let text = "spec:\n  a: 1\n  ctx:\n    b: 2\n";
        let s = parse_stream(Some("f"), text);
        let doc = &s.documents[0];
        let field = |parent: &str, key: &str| FieldInsert {
            document: doc,
            parent: parent.into(),
            key: key.into(),
            value: json!("x"),
        };
        let out = insert_fields(text, &[field("/spec", "c"), field("/spec/ctx", "d")]).unwrap();
        assert_eq!(out, "spec:\n  a: 1\n  ctx:\n    b: 2\n    d: x\n  c: x\n");
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let out = insert("kind: X\r\nspec:\r\n  a: 1\r\n", "/spec", "b", json!("x")).unwrap();
        assert_eq!(out, "kind: X\r\nspec:\r\n  a: 1\r\n  b: x\r\n");
        let out = insert("spec:\r\n  a: 1", "/spec", "b", json!("x")).unwrap();
        assert_eq!(out, "spec:\r\n  a: 1\r\n  b: x\r\n");
    }

    #[test]
    fn fills_null_and_empty_values_in_place() {
        for vacant in [
            "",
            " null",
            " ~",
            " {}",
            " []",
            " \"\"",
            " ''",
            " null  # why",
        ] {
            let text = format!("spec:\n  a: 1\n  b:{vacant}\n  c: 2\n");
            let out = insert(&text, "/spec", "b", json!("x")).unwrap();
            let comment = vacant
                .find('#')
                .map(|i| format!(" {}", &vacant[i..]))
                .unwrap_or_default();
            assert_eq!(
                out,
                format!("spec:\n  a: 1\n  b: x{comment}\n  c: 2\n"),
                "{vacant:?}"
            );
        }
        let out = insert("spec:\r\n  \"b\": null\r\n", "/spec", "b", json!(5)).unwrap();
        assert_eq!(out, "spec:\r\n  \"b\": 5\r\n");
        // A value continued on the next lines is not rewritten.
        assert!(insert("spec:\n  b:\n  - 1\n", "/spec", "b", json!("x")).is_err());
        // A key that only comes from a merge key gets an explicit line, which wins.
        let out = insert("spec:\n  <<: {b: null}\n  a: 1\n", "/spec", "b", json!("x")).unwrap();
        assert_eq!(out, "spec:\n  <<: {b: null}\n  a: 1\n  b: x\n");
    }

    #[test]
    fn inserts_at_end_of_file_without_trailing_newline() {
        let out = insert("spec:\n  a: 1", "/spec", "b", json!("x")).unwrap();
        assert_eq!(out, "spec:\n  a: 1\n  b: x\n");
    }
}
