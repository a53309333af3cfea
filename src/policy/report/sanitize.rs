//! Making untrusted text safe for the place it is written to.
//!
//! Messages embed values from the linted manifests (`{value}`), and those are attacker-
//! controlled in CI: a YAML string can carry newlines that forge extra report lines, ANSI
//! escapes that rewrite a terminal, or bytes that XML 1.0 forbids outright.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Replaces control characters with visible `\n`, `\t`, `\u{1b}` escapes, so one value stays
/// on one line and cannot drive the terminal.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Escapes text for XML 1.0 element content or a double- or single-quoted attribute.
///
/// Characters XML 1.0 cannot carry at all (most C0 controls, lone surrogates cannot occur
/// in `str`, U+FFFE/U+FFFF) become U+FFFD; in attributes, newlines and tabs become
/// character references because parsers normalise raw ones to spaces.
pub fn xml(text: &str, attribute: bool) -> Cow<'_, str> {
    let needs = |c: char| {
        matches!(c, '<' | '>' | '&' | '"' | '\'' | '\u{FFFE}' | '\u{FFFF}')
            || (c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
            || (attribute && matches!(c, '\n' | '\t' | '\r'))
    };
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\r' => out.push_str("&#13;"),
            '\n' | '\t' => out.push(c),
            // C0 controls cannot be represented in XML 1.0 at all; C1 controls are legal
            // but invisible, and would hide what a value really contains.
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A file path as a SARIF `uri-reference` (RFC 3986): `-` is `stdin`, backslashes become
/// slashes, a leading `./` goes, and everything outside the unreserved set and `/` is
/// percent-encoded (a space or a `:` in the first segment would otherwise make the
/// reference invalid).
pub fn file_uri(file: &str) -> String {
    if file == "-" {
        return "stdin".to_owned();
    }
    let normalized = file.replace('\\', "/");
    let trimmed = normalized.trim_start_matches("./");
    let mut out = String::with_capacity(trimmed.len());
    for b in trimmed.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.is_empty() { ".".to_owned() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_makes_controls_visible() {
        assert_eq!(one_line("plain"), "plain");
        assert!(matches!(one_line("plain"), Cow::Borrowed(_)));
        assert_eq!(one_line("a\nb\tc\u{1b}[31m"), "a\\nb\\tc\\u{1b}[31m");
    }

    #[test]
    fn xml_escapes_markup_and_drops_forbidden_characters() {
        assert_eq!(xml(r#"<&>"'"#, false), "&lt;&amp;&gt;&quot;&apos;");
        assert_eq!(xml("a\nb", false), "a\nb");
        assert_eq!(xml("a\nb\tc", true), "a&#10;b&#9;c");
        assert_eq!(xml("nul\u{0}bell\u{7}", false), "nul\u{FFFD}bell\u{FFFD}");
        assert_eq!(xml("ok ✓", true), "ok ✓");
    }

    #[test]
    fn file_uri_is_a_valid_relative_reference() {
        assert_eq!(file_uri("-"), "stdin");
        assert_eq!(file_uri("./deploy/prod.yaml"), "deploy/prod.yaml");
        assert_eq!(file_uri("my dir/a:b.yaml"), "my%20dir/a%3Ab.yaml");
        assert_eq!(file_uri(r"charts\db\values.yaml"), "charts/db/values.yaml");
        assert_eq!(file_uri("/abs/ü.yaml"), "/abs/%C3%BC.yaml");
        assert_eq!(file_uri("./"), ".");
    }
}
