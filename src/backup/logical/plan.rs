//! How a table is cut into chunks, and where each artifact goes.
//!
//! A table with a single-column integer primary key is split into key ranges planned from
//! its MIN and MAX, so several workers can read it at once. The first range has no lower
//! bound and the last no upper bound: the plan decides only how the work is spread, never
//! which rows are dumped, so a MIN/MAX read outside the snapshot cannot lose a row. A range
//! (or a whole table, when it cannot be split) is still cut into chunks by size as it is
//! read, so no chunk grows much past the target however skewed the keys are.

use std::fmt::Write as _;

/// A half-open primary-key range `[lower, upper)`; `None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    pub lower: Option<i128>,
    pub upper: Option<i128>,
}

impl KeyRange {
    pub const ALL: Self = Self {
        lower: None,
        upper: None,
    };
}

/// Splits the keys `min..=max` into at most `pieces` contiguous ranges of about equal
/// width, covering every integer (the outer ranges are unbounded).
pub fn split_key_range(min: i128, max: i128, pieces: u64) -> Vec<KeyRange> {
    if max <= min || pieces <= 1 {
        return vec![KeyRange::ALL];
    }
    let span = max - min + 1;
    let pieces = i128::from(pieces).min(span);
    let mut bounds: Vec<i128> = (1..pieces).map(|j| min + span * j / pieces).collect();
    bounds.dedup();
    let mut ranges = Vec::with_capacity(bounds.len() + 1);
    let mut lower = None;
    for bound in bounds {
        ranges.push(KeyRange {
            lower,
            upper: Some(bound),
        });
        lower = Some(bound);
    }
    ranges.push(KeyRange { lower, upper: None });
    ranges
}

/// A table with at least this many keys per worker is split across the workers even when
/// its size estimate is small: InnoDB's estimate of a freshly written table lags behind.
pub const MIN_KEYS_PER_RANGE: u128 = 1024;

/// How many ranges to split a table of about `table_bytes`, with `key_span` integer keys
/// between its MIN and MAX, into: one per `chunk_bytes`, and at least one per worker once
/// the table is bigger than a chunk or has keys enough (so a single large table still keeps
/// every worker busy), at most `max_pieces`.
pub fn range_count(
    table_bytes: u64,
    chunk_bytes: u64,
    threads: usize,
    key_span: u128,
    max_pieces: u64,
) -> u64 {
    let chunk_bytes = chunk_bytes.max(1);
    let threads = u64::try_from(threads).unwrap_or(u64::MAX);
    let by_size = table_bytes.div_ceil(chunk_bytes).max(1);
    let big = table_bytes > chunk_bytes
        || key_span >= u128::from(threads).saturating_mul(MIN_KEYS_PER_RANGE);
    let pieces = if big { by_size.max(threads) } else { 1 };
    pieces.clamp(1, max_pieces.max(1))
}

/// A schema or table name as one key segment: `[A-Za-z0-9_]` as is, every other byte as
/// `%XX`. So no name can add a `/`, a `..` or a `%`-ambiguity to a key, and distinct names
/// get distinct segments.
pub fn key_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &byte in name.as_bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `data/<schema>/<table>/<range>-<part>.tsv`: ranges and parts are numbered in key order,
/// so the keys sort in primary-key order.
pub fn chunk_key(schema: &str, table: &str, range: usize, part: usize) -> String {
    format!(
        "data/{}/{}/{range:05}-{part:04}.tsv",
        key_segment(schema),
        key_segment(table)
    )
}

/// The kinds of DDL artifact, each under its own folder of `ddl/<schema>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdlKind {
    Schema,
    Table,
    View,
    Procedure,
    Function,
    Trigger,
    Event,
}

/// `ddl/<schema>/schema.sql`, `ddl/<schema>/<kind>/<name>.sql`.
pub fn ddl_key(kind: DdlKind, schema: &str, name: &str) -> String {
    let schema = key_segment(schema);
    let folder = match kind {
        DdlKind::Schema => return format!("ddl/{schema}/schema.sql"),
        DdlKind::Table => "tables",
        DdlKind::View => "views",
        DdlKind::Procedure => "procedures",
        DdlKind::Function => "functions",
        DdlKind::Trigger => "triggers",
        DdlKind::Event => "events",
    };
    format!("ddl/{schema}/{folder}/{}.sql", key_segment(name))
}

/// The load's order of work: one item from each table in turn, each table's own items
/// kept in order. With N loaders the N items in flight then belong to different tables
/// where the dump has that many, so each B-tree takes key-ordered appends from one
/// connection at a time instead of N connections contending for the same index.
pub fn round_robin<T>(groups: Vec<Vec<T>>) -> Vec<T> {
    let total = groups.iter().map(Vec::len).sum();
    let mut iters: Vec<std::vec::IntoIter<T>> = groups.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        for items in &mut iters {
            if let Some(item) = items.next() {
                out.push(item);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_robin_takes_one_per_table_in_turn_keeping_each_tables_order() {
        let order = round_robin(vec![
            vec!["a0", "a1", "a2"],
            vec![],
            vec!["b0"],
            vec!["c0", "c1"],
        ]);
        assert_eq!(order, ["a0", "b0", "c0", "a1", "c1", "a2"]);
        assert!(round_robin::<u8>(Vec::new()).is_empty());
    }

    proptest! {
        #[test]
        fn round_robin_loses_nothing(groups in proptest::collection::vec(proptest::collection::vec(0u16..1000, 0..8), 0..6)) {
            let tagged: Vec<Vec<(usize, u16)>> = groups
                .iter()
                .enumerate()
                .map(|(g, items)| items.iter().map(|i| (g, *i)).collect())
                .collect();
            let out = round_robin(tagged.clone());
            prop_assert_eq!(out.len(), tagged.iter().map(Vec::len).sum::<usize>());
            for (g, items) in tagged.iter().enumerate() {
                let kept: Vec<(usize, u16)> = out.iter().copied().filter(|(h, _)| *h == g).collect();
                prop_assert_eq!(&kept, items);
            }
        }
    }

    fn contains(range: &KeyRange, key: i128) -> bool {
        range.lower.is_none_or(|l| key >= l) && range.upper.is_none_or(|u| key < u)
    }

    #[test]
    fn small_spans_are_one_range() {
        assert_eq!(split_key_range(5, 5, 8), vec![KeyRange::ALL]);
        assert_eq!(split_key_range(1, 100, 1), vec![KeyRange::ALL]);
        assert_eq!(split_key_range(1, 3, 8).len(), 3);
    }

    #[test]
    fn range_counts() {
        assert_eq!(range_count(0, 8 << 20, 4, 10, 1000), 1);
        assert_eq!(range_count(8 << 20, 8 << 20, 4, 4095, 1000), 1);
        assert_eq!(range_count((8 << 20) + 1, 8 << 20, 4, 10, 1000), 4);
        assert_eq!(range_count(80 << 20, 8 << 20, 4, 10, 1000), 10);
        assert_eq!(range_count(80 << 20, 8 << 20, 4, 10, 3), 3);
        // A stale estimate does not keep a table with many keys on one worker.
        assert_eq!(range_count(16 << 10, 8 << 20, 4, 4096, 1000), 4);
    }

    #[test]
    fn keys_escape_hostile_names() {
        assert_eq!(
            chunk_key("shop", "../../etc", 3, 1),
            "data/shop/%2E%2E%2F%2E%2E%2Fetc/00003-0001.tsv"
        );
        assert_eq!(key_segment("a b%é"), "a%20b%25%C3%A9");
        assert_eq!(
            ddl_key(DdlKind::Schema, "s/x", "ignored"),
            "ddl/s%2Fx/schema.sql"
        );
        assert_eq!(
            ddl_key(DdlKind::Function, "s", "f"),
            "ddl/s/functions/f.sql"
        );
    }

    proptest! {
        #[test]
        fn ranges_cover_every_key_once(
            min in -1_000_000i128..1_000_000,
            width in 0i128..2_000_000,
            pieces in 1u64..64,
            probes in prop::collection::vec(any::<i128>(), 16),
        ) {
            let max = min + width;
            let ranges = split_key_range(min, max, pieces);
            prop_assert!(!ranges.is_empty());
            prop_assert!(ranges.len() as u64 <= pieces);
            prop_assert_eq!(ranges[0].lower, None);
            prop_assert_eq!(ranges[ranges.len() - 1].upper, None);
            for pair in ranges.windows(2) {
                prop_assert_eq!(pair[0].upper, pair[1].lower);
                if let (Some(a), Some(b)) = (pair[0].lower, pair[0].upper) {
                    prop_assert!(a < b);
                }
            }
            let edge = [min, max, min - 1, max + 1, i128::MIN, i128::MAX];
            for key in probes.iter().copied().chain(edge).chain([i128::midpoint(min, max)]) {
                let hits = ranges.iter().filter(|r| contains(r, key)).count();
                prop_assert_eq!(hits, 1, "key {} in {:?}", key, ranges);
            }
            // Every inner range holds at least one key of min..=max.
            for range in &ranges[1..] {
                let lower = range.lower.expect("inner ranges are bounded below");
                prop_assert!(lower > min && lower <= max);
            }
        }

        #[test]
        fn key_segments_are_safe_and_distinct(a in ".{0,12}", b in ".{0,12}") {
            let (sa, sb) = (key_segment(&a), key_segment(&b));
            prop_assert!(sa.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'%'));
            prop_assert_eq!(a == b, sa == sb);
        }
    }
}
