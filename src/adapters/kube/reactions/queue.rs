//! The coalescing queue between `decided` (the loop's task, which must not wait) and the
//! reactions task: the newest status wins, engine events accumulate up to a bound.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::api::MysqlFailoverGroup;
use crate::failover::{Event, GroupStatus, Timestamp};

/// What one decision asks of the cluster, apart from its events.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    pub status: GroupStatus,
    /// The policy's `maxLagSeconds`: a replica further behind is not `healthy`.
    pub max_lag_seconds: u64,
    pub at: Timestamp,
}

/// Everything the task takes at once.
pub(super) struct Batch {
    /// The number of the newest decision in it.
    pub number: u64,
    pub group: Arc<MysqlFailoverGroup>,
    pub snapshot: Snapshot,
    pub events: Vec<Event>,
}

/// Decisions not yet handled.
pub(super) struct Pending {
    /// The group as the shell last handed it in.
    pub group: Arc<MysqlFailoverGroup>,
    /// How many decisions were pushed so far.
    pub submitted: u64,
    latest: Option<Snapshot>,
    events: VecDeque<Event>,
    max_events: usize,
}

impl Pending {
    pub fn new(group: Arc<MysqlFailoverGroup>, max_events: usize) -> Self {
        Self {
            group,
            submitted: 0,
            latest: None,
            events: VecDeque::new(),
            max_events: max_events.max(1),
        }
    }

    /// Queues a decision: its snapshot replaces any pending one, its events are appended.
    /// Returns how many old events were dropped to stay within the bound.
    pub fn push(&mut self, snapshot: Snapshot, events: &[Event]) -> usize {
        self.submitted += 1;
        self.latest = Some(snapshot);
        self.events.extend(events.iter().cloned());
        let excess = self.events.len().saturating_sub(self.max_events);
        self.events.drain(..excess);
        excess
    }

    /// Queues events the shell raised itself; they go out with the next decision.
    pub fn add_events(&mut self, events: &[Event]) {
        self.events.extend(events.iter().cloned());
        let excess = self.events.len().saturating_sub(self.max_events);
        self.events.drain(..excess);
    }

    /// Puts events back that could not be published, ahead of newer ones, within the bound.
    pub fn requeue(&mut self, failed: Vec<Event>) {
        for event in failed.into_iter().rev() {
            if self.events.len() >= self.max_events {
                break;
            }
            self.events.push_front(event);
        }
    }

    /// Everything pending, or `None` when there is no new decision.
    pub fn take(&mut self) -> Option<Batch> {
        let snapshot = self.latest.take()?;
        Some(Batch {
            number: self.submitted,
            group: Arc::clone(&self.group),
            snapshot,
            events: self.events.drain(..).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::failover::EventReason;

    fn snapshot(active: &str) -> Snapshot {
        Snapshot {
            status: GroupStatus {
                active_site: Some(active.to_owned()),
                sites: Vec::new(),
                last_failover: None,
                planned_failover: None,
                conditions: Vec::new(),
            },
            max_lag_seconds: 10,
            at: Timestamp(0),
        }
    }

    fn event(n: usize) -> Event {
        Event::new(EventReason::SiteUnreachable, Some("iad"), format!("{n}"))
    }

    #[test]
    fn the_newest_decision_wins_and_no_event_is_lost_within_the_bound() {
        let mut pending = Pending::new(
            Arc::new(MysqlFailoverGroup::new(
                "g",
                crate::api::failover_group::MysqlFailoverGroupSpec::default(),
            )),
            3,
        );
        assert!(pending.take().is_none());
        assert_eq!(pending.push(snapshot("iad"), &[event(1)]), 0);
        assert_eq!(pending.push(snapshot("pdx"), &[event(2)]), 0);
        let batch = pending.take().unwrap();
        assert_eq!(batch.number, 2);
        assert_eq!(batch.snapshot.status.active_site.as_deref(), Some("pdx"));
        let messages: Vec<&str> = batch.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["1", "2"]);
        assert!(pending.take().is_none());
    }

    #[test]
    fn events_beyond_the_bound_drop_the_oldest_and_requeued_ones_go_first() {
        let mut pending = Pending::new(
            Arc::new(MysqlFailoverGroup::new(
                "g",
                crate::api::failover_group::MysqlFailoverGroupSpec::default(),
            )),
            3,
        );
        let dropped = pending.push(snapshot("iad"), &[event(1), event(2), event(3), event(4)]);
        assert_eq!(dropped, 1);
        let batch = pending.take().unwrap();
        assert_eq!(batch.events[0].message, "2");
        pending.requeue(vec![event(5), event(6)]);
        pending.push(snapshot("iad"), &[event(7), event(8)]);
        let messages: Vec<String> = pending
            .take()
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(messages, ["6", "7", "8"]);
    }
}
