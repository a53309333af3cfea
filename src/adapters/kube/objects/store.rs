//! The live objects [`super::KubeObjects`] answers from: what the watches last delivered,
//! plus what this process applied since (the overlay).
//!
//! The overlay exists because the watch lags the write: a reconcile that runs again before
//! the event for its own apply arrives would otherwise see the old object and apply again.
//! An overlay entry is dropped as soon as the watch delivers that version or a later one,
//! and in any case after [`OVERLAY_TTL`], so it cannot hide a later deletion for long, and
//! the overlay never holds more than the objects written in the last TTL.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ports::objects::ObjectKey;

/// How long an applied object stands in for the watch's copy at most. Far longer than a
/// watch event takes on a healthy API server; short enough that a deletion of the object
/// right after our apply (with its DELETED event somehow missed) is healed soon.
pub const OVERLAY_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct State {
    watched: HashMap<ObjectKey, Value>,
    applied: HashMap<ObjectKey, (Value, Instant)>,
}

#[derive(Debug, Default)]
pub struct LiveObjects {
    state: RwLock<State>,
}

impl LiveObjects {
    /// The freshest copy of `key` known here.
    pub fn get(&self, key: &ObjectKey, now: Instant) -> Option<Value> {
        let state = self.read();
        if let Some((value, at)) = state.applied.get(key)
            && now.duration_since(*at) < OVERLAY_TTL
        {
            return Some(value.clone());
        }
        state.watched.get(key).cloned()
    }

    /// A watch delivered `object` (added or modified).
    pub fn seen(&self, key: ObjectKey, object: Value) {
        let mut state = self.write();
        if state
            .applied
            .get(&key)
            .is_some_and(|(applied, _)| !older(&object, applied))
        {
            state.applied.remove(&key);
        }
        state.watched.insert(key, object);
    }

    /// A watch delivered a deletion.
    pub fn gone(&self, key: &ObjectKey) {
        let mut state = self.write();
        state.watched.remove(key);
        state.applied.remove(key);
    }

    /// A complete list of `kind` in `namespace` (`None`: every namespace) replaces what
    /// the watch had delivered for that scope.
    pub fn relisted(&self, kind: &str, namespace: Option<&str>, objects: Vec<(ObjectKey, Value)>) {
        let in_scope =
            |k: &ObjectKey| k.kind == kind && namespace.is_none_or(|ns| ns == k.namespace);
        let mut state = self.write();
        state.watched.retain(|k, _| !in_scope(k));
        for (key, object) in objects {
            if in_scope(&key) {
                if state
                    .applied
                    .get(&key)
                    .is_some_and(|(applied, _)| !older(&object, applied))
                {
                    state.applied.remove(&key);
                }
                state.watched.insert(key, object);
            }
        }
    }

    /// The API server accepted an apply and answered with `object`.
    pub fn applied(&self, key: ObjectKey, object: Value, now: Instant) {
        let mut state = self.write();
        state
            .applied
            .retain(|_, (_, at)| now.duration_since(*at) < OVERLAY_TTL);
        // Nothing changed on the server (same resourceVersion): the watch copy is current.
        if state
            .watched
            .get(&key)
            .is_some_and(|watched| resource_version(watched) == resource_version(&object))
        {
            state.watched.insert(key, object);
        } else {
            state.applied.insert(key, (object, now));
        }
    }

    /// How many objects are held (watched and overlay).
    pub fn len(&self) -> usize {
        let state = self.read();
        state.watched.len() + state.applied.len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn resource_version(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// Whether `seen` is a version from before `applied`. resourceVersions are opaque to
/// clients, but every API server backed by etcd hands out its revision, an integer that
/// grows with every write; anything else is taken as "not older", so the watch wins.
fn older(seen: &Value, applied: &Value) -> bool {
    let number = |v: &Value| resource_version(v).and_then(|rv| rv.parse::<u64>().ok());
    matches!((number(seen), number(applied)), (Some(s), Some(a)) if s < a)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(name: &str) -> ObjectKey {
        ObjectKey {
            api_version: "v1".to_owned(),
            kind: "ConfigMap".to_owned(),
            namespace: "db".to_owned(),
            name: name.to_owned(),
        }
    }

    fn object(rv: &str, data: &str) -> Value {
        json!({"metadata": {"resourceVersion": rv}, "data": {"a": data}})
    }

    #[test]
    fn an_applied_object_is_seen_until_the_watch_catches_up() {
        let live = LiveObjects::default();
        let now = Instant::now();
        live.seen(key("c"), object("5", "old"));
        live.applied(key("c"), object("7", "new"), now);
        assert_eq!(live.get(&key("c"), now).unwrap()["data"]["a"], "new");
        // A late event from before the apply does not undo it.
        live.seen(key("c"), object("6", "between"));
        assert_eq!(live.get(&key("c"), now).unwrap()["data"]["a"], "new");
        // The event of the apply itself (or a later one) replaces the overlay.
        live.seen(key("c"), object("8", "later"));
        assert_eq!(live.get(&key("c"), now).unwrap()["data"]["a"], "later");
        assert_eq!(live.len(), 1);
    }

    #[test]
    fn the_overlay_expires_and_deletions_clear_it() {
        let live = LiveObjects::default();
        let now = Instant::now();
        live.applied(key("c"), object("7", "new"), now);
        assert!(live.get(&key("c"), now + OVERLAY_TTL).is_none());
        live.applied(key("d"), object("9", "new"), now + OVERLAY_TTL);
        assert_eq!(
            live.len(),
            1,
            "expired entries are dropped on the next apply"
        );
        live.gone(&key("d"));
        assert!(live.get(&key("d"), now).is_none());
    }

    #[test]
    fn an_unchanged_apply_updates_the_watched_copy() {
        let live = LiveObjects::default();
        let now = Instant::now();
        live.seen(key("c"), object("5", "same"));
        live.applied(key("c"), object("5", "same"), now);
        assert_eq!(live.len(), 1);
    }

    #[test]
    fn a_relist_replaces_its_scope_only() {
        let live = LiveObjects::default();
        let mut other = key("x");
        other.namespace = "apps".to_owned();
        live.seen(key("a"), object("1", "a"));
        live.seen(other.clone(), object("1", "x"));
        live.relisted("ConfigMap", Some("db"), vec![(key("b"), object("2", "b"))]);
        let now = Instant::now();
        assert!(live.get(&key("a"), now).is_none());
        assert!(live.get(&key("b"), now).is_some());
        assert!(live.get(&other, now).is_some());
    }
}
