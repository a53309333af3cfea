//! The decision observer that logs: one structured line per engine event, at warn level
//! for the events that need a human.

use crate::failover::Event;
use crate::ports::observer::{DecisionObserver, DecisionReport};

/// Logs every event of every decision through `tracing`.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventLog;

impl DecisionObserver for EventLog {
    fn decided(&self, report: &DecisionReport<'_>) {
        for event in &report.decision.events {
            log_event(event);
        }
    }
}

fn log_event(event: &Event) {
    let site = event.site.as_deref().unwrap_or("");
    let gtid = event.gtid.as_ref().map(ToString::to_string);
    if event.reason.is_warning() {
        tracing::warn!(site, reason = ?event.reason, gtid, "{}", event.message);
    } else {
        tracing::info!(site, reason = ?event.reason, gtid, "{}", event.message);
    }
}
