//! A verification's sanity check, judged from what the query answered (pure), and the
//! result record a verification leaves in the repository for the operator to read.
//!
//! The query answers one scalar: the first column of its first row, read as an integer; an
//! empty result counts as 0. With a minimum, the scalar must be at least that; without one,
//! the query must return a row (a check that finds nothing proves nothing). Either way it
//! must finish within its time limit.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::api::verification::SanityCheckStatus;

/// Where verification records live, beside `backups/`.
pub const VERIFICATIONS_DIR: &str = "verifications";
/// The record format this build writes and reads.
pub const RECORD_FORMAT: u32 = 1;
/// Bound on reading a record: it is small.
pub const MAX_RECORD_BYTES: u64 = 64 << 10;
/// `resultRow` is cut to this many characters.
const MAX_RESULT_ROW_CHARS: usize = 1024;
/// The time limit when none is given (the CRD's `maxDurationSeconds` default).
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// Failure reasons the reference names.
pub const REASON_FAILED: &str = "SanityCheckFailed";
pub const REASON_TIMEOUT: &str = "SanityCheckTimeout";

/// Why a sanity check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SanityFailure {
    #[error("the sanity query returned no rows")]
    NoRows,
    #[error("the sanity query's first column is NULL, not an integer")]
    Null,
    #[error("the sanity query's first column {value:?} is not an integer")]
    NotAnInteger { value: String },
    #[error("the sanity query returned {value}, less than the minimum {min}")]
    BelowMinimum { value: i64, min: i64 },
    #[error("the sanity query did not finish within {}s (maxDurationSeconds)", limit.as_secs())]
    TimedOut { limit: Duration },
    #[error("the sanity query failed: {0}")]
    Query(String),
}

impl SanityFailure {
    /// The status reason: `SanityCheckTimeout` for a timeout, else `SanityCheckFailed`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TimedOut { .. } => REASON_TIMEOUT,
            _ => REASON_FAILED,
        }
    }
}

/// Judges the first row (its columns as text, `None` for NULL; `None` for no row) against
/// the minimum. Answers the scalar when one was read.
pub fn evaluate(
    first_row: Option<&[Option<String>]>,
    min_value: Option<i64>,
) -> Result<Option<i64>, SanityFailure> {
    let Some(min) = min_value else {
        // No expectation: a row is enough, whatever it holds (the scalar is reported when
        // it reads as one).
        return match first_row {
            None => Err(SanityFailure::NoRows),
            Some(row) => Ok(row.first().and_then(|c| c.as_deref()).and_then(parse)),
        };
    };
    let value = match first_row {
        None => 0,
        Some(row) => match row.first() {
            None | Some(None) => return Err(SanityFailure::Null),
            Some(Some(text)) => parse(text).ok_or_else(|| SanityFailure::NotAnInteger {
                value: cut(text, 64),
            })?,
        },
    };
    if value < min {
        return Err(SanityFailure::BelowMinimum { value, min });
    }
    Ok(Some(value))
}

/// An integer scalar, as `mysql` prints one: surrounding blanks allowed, and a decimal
/// with only zeros after the point (`COUNT(*) * 1.0`, `SUM` of integers) reads as its
/// integer part.
fn parse(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(value) = text.parse() {
        return Some(value);
    }
    let (whole, fraction) = text.split_once('.')?;
    if fraction.is_empty() || !fraction.bytes().all(|b| b == b'0') {
        return None;
    }
    whole.parse().ok()
}

/// The row as `mysql -B -N` prints it: columns tab-separated, NULL as `NULL`, cut to a
/// status-sized length.
pub fn result_row_text(row: &[Option<String>]) -> String {
    let text = row
        .iter()
        .map(|c| c.as_deref().unwrap_or("NULL"))
        .collect::<Vec<_>>()
        .join("\t");
    cut(&text, MAX_RESULT_ROW_CHARS)
}

fn cut(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(chars).collect();
    out.push('…');
    out
}

/// The status of a check that ran: its first row, time and failure.
pub fn status_of(
    first_row: Option<&[Option<String>]>,
    took: Duration,
    failure: Option<&SanityFailure>,
) -> SanityCheckStatus {
    SanityCheckStatus {
        ran: Some(true),
        result_row: first_row.map(result_row_text),
        duration_ms: Some(i64::try_from(took.as_millis()).unwrap_or(i64::MAX)),
        error: failure.map(ToString::to_string),
    }
}

/// What `bloodraven backup verify --record-as NAME` leaves at
/// `verifications/<NAME>.json`, success or failure: the operator cannot read the Job's log,
/// so this is how the outcome reaches the verification's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationRecord {
    pub format: u32,
    /// The NAME the record was written as.
    pub name: String,
    /// The backup that was verified.
    pub backup_id: String,
    pub finished_at: String,
    /// Every check passed.
    pub verified: bool,
    /// `SanityCheckFailed`, `SanityCheckTimeout` or `VerificationFailed`, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rows loaded into the scratch server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_rows: Option<u64>,
    /// The sanity check's outcome, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanity_check: Option<SanityCheckStatus>,
}

/// The record's key for NAME.
pub fn record_key(name: &str) -> String {
    format!("{VERIFICATIONS_DIR}/{name}.json")
}

/// A NAME a record may be written as: a Kubernetes-style name, optionally with its UID
/// (lower-case letters, digits, `-` and `.`, starting with a letter or digit, at most 300).
pub fn is_valid_record_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 300
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
}

/// The NAME the operator records a verification as: its name and UID, so a verification
/// deleted and created again under the same name (or one of the same name in another
/// namespace sharing the repository) never reads another's record.
pub fn record_name(verification: &str, uid: Option<&str>) -> String {
    match uid.filter(|u| !u.is_empty()) {
        Some(uid) => format!("{verification}.{}", uid.to_ascii_lowercase()),
        None => verification.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[Option<&str>]) -> Vec<Option<String>> {
        cells.iter().map(|c| c.map(str::to_owned)).collect()
    }

    #[test]
    fn the_scalar_is_the_first_column_of_the_first_row() {
        let r = row(&[Some("42"), Some("x")]);
        assert_eq!(evaluate(Some(&r), Some(10)), Ok(Some(42)));
        assert_eq!(evaluate(Some(&r), Some(42)), Ok(Some(42)));
        assert_eq!(
            evaluate(Some(&r), Some(43)),
            Err(SanityFailure::BelowMinimum { value: 42, min: 43 })
        );
        assert_eq!(
            evaluate(Some(&row(&[Some(" 7.000 ")])), Some(7)),
            Ok(Some(7))
        );
        assert_eq!(evaluate(Some(&row(&[Some("-3")])), Some(0)).ok(), None);
    }

    #[test]
    fn an_empty_result_counts_as_zero_with_a_minimum_and_fails_without() {
        assert_eq!(evaluate(None, Some(0)), Ok(Some(0)));
        assert_eq!(
            evaluate(None, Some(1)),
            Err(SanityFailure::BelowMinimum { value: 0, min: 1 })
        );
        assert_eq!(evaluate(None, None), Err(SanityFailure::NoRows));
    }

    #[test]
    fn a_value_that_is_not_an_integer_is_named() {
        let failure = evaluate(Some(&row(&[Some("second")])), Some(1)).unwrap_err();
        assert!(failure.to_string().contains("\"second\""), "{failure}");
        assert_eq!(
            evaluate(Some(&row(&[Some("1.5")])), Some(1)),
            Err(SanityFailure::NotAnInteger {
                value: "1.5".into()
            })
        );
        assert_eq!(
            evaluate(Some(&row(&[None])), Some(1)),
            Err(SanityFailure::Null)
        );
        // Without a minimum any row passes, as before.
        assert_eq!(evaluate(Some(&row(&[Some("second")])), None), Ok(None));
        assert_eq!(evaluate(Some(&row(&[None])), None), Ok(None));
    }

    #[test]
    fn a_timeout_has_its_own_reason_and_names_the_limit() {
        let failure = SanityFailure::TimedOut {
            limit: Duration::from_secs(1),
        };
        assert_eq!(failure.reason(), REASON_TIMEOUT);
        assert!(failure.to_string().contains("1s"), "{failure}");
        assert_eq!(SanityFailure::NoRows.reason(), REASON_FAILED);
    }

    #[test]
    fn the_result_row_reads_like_the_mysql_client() {
        assert_eq!(
            result_row_text(&row(&[Some("3"), None, Some("a b")])),
            "3\tNULL\ta b"
        );
        let long = "x".repeat(2000);
        assert_eq!(
            result_row_text(&row(&[Some(&long)])).chars().count(),
            MAX_RESULT_ROW_CHARS + 1
        );
        let status = status_of(
            None,
            Duration::from_millis(12),
            Some(&SanityFailure::NoRows),
        );
        assert_eq!(status.ran, Some(true));
        assert_eq!(status.duration_ms, Some(12));
        assert_eq!(status.result_row, None);
        assert!(status.error.is_some());
    }

    #[test]
    fn record_names_are_safe_keys_and_carry_the_uid() {
        assert!(is_valid_record_name("orders-verify-1"));
        assert!(is_valid_record_name(&record_name(
            "orders-verify-1",
            Some("5F1C0A2E-0000-4000-8000-000000000001")
        )));
        assert!(!is_valid_record_name("../backups/x"));
        assert!(!is_valid_record_name("a/b"));
        assert!(!is_valid_record_name(".hidden"));
        assert!(!is_valid_record_name(""));
        assert_eq!(record_name("v", None), "v");
        assert_eq!(record_key("v.abc"), "verifications/v.abc.json");
    }

    #[test]
    fn the_record_is_camel_case_and_round_trips() {
        let record = VerificationRecord {
            format: RECORD_FORMAT,
            name: "v".into(),
            backup_id: "20261202T153000Z-1a2b".into(),
            finished_at: "2026-12-02T15:31:00Z".into(),
            verified: false,
            reason: Some(REASON_FAILED.into()),
            error: Some("no rows".into()),
            restored_rows: Some(3),
            sanity_check: Some(status_of(None, Duration::from_millis(5), None)),
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["backupId"], "20261202T153000Z-1a2b");
        assert_eq!(json["sanityCheck"]["durationMs"], 5);
        assert_eq!(
            serde_json::from_value::<VerificationRecord>(json).unwrap(),
            record
        );
    }
}
