//! Time as the decision core sees it: a value passed in, never read from a clock.

use std::time::Duration;

use k8s_openapi::jiff;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, supplied by the caller on every decision.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating far in the future rather than wrapping.
    #[must_use]
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(duration_millis(d)))
    }

    /// How long ago `earlier` was; zero when `earlier` is in the future (clock skew).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Whether at least `d` has passed since `earlier`.
    pub fn has_elapsed(self, earlier: Timestamp, d: Duration) -> bool {
        self.since(earlier) >= d
    }

    /// RFC 3339 in UTC with second precision, as Kubernetes writes `date-time` fields.
    pub fn rfc3339(self) -> String {
        let seconds = i64::try_from(self.0 / 1000).unwrap_or(i64::MAX);
        jiff::Timestamp::from_second(seconds)
            .unwrap_or(jiff::Timestamp::MAX)
            .to_string()
    }

    /// Parses RFC 3339 (any offset); `None` for text that is not one or is before 1970.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let t: jiff::Timestamp = text.parse().ok()?;
        u64::try_from(t.as_millisecond())
            .ok()
            .map(Self::from_millis)
    }
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_ignores_skew() {
        let t = Timestamp(10_000);
        assert_eq!(t.plus(Duration::from_secs(2)), Timestamp(12_000));
        assert_eq!(
            Timestamp(u64::MAX - 1).plus(Duration::from_secs(1)),
            Timestamp(u64::MAX)
        );
        assert_eq!(Timestamp(5).since(t), Duration::ZERO);
        assert!(t.has_elapsed(Timestamp(9_000), Duration::from_secs(1)));
        assert!(!t.has_elapsed(Timestamp(9_001), Duration::from_secs(1)));
    }
}
