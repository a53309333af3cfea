//! Multi-document YAML/JSON parsing that keeps, for every JSON pointer, the line it came from.
//!
//! Kubernetes manifests arrive as YAML streams (`helm template` output, directories of
//! files, stdin). Findings must point at `file:line`, and one broken document must not hide
//! the others, so this parser:
//! - builds `serde_json::Value`s directly from parser events (YAML 1.2 core schema),
//! - records the line of every node under its RFC 6901 pointer,
//! - on a syntax error, reports `file:line:column` and resumes at the next `---` line.

pub mod edit;

use std::fmt;
use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, Tag};
use serde_json::{Map, Number, Value};

use crate::error::{Categorized, Category};

/// Nesting deeper than this is refused rather than risking the stack of later consumers.
const MAX_DEPTH: usize = 128;
/// Upper bound on nodes produced by alias expansion in one document ("billion laughs").
const MAX_ALIAS_NODES: usize = 100_000;

/// One parsed document of a stream, with where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    /// The file name as given by the caller (`-` for stdin); `None` for in-memory input.
    pub file: Option<Arc<str>>,
    /// 0-based position of the document in its stream.
    pub index: usize,
    /// 1-based line where the document's root node starts.
    pub line: u32,
    lines: PointerLines,
}

impl Document {
    /// A document built in memory (admission requests), with no line information.
    pub fn in_memory(value: Value) -> Self {
        Self {
            value,
            file: None,
            index: 0,
            line: 0,
            lines: PointerLines::default(),
        }
    }

    /// The line of the node at `pointer`, or of its nearest ancestor that exists.
    pub fn line_of(&self, pointer: &str) -> u32 {
        self.lines.line_of(pointer).unwrap_or(self.line)
    }

    /// Where the node at exactly `pointer` starts, if it exists in the source.
    pub fn position(&self, pointer: &str) -> Option<Position> {
        self.lines.get(pointer)
    }

    /// Positions of the direct children of the mapping or sequence at `pointer`.
    pub fn child_positions<'a>(&'a self, pointer: &'a str) -> impl Iterator<Item = Position> + 'a {
        self.lines.iter().filter_map(move |(p, pos)| {
            let rest = p.strip_prefix(pointer)?.strip_prefix('/')?;
            (!rest.contains('/')).then_some(pos)
        })
    }

    /// The last line on which a node under `pointer` starts.
    pub fn last_line_under(&self, pointer: &str) -> Option<u32> {
        self.lines
            .iter()
            .filter(|(p, _)| {
                *p == pointer || p.strip_prefix(pointer).is_some_and(|r| r.starts_with('/'))
            })
            .map(|(_, pos)| pos.line)
            .max()
    }
}

/// Where a node starts: 1-based line, 0-based column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// Positions of nodes (for map entries, of their key), keyed by JSON pointer, in document
/// order. The pointers share one buffer: a manifest has hundreds of nodes, and one
/// allocation per pointer dominated parsing time and memory.
#[derive(Debug, Clone, Default)]
struct PointerLines {
    buf: String,
    /// `(end of the pointer in buf, position)`; each pointer starts where the previous ends.
    entries: Vec<(u32, Position)>,
}

impl PointerLines {
    fn push(&mut self, pointer: &str, position: Position) {
        self.push_parts(&[pointer], position);
    }

    /// Records the pointer made of `parts`, written straight into the shared buffer.
    fn push_parts(&mut self, parts: &[&str], position: Position) {
        for part in parts {
            self.buf.push_str(part);
        }
        self.entries.push((to_u32(self.buf.len()), position));
    }

    fn iter(&self) -> impl Iterator<Item = (&str, Position)> {
        let mut start = 0usize;
        self.entries.iter().map(move |(end, pos)| {
            let end = *end as usize;
            let pointer = self.buf.get(start..end).unwrap_or_default();
            start = end;
            (pointer, *pos)
        })
    }

    fn get(&self, pointer: &str) -> Option<Position> {
        self.iter().find(|(p, _)| *p == pointer).map(|(_, pos)| pos)
    }

    fn line_of(&self, pointer: &str) -> Option<u32> {
        let mut probe = pointer;
        loop {
            if let Some(pos) = self.get(probe) {
                return Some(pos.line);
            }
            match probe.rfind('/') {
                Some(cut) => probe = &probe[..cut],
                None => return None,
            }
        }
    }
}

/// A document that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ParseError {
    pub location: Location,
    pub message: String,
}

impl Categorized for ParseError {
    fn category(&self) -> Category {
        Category::InvalidInput
    }
}

/// `file:line:column`, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Option<Arc<str>>,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.as_deref().unwrap_or("<input>");
        write!(f, "{file}:{}:{}", self.line, self.column)
    }
}

/// Everything a stream yielded: the documents that parsed and the errors of those that did not.
#[derive(Debug, Default)]
pub struct Stream {
    pub documents: Vec<Document>,
    pub errors: Vec<ParseError>,
}

/// Parses a YAML (or JSON, which is YAML) stream. Empty documents are dropped.
pub fn parse_stream(file: Option<&str>, text: &str) -> Stream {
    let mut documents = Vec::new();
    let errors = parse_each(file, text, &mut |doc| documents.push(doc));
    Stream { documents, errors }
}

/// Parses a stream, handing each document to `sink` as soon as it is complete, so a caller
/// can check and drop documents one at a time; returns the errors.
pub fn parse_each(
    file: Option<&str>,
    text: &str,
    sink: &mut dyn FnMut(Document),
) -> Vec<ParseError> {
    let file: Option<Arc<str>> = file.map(Arc::from);
    let mut errors = Vec::new();
    let mut offset_line = 0usize;
    let mut rest = text;
    let mut index = 0usize;
    loop {
        match parse_from(rest, offset_line, file.as_ref(), &mut index, sink) {
            Ok(()) => break,
            Err(error) => {
                // Resume at the first document marker after the broken document's start:
                // the parser may only notice an unclosed bracket lines later.
                let resume = match next_document_start(rest, error.doc_start_in_chunk) {
                    Some((_, 0)) => next_document_start(rest, 1),
                    other => other,
                };
                errors.push(ParseError {
                    location: Location {
                        file: file.clone(),
                        line: to_u32(offset_line + error.line_in_chunk),
                        column: to_u32(error.column),
                    },
                    message: error.message,
                });
                index += 1;
                match resume {
                    Some((skipped_lines, byte)) => {
                        offset_line += skipped_lines;
                        rest = &rest[byte..];
                    }
                    None => break,
                }
            }
        }
    }
    errors
}

/// The 1-based line and byte column of the first invalid byte of text that is not UTF-8
/// (`valid_up_to` as [`std::str::Utf8Error`] gives it), so every front door reports a
/// non-UTF-8 input at the same place.
pub fn utf8_error_location(bytes: &[u8], valid_up_to: usize) -> (u32, u32) {
    let before = bytes.get(..valid_up_to).unwrap_or(bytes);
    let line = before.split(|b| *b == b'\n').count();
    let column = before.len()
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (to_u32(line), to_u32(column))
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Finds the first `---` document marker strictly after 1-based `line`; returns the number
/// of lines before it and its byte offset.
fn next_document_start(text: &str, line: usize) -> Option<(usize, usize)> {
    let mut byte = 0usize;
    for (n, l) in text.split_inclusive('\n').enumerate() {
        let is_marker =
            l.starts_with("---") && l[3..].chars().next().is_none_or(char::is_whitespace);
        if n + 1 > line && is_marker {
            return Some((n, byte));
        }
        byte += l.len();
    }
    None
}

struct ChunkError {
    /// Line (in the chunk) where the document being parsed started; 0 if none had.
    doc_start_in_chunk: usize,
    line_in_chunk: usize,
    column: usize,
    message: String,
}

impl ChunkError {
    fn at(span: Span, message: impl Into<String>) -> Self {
        Self {
            doc_start_in_chunk: 0,
            line_in_chunk: span.start.line(),
            column: span.start.col() + 1,
            message: message.into(),
        }
    }
}

impl From<ScanError> for ChunkError {
    fn from(e: ScanError) -> Self {
        Self {
            doc_start_in_chunk: 0,
            line_in_chunk: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        }
    }
}

/// An open collection while building a document.
enum Frame {
    Seq {
        /// Line where the collection starts (used for the document root).
        line: u32,
        items: Vec<Value>,
        pointer: String,
        anchor: usize,
    },
    Map {
        line: u32,
        entries: Map<String, Value>,
        pointer: String,
        anchor: usize,
        /// The key read but not yet given a value.
        pending_key: Option<String>,
        /// The pending key is a merge key (`<<`): its value is merged, not stored.
        merging: bool,
        /// Entries from this mapping's merge key, applied under the explicit entries when
        /// the mapping ends, and where the merge key was.
        merged: Option<(Map<String, Value>, Position)>,
    },
}

struct Builder<'a> {
    stack: Vec<Frame>,
    anchors: Vec<(usize, Value)>,
    lines: PointerLines,
    line_offset: usize,
    alias_nodes: usize,
    file: Option<&'a Arc<str>>,
}

fn parse_from(
    text: &str,
    line_offset: usize,
    file: Option<&Arc<str>>,
    index: &mut usize,
    out: &mut dyn FnMut(Document),
) -> Result<(), ChunkError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder: Option<Builder<'_>> = None;
    let mut root: Option<(Value, u32)> = None;
    let mut doc_start = 0usize;
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| ChunkError {
            doc_start_in_chunk: doc_start,
            ..ChunkError::from(e)
        })?;
        match event {
            Event::DocumentStart(_) => {
                doc_start = span.start.line();
                builder = Some(Builder {
                    stack: Vec::new(),
                    anchors: Vec::new(),
                    lines: PointerLines::default(),
                    line_offset,
                    alias_nodes: 0,
                    file,
                });
                root = None;
            }
            Event::DocumentEnd => {
                if let (Some(b), Some((value, line))) = (builder.take(), root.take())
                    && !value.is_null()
                {
                    out(Document {
                        value,
                        file: b.file.cloned(),
                        index: *index,
                        line,
                        lines: b.lines,
                    });
                }
                *index += 1;
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            other => {
                let b = builder
                    .as_mut()
                    .ok_or_else(|| ChunkError::at(span, "content outside a document"))?;
                let step = b.event(other, span).map_err(|e| ChunkError {
                    doc_start_in_chunk: doc_start,
                    ..e
                })?;
                if let Some(done) = step {
                    root = Some(done);
                }
            }
        }
    }
    Ok(())
}

impl Builder<'_> {
    fn line(&self, span: Span) -> u32 {
        to_u32(span.start.line() + self.line_offset)
    }

    fn position(&self, span: Span) -> Position {
        Position {
            line: self.line(span),
            column: to_u32(span.start.col()),
        }
    }

    /// The pointer the next node will live at, or `None` when a mapping key is expected.
    /// Whether the next scalar is a mapping key (checked without building a pointer: this
    /// runs for every node).
    fn expects_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Map {
                pending_key: None,
                ..
            })
        )
    }

    fn next_pointer(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { items, pointer, .. }) => Some(format!("{pointer}/{}", items.len())),
            Some(Frame::Map {
                pending_key: Some(key),
                pointer,
                ..
            }) => Some(format!("{pointer}/{}", escape_pointer_token(key))),
            Some(Frame::Map {
                pending_key: None, ..
            }) => None,
        }
    }

    /// Handles one event; returns the finished root value with its line.
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<Option<(Value, u32)>, ChunkError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if self.expects_key() {
                    // A mapping key.
                    let merge = is_merge_key(&text, style, tag.as_deref());
                    return self.set_key(text.into_owned(), merge, span).map(|()| None);
                }
                let value = resolve_scalar(&text, style, tag.as_deref())
                    .map_err(|m| ChunkError::at(span, m))?;
                self.remember_anchor(anchor, &value);
                self.push_value(value, span)
            }
            Event::Alias(id) => {
                let value = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| ChunkError::at(span, "alias to an unknown anchor"))?;
                self.alias_nodes += count_nodes(&value);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(ChunkError::at(
                        span,
                        format!("alias expansion exceeds {MAX_ALIAS_NODES} nodes"),
                    ));
                }
                if self.expects_key() {
                    return match value {
                        // An alias to the string "<<" is that string, not a merge key.
                        Value::String(key) => self.set_key(key, false, span).map(|()| None),
                        _ => Err(ChunkError::at(span, "mapping keys must be scalars")),
                    };
                }
                self.push_value(value, span)
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let Some(pointer) = self.next_pointer() else {
                    return Err(ChunkError::at(span, "mapping keys must be scalars"));
                };
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ChunkError::at(
                        span,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    ));
                }
                let pos = self.position(span);
                // A collection that is a map entry's value was recorded at its key.
                if !matches!(self.stack.last(), Some(Frame::Map { .. })) {
                    self.lines.push(&pointer, pos);
                }
                let line = pos.line;
                self.stack
                    .push(if matches!(event, Event::SequenceStart(..)) {
                        Frame::Seq {
                            line,
                            items: Vec::new(),
                            pointer,
                            anchor,
                        }
                    } else {
                        Frame::Map {
                            line,
                            entries: Map::new(),
                            pointer,
                            anchor,
                            pending_key: None,
                            merging: false,
                            merged: None,
                        }
                    });
                Ok(None)
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(span),
            _ => Ok(None),
        }
    }

    /// Ends the innermost collection, applying its merge key, and attaches it.
    fn close(&mut self, span: Span) -> Result<Option<(Value, u32)>, ChunkError> {
        let (value, anchor, start_line) = match self.stack.pop() {
            Some(Frame::Seq {
                items,
                anchor,
                line,
                ..
            }) => (Value::Array(items), anchor, line),
            Some(Frame::Map {
                mut entries,
                anchor,
                line,
                merged,
                pointer,
                ..
            }) => {
                // Explicit keys win over merged ones, wherever the merge key stands.
                if let Some((merged, position)) = merged {
                    for (key, value) in merged {
                        if !entries.contains_key(&key) {
                            self.lines.push_parts(
                                &[&pointer, "/", &escape_pointer_token(&key)],
                                position,
                            );
                            entries.insert(key, value);
                        }
                    }
                }
                (Value::Object(entries), anchor, line)
            }
            None => return Err(ChunkError::at(span, "unbalanced collection end")),
        };
        self.remember_anchor(anchor, &value);
        self.attach(value, start_line, span)
    }

    fn set_key(&mut self, key: String, merge: bool, span: Span) -> Result<(), ChunkError> {
        let pos = self.position(span);
        if let Some(Frame::Map {
            entries,
            pending_key,
            pointer,
            merging,
            merged,
            ..
        }) = self.stack.last_mut()
        {
            let duplicate = if merge {
                merged.is_some()
            } else {
                entries.contains_key(&key)
            };
            if duplicate {
                return Err(ChunkError::at(
                    span,
                    format!("duplicate mapping key {key:?}"),
                ));
            }
            self.lines
                .push_parts(&[pointer, "/", &escape_pointer_token(&key)], pos);
            *pending_key = Some(key);
            *merging = merge;
            if merge {
                *merged = Some((Map::new(), pos));
            }
        }
        Ok(())
    }

    fn push_value(&mut self, value: Value, span: Span) -> Result<Option<(Value, u32)>, ChunkError> {
        let pos = self.position(span);
        // Map entries were recorded at their key's position already.
        if !matches!(self.stack.last(), Some(Frame::Map { .. }))
            && let Some(pointer) = self.next_pointer()
        {
            self.lines.push(&pointer, pos);
        }
        self.attach(value, pos.line, span)
    }

    /// Puts a finished node into its parent, or returns it as the document root.
    fn attach(
        &mut self,
        value: Value,
        line: u32,
        span: Span,
    ) -> Result<Option<(Value, u32)>, ChunkError> {
        match self.stack.last_mut() {
            None => return Ok(Some((value, line))),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                entries,
                pending_key,
                merging,
                merged,
                ..
            }) => {
                let Some(key) = pending_key.take() else {
                    return Ok(None);
                };
                if std::mem::take(merging) {
                    if let Some((into, _)) = merged {
                        merge_into(into, value).map_err(|m| ChunkError::at(span, m))?;
                    }
                } else {
                    entries.insert(key, value);
                }
            }
        }
        Ok(None)
    }

    fn remember_anchor(&mut self, anchor: usize, value: &Value) {
        if anchor != 0 {
            self.anchors.push((anchor, value.clone()));
        }
    }
}

/// Whether a mapping key is YAML's merge key: `<<` plain (which resolves to `!!merge`) or
/// tagged `!!merge`. A quoted `"<<"` is an ordinary string key, as in go-yaml.
fn is_merge_key(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> bool {
    text == "<<"
        && match tag {
            Some(tag) => {
                (tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!") && tag.suffix == "merge"
            }
            None => style == ScalarStyle::Plain,
        }
}

/// Adds a merge key's value under the entries merged so far, as kubectl's YAML decoder
/// (go-yaml) does: the value is a mapping or a sequence of mappings, and a key already
/// merged (from an earlier mapping of the sequence) is kept.
fn merge_into(into: &mut Map<String, Value>, value: Value) -> Result<(), String> {
    const WANT_MAP: &str = "a merge key (<<) needs a mapping or a sequence of mappings";
    let sources = match value {
        Value::Object(map) => vec![map],
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => Ok(map),
                _ => Err(WANT_MAP.to_owned()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(WANT_MAP.to_owned()),
    };
    for map in sources {
        for (key, value) in map {
            into.entry(key).or_insert(value);
        }
    }
    Ok(())
}

fn count_nodes(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Object(map) => 1 + map.values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

/// RFC 6901 escaping of one reference token.
pub fn escape_pointer_token(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1").into()
    } else {
        token.into()
    }
}

/// Resolves a scalar by the YAML 1.2 core schema; quoted scalars are always strings.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag {
        if tag.handle == "tag:yaml.org,2002:" || tag.handle == "!!" {
            return match tag.suffix.as_str() {
                "str" | "binary" | "timestamp" => Ok(Value::String(text.to_owned())),
                "null" => Ok(Value::Null),
                "bool" => resolve_plain(text)
                    .filter(Value::is_boolean)
                    .ok_or_else(|| format!("{text:?} is not a !!bool")),
                "int" => resolve_plain(text)
                    .filter(|v| v.is_i64() || v.is_u64())
                    .ok_or_else(|| format!("{text:?} is not an !!int")),
                "float" => resolve_plain(text)
                    .filter(Value::is_number)
                    .ok_or_else(|| format!("{text:?} is not a !!float")),
                other => Err(format!("unsupported tag !!{other}")),
            };
        }
        // Local tags (`!foo`) carry no meaning for Kubernetes manifests: keep the text.
        return Ok(Value::String(text.to_owned()));
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_owned()));
    }
    Ok(resolve_plain(text).unwrap_or_else(|| Value::String(text.to_owned())))
}

pub(super) fn resolve_plain(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let bytes = text.as_bytes();
    let first = *bytes.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(Value::from);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok().map(Value::from);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .ok()
            .map(Value::from)
            .or_else(|| text.parse::<u64>().ok().map(Value::from));
    }
    if is_core_float(digits) {
        return text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    None
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` without the sign.
fn is_core_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_multi_document_stream_with_lines() {
        let text = "a: 1\nb:\n  - x\n  - y: true\n---\nkind: Foo\nmetadata:\n  name: n\n";
        let s = parse_stream(Some("f.yaml"), text);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert_eq!(s.documents.len(), 2);
        assert_eq!(
            s.documents[0].value,
            json!({"a": 1, "b": ["x", {"y": true}]})
        );
        assert_eq!(s.documents[0].line_of("/b/1/y"), 4);
        assert_eq!(s.documents[0].line_of("/b/0"), 3);
        assert_eq!(s.documents[1].line_of("/metadata/name"), 8);
        // A missing field resolves to its nearest ancestor.
        assert_eq!(s.documents[1].line_of("/metadata/namespace"), 7);
        assert_eq!(s.documents[1].index, 1);
    }

    #[test]
    fn resolves_core_schema_scalars() {
        let s = parse_stream(
            None,
            "a: 010\nb: 1.5\nc: '1'\nd: ~\ne: yes\nf: 0x1f\ng: 1e3\nh: .5\ni: -7\nj: !!str 5\n",
        );
        assert_eq!(
            s.documents[0].value,
            json!({"a": 10, "b": 1.5, "c": "1", "d": null, "e": "yes", "f": 31, "g": 1000.0, "h": 0.5, "i": -7, "j": "5"})
        );
    }

    #[test]
    fn reports_error_location_and_keeps_later_documents() {
        let text = "a: 1\n---\nb: [1, 2\nc: 3\n---\nd: 4\n";
        let s = parse_stream(Some("bad.yaml"), text);
        assert_eq!(s.documents.len(), 2, "{:?}", s.documents);
        assert_eq!(s.documents[1].value, json!({"d": 4}));
        assert_eq!(s.documents[1].line_of(""), 6);
        assert_eq!(s.errors.len(), 1);
        let e = &s.errors[0];
        assert_eq!(e.location.file.as_deref(), Some("bad.yaml"));
        assert!(e.location.line >= 3 && e.location.line <= 4, "{e}");
    }

    #[test]
    fn rejects_duplicate_keys_and_alias_bombs() {
        let dup = parse_stream(None, "a: 1\na: 2\n");
        assert_eq!(dup.errors.len(), 1);
        assert!(dup.errors[0].message.contains("duplicate"));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_owned()
            } else {
                format!("l{}", i - 1)
            };
            let refs = vec![format!("*{prev}"); 10].join(", ");
            bomb += &[
                "l",
                &i.to_string(),
                ": &l",
                &i.to_string(),
                " [",
                &refs,
                "]\n",
            ]
            .concat();
        }
        let s = parse_stream(None, &bomb);
        assert_eq!(s.errors.len(), 1);
        assert!(s.errors[0].message.contains("alias expansion"));
    }

    #[test]
    fn json_input_and_escaped_pointers() {
        let s = parse_stream(
            None,
            "{\"metadata\": {\"annotations\": {\"a/b~c\": \"v\"}}}",
        );
        assert_eq!(s.documents.len(), 1);
        assert_eq!(s.documents[0].line_of("/metadata/annotations/a~1b~0c"), 1);
    }

    #[test]
    fn resolves_anchors_and_aliases() {
        let s = parse_stream(None, "base: &b {x: 1}\ncopy: *b\n");
        assert_eq!(
            s.documents[0].value,
            json!({"base": {"x": 1}, "copy": {"x": 1}})
        );
    }
}
