//! The live objects [`super::KubeObjects`] answers from: what the watches last delivered,
//! plus what this process applied since (the overlay).
//!
//! The overlay exists because the watch lags the write: a reconcile that runs again before
//! the event for its own apply arrives would otherwise see the old object and apply again.
//! An overlay entry is dropped as soon as the watch delivers that version or a later one,
//! and in any case after [`OVERLAY_TTL`], so it cannot hide a later deletion for long, and
//! the overlay never holds more than the objects written in the last TTL.
//!
//! Objects are held as compact JSON text and parsed when read. A `serde_json::Value` tree
//! takes about ten times the memory of its text (every small map is a B-tree node), and
//! the cache holds every child object of every group: at 1,000 groups that is the
//! difference between ~16 MiB and ~160 MiB. Parsing a child object costs about what
//! cloning its tree did, so reads cost no more.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ports::objects::ObjectKey;

/// How long an applied object stands in for the watch's copy at most. Far longer than a
/// watch event takes on a healthy API server; short enough that a deletion of the object
/// right after our apply (with its DELETED event somehow missed) is healed soon.
pub const OVERLAY_TTL: Duration = Duration::from_secs(30);

/// One object as held: its JSON text, and the resourceVersion the bookkeeping compares.
#[derive(Debug)]
struct Compact {
    json: Box<str>,
    resource_version: Option<Box<str>>,
}

impl Compact {
    fn new(object: &Value) -> Self {
        Self {
            // A Value always serializes (string keys); the empty text would read back as
            // "absent", never as a wrong object.
            json: serde_json::to_string(object)
                .unwrap_or_default()
                .into_boxed_str(),
            resource_version: resource_version(object).map(Into::into),
        }
    }

    fn value(&self) -> Option<Value> {
        serde_json::from_str(&self.json).ok()
    }

    fn resource_version(&self) -> Option<&str> {
        self.resource_version.as_deref()
    }
}

#[derive(Debug, Default)]
struct State {
    watched: HashMap<ObjectKey, Compact>,
    applied: HashMap<ObjectKey, (Compact, Instant)>,
    /// (kind, namespace; `None`: every namespace) scopes listed completely at least once:
    /// only those can answer [`LiveObjects::select`].
    listed: HashSet<(String, Option<String>)>,
}

#[derive(Debug, Default)]
pub struct LiveObjects {
    state: RwLock<State>,
}

impl LiveObjects {
    /// The freshest copy of `key` known here.
    pub fn get(&self, key: &ObjectKey, now: Instant) -> Option<Value> {
        let state = self.read();
        if let Some((object, at)) = state.applied.get(key)
            && now.duration_since(*at) < OVERLAY_TTL
        {
            return object.value();
        }
        state.watched.get(key).and_then(Compact::value)
    }

    /// A watch delivered `object` (added or modified).
    pub fn seen(&self, key: ObjectKey, object: &Value) {
        let object = Compact::new(object);
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
        state
            .listed
            .insert((kind.to_owned(), namespace.map(str::to_owned)));
        state.watched.retain(|k, _| !in_scope(k));
        for (key, object) in objects {
            let object = Compact::new(&object);
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
    pub fn applied(&self, key: ObjectKey, object: &Value, now: Instant) {
        let object = Compact::new(object);
        let mut state = self.write();
        state
            .applied
            .retain(|_, (_, at)| now.duration_since(*at) < OVERLAY_TTL);
        match state.watched.get(&key) {
            // Nothing changed on the server (same resourceVersion): the watch copy is current.
            Some(watched) if watched.resource_version() == object.resource_version() => {
                state.watched.insert(key, object);
            }
            // The watch already delivered a later version (another writer, such as the Job
            // controller ending a Job, right after our apply): our answer is older, and
            // standing in for the watch it would hide that change until the TTL.
            Some(watched) if older(&object, watched) => {}
            _ => {
                state.applied.insert(key, (object, now));
            }
        }
    }

    /// The watched objects of `kind` in `namespace` whose labels include all of `labels`;
    /// `None` until a complete list of that scope has arrived (then the API server must be
    /// asked instead).
    pub fn select(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<Vec<Value>> {
        let state = self.read();
        let listed = |ns: Option<&str>| {
            state
                .listed
                .contains(&(kind.to_owned(), ns.map(str::to_owned)))
        };
        if !listed(Some(namespace)) && !listed(None) {
            return None;
        }
        let has_labels = |object: &Value| {
            let have = object.pointer("/metadata/labels");
            labels.iter().all(|(k, v)| {
                have.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v.as_str())
            })
        };
        Some(
            state
                .watched
                .iter()
                .filter(|(key, _)| {
                    key.kind == kind && key.api_version == api_version && key.namespace == namespace
                })
                .filter_map(|(_, object)| object.value())
                .filter(has_labels)
                .collect(),
        )
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
fn older(seen: &Compact, applied: &Compact) -> bool {
    let number = |c: &Compact| c.resource_version().and_then(|rv| rv.parse::<u64>().ok());
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
        live.seen(key("c"), &object("5", "old"));
        live.applied(key("c"), &object("7", "new"), now);
        assert_eq!(live.get(&key("c"), now).unwrap()["data"]["a"], "new");
        // A late event from before the apply does not undo it.
        live.seen(key("c"), &object("6", "between"));
        assert_eq!(live.get(&key("c"), now).unwrap()["data"]["a"], "new");
        // The event of the apply itself (or a later one) replaces the overlay.
        live.seen(key("c"), &object("8", "later"));
        assert_eq!(live.get(&key("c"), now).unwrap()["data"]["a"], "later");
        assert_eq!(live.len(), 1);
    }

    #[test]
    fn the_overlay_expires_and_deletions_clear_it() {
        let live = LiveObjects::default();
        let now = Instant::now();
        live.applied(key("c"), &object("7", "new"), now);
        assert!(live.get(&key("c"), now + OVERLAY_TTL).is_none());
        live.applied(key("d"), &object("9", "new"), now + OVERLAY_TTL);
        assert_eq!(
            live.len(),
            1,
            "expired entries are dropped on the next apply"
        );
        live.gone(&key("d"));
        assert!(live.get(&key("d"), now).is_none());
    }

    /// Another writer changed the object right after our apply, and the watch delivered
    /// that before our apply's answer was recorded (a Job the Job controller ended at
    /// once): the older answer must not stand in for it.
    #[test]
    fn an_apply_answer_older_than_the_watch_copy_is_not_overlaid() {
        let live = LiveObjects::default();
        let now = Instant::now();
        live.seen(key("job"), &object("101", "failed"));
        live.applied(key("job"), &object("100", "created"), now);
        assert_eq!(live.get(&key("job"), now).unwrap()["data"]["a"], "failed");
        assert_eq!(live.len(), 1);
    }

    #[test]
    fn an_unchanged_apply_updates_the_watched_copy() {
        let live = LiveObjects::default();
        let now = Instant::now();
        live.seen(key("c"), &object("5", "same"));
        live.applied(key("c"), &object("5", "same"), now);
        assert_eq!(live.len(), 1);
    }

    #[test]
    fn select_answers_only_for_listed_scopes_and_matches_every_label() {
        let live = LiveObjects::default();
        let pod = |name: &str, site: &str| {
            (
                ObjectKey {
                    api_version: "v1".to_owned(),
                    kind: "Pod".to_owned(),
                    namespace: "db".to_owned(),
                    name: name.to_owned(),
                },
                json!({"metadata": {"name": name, "labels": {"group": "orders", "site": site}}}),
            )
        };
        let want = BTreeMap::from([
            ("group".to_owned(), "orders".to_owned()),
            ("site".to_owned(), "iad".to_owned()),
        ]);
        assert_eq!(
            live.select("v1", "Pod", "db", &want),
            None,
            "not listed yet"
        );
        live.relisted("Pod", Some("db"), vec![pod("a", "iad"), pod("b", "pdx")]);
        let found = live.select("v1", "Pod", "db", &want).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["metadata"]["name"], "a");
        assert_eq!(live.select("v1", "Pod", "other", &want), None);
        assert_eq!(
            live.select("apps/v1", "Pod", "db", &want),
            Some(vec![]),
            "kind means group and kind"
        );
        let (key, _) = pod("a", "iad");
        live.gone(&key);
        assert_eq!(live.select("v1", "Pod", "db", &want), Some(vec![]));
    }

    #[test]
    fn a_relist_replaces_its_scope_only() {
        let live = LiveObjects::default();
        let mut other = key("x");
        other.namespace = "apps".to_owned();
        live.seen(key("a"), &object("1", "a"));
        live.seen(other.clone(), &object("1", "x"));
        live.relisted("ConfigMap", Some("db"), vec![(key("b"), object("2", "b"))]);
        let now = Instant::now();
        assert!(live.get(&key("a"), now).is_none());
        assert!(live.get(&key("b"), now).is_some());
        assert!(live.get(&other, now).is_some());
    }
}
