//! Engine events as core/v1 Events on the MysqlFailoverGroup.
//!
//! Reasons are the engine's [`EventReason`] names, which are a public contract (metrics
//! labels, Event reasons) and include every topology reason of the reference
//! (FailoverExecuted, DataLossDetected, RecoveryComplete, RecloneRequested,
//! RecloneRejected, SplitBrainDetected, NoPrimaryDetected, TotalLossDetected), with one
//! mapping: a site's debounced move from `unreachable` to `read-only` or `writable` is
//! `SiteRecovered`, the reference's name for it; other site state changes keep
//! `SiteStateChanged`. The type is `Warning` for [`EventReason::is_warning`] reasons, else
//! `Normal`.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff;

use crate::api::{API_VERSION, MysqlFailoverGroup};
use crate::failover::{Event, EventReason, SiteState, Timestamp};

/// `source.component` and `reportingComponent` of every Event.
pub const COMPONENT: &str = "bloodraven";

/// The API server's limit on an Event message.
const MAX_MESSAGE: usize = 1024;

/// The Event reason of an engine event.
///
/// The engine's [`EventReason`] names are a public contract (metrics labels, Event
/// reasons) and include every topology reason of the reference: FailoverExecuted,
/// DataLossDetected, RecoveryComplete, RecloneRequested, RecloneRejected,
/// SplitBrainDetected, NoPrimaryDetected, TotalLossDetected. One mapping: a site's
/// debounced move from `unreachable` to `read-only` or `writable` is `SiteRecovered`, the
/// reference's name for it; other site state changes stay `SiteStateChanged`. The Event
/// type is `Warning` for [`EventReason::is_warning`] reasons, else `Normal`.
pub fn event_reason(event: &Event) -> String {
    let recovered = event.reason == EventReason::SiteStateChanged
        && event.transition.is_some_and(|t| {
            t.from == SiteState::Unreachable
                && matches!(t.to, SiteState::ReadOnly | SiteState::Writable)
        });
    if recovered {
        return "SiteRecovered".to_owned();
    }
    // The serde name is the variant name: the contract the metrics use too.
    serde_json::to_value(event.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", event.reason))
}

/// The core/v1 Event for `event` on `group`; `seq` keeps names unique within a process.
pub(super) fn kube_event(
    group: &MysqlFailoverGroup,
    event: &Event,
    reporter: &str,
    at: Timestamp,
    seq: u64,
) -> KubeEvent {
    let message = match &event.site {
        Some(site) if !event.message.contains(site.as_str()) => {
            format!("site {site}: {}", event.message)
        }
        _ => event.message.clone(),
    };
    object_event(
        ObjectReference {
            api_version: Some(API_VERSION.to_owned()),
            kind: Some("MysqlFailoverGroup".to_owned()),
            name: group.metadata.name.clone(),
            namespace: group.metadata.namespace.clone(),
            uid: group.metadata.uid.clone(),
            ..ObjectReference::default()
        },
        &EventNote {
            reason: event_reason(event),
            warning: event.reason.is_warning(),
            message,
            action: "Failover",
        },
        reporter,
        at,
        seq,
    )
}

/// What an Event says, whatever it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNote {
    /// A CamelCase reason from a fixed vocabulary.
    pub reason: String,
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    /// Cut to the API server's limit.
    pub message: String,
    /// What the reporter was doing (`Failover`, `Backup`).
    pub action: &'static str,
}

/// The core/v1 Event about `involved`; `seq` keeps names unique within a process.
pub fn object_event(
    involved: ObjectReference,
    note: &EventNote,
    reporter: &str,
    at: Timestamp,
    seq: u64,
) -> KubeEvent {
    let name = involved.name.clone().unwrap_or_default();
    let namespace = involved.namespace.clone();
    let when = jiff::Timestamp::from_millisecond(i64::try_from(at.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut message = note.message.clone();
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    KubeEvent {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{:x}{seq:04x}", at.as_millis())),
            namespace,
            ..ObjectMeta::default()
        },
        involved_object: involved,
        reason: Some(note.reason.clone()),
        message: Some(message),
        type_: Some(if note.warning { "Warning" } else { "Normal" }.to_owned()),
        source: Some(EventSource {
            component: Some(COMPONENT.to_owned()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.to_owned()),
        reporting_instance: Some(reporter.to_owned()),
        first_timestamp: Some(Time(when)),
        last_timestamp: Some(Time(when)),
        event_time: Some(MicroTime(when)),
        count: Some(1),
        action: Some(note.action.to_owned()),
        ..KubeEvent::default()
    }
}

/// Suppresses an identical Event (reason, site, message) within a window, so an anomaly
/// the engine reports on every poll (a writable non-candidate) is one Event, not one a poll.
#[derive(Debug, Default)]
pub(super) struct Repeats {
    seen: HashMap<(String, Option<String>, String), Timestamp>,
}

impl Repeats {
    /// Whether `event` should be created now; records it if so.
    pub fn admit(&mut self, event: &Event, now: Timestamp, window: Duration) -> bool {
        self.seen.retain(|_, at| !now.has_elapsed(*at, window));
        let key = (
            event_reason(event),
            event.site.clone(),
            event.message.clone(),
        );
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key, now);
        true
    }

    /// Forgets `event`, so a failed create is tried again.
    pub fn forget(&mut self, event: &Event) {
        self.seen.remove(&(
            event_reason(event),
            event.site.clone(),
            event.message.clone(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::SiteTransition;

    fn changed(from: SiteState, to: SiteState) -> Event {
        let mut event = Event::new(EventReason::SiteStateChanged, Some("iad"), "state changed");
        event.transition = Some(SiteTransition { from, to });
        event
    }

    #[test]
    fn reasons_are_the_reference_names() {
        for (reason, name) in [
            (EventReason::FailoverExecuted, "FailoverExecuted"),
            (EventReason::DataLossDetected, "DataLossDetected"),
            (EventReason::SplitBrainDetected, "SplitBrainDetected"),
            (EventReason::NoPrimaryDetected, "NoPrimaryDetected"),
            (EventReason::TotalLossDetected, "TotalLossDetected"),
            (EventReason::RecoveryComplete, "RecoveryComplete"),
            (EventReason::RecloneRequested, "RecloneRequested"),
            (EventReason::RecloneRejected, "RecloneRejected"),
            (EventReason::PlannedFailoverLagOK, "PlannedFailoverLagOK"),
        ] {
            assert_eq!(event_reason(&Event::new(reason, None, "")), name);
        }
        assert_eq!(
            event_reason(&changed(SiteState::Unreachable, SiteState::ReadOnly)),
            "SiteRecovered"
        );
        assert_eq!(
            event_reason(&changed(SiteState::Unreachable, SiteState::Writable)),
            "SiteRecovered"
        );
        assert_eq!(
            event_reason(&changed(SiteState::ReadOnly, SiteState::Unreachable)),
            "SiteStateChanged"
        );
    }

    #[test]
    fn events_name_the_group_and_the_site() {
        let mut group = MysqlFailoverGroup::new(
            "orders",
            crate::api::failover_group::MysqlFailoverGroupSpec::default(),
        );
        group.metadata.namespace = Some("shop".to_owned());
        group.metadata.uid = Some("u-1".to_owned());
        let event = Event::new(EventReason::DataLossDetected, Some("pdx"), "2 transactions");
        let k = kube_event(&group, &event, "replica-a", Timestamp(1_780_000_000_000), 7);
        assert_eq!(k.type_.as_deref(), Some("Warning"));
        assert_eq!(k.reason.as_deref(), Some("DataLossDetected"));
        assert_eq!(k.message.as_deref(), Some("site pdx: 2 transactions"));
        assert_eq!(
            k.involved_object.kind.as_deref(),
            Some("MysqlFailoverGroup")
        );
        assert_eq!(k.involved_object.uid.as_deref(), Some("u-1"));
        assert_eq!(k.metadata.namespace.as_deref(), Some("shop"));
        assert!(
            k.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("orders."))
        );
        let normal = kube_event(
            &group,
            &Event::new(EventReason::FailoverExecuted, Some("pdx"), "promoted pdx"),
            "replica-a",
            Timestamp(0),
            8,
        );
        assert_eq!(normal.type_.as_deref(), Some("Normal"));
        assert_eq!(normal.message.as_deref(), Some("promoted pdx"));
    }

    #[test]
    fn repeats_are_suppressed_within_the_window() {
        let mut repeats = Repeats::default();
        let window = Duration::from_secs(300);
        let e = Event::new(EventReason::NonCandidateWritable, Some("dr"), "fenced");
        assert!(repeats.admit(&e, Timestamp(0), window));
        assert!(!repeats.admit(&e, Timestamp(1_000), window));
        assert!(repeats.admit(&e, Timestamp(300_000), window));
        repeats.forget(&e);
        assert!(repeats.admit(&e, Timestamp(300_001), window));
    }
}
