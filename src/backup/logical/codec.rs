//! The chunk row format: what `LOAD DATA LOCAL INFILE` reads with its default options
//! (`FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'`, no enclosing).
//!
//! A row is its fields separated by a tab and ended by a newline. SQL NULL is `\N`. In a
//! value, backslash, tab, newline, carriage return, NUL and Ctrl-Z are written as `\\`, `\t`,
//! `\n`, `\r`, `\0` and `\Z`; every other byte is written as itself. So a value can hold any
//! bytes, and a value that reads `\N` is written `\\N`, which `LOAD DATA` does not take for
//! NULL. Binary columns are hex-encoded before they get here (see
//! [`super::ColumnEncoding`]), but the format does not depend on that.

/// A chunk that is not in the row format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("the last row has no line end (byte {offset})")]
    Unterminated { offset: usize },
    #[error("a backslash ends the data (byte {offset})")]
    DanglingEscape { offset: usize },
}

/// Appends one field (`None` is SQL NULL), escaped.
pub fn push_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(mut rest) = value else {
        out.extend_from_slice(b"\\N");
        return;
    };
    out.reserve(rest.len());
    // Most values hold nothing to escape: copy the runs between escapes whole rather than
    // pushing byte by byte (the dump's hottest loop).
    while let Some(at) = first_escape(rest) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(escape(rest[at]).unwrap_or_default());
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

/// The offset of the first byte of `bytes` that [`escape`] rewrites. Eight bytes at a
/// time: every such byte is below 0x20 or is a backslash, and two word-wide tests (the
/// classic "has a byte less than n" and "has a zero byte") say whether a word may hold
/// one. They never miss one; a word they flag is checked byte by byte.
fn first_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        // chunks_exact hands out eight bytes; a zero word would only cost a byte scan.
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
        let backslashes = word ^ (ONES * u64::from(b'\\'));
        let backslash = backslashes.wrapping_sub(ONES) & !backslashes & HIGHS;
        if below_space | backslash != 0
            && let Some(at) = chunk.iter().position(|&byte| escape(byte).is_some())
        {
            return Some(offset + at);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&byte| escape(byte).is_some())
        .map(|at| offset + at)
}

/// How `byte` is written inside a value, when not as itself.
const fn escape(byte: u8) -> Option<&'static [u8]> {
    match byte {
        b'\\' => Some(b"\\\\"),
        b'\t' => Some(b"\\t"),
        b'\n' => Some(b"\\n"),
        b'\r' => Some(b"\\r"),
        0 => Some(b"\\0"),
        0x1a => Some(b"\\Z"),
        _ => None,
    }
}

/// Appends one row: its fields, tab-separated, and the line end.
pub fn push_row<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = Option<&'a [u8]>>) {
    for (index, field) in fields.into_iter().enumerate() {
        if index > 0 {
            out.push(b'\t');
        }
        push_field(out, field);
    }
    out.push(b'\n');
}

/// The rows of a chunk. A load does not need this (the server parses), but it is the
/// specification of the format the tests hold [`push_row`] to.
pub fn decode(data: &[u8]) -> Result<Vec<Vec<Option<Vec<u8>>>>, CodecError> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = Vec::new();
    // Where the current field starts in `data`: a field whose raw bytes are exactly `\N`
    // is NULL, whatever else is escaped.
    let mut field_start = 0;
    let mut index = 0;
    while index < data.len() {
        match data[index] {
            b'\\' => {
                let Some(&next) = data.get(index + 1) else {
                    return Err(CodecError::DanglingEscape { offset: index });
                };
                field.push(match next {
                    b'0' => 0,
                    b'b' => 0x08,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'Z' => 0x1a,
                    other => other,
                });
                index += 2;
                continue;
            }
            separator @ (b'\t' | b'\n') => {
                if &data[field_start..index] == b"\\N" {
                    row.push(None);
                    field.clear();
                } else {
                    row.push(Some(std::mem::take(&mut field)));
                }
                if separator == b'\n' {
                    rows.push(std::mem::take(&mut row));
                }
                field_start = index + 1;
            }
            other => field.push(other),
        }
        index += 1;
    }
    if field_start != data.len() || !row.is_empty() {
        return Err(CodecError::Unterminated { offset: data.len() });
    }
    Ok(rows)
}

/// The number of rows in a chunk (its unescaped line ends), checked before a load so that a
/// chunk that does not match its record is refused before any of it is written.
pub fn count_rows(data: &[u8]) -> Result<u64, CodecError> {
    let mut rows = 0u64;
    let mut at_row_end = true;
    let mut index = 0;
    while index < data.len() {
        at_row_end = false;
        match data[index] {
            b'\\' if index + 1 >= data.len() => {
                return Err(CodecError::DanglingEscape { offset: index });
            }
            b'\\' => index += 1,
            b'\n' => {
                rows += 1;
                at_row_end = true;
            }
            _ => {}
        }
        index += 1;
    }
    if at_row_end {
        Ok(rows)
    } else {
        Err(CodecError::Unterminated { offset: data.len() })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encode(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut out = Vec::new();
        for row in rows {
            push_row(&mut out, row.iter().map(Option::as_deref));
        }
        out
    }

    #[test]
    fn escapes_what_load_data_interprets() {
        let mut out = Vec::new();
        push_row(
            &mut out,
            [
                Some(&b"a\tb\nc\\d\0e\rf\x1ag"[..]),
                None,
                Some(b"\\N"),
                Some(b""),
                Some(b"N"),
            ],
        );
        assert_eq!(out, b"a\\tb\\nc\\\\d\\0e\\rf\\Zg\t\\N\t\\\\N\t\tN\n");
    }

    #[test]
    fn null_only_when_alone() {
        let rows = decode(b"\\N\t\\Nx\tx\\N\t\\\\N\n").expect("decodes");
        assert_eq!(
            rows,
            vec![vec![
                None,
                Some(b"Nx".to_vec()),
                Some(b"xN".to_vec()),
                Some(b"\\N".to_vec())
            ]]
        );
    }

    #[test]
    fn refuses_truncated_chunks() {
        assert_eq!(decode(b"a\tb"), Err(CodecError::Unterminated { offset: 3 }));
        assert_eq!(
            count_rows(b"a\n\\"),
            Err(CodecError::DanglingEscape { offset: 2 })
        );
        assert_eq!(
            count_rows(b"a\nb"),
            Err(CodecError::Unterminated { offset: 3 })
        );
        // A line end that is escaped does not end the row.
        assert_eq!(
            count_rows(b"a\\\n"),
            Err(CodecError::Unterminated { offset: 3 })
        );
        assert_eq!(count_rows(b"a\\\\\n"), Ok(1));
        assert_eq!(count_rows(b""), Ok(0));
    }

    fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
        let tricky = prop::sample::select(vec![
            b"\\N".to_vec(),
            b"N".to_vec(),
            b"\\".to_vec(),
            b"\t".to_vec(),
            b"\n".to_vec(),
            b"\0".to_vec(),
            b"\r\n".to_vec(),
            "😀 ünï".as_bytes().to_vec(),
            Vec::new(),
        ]);
        prop_oneof![
            1 => Just(None),
            2 => tricky.prop_map(Some),
            4 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Some),
            2 => prop::collection::vec(
                prop::sample::select(b"\\N\t\n\r\0\x1azZ0bt".to_vec()), 0..8
            ).prop_map(Some),
        ]
    }

    fn rows() -> impl Strategy<Value = Vec<Vec<Option<Vec<u8>>>>> {
        (1usize..5).prop_flat_map(|width| {
            prop::collection::vec(prop::collection::vec(value(), width), 0..12)
        })
    }

    proptest! {
        #[test]
        fn the_word_scan_finds_what_a_byte_scan_finds(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(
                first_escape(&bytes),
                bytes.iter().position(|&b| escape(b).is_some())
            );
        }

        #[test]
        fn the_word_scan_finds_a_lone_escape_anywhere(len in 0usize..40, at in 0usize..40, pick in 0usize..6) {
            let escapes = [b'\\', b'\t', b'\n', b'\r', 0u8, 0x1a];
            let mut bytes = vec![b'a'; len.max(at + 1)];
            bytes[at] = escapes[pick];
            prop_assert_eq!(first_escape(&bytes), Some(at));
            // Bytes just around the escapes' values are never taken for one.
            let near: Vec<u8> = [0x1f_u8, 0x20, 0x5b, 0x5d, 0x7f, 0x80, 0xff, 0x01, 0x1b].repeat(len / 9 + 1);
            prop_assert_eq!(first_escape(&near), near.iter().position(|&b| escape(b).is_some()));
        }

        #[test]
        fn round_trips_any_bytes(rows in rows()) {
            let data = encode(&rows);
            prop_assert_eq!(decode(&data).expect("decodes"), rows.clone());
            prop_assert_eq!(count_rows(&data).expect("counts"), rows.len() as u64);
        }

        #[test]
        fn fields_and_rows_never_leak_separators(rows in rows()) {
            // Every tab and line end in the output is a separator: the number of unescaped
            // tabs is exactly (width - 1) per row.
            let data = encode(&rows);
            let mut tabs = 0usize;
            let mut index = 0;
            while index < data.len() {
                match data[index] {
                    b'\\' => index += 1,
                    b'\t' => tabs += 1,
                    _ => {}
                }
                index += 1;
            }
            let expected: usize = rows.iter().map(|r| r.len() - 1).sum();
            prop_assert_eq!(tabs, expected);
        }

        #[test]
        fn truncation_is_detected(rows in rows(), cut in any::<prop::sample::Index>()) {
            let data = encode(&rows);
            prop_assume!(!data.is_empty());
            let at = cut.index(data.len());
            let truncated = &data[..at];
            // A cut at a row boundary is a valid, shorter chunk: its count differs.
            if let Ok(n) = count_rows(truncated) {
                prop_assert!(n < rows.len() as u64);
            }
        }
    }
}
