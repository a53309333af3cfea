//! How `kubectl bloodraven failover` reads the group's status while it waits. Pure: the
//! planned-failover record from before the request, the status now and the target in, a
//! verdict out.

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff;

use crate::api::failover_group_status::{MysqlFailoverGroupStatus, PlannedFailoverStatus};

/// The Event reason the operator reports a refused planned-failover request with (a
/// malformed annotation, another switchover already running): the status does not change.
pub const REJECTED_REASON: &str = "PlannedFailoverRejected";

/// How far the operator's clock may be behind ours and its Event still count as the
/// answer to a request made at `since`.
pub const CLOCK_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);

/// The message of the newest `PlannedFailoverRejected` Event about `group` recorded at or
/// after `since` (less [`CLOCK_SLACK`]), if any.
pub fn rejection(events: &[Event], group: &str, since: jiff::Timestamp) -> Option<String> {
    let from = since.checked_sub(CLOCK_SLACK).unwrap_or(since);
    events
        .iter()
        .filter(|e| e.reason.as_deref() == Some(REJECTED_REASON))
        .filter(|e| e.involved_object.name.as_deref() == Some(group))
        .filter_map(|e| {
            let at = e
                .event_time
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.last_timestamp.as_ref().map(|t| t.0))
                .or_else(|| e.first_timestamp.as_ref().map(|t| t.0))?;
            (at >= from).then(|| (at, e.message.clone().unwrap_or_default()))
        })
        .max_by_key(|(at, _)| *at)
        .map(|(_, message)| message)
}

/// What the status says about the requested failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The target is the primary.
    Done(String),
    /// The operator gave up on this request.
    Failed(String),
    /// Still going; the text describes the current phase (shown when it changes).
    Waiting(String),
}

/// `before` is `status.plannedFailover` as read just before the annotation was written: a
/// record equal to it is an earlier request's and says nothing about this one.
pub fn failover_progress(
    before: Option<&PlannedFailoverStatus>,
    status: Option<&MysqlFailoverGroupStatus>,
    target: &str,
) -> Progress {
    let Some(status) = status else {
        return Progress::Waiting("waiting for the operator to report a status".to_owned());
    };
    let planned = status
        .planned_failover
        .as_ref()
        .filter(|p| Some(*p) != before)
        .filter(|p| p.target.as_deref().is_none_or(|t| t == target));
    if status.active_site.as_deref() == Some(target) {
        let detail = planned
            .and_then(|p| p.duration_seconds)
            .map(|s| format!(" in {s}s"))
            .unwrap_or_default();
        let lost = planned
            .and_then(|p| p.transactions_lost)
            .map(|n| format!(", {n} transactions lost"))
            .unwrap_or_default();
        return Progress::Done(format!("{target} is the primary{detail}{lost}"));
    }
    let Some(planned) = planned else {
        return Progress::Waiting("waiting for the operator to take the request".to_owned());
    };
    let phase = planned.phase.as_deref().unwrap_or("Pending");
    let mut text = format!("phase {phase}");
    if let Some(reason) = planned.reason.as_deref().filter(|r| !r.is_empty()) {
        let _ = write!(text, " ({reason})");
    }
    if let Some(message) = planned.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = write!(text, ": {message}");
    }
    if let Some(retry) = &planned.retry_after {
        let _ = write!(text, " (retry after {retry})");
    }
    if phase == "Failed" {
        Progress::Failed(text)
    } else {
        Progress::Waiting(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(phase: &str, start: &str) -> PlannedFailoverStatus {
        PlannedFailoverStatus {
            phase: Some(phase.to_owned()),
            target: Some("pdx".to_owned()),
            start_time: Some(start.to_owned()),
            ..PlannedFailoverStatus::default()
        }
    }

    fn status(active: &str, p: Option<PlannedFailoverStatus>) -> MysqlFailoverGroupStatus {
        MysqlFailoverGroupStatus {
            active_site: Some(active.to_owned()),
            planned_failover: p,
            ..MysqlFailoverGroupStatus::default()
        }
    }

    #[test]
    fn done_when_the_target_is_primary() {
        let mut p = planned("Succeeded", "t1");
        p.duration_seconds = Some(4);
        p.transactions_lost = Some(0);
        assert_eq!(
            failover_progress(None, Some(&status("pdx", Some(p))), "pdx"),
            Progress::Done("pdx is the primary in 4s, 0 transactions lost".to_owned())
        );
    }

    #[test]
    fn an_earlier_failed_record_is_not_this_requests_outcome() {
        let old = planned("Failed", "t0");
        let now = status("iad", Some(old.clone()));
        assert!(matches!(
            failover_progress(Some(&old), Some(&now), "pdx"),
            Progress::Waiting(_)
        ));
        let mut fresh = planned("Failed", "t1");
        fresh.message = Some("target lag 40s above maxLagWait".to_owned());
        assert_eq!(
            failover_progress(Some(&old), Some(&status("iad", Some(fresh))), "pdx"),
            Progress::Failed("phase Failed: target lag 40s above maxLagWait".to_owned())
        );
    }

    #[test]
    fn phases_in_between_are_reported() {
        let mut p = planned("Deferred", "t1");
        p.reason = Some("Cooldown".to_owned());
        p.retry_after = Some("2026-12-02T10:10:00Z".to_owned());
        assert_eq!(
            failover_progress(None, Some(&status("iad", Some(p))), "pdx"),
            Progress::Waiting(
                "phase Deferred (Cooldown) (retry after 2026-12-02T10:10:00Z)".to_owned()
            )
        );
        assert!(matches!(
            failover_progress(None, None, "pdx"),
            Progress::Waiting(_)
        ));
    }

    #[test]
    fn only_a_rejection_event_about_this_group_after_the_request_counts() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().expect("a time");
        let event = |group: &str, reason: &str, at: &str, message: &str| Event {
            involved_object: k8s_openapi::api::core::v1::ObjectReference {
                name: Some(group.to_owned()),
                ..Default::default()
            },
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            event_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                t(at),
            )),
            ..Event::default()
        };
        let since = t("2026-12-02T10:00:00Z");
        let events = [
            event("orders", REJECTED_REASON, "2026-12-02T09:00:00Z", "old"),
            event(
                "billing",
                REJECTED_REASON,
                "2026-12-02T10:00:01Z",
                "other group",
            ),
            event(
                "orders",
                "FailoverExecuted",
                "2026-12-02T10:00:01Z",
                "other reason",
            ),
            event(
                "orders",
                REJECTED_REASON,
                "2026-12-02T09:59:58Z",
                "skewed clock",
            ),
        ];
        assert_eq!(
            rejection(&events, "orders", since).as_deref(),
            Some("skewed clock")
        );
        assert_eq!(rejection(&events[..3], "orders", since), None);
    }

    #[test]
    fn a_record_for_another_target_is_ignored() {
        let mut p = planned("Failed", "t1");
        p.target = Some("sfo".to_owned());
        assert!(matches!(
            failover_progress(None, Some(&status("iad", Some(p))), "pdx"),
            Progress::Waiting(_)
        ));
    }
}
