//! Sorted, disjoint, non-adjacent lists of inclusive GNO intervals and their algebra.
//!
//! Every list kept by a [`super::GtidSet`] is normalized: intervals are sorted by start,
//! never overlap and never touch (`1-3,4-5` is stored as `1-5`). All operations keep that
//! invariant so equality of sets is plain equality of lists.

/// One inclusive range of transaction numbers, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub start: u64,
    pub end: u64,
}

impl Interval {
    /// How many GNOs the interval holds.
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }
}

/// Sorts and merges `intervals` in place into normalized form.
pub fn normalize(intervals: &mut Vec<Interval>) {
    intervals.sort_unstable();
    let mut merged: Vec<Interval> = Vec::with_capacity(intervals.len());
    for next in intervals.drain(..) {
        match merged.last_mut() {
            // `end + 1` cannot overflow: GNOs are below 2^63.
            Some(last) if next.start <= last.end + 1 => last.end = last.end.max(next.end),
            _ => merged.push(next),
        }
    }
    *intervals = merged;
}

/// The union of two normalized lists.
pub fn union(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut all = Vec::with_capacity(a.len() + b.len());
    all.extend_from_slice(a);
    all.extend_from_slice(b);
    normalize(&mut all);
    all
}

/// `a` minus `b`, both normalized; the result is normalized.
pub fn subtract(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::with_capacity(a.len());
    let mut cut = b.iter().peekable();
    for &interval in a {
        let mut start = interval.start;
        let end = interval.end;
        // Skip cuts entirely before this interval; they cannot matter for later ones either.
        while cut.next_if(|c| c.end < start).is_some() {}
        let mut remaining = true;
        while let Some(&&c) = cut.peek() {
            if c.start > end {
                break;
            }
            if c.start > start {
                out.push(Interval {
                    start,
                    end: c.start - 1,
                });
            }
            if c.end >= end {
                remaining = false;
                break;
            }
            start = c.end + 1;
            cut.next();
        }
        if remaining {
            out.push(Interval { start, end });
        }
    }
    out
}

/// The intersection of two normalized lists.
pub fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start <= end {
            out.push(Interval { start, end });
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Whether every GNO of `inner` is in `outer` (both normalized).
pub fn covers(outer: &[Interval], inner: &[Interval]) -> bool {
    inner.iter().all(|needle| {
        // The only candidate is the last interval starting at or before the needle.
        let idx = outer.partition_point(|o| o.start <= needle.start);
        idx > 0 && outer[idx - 1].end >= needle.end
    })
}

/// Total GNOs in a normalized list, saturating instead of overflowing.
pub fn count(list: &[Interval]) -> u64 {
    list.iter().fold(0u64, |acc, i| acc.saturating_add(i.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(list: &[(u64, u64)]) -> Vec<Interval> {
        list.iter()
            .map(|&(start, end)| Interval { start, end })
            .collect()
    }

    #[test]
    fn normalize_merges_overlapping_and_adjacent() {
        let mut list = iv(&[(7, 9), (1, 3), (4, 5), (2, 2), (11, 11)]);
        normalize(&mut list);
        assert_eq!(list, iv(&[(1, 5), (7, 9), (11, 11)]));
    }

    #[test]
    fn subtract_splits_and_trims() {
        let a = iv(&[(1, 10), (20, 30)]);
        let b = iv(&[(3, 4), (8, 22), (30, 40)]);
        assert_eq!(subtract(&a, &b), iv(&[(1, 2), (5, 7), (23, 29)]));
        assert_eq!(subtract(&a, &a), Vec::new());
        assert_eq!(subtract(&a, &[]), a);
    }

    #[test]
    fn covers_needs_one_enclosing_interval() {
        let outer = iv(&[(1, 5), (7, 9)]);
        assert!(covers(&outer, &iv(&[(2, 3), (7, 9)])));
        assert!(!covers(&outer, &iv(&[(4, 7)])));
        assert!(!covers(&outer, &iv(&[(10, 10)])));
        assert!(covers(&outer, &[]));
    }

    #[test]
    fn intersect_keeps_common_parts() {
        let a = iv(&[(1, 5), (7, 9)]);
        let b = iv(&[(3, 8)]);
        assert_eq!(intersect(&a, &b), iv(&[(3, 5), (7, 8)]));
    }
}
