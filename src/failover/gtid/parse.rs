//! Parsing the text MySQL prints for `@@gtid_executed` and accepts in `GTID_SUBTRACT`.
//!
//! Grammar (whitespace is allowed between any two tokens, empty entries are skipped):
//!
//! ```text
//! set      := "" | entry ("," entry)*
//! entry    := uuid (":" element)+
//! element  := tag | gno ["-" gno]
//! ```
//!
//! A tag switches the tag for the intervals that follow it within the entry, so
//! `uuid:1-5:tag_a:1-3:7` is untagged 1-5 plus `tag_a` 1-3 and 7. A tag must be followed by
//! at least one interval.

use std::fmt;

use super::GtidSet;
use super::interval::Interval;
use super::source::{Tag, Uuid};
use crate::error::{Categorized, Category};

/// The largest GNO MySQL can hold (GNOs are positive signed 64-bit integers).
pub const MAX_GNO: u64 = (1 << 63) - 1;

/// What was wrong at the reported position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GtidErrorKind {
    /// Not a `8-4-4-4-12` hexadecimal UUID.
    InvalidUuid,
    /// A tag that is not `[A-Za-z_][A-Za-z0-9_]{0,31}`.
    InvalidTag,
    /// A UUID or tag with no interval after it.
    MissingInterval,
    /// A transaction number that is zero or does not fit below 2^63.
    GnoOutOfRange,
    /// An interval whose end is below its start.
    ReversedInterval,
    /// A character that cannot appear here.
    UnexpectedCharacter,
}

impl fmt::Display for GtidErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidUuid => "expected a UUID like 3e11fa47-71ca-11e1-9e33-c80aa9429562",
            Self::InvalidTag => "expected a tag of at most 32 letters, digits or underscores, not starting with a digit",
            Self::MissingInterval => "expected ':' and at least one interval",
            Self::GnoOutOfRange => "transaction numbers must be between 1 and 2^63-1",
            Self::ReversedInterval => "interval end is below its start",
            Self::UnexpectedCharacter => "unexpected character",
        })
    }
}

/// A GTID set that could not be parsed, with where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid GTID set at byte {offset}: {kind} (found {found:?})")]
pub struct GtidParseError {
    pub kind: GtidErrorKind,
    /// Byte offset into the input where the problem starts.
    pub offset: usize,
    /// The offending text (shortened), or `end of input`.
    pub found: String,
}

impl Categorized for GtidParseError {
    fn category(&self) -> Category {
        Category::InvalidInput
    }
}

/// How much of the offending text an error quotes.
const QUOTE_LEN: usize = 40;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Consumes the longest run of bytes matching `accept` and returns it.
    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        // Only ASCII bytes are accepted, so the slice is on char boundaries.
        &self.text[start..self.pos]
    }

    fn error_at(&self, kind: GtidErrorKind, offset: usize, token: Option<&str>) -> GtidParseError {
        let found = match token {
            Some(t) if !t.is_empty() => shorten(t),
            _ => match self.text.get(offset..) {
                Some(rest) if !rest.is_empty() => shorten(rest),
                _ => "end of input".to_owned(),
            },
        };
        GtidParseError {
            kind,
            offset,
            found,
        }
    }

    fn parse_set(&mut self) -> Result<GtidSet, GtidParseError> {
        let mut set = GtidSet::new();
        loop {
            self.skip_whitespace();
            match self.peek() {
                None => return Ok(set),
                // MySQL tolerates empty entries such as a trailing comma.
                Some(b',') => self.pos += 1,
                Some(_) => {
                    self.parse_entry(&mut set)?;
                    self.skip_whitespace();
                    match self.peek() {
                        None | Some(b',') => {}
                        Some(_) => {
                            return Err(self.error_at(
                                GtidErrorKind::UnexpectedCharacter,
                                self.pos,
                                None,
                            ));
                        }
                    }
                }
            }
        }
    }

    fn parse_entry(&mut self, set: &mut GtidSet) -> Result<(), GtidParseError> {
        let uuid_at = self.pos;
        let uuid_text = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'-');
        let uuid = Uuid::parse(uuid_text)
            .ok_or_else(|| self.error_at(GtidErrorKind::InvalidUuid, uuid_at, Some(uuid_text)))?;
        self.skip_whitespace();
        if self.peek() != Some(b':') {
            return Err(self.error_at(GtidErrorKind::MissingInterval, self.pos, None));
        }
        let mut tag: Option<Tag> = None;
        // Where the current tag started, while it still has no interval.
        let mut tag_without_interval: Option<usize> = None;
        while self.peek() == Some(b':') {
            self.pos += 1;
            self.skip_whitespace();
            let element_at = self.pos;
            match self.peek() {
                Some(b) if b.is_ascii_digit() => {
                    let interval = self.parse_interval()?;
                    set.insert_interval(uuid, tag.clone(), interval);
                    tag_without_interval = None;
                }
                Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                    if let Some(at) = tag_without_interval {
                        return Err(self.error_at(GtidErrorKind::MissingInterval, at, None));
                    }
                    let word = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
                    tag = Some(Tag::parse(word).ok_or_else(|| {
                        self.error_at(GtidErrorKind::InvalidTag, element_at, Some(word))
                    })?);
                    tag_without_interval = Some(element_at);
                }
                _ => {
                    return Err(self.error_at(GtidErrorKind::MissingInterval, element_at, None));
                }
            }
            self.skip_whitespace();
        }
        match tag_without_interval {
            Some(at) => Err(self.error_at(GtidErrorKind::MissingInterval, at, None)),
            None => Ok(()),
        }
    }

    fn parse_interval(&mut self) -> Result<Interval, GtidParseError> {
        let start_at = self.pos;
        let start = self.parse_gno()?;
        self.skip_whitespace();
        if self.peek() != Some(b'-') {
            return Ok(Interval { start, end: start });
        }
        self.pos += 1;
        self.skip_whitespace();
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.error_at(GtidErrorKind::UnexpectedCharacter, self.pos, None));
        }
        let end = self.parse_gno()?;
        if end < start {
            let text = &self.text[start_at..self.pos];
            return Err(self.error_at(GtidErrorKind::ReversedInterval, start_at, Some(text)));
        }
        Ok(Interval { start, end })
    }

    fn parse_gno(&mut self) -> Result<u64, GtidParseError> {
        let at = self.pos;
        let digits = self.take_while(|b| b.is_ascii_digit());
        match digits.parse::<u64>() {
            Ok(gno) if (1..=MAX_GNO).contains(&gno) => Ok(gno),
            _ => Err(self.error_at(GtidErrorKind::GnoOutOfRange, at, Some(digits))),
        }
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(QUOTE_LEN).collect()
}

pub(super) fn parse(text: &str) -> Result<GtidSet, GtidParseError> {
    Parser { text, pos: 0 }.parse_set()
}
