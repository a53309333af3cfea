//! The byte layouts of the client protocol this reader needs, as pure functions over one
//! packet's payload: length-encoded integers and strings, a text-protocol row, and the
//! OK, EOF and ERR packets that end a command. Everything is bounds-checked: a hostile or
//! broken server gets a [`FrameError`], never a panic.

/// A payload of this length continues in the next packet.
pub(super) const MAX_PAYLOAD: usize = 0x00ff_ffff;

/// `SERVER_MORE_RESULTS_EXISTS`: another result follows this one.
pub(super) const MORE_RESULTS: u16 = 0x0008;

const OK_HEADER: u8 = 0x00;
const EOF_HEADER: u8 = 0xfe;
const ERR_HEADER: u8 = 0xff;
const NULL_FIELD: u8 = 0xfb;

/// A payload that does not have the layout its place in the exchange requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} packet: {problem}")]
pub struct FrameError {
    pub what: &'static str,
    pub problem: String,
}

fn malformed(what: &'static str, problem: impl Into<String>) -> FrameError {
    FrameError {
        what,
        problem: problem.into(),
    }
}

/// What a packet that can end a command says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reply {
    /// OK (or, in a result set, its terminator), with the server's status flags.
    Done { status: u16 },
    /// The server refused the command.
    Error(ServerError),
    /// Anything else: a result set's column count, or a row.
    Other,
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub code: u16,
    pub message: String,
}

/// Reads a length-encoded integer at `*at`, moving `*at` past it. `None` for the NULL
/// marker (`0xfb`).
fn lenenc(payload: &[u8], at: &mut usize, what: &'static str) -> Result<Option<u64>, FrameError> {
    let first = *payload
        .get(*at)
        .ok_or_else(|| malformed(what, format!("ends at byte {at} inside a length", at = *at)))?;
    let width = match first {
        0..=0xfa => {
            *at += 1;
            return Ok(Some(u64::from(first)));
        }
        NULL_FIELD => {
            *at += 1;
            return Ok(None);
        }
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        0xff => {
            return Err(malformed(
                what,
                format!("0xff is not a length (byte {at})", at = *at),
            ));
        }
    };
    let start = *at + 1;
    let bytes = payload
        .get(start..start + width)
        .ok_or_else(|| malformed(what, format!("ends at byte {start} inside a length")))?;
    let mut value = [0u8; 8];
    value[..width].copy_from_slice(bytes);
    *at = start + width;
    Ok(Some(u64::from_le_bytes(value)))
}

/// Classifies the first reply to a command: OK, ERR, or the start of a result set.
pub(super) fn reply(payload: &[u8]) -> Result<Reply, FrameError> {
    match payload.first() {
        Some(&ERR_HEADER) => error_packet(payload).map(Reply::Error),
        Some(&OK_HEADER) => ok_packet(payload),
        Some(_) => Ok(Reply::Other),
        None => Err(malformed("reply", "empty payload")),
    }
}

/// Classifies a packet inside a result set: its end (OK or EOF), ERR, or a row.
///
/// A row can start with `0x00` (an empty first field) and with `0xfe` (a first field of
/// 2^24 bytes or more), but such a row is at least [`MAX_PAYLOAD`] long, so a shorter
/// `0xfe` payload is always the end.
pub(super) fn row_end(payload: &[u8]) -> Result<Reply, FrameError> {
    match payload.first() {
        Some(&ERR_HEADER) => error_packet(payload).map(Reply::Error),
        Some(&EOF_HEADER) if payload.len() < 9 => {
            // The pre-`CLIENT_DEPRECATE_EOF` EOF packet: warnings, then status.
            let status = payload
                .get(3..5)
                .ok_or_else(|| malformed("EOF", "no status flags"))?;
            Ok(Reply::Done {
                status: u16::from_le_bytes([status[0], status[1]]),
            })
        }
        Some(&EOF_HEADER) if payload.len() < MAX_PAYLOAD => ok_packet(payload),
        Some(_) => Ok(Reply::Other),
        None => Err(malformed("row", "empty payload")),
    }
}

fn ok_packet(payload: &[u8]) -> Result<Reply, FrameError> {
    let mut at = 1;
    lenenc(payload, &mut at, "OK")?; // affected rows
    lenenc(payload, &mut at, "OK")?; // last insert id
    let status = payload
        .get(at..at + 2)
        .ok_or_else(|| malformed("OK", "no status flags"))?;
    Ok(Reply::Done {
        status: u16::from_le_bytes([status[0], status[1]]),
    })
}

/// An ERR packet (`CLIENT_PROTOCOL_41`: code, `#` and a five-byte SQL state, message).
pub(super) fn error_packet(payload: &[u8]) -> Result<ServerError, FrameError> {
    let code = payload
        .get(1..3)
        .ok_or_else(|| malformed("ERR", "no error code"))?;
    let code = u16::from_le_bytes([code[0], code[1]]);
    let rest = payload.get(3..).unwrap_or_default();
    let message = match rest.first() {
        Some(b'#') => rest.get(6..).unwrap_or_default(),
        _ => rest,
    };
    Ok(ServerError {
        code,
        message: String::from_utf8_lossy(message).into_owned(),
    })
}

/// The column count that starts a result set.
pub(super) fn column_count(payload: &[u8]) -> Result<usize, FrameError> {
    let mut at = 0;
    let count = lenenc(payload, &mut at, "column count")?
        .ok_or_else(|| malformed("column count", "NULL"))?;
    if at != payload.len() || count == 0 {
        return Err(malformed(
            "column count",
            format!("{} bytes for a count of {count}", payload.len()),
        ));
    }
    usize::try_from(count).map_err(|_| malformed("column count", count.to_string()))
}

/// Where each field of a text-protocol row lies in `payload` (`None`: SQL NULL), written
/// into `fields`. The row must have exactly `columns` fields and nothing after them.
pub(super) fn row_fields(
    payload: &[u8],
    columns: usize,
    fields: &mut Vec<Option<(usize, usize)>>,
) -> Result<(), FrameError> {
    fields.clear();
    let mut at = 0;
    while at < payload.len() {
        if fields.len() == columns {
            return Err(malformed(
                "row",
                format!("more than {columns} fields (byte {at})"),
            ));
        }
        let field = match lenenc(payload, &mut at, "row")? {
            None => None,
            Some(length) => {
                let end = usize::try_from(length)
                    .ok()
                    .and_then(|length| at.checked_add(length))
                    .filter(|end| *end <= payload.len())
                    .ok_or_else(|| {
                        malformed(
                            "row",
                            format!("a field of {length} bytes at byte {at} overruns the packet"),
                        )
                    })?;
                let span = (at, end);
                at = end;
                Some(span)
            }
        };
        fields.push(field);
    }
    if fields.len() != columns {
        return Err(malformed(
            "row",
            format!("{} fields for {columns} columns", fields.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_field(out: &mut Vec<u8>, field: Option<&[u8]>) {
        let Some(bytes) = field else {
            out.push(NULL_FIELD);
            return;
        };
        let length = bytes.len() as u64;
        match length {
            0..=0xfa => out.push(u8::try_from(length).unwrap()),
            0xfb..=0xffff => {
                out.push(0xfc);
                out.extend_from_slice(&length.to_le_bytes()[..2]);
            }
            0x1_0000..=0xff_ffff => {
                out.push(0xfd);
                out.extend_from_slice(&length.to_le_bytes()[..3]);
            }
            _ => {
                out.push(0xfe);
                out.extend_from_slice(&length.to_le_bytes());
            }
        }
        out.extend_from_slice(bytes);
    }

    fn fields_of(payload: &[u8], columns: usize) -> Result<Vec<Option<Vec<u8>>>, FrameError> {
        let mut spans = Vec::new();
        row_fields(payload, columns, &mut spans)?;
        Ok(spans
            .into_iter()
            .map(|span| span.map(|(a, b)| payload[a..b].to_vec()))
            .collect())
    }

    #[test]
    fn a_row_reads_back_its_fields_nulls_and_empty_strings() {
        let long = vec![b'x'; 300];
        let row: Vec<Option<&[u8]>> = vec![Some(b"42"), None, Some(b""), Some(&long)];
        let mut payload = Vec::new();
        for field in &row {
            encode_field(&mut payload, *field);
        }
        let read = fields_of(&payload, 4).unwrap();
        let expected: Vec<Option<Vec<u8>>> = row.iter().map(|f| f.map(<[u8]>::to_vec)).collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_row_with_the_wrong_field_count_or_a_short_field_is_refused() {
        let mut payload = Vec::new();
        encode_field(&mut payload, Some(b"ab"));
        encode_field(&mut payload, Some(b"cd"));
        assert!(
            fields_of(&payload, 3)
                .unwrap_err()
                .problem
                .contains("2 fields for 3")
        );
        assert!(
            fields_of(&payload, 1)
                .unwrap_err()
                .problem
                .contains("more than 1")
        );
        let cut = &payload[..payload.len() - 1];
        assert!(fields_of(cut, 2).unwrap_err().problem.contains("overruns"));
        assert!(
            fields_of(&[0xff], 1)
                .unwrap_err()
                .problem
                .contains("not a length")
        );
        assert!(
            fields_of(&[0xfc, 0x01], 1)
                .unwrap_err()
                .problem
                .contains("inside a length")
        );
    }

    #[test]
    fn replies_are_told_apart() {
        // OK: header, affected rows, insert id, status, warnings.
        assert_eq!(
            reply(&[0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]).unwrap(),
            Reply::Done { status: 2 }
        );
        let mut err = vec![0xff, 0x15, 0x04, b'#'];
        err.extend_from_slice(b"28000Access denied");
        let denied = Reply::Error(ServerError {
            code: 1045,
            message: "Access denied".into(),
        });
        assert_eq!(reply(&err).unwrap(), denied);
        assert_eq!(row_end(&err).unwrap(), denied);
        assert_eq!(reply(&[0x06]).unwrap(), Reply::Other);
        assert!(reply(&[]).is_err());
        assert!(reply(&[0xff]).is_err());
        assert!(reply(&[0x00, 0xfc]).is_err());
    }

    #[test]
    fn a_result_set_ends_with_an_ok_or_an_eof_and_rows_are_not_mistaken_for_either() {
        // The terminator under CLIENT_DEPRECATE_EOF: an OK with 0xfe.
        assert_eq!(
            row_end(&[0xfe, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00]).unwrap(),
            Reply::Done { status: 10 }
        );
        // The old five-byte EOF: warnings, then status.
        assert_eq!(
            row_end(&[0xfe, 0x00, 0x00, 0x08, 0x00]).unwrap(),
            Reply::Done { status: 8 }
        );
        // A row whose first field is empty starts like an OK packet.
        assert_eq!(row_end(&[0x00, 0x01, b'x']).unwrap(), Reply::Other);
        assert_eq!(row_end(&[0x02, b'4', b'2']).unwrap(), Reply::Other);
        assert!(row_end(&[0xfe, 0x00]).is_err());
    }

    #[test]
    fn a_column_count_is_one_positive_length() {
        assert_eq!(column_count(&[0x06]).unwrap(), 6);
        assert_eq!(column_count(&[0xfc, 0x00, 0x01]).unwrap(), 256);
        assert!(column_count(&[0x00]).is_err());
        assert!(column_count(&[0x06, 0x00]).is_err());
        assert!(column_count(&[NULL_FIELD]).is_err());
    }

    proptest! {
        /// Any row encodes and reads back exactly.
        #[test]
        fn rows_round_trip(row in proptest::collection::vec(
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..400)), 1..12)) {
            let mut payload = Vec::new();
            for field in &row {
                encode_field(&mut payload, field.as_deref());
            }
            prop_assert_eq!(fields_of(&payload, row.len()).unwrap(), row);
        }

        /// Arbitrary bytes never panic the parsers, and every span they accept is inside
        /// the payload.
        #[test]
        fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..300),
                                          columns in 1usize..8) {
            let mut spans = Vec::new();
            if row_fields(&payload, columns, &mut spans).is_ok() {
                prop_assert_eq!(spans.len(), columns);
                for (a, b) in spans.into_iter().flatten() {
                    prop_assert!(a <= b && b <= payload.len());
                }
            }
            let _ = reply(&payload);
            let _ = row_end(&payload);
            let _ = column_count(&payload);
        }
    }
}
