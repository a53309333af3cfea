//! The two halves of a GTID's source: the server UUID and the optional MySQL 8.4+ tag.

use std::fmt;

/// A server UUID, stored as a number so ordering matches MySQL's (lower-case hex order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(u128);

impl Uuid {
    /// Length of the canonical `8-4-4-4-12` text form.
    pub const TEXT_LEN: usize = 36;

    /// The UUID whose 128-bit big-endian value is `value`.
    pub const fn from_u128(value: u128) -> Self {
        Self(value)
    }

    /// Parses the canonical dashed form, either case. `None` when the shape is wrong.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != Self::TEXT_LEN {
            return None;
        }
        let mut value: u128 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if b != b'-' {
                    return None;
                }
                continue;
            }
            let digit = char::from(b).to_digit(16)?;
            value = (value << 4) | u128::from(digit);
        }
        Some(Self(value))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

/// A GTID tag (MySQL 8.4+): `[a-z_][a-z0-9_]{0,31}`, stored lower-case because MySQL
/// compares tags case-insensitively and prints them lower-case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    /// The longest tag MySQL accepts.
    pub const MAX_LEN: usize = 32;

    /// Validates and lower-cases a tag. `None` when the syntax is wrong.
    pub fn parse(text: &str) -> Option<Self> {
        let mut chars = text.chars();
        let first = chars.next()?;
        let valid = text.len() <= Self::MAX_LEN
            && (first.is_ascii_alphabetic() || first == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        valid.then(|| Self(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_round_trips_lower_case() {
        let parsed = Uuid::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562");
        assert_eq!(
            parsed.map(|u| u.to_string()).as_deref(),
            Some("3e11fa47-71ca-11e1-9e33-c80aa9429562")
        );
    }

    #[test]
    fn uuid_rejects_bad_shapes() {
        for bad in [
            "",
            "3e11fa47-71ca-11e1-9e33-c80aa942956",
            "3e11fa4771ca-11e1-9e33-c80aa94295622",
            "3e11fa47-71ca-11e1-9e33-c80aa942956g",
            "3e11fa47_71ca-11e1-9e33-c80aa9429562",
        ] {
            assert_eq!(Uuid::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn tag_syntax() {
        assert_eq!(Tag::parse("Tag_A1").map(|t| t.0), Some("tag_a1".to_owned()));
        assert!(Tag::parse("_x").is_some());
        assert!(Tag::parse(&"a".repeat(32)).is_some());
        assert!(Tag::parse(&"a".repeat(33)).is_none());
        assert!(Tag::parse("1abc").is_none());
        assert!(Tag::parse("a-b").is_none());
        assert!(Tag::parse("").is_none());
    }
}
