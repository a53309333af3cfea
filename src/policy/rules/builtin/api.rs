//! Checks about the API's shape that the CRD schema deliberately does not enforce, because
//! the original's schema accepted these manifests: they are findings, not rejections.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{BuiltinCheck, violation};
use crate::policy::rules::condition::Violation;
use crate::policy::rules::context::ObjectContext;
use crate::policy::rules::shapes::legacy_secret_refs;

/// A Secret name written as `{name: X}` (BR-API-001).
pub struct LegacySecretShape;

impl BuiltinCheck for LegacySecretShape {
    fn cross_object(&self) -> bool {
        false
    }

    fn reads_raw_shape(&self) -> bool {
        true
    }

    fn check(&self, object: &Value, _: &dyn ObjectContext) -> Vec<Violation> {
        legacy_secret_refs(object)
            .into_iter()
            .map(|pointer| {
                let name = object
                    .pointer(&format!("{pointer}/name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                violation(pointer, name)
            })
            .collect()
    }
}

/// Schedules and `pitr` name existing backup profiles, and profile names are unique
/// (BR-API-003).
pub struct BackupReferences;

impl BuiltinCheck for BackupReferences {
    fn cross_object(&self) -> bool {
        false
    }

    fn check(&self, object: &Value, _: &dyn ObjectContext) -> Vec<Violation> {
        let Some(backup) = object.pointer("/spec/backup") else {
            return Vec::new();
        };
        let list = |key: &str| backup.get(key).and_then(Value::as_array).cloned();
        let profiles = list("profiles").unwrap_or_default();
        let mut out = Vec::new();
        let mut names = BTreeSet::new();
        for (i, profile) in profiles.iter().enumerate() {
            let Some(name) = profile.get("name").and_then(Value::as_str) else {
                continue;
            };
            if !names.insert(name) {
                out.push(violation(
                    format!("/spec/backup/profiles/{i}/name"),
                    format!("backup profile name {name} is used twice"),
                ));
            }
        }
        for (i, schedule) in list("schedules").unwrap_or_default().iter().enumerate() {
            let Some(profile) = schedule.get("profileName").and_then(Value::as_str) else {
                continue;
            };
            if !names.contains(profile) {
                let name = schedule.get("name").and_then(Value::as_str).unwrap_or("?");
                out.push(violation(
                    format!("/spec/backup/schedules/{i}/profileName"),
                    format!("schedule {name} names backup profile {profile}, which does not exist"),
                ));
            }
        }
        let pitr_on = backup
            .pointer("/pitr/enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if pitr_on {
            match backup.pointer("/pitr/profileName").and_then(Value::as_str) {
                None => out.push(violation(
                    "/spec/backup/pitr/profileName",
                    "pitr is enabled without a profileName",
                )),
                Some(profile) if !names.contains(profile) => out.push(violation(
                    "/spec/backup/pitr/profileName",
                    format!("pitr names backup profile {profile}, which does not exist"),
                )),
                Some(_) => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy::rules::context::EmptyContext;

    fn pointers(check: &dyn BuiltinCheck, object: &Value) -> Vec<(String, String)> {
        check
            .check(object, &EmptyContext)
            .into_iter()
            .map(|v| (v.pointer, v.value))
            .collect()
    }

    #[test]
    fn legacy_shape_names_the_field_and_the_secret() {
        let group = json!({"kind": "MysqlFailoverGroup", "spec": {"credentials": {
            "operatorSecret": "op", "appSecret": {"name": "app"}}}});
        assert_eq!(
            pointers(&LegacySecretShape, &group),
            [("/spec/credentials/appSecret".to_owned(), "app".to_owned())]
        );
    }

    #[test]
    fn backup_references_must_resolve() {
        let group = json!({"kind": "MysqlFailoverGroup", "spec": {"backup": {
            "profiles": [{"name": "a"}, {"name": "a"}],
            "schedules": [{"name": "n", "profileName": "a"}, {"name": "m", "profileName": "z"}],
            "pitr": {"enabled": true, "profileName": "q"}}}});
        let found: Vec<String> = pointers(&BackupReferences, &group)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            found,
            [
                "/spec/backup/profiles/1/name",
                "/spec/backup/schedules/1/profileName",
                "/spec/backup/pitr/profileName",
            ]
        );
        let off = json!({"spec": {"backup": {"profiles": [], "pitr": {"enabled": false}}}});
        assert!(pointers(&BackupReferences, &off).is_empty());
        let unnamed = json!({"spec": {"backup": {"pitr": {"enabled": true}}}});
        assert_eq!(
            pointers(&BackupReferences, &unnamed)[0].0,
            "/spec/backup/pitr/profileName"
        );
    }
}
