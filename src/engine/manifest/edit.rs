//! Adding missing fields to YAML text without disturbing anything else.
//!
//! `lint --fix` must not reformat a user's manifest or drop its comments, and every safe
//! fix only *adds a missing key to an existing mapping*. So instead of re-serializing, we
//! insert one line, indented like the mapping's other keys, after the mapping's last line.

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

/// Applies every insertion to `text`. All-or-nothing: on error `text` is not changed.
pub fn insert_fields(text: &str, inserts: &[FieldInsert<'_>]) -> Result<String, EditError> {
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let mut planned: Vec<(usize, String)> = Vec::with_capacity(inserts.len());
    for insert in inserts {
        planned.push(plan(&lines, insert)?);
    }
    // Insert bottom-up so earlier line numbers stay valid; equal positions keep their order.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by(|a, b| planned[*b].0.cmp(&planned[*a].0).then(b.cmp(a)));
    for i in order {
        let (at, line) = &planned[i];
        if *at > 0 && !lines[*at - 1].ends_with('\n') {
            lines[*at - 1].push('\n');
        }
        lines.insert(*at, line.clone());
    }
    Ok(lines.concat())
}

/// Where (0-based index in `lines`) and what to insert.
fn plan(lines: &[String], insert: &FieldInsert<'_>) -> Result<(usize, String), EditError> {
    let fail = |line: u32, reason| EditError {
        line,
        parent: insert.parent.clone(),
        key: insert.key.clone(),
        reason,
    };
    let doc = insert.document;
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
        "{}{}: {}\n",
        " ".repeat(column),
        yaml_scalar_key(&insert.key),
        yaml_inline(&insert.value)
    );
    Ok((end, text))
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
    use crate::engine::manifest::parse_stream;
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
    fn inserts_at_end_of_file_without_trailing_newline() {
        let out = insert("spec:\n  a: 1", "/spec", "b", json!("x")).unwrap();
        assert_eq!(out, "spec:\n  a: 1\n  b: x\n");
    }
}
