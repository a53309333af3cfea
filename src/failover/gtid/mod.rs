//! MySQL GTID sets: parsing, printing and set algebra, in pure Rust.
//!
//! The failover engine gates every rejoin, repoint and promotion on GTID containment, so
//! this algebra is computed locally (and property-tested) instead of asking a server that
//! may be the very one in doubt.

mod interval;
mod parse;
mod source;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use interval::Interval;
pub use parse::{GtidErrorKind, GtidParseError, MAX_GNO};
pub use source::{Tag, Uuid};

/// Identifies one GNO sequence: a server UUID plus an optional tag. The derived order is
/// MySQL's print order: UUIDs ascending, untagged (`None`) before tags, tags ascending.
type SourceKey = (Uuid, Option<Tag>);

/// A normalized set of GTIDs, as in `@@gtid_executed`.
///
/// Two sets holding the same transactions are always `==`, whatever text they came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GtidSet {
    /// Never holds an empty interval list.
    sources: BTreeMap<SourceKey, Vec<Interval>>,
}

impl GtidSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses MySQL's text form; see [`parse`] for the accepted grammar.
    pub fn parse(text: &str) -> Result<Self, GtidParseError> {
        parse::parse(text)
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Every transaction in `self` or `other`.
    #[must_use]
    pub fn union(&self, other: &GtidSet) -> GtidSet {
        let mut out = self.clone();
        for (key, list) in &other.sources {
            let merged = match out.sources.get(key) {
                Some(mine) => interval::union(mine, list),
                None => list.clone(),
            };
            out.sources.insert(key.clone(), merged);
        }
        out
    }

    /// Transactions in `self` that are not in `other` (MySQL's `GTID_SUBTRACT(self, other)`).
    #[must_use]
    pub fn subtract(&self, other: &GtidSet) -> GtidSet {
        let sources = self
            .sources
            .iter()
            .filter_map(|(key, mine)| {
                let rest = match other.sources.get(key) {
                    Some(theirs) => interval::subtract(mine, theirs),
                    None => mine.clone(),
                };
                (!rest.is_empty()).then(|| (key.clone(), rest))
            })
            .collect();
        GtidSet { sources }
    }

    /// Transactions in both sets.
    #[must_use]
    pub fn intersect(&self, other: &GtidSet) -> GtidSet {
        let sources = self
            .sources
            .iter()
            .filter_map(|(key, mine)| {
                let theirs = other.sources.get(key)?;
                let common = interval::intersect(mine, theirs);
                (!common.is_empty()).then(|| (key.clone(), common))
            })
            .collect();
        GtidSet { sources }
    }

    /// Whether `self ⊇ other`, i.e. MySQL's `GTID_SUBSET(other, self)`.
    pub fn contains(&self, other: &GtidSet) -> bool {
        other.sources.iter().all(|(key, theirs)| {
            self.sources
                .get(key)
                .is_some_and(|mine| interval::covers(mine, theirs))
        })
    }

    /// How many transactions the set holds (saturating at `u64::MAX`).
    pub fn count(&self) -> u64 {
        self.sources
            .values()
            .fold(0u64, |acc, list| acc.saturating_add(interval::count(list)))
    }

    /// Adds one transaction given as text (`uuid`, optional `tag`, `gno`).
    pub fn insert(
        &mut self,
        uuid: &str,
        tag: Option<&str>,
        gno: u64,
    ) -> Result<(), GtidParseError> {
        let invalid = |kind, found: &str| GtidParseError {
            kind,
            offset: 0,
            found: found.to_owned(),
        };
        let uuid = Uuid::parse(uuid).ok_or_else(|| invalid(GtidErrorKind::InvalidUuid, uuid))?;
        let tag = match tag {
            Some(text) => {
                Some(Tag::parse(text).ok_or_else(|| invalid(GtidErrorKind::InvalidTag, text))?)
            }
            None => None,
        };
        self.insert_range(uuid, tag, gno, gno)
    }

    /// Adds the transactions `start..=end` of one source.
    pub fn insert_range(
        &mut self,
        uuid: Uuid,
        tag: Option<Tag>,
        start: u64,
        end: u64,
    ) -> Result<(), GtidParseError> {
        let invalid = |kind| GtidParseError {
            kind,
            offset: 0,
            found: format!("{start}-{end}"),
        };
        if start == 0 || end > MAX_GNO {
            return Err(invalid(GtidErrorKind::GnoOutOfRange));
        }
        if end < start {
            return Err(invalid(GtidErrorKind::ReversedInterval));
        }
        self.insert_interval(uuid, tag, Interval { start, end });
        Ok(())
    }

    /// The (uuid, tag) sources with at least one transaction, in print order.
    pub fn sources(&self) -> impl Iterator<Item = (Uuid, Option<&str>)> {
        self.sources
            .keys()
            .map(|(uuid, tag)| (*uuid, tag.as_ref().map(Tag::as_str)))
    }

    /// The set without any transaction of `uuid` (tagged or not).
    #[must_use]
    pub fn without_uuid(&self, uuid: Uuid) -> GtidSet {
        let sources = self
            .sources
            .iter()
            .filter(|((u, _), _)| *u != uuid)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        GtidSet { sources }
    }

    /// The highest GNO recorded for one source, if any.
    pub fn last_gno(&self, uuid: Uuid, tag: Option<&Tag>) -> Option<u64> {
        self.sources
            .get(&(uuid, tag.cloned()))
            .and_then(|list| list.last())
            .map(|i| i.end)
    }

    /// Adds an already validated interval, keeping the list normalized.
    fn insert_interval(&mut self, uuid: Uuid, tag: Option<Tag>, added: Interval) {
        let list = self.sources.entry((uuid, tag)).or_default();
        // Fast path for the common append-at-the-end case (a server committing in order).
        match list.last_mut() {
            Some(tail)
                if added.start >= tail.start && added.start <= tail.end.saturating_add(1) =>
            {
                tail.end = tail.end.max(added.end);
            }
            Some(tail) if added.start > tail.end => list.push(added),
            None => list.push(added),
            Some(_) => {
                list.push(added);
                interval::normalize(list);
            }
        }
    }
}

impl fmt::Display for GtidSet {
    /// MySQL's canonical order on one line: `uuid:1-5:tag_a:1-3,uuid2:7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous: Option<Uuid> = None;
        for ((uuid, tag), list) in &self.sources {
            if previous != Some(*uuid) {
                if previous.is_some() {
                    f.write_str(",")?;
                }
                write!(f, "{uuid}")?;
                previous = Some(*uuid);
            }
            if let Some(tag) = tag {
                write!(f, ":{tag}")?;
            }
            for i in list {
                if i.start == i.end {
                    write!(f, ":{}", i.start)?;
                } else {
                    write!(f, ":{}-{}", i.start, i.end)?;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for GtidSet {
    type Err = GtidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for GtidSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GtidSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
