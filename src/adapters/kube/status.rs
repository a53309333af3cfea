//! The state store port over the `MysqlFailoverGroup`'s `/status` subresource, and the one
//! writer of that status.
//!
//! The engine state lives in `status.failoverState` (`revision`, `writer`, `state`), so a
//! restarted or newly elected operator resumes from it without a file. Every write is a
//! `PUT .../status` carrying the resourceVersion this store last read or wrote, so the API
//! server's 409 decides every race. On a 409 the store re-reads the group:
//!
//! - the stored `failoverState` is still the one this store last wrote (or loaded): the
//!   conflict was someone else's spec, metadata or unrelated status edit, so it retries once
//!   on the fresh object;
//! - another writer's state is stored: a newer leader has taken over. The save is refused
//!   with [`StoreError::Superseded`], so the failover loop acts on nothing, and
//!   [`KubeStatusStore::is_superseded`] tells the cluster reactions to stop too.
//!
//! The user-facing projection ([`crate::render::status`]) goes through the same writer
//! ([`KubeStatusStore::publish`]), behind the same async mutex, so the state save and the
//! reactions' status updates never race each other, and a projection that is not
//! [`crate::render::status::worth_writing`] costs no request at all. A state change is
//! therefore two writes (the state, when the loop saves; the projection, when the reactions
//! task gets the decision): the loop hands the engine's `GroupStatus` only to its
//! observers, after the save. Both carry the whole status, so neither loses the other's
//! fields. A slow API server holds the mutex for at most three requests (write, re-read,
//! retry), each bounded by the store's timeout.
//!
//! The engine's state changes on every poll (each site's `lastSeen`, probe and streak
//! counters), but those observations are re-made by the next poll. A save whose only
//! changes are such observations ([`observations_only`]) is not written (unless
//! [`KubeStatusStore::with_observation_refresh`] asks for a refresh period); every other
//! change (a site state, the active site, a failover record, in-flight actions, recovery, a
//! planned failover, raised alerts) is written before the loop acts, as always. So an idle
//! group costs no status write at all, and a restarted operator resumes with the
//! observations of the last real change, which only makes its debounce start over.
//!
//! Writer identities must be unique per process (a pod name plus a start nonce): a store
//! treats a stored state written under its own identity as its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use futures_util::future::BoxFuture;
use kube::api::{Api, PostParams};
use tokio::sync::Mutex;

use crate::api::MysqlFailoverGroup;
use crate::api::failover_group_status::{FailoverStateRecord, MysqlFailoverGroupStatus};
use crate::failover::{EngineState, GroupStatus, Timestamp};
use crate::ports::state::{StateStore, StoreError};
use crate::render::status::{project, worth_writing};

/// The default bound on one API request of the store.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One group's status, read and written with resourceVersion preconditions.
pub struct KubeStatusStore {
    api: Api<MysqlFailoverGroup>,
    name: String,
    /// `MysqlFailoverGroup NS/NAME`, for errors and logs.
    location: String,
    writer: String,
    timeout: Duration,
    /// `None`: observation-only saves are never written.
    observation_refresh: Option<Duration>,
    inner: Mutex<Inner>,
    /// Set when a newer writer was found; cleared by the next `load`.
    superseded: AtomicBool,
}

/// The one writer's memory, behind the mutex.
#[derive(Default)]
struct Inner {
    /// The group as last read or written (resourceVersion, status).
    object: Option<MysqlFailoverGroup>,
    /// The stored state's identity when this store last loaded or saved it; `None` when
    /// there was none.
    mark: Option<Mark>,
    /// The state as last loaded or written, and when.
    last: Option<(EngineState, Instant)>,
}

/// Which write of the failover state: enough to tell ours from another writer's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mark {
    revision: i64,
    writer: String,
}

impl Mark {
    fn of(record: &FailoverStateRecord) -> Self {
        Self {
            revision: record.revision,
            writer: record.writer.clone(),
        }
    }
}

impl KubeStatusStore {
    /// The store of group `name` in `namespace`, writing as `writer` (this process's
    /// identity, recorded beside every saved state).
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: impl Into<String>,
        writer: impl Into<String>,
    ) -> Self {
        let name = name.into();
        Self {
            api: Api::namespaced(client, namespace),
            location: format!("MysqlFailoverGroup {namespace}/{name}"),
            name,
            writer: writer.into(),
            timeout: DEFAULT_TIMEOUT,
            observation_refresh: None,
            inner: Mutex::new(Inner::default()),
            superseded: AtomicBool::new(false),
        }
    }

    /// Bounds each API request by `timeout` instead of [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Also writes a save whose only changes are observations once the stored ones are this
    /// old (by default never). `Duration::ZERO` writes every save.
    #[must_use]
    pub fn with_observation_refresh(mut self, refresh: Duration) -> Self {
        self.observation_refresh = Some(refresh);
        self
    }

    /// The identity written beside the state.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// Whether a newer writer's state was found: this replica must not act on the cluster
    /// until it loads again.
    pub fn is_superseded(&self) -> bool {
        self.superseded.load(Ordering::Acquire)
    }

    /// Writes the user-facing projection of `engine` (see [`crate::render::status`]) when
    /// it differs from the stored status in something worth a request. Returns whether it
    /// wrote. Refused like a save once another writer has taken over.
    #[tracing::instrument(level = "debug", skip_all, fields(group = %self.location))]
    pub async fn publish(
        &self,
        engine: &GroupStatus,
        observed_generation: Option<i64>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut inner = self.inner.lock().await;
        // Boxed: the kube request futures make this one large.
        Box::pin(self.write(&mut inner, |stored| {
            let next = project(engine, stored, observed_generation, now);
            worth_writing(stored, &next, now).then_some(next)
        }))
        .await
    }

    /// Records the ordered update's phase in `status.updatePhase` when it differs from the
    /// stored one. Returns whether it wrote; refused like a save once another writer has
    /// taken over.
    #[tracing::instrument(level = "debug", skip_all, fields(group = %self.location))]
    pub async fn publish_update_phase(&self, phase: &str) -> Result<bool, StoreError> {
        let mut inner = self.inner.lock().await;
        Box::pin(self.write(&mut inner, |stored| {
            (stored.update_phase.as_deref().unwrap_or_default() != phase).then(|| {
                let mut next = stored.clone();
                next.update_phase = Some(phase.to_owned());
                next
            })
        }))
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(group = %self.location))]
    async fn load_inner(&self) -> Result<Option<EngineState>, StoreError> {
        let mut inner = self.inner.lock().await;
        let object = self.read().await?;
        let record = object
            .status
            .as_ref()
            .and_then(|s| s.failover_state.clone());
        inner.mark = record.as_ref().map(Mark::of);
        inner.object = Some(object);
        self.superseded.store(false, Ordering::Release);
        let state = decode(record.as_ref(), &self.location)?;
        inner.last = state.clone().map(|s| (s, Instant::now()));
        tracing::info!(
            group = %self.location,
            revision = record.as_ref().map(|r| r.revision),
            writer = record.as_ref().map(|r| r.writer.as_str()),
            "loaded the failover state from the group's status"
        );
        Ok(state)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(group = %self.location))]
    async fn save_inner(&self, state: &EngineState) -> Result<(), StoreError> {
        let value = serde_json::to_value(state).map_err(|e| StoreError::Corrupt {
            location: self.location.clone(),
            message: format!("cannot serialize the engine state: {e}"),
        })?;
        let mut inner = self.inner.lock().await;
        let fresh_enough = inner.last.as_ref().is_some_and(|(stored, at)| {
            observations_only(stored, state)
                && self
                    .observation_refresh
                    .is_none_or(|refresh| at.elapsed() < refresh)
        });
        if fresh_enough && !self.is_superseded() {
            tracing::trace!(group = %self.location, "only observations changed; not written yet");
            return Ok(());
        }
        if inner.object.is_none() {
            // Not loaded: adopt what is stored, as `load` would.
            let object = self.read().await?;
            inner.mark = object
                .status
                .as_ref()
                .and_then(|s| s.failover_state.as_ref())
                .map(Mark::of);
            inner.object = Some(object);
        }
        let writer = self.writer.clone();
        Box::pin(self.write(&mut inner, |stored| {
            let revision = stored
                .failover_state
                .as_ref()
                .map_or(0, |r| r.revision)
                .saturating_add(1);
            let mut next = stored.clone();
            next.failover_state = Some(FailoverStateRecord {
                revision,
                writer: writer.clone(),
                state: value.clone(),
            });
            Some(next)
        }))
        .await?;
        inner.mark = inner
            .object
            .as_ref()
            .and_then(|o| o.status.as_ref())
            .and_then(|s| s.failover_state.as_ref())
            .map(Mark::of);
        inner.last = Some((state.clone(), Instant::now()));
        tracing::debug!(
            group = %self.location,
            revision = inner.mark.as_ref().map(|m| m.revision),
            "saved the failover state"
        );
        Ok(())
    }

    /// Replaces the status with `make(stored status)` under the stored resourceVersion;
    /// `make` returning `None` means nothing to write. On a 409 the group is re-read and,
    /// if the stored failover state is still ours, `make` runs again on the fresh status
    /// (once).
    async fn write(
        &self,
        inner: &mut Inner,
        make: impl Fn(&MysqlFailoverGroupStatus) -> Option<MysqlFailoverGroupStatus>,
    ) -> Result<bool, StoreError> {
        if self.is_superseded() {
            return Err(self.superseded_error(inner));
        }
        if inner.object.is_none() {
            inner.object = Some(self.read().await?);
        }
        for _ in 0..2 {
            let Some(current) = inner.object.as_ref() else {
                break;
            };
            let stored = current.status.clone().unwrap_or_default();
            let Some(next) = make(&stored) else {
                return Ok(false);
            };
            let mut body = current.clone();
            body.metadata.managed_fields = None;
            body.status = Some(next);
            let params = PostParams::default();
            let request = self.api.replace_status(&self.name, &params, &body);
            match tokio::time::timeout(self.timeout, request).await {
                Ok(Ok(written)) => {
                    inner.object = Some(written);
                    return Ok(true);
                }
                Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
                    let fresh = self.read().await?;
                    let record = fresh.status.as_ref().and_then(|s| s.failover_state.clone());
                    inner.object = Some(fresh);
                    if !still_ours(record.as_ref(), inner.mark.as_ref(), &self.writer) {
                        self.superseded.store(true, Ordering::Release);
                        let error = self.superseded_error(inner);
                        tracing::warn!(
                            group = %self.location,
                            error = %error,
                            "another writer saved the failover state; this replica stops acting"
                        );
                        return Err(error);
                    }
                    tracing::debug!(
                        group = %self.location,
                        "status write conflicted with another edit; retrying on the fresh object"
                    );
                }
                Ok(Err(e)) => return Err(self.io(&e.to_string())),
                Err(_) => return Err(self.io("status write timed out")),
            }
        }
        Err(self.io("the group changed under two status writes in a row"))
    }

    async fn read(&self) -> Result<MysqlFailoverGroup, StoreError> {
        match tokio::time::timeout(self.timeout, self.api.get(&self.name)).await {
            Ok(Ok(object)) => Ok(object),
            Ok(Err(e)) => Err(self.io(&e.to_string())),
            Err(_) => Err(self.io("read timed out")),
        }
    }

    fn io(&self, message: &str) -> StoreError {
        StoreError::Io {
            location: self.location.clone(),
            message: message.to_owned(),
        }
    }

    fn superseded_error(&self, inner: &Inner) -> StoreError {
        let record = inner
            .object
            .as_ref()
            .and_then(|o| o.status.as_ref())
            .and_then(|s| s.failover_state.as_ref());
        StoreError::Superseded {
            location: self.location.clone(),
            writer: record.map(|r| r.writer.clone()).unwrap_or_default(),
            revision: record.map_or(0, |r| r.revision),
        }
    }
}

impl StateStore for KubeStatusStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<EngineState>, StoreError>> {
        Box::pin(self.load_inner())
    }

    fn save<'a>(&'a self, state: &'a EngineState) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.save_inner(state))
    }
}

/// After a 409: whether the stored failover state is still the one this store last loaded
/// or saved, so the conflict was someone else's unrelated edit. A state stored under this
/// store's own identity at the same or a later revision also counts: a save whose answer
/// was lost (a timeout) may still have been applied.
fn still_ours(stored: Option<&FailoverStateRecord>, mark: Option<&Mark>, writer: &str) -> bool {
    match (stored, mark) {
        (None, None) => true,
        (Some(stored), Some(mark)) => {
            Mark::of(stored) == *mark
                || (stored.writer == writer && stored.revision >= mark.revision)
        }
        (Some(stored), None) => stored.writer == writer,
        (None, Some(_)) => false,
    }
}

/// Whether `next` differs from `stored` only in what the next poll observes again: each
/// site's `lastSeen`, last probe and failure, and the debounce streak counters. A site's
/// debounced state and everything else the engine remembers are not observations.
pub fn observations_only(stored: &EngineState, next: &EngineState) -> bool {
    let without = |state: &EngineState| {
        let mut state = state.clone();
        for track in state.sites.values_mut() {
            track.last_seen = None;
            track.last_probe = None;
            track.last_failure = None;
            track.failure_streak = 0;
            track.refused_streak = 0;
            track.writable_streak = 0;
            track.replication_ok_streak = 0;
            track.replication_bad_streak = 0;
        }
        state
    };
    without(stored) == without(next)
}

/// The engine state of a stored record; `None` when nothing was stored yet.
fn decode(
    record: Option<&FailoverStateRecord>,
    location: &str,
) -> Result<Option<EngineState>, StoreError> {
    let Some(record) = record else {
        return Ok(None);
    };
    if record.state.is_null() {
        return Ok(None);
    }
    serde_json::from_value(record.state.clone())
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            location: format!(
                "{location} status.failoverState.state (revision {}, written by {:?})",
                record.revision, record.writer
            ),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn record(revision: i64, writer: &str) -> FailoverStateRecord {
        FailoverStateRecord {
            revision,
            writer: writer.to_owned(),
            state: serde_json::Value::Null,
        }
    }

    fn mark(revision: i64, writer: &str) -> Mark {
        Mark::of(&record(revision, writer))
    }

    #[test]
    fn a_conflict_is_ours_to_retry_only_while_our_state_is_stored() {
        // Someone edited the spec: our revision is still there.
        assert!(still_ours(Some(&record(4, "a")), Some(&mark(4, "a")), "a"));
        assert!(still_ours(None, None, "a"));
        // A new leader saved after us, or before our first save.
        assert!(!still_ours(Some(&record(5, "b")), Some(&mark(4, "a")), "a"));
        assert!(!still_ours(Some(&record(4, "b")), Some(&mark(4, "a")), "a"));
        assert!(!still_ours(Some(&record(1, "b")), None, "a"));
        // Our state was removed by hand: someone else is in charge of it.
        assert!(!still_ours(None, Some(&mark(4, "a")), "a"));
        // Our own save whose answer was lost.
        assert!(still_ours(Some(&record(5, "a")), Some(&mark(4, "a")), "a"));
    }

    #[test]
    fn observations_are_told_from_what_the_engine_must_remember() {
        use crate::failover::{SiteState, Timestamp};
        let mut stored = EngineState::new();
        stored.active_site = Some("iad".to_owned());
        stored.sites.insert(
            "iad".to_owned(),
            crate::failover::state::SiteTrack::default(),
        );
        let mut next = stored.clone();
        let track = next.sites.get_mut("iad").unwrap();
        track.last_seen = Some(Timestamp(5));
        track.writable_streak = 4;
        track.replication_bad_streak = 1;
        assert!(observations_only(&stored, &next));
        next.sites.get_mut("iad").unwrap().state = SiteState::Writable;
        assert!(!observations_only(&stored, &next));
        let mut moved = stored.clone();
        moved.next_action_id = 1;
        assert!(!observations_only(&stored, &moved));
    }

    #[test]
    fn stored_state_round_trips_and_garbage_is_corrupt_with_its_location() {
        let mut state = EngineState::new();
        state.active_site = Some("iad".to_owned());
        let stored = FailoverStateRecord {
            revision: 3,
            writer: "a".to_owned(),
            state: serde_json::to_value(&state).unwrap(),
        };
        assert_eq!(decode(Some(&stored), "here").unwrap(), Some(state));
        assert_eq!(decode(None, "here").unwrap(), None);
        assert_eq!(decode(Some(&record(0, "")), "here").unwrap(), None);
        let garbage = FailoverStateRecord {
            state: serde_json::json!({"sites": 7}),
            ..record(3, "a")
        };
        let Err(StoreError::Corrupt { location, .. }) = decode(Some(&garbage), "MFG ns/g") else {
            panic!("garbage decoded");
        };
        assert!(
            location.contains("MFG ns/g status.failoverState.state (revision 3"),
            "{location}"
        );
    }
}
