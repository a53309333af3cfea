//! `kubectl bloodraven restore`: a destructive in-place restore of a group from one of its
//! backups, asked for the way the API asks for it — `spec.restoreInPlace` with a fresh
//! `confirm` token naming a `MysqlBackup` — then followed in `status.restoreInPlace`.
//!
//! Pure: the checks, the token, the patch and the report. The actions module does the I/O.

use k8s_openapi::jiff;
use serde::Serialize;
use serde_json::{Value, json};

use super::backups::{RunState, require_succeeded, run_state};
use crate::api::MysqlFailoverGroup;
use crate::api::backup_run::MysqlBackup;
use crate::backup::restore_run::{self, RestorePhase};
use crate::failover::Timestamp;

/// Refuses a backup that cannot be restored into `group`, and a group whose previous
/// restore is still running (its token would be replaced under it).
pub fn check_restorable(group: &MysqlFailoverGroup, backup: &MysqlBackup) -> Result<(), String> {
    require_succeeded(backup, "restored")?;
    let name = backup.metadata.name.as_deref().unwrap_or_default();
    let profile = &backup.spec.profile_name;
    let known = group
        .spec
        .backup
        .as_ref()
        .is_some_and(|b| b.profiles.iter().any(|p| &p.name == profile));
    if !known {
        return Err(format!(
            "MysqlBackup {name} was taken with profile {profile}, which group {} does not have (its storage says where to read)",
            group.metadata.name.as_deref().unwrap_or_default()
        ));
    }
    let running = group
        .status
        .as_ref()
        .and_then(|s| s.restore_in_place.as_ref())
        .and_then(|r| r.run.phase.as_deref());
    if restore_run::in_progress(RestorePhase::parse(running)) {
        return Err(format!(
            "a restore of this group is {}; wait for it to end",
            running.unwrap_or_default()
        ));
    }
    Ok(())
}

/// A `confirm` token for `now` (RFC 3339, whole seconds, UTC) that is newer than `used`,
/// so a clock a little behind the last writer's still makes a token the operator accepts.
pub fn next_token(now: jiff::Timestamp, used: Option<&str>) -> String {
    let now_ms = u64::try_from(now.as_millisecond()).unwrap_or(0) / 1000 * 1000;
    let mut token = Timestamp::from_millis(now_ms);
    if let Some(used) = used.and_then(Timestamp::parse_rfc3339)
        && token <= used
    {
        token = Timestamp::from_millis(used.as_millis() / 1000 * 1000 + 1000);
    }
    token.rfc3339()
}

/// The merge patch that arms the restore: the whole `spec.restoreInPlace`, with every
/// field of an earlier request this one does not set cleared (a merge patch would
/// otherwise keep, say, an old `pointInTime`). `schema` restores that schema alone.
pub fn restore_patch(backup: &str, token: &str, schema: Option<&str>) -> Value {
    json!({"spec": {"restoreInPlace": {
        "confirm": token,
        "source": {"mysqlBackupRef": {"name": backup}, "s3": null, "pvc": null},
        "loadOptions": schema.map(|name| json!({"includeSchemas": [name]})),
        "pointInTime": null,
        "decryption": null,
    }}})
}

/// Where the restore armed with `token` stands.
pub fn restore_state(group: &MysqlFailoverGroup, token: &str) -> RunState {
    let run = group
        .status
        .as_ref()
        .and_then(|s| s.restore_in_place.clone())
        .unwrap_or_default();
    if run.confirm_token_used.as_deref() != Some(token) {
        return RunState::Waiting("waiting for the operator to take the request".to_owned());
    }
    let detail = run
        .run
        .target_site
        .as_deref()
        .map(|s| format!(" (into {s})"))
        .unwrap_or_default();
    run_state(
        run.run.phase.as_deref(),
        &detail,
        run.run.message.as_deref(),
    )
}

/// One restore as the plugin reports it (the shape of `-o json|yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSummary {
    pub namespace: String,
    pub group: String,
    pub backup: String,
    pub confirm: String,
    pub phase: Option<String>,
    pub target_site: Option<String>,
    /// `full`, or `schema:<name>` for a one-schema restore.
    pub scope: Option<String>,
    pub recloned_sites: Vec<String>,
    pub message: Option<String>,
}

pub fn summarize_restore(group: &MysqlFailoverGroup, backup: &str, token: &str) -> RestoreSummary {
    let run = group
        .status
        .as_ref()
        .and_then(|s| s.restore_in_place.clone())
        .filter(|r| r.confirm_token_used.as_deref() == Some(token))
        .unwrap_or_default();
    RestoreSummary {
        namespace: group.metadata.namespace.clone().unwrap_or_default(),
        group: group.metadata.name.clone().unwrap_or_default(),
        backup: backup.to_owned(),
        confirm: token.to_owned(),
        phase: run.run.phase,
        target_site: run.run.target_site,
        scope: run.scope,
        recloned_sites: run.run.recloned_sites,
        message: run.run.message,
    }
}

pub fn restore_report(r: &RestoreSummary) -> String {
    let mut lines = vec![
        format!("group:    {}/{}", r.namespace, r.group),
        format!("backup:   {}", r.backup),
        format!("confirm:  {}", r.confirm),
        format!("phase:    {}", r.phase.as_deref().unwrap_or("requested")),
    ];
    if let Some(site) = &r.target_site {
        lines.push(format!("target:   {site}"));
    }
    if let Some(scope) = &r.scope {
        lines.push(format!("scope:    {scope}"));
    }
    if !r.recloned_sites.is_empty() {
        lines.push(format!("recloned: {}", r.recloned_sites.join(", ")));
    }
    if let Some(message) = &r.message {
        lines.push(format!("message:  {message}"));
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(status: &Value) -> MysqlFailoverGroup {
        serde_json::from_value(json!({
            "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlFailoverGroup",
            "metadata": {"name": "orders", "namespace": "db"},
            "spec": {"image": "mysql:9.7.4", "sites": [{"name": "iad"}, {"name": "pdx"}],
                     "dns": {"hostname": "db.example.com"},
                     "backup": {"profiles": [{"name": "offsite", "storage": {"type": "S3",
                        "s3": {"bucket": "b", "credentialsSecret": "s"}}}]}},
            "status": status
        }))
        .unwrap()
    }

    fn backup(phase: &str, profile: &str) -> MysqlBackup {
        serde_json::from_value(json!({
            "apiVersion": "shipstream.io/v1alpha1", "kind": "MysqlBackup",
            "metadata": {"name": "nightly-1", "namespace": "db"},
            "spec": {"failoverGroupRef": {"name": "orders"}, "profileName": profile},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    #[test]
    fn only_a_succeeded_backup_of_a_known_profile_restores_and_never_over_a_running_one() {
        let idle = group(&json!({}));
        assert!(check_restorable(&idle, &backup("Succeeded", "offsite")).is_ok());
        let e = check_restorable(&idle, &backup("Running", "offsite")).unwrap_err();
        assert!(e.contains("Running"), "{e}");
        let e = check_restorable(&idle, &backup("Succeeded", "gone")).unwrap_err();
        assert!(e.contains("profile gone"), "{e}");
        for phase in ["Fencing", "Restoring", "Resuming"] {
            let busy = group(&json!({"restoreInPlace": {"phase": phase}}));
            let e = check_restorable(&busy, &backup("Succeeded", "offsite")).unwrap_err();
            assert!(e.contains(phase), "{e}");
        }
        let done = group(&json!({"restoreInPlace": {"phase": "Failed"}}));
        assert!(check_restorable(&done, &backup("Succeeded", "offsite")).is_ok());
    }

    #[test]
    fn a_token_is_the_time_now_but_always_newer_than_the_last_one() {
        let now: jiff::Timestamp = "2026-12-02T10:00:00.750Z".parse().unwrap();
        assert_eq!(next_token(now, None), "2026-12-02T10:00:00Z");
        assert_eq!(
            next_token(now, Some("2026-12-01T00:00:00Z")),
            "2026-12-02T10:00:00Z"
        );
        // The last writer's clock was ahead: one second past its token.
        assert_eq!(
            next_token(now, Some("2026-12-02T10:05:00Z")),
            "2026-12-02T10:05:01Z"
        );
        let token = next_token(now, Some("2026-12-02T10:00:00Z"));
        assert!(
            restore_run::token_is_newer(&token, Some("2026-12-02T10:00:00Z")),
            "{token}"
        );
    }

    #[test]
    fn the_patch_replaces_every_earlier_input_and_the_state_follows_its_own_token() {
        let one = restore_patch("nightly-1", "2026-12-02T10:00:00Z", Some("shop"));
        assert_eq!(
            one["spec"]["restoreInPlace"]["loadOptions"],
            json!({"includeSchemas": ["shop"]})
        );
        let patch = restore_patch("nightly-1", "2026-12-02T10:00:00Z", None);
        let spec = &patch["spec"]["restoreInPlace"];
        assert_eq!(spec["source"]["mysqlBackupRef"]["name"], "nightly-1");
        for cleared in ["loadOptions", "pointInTime", "decryption"] {
            assert!(
                spec[cleared].is_null() && spec.get(cleared).is_some(),
                "{cleared}"
            );
        }
        let token = "2026-12-02T10:00:00Z";
        let older = group(
            &json!({"restoreInPlace": {"confirmTokenUsed": "2026-12-01T00:00:00Z", "phase": "Succeeded"}}),
        );
        assert!(matches!(restore_state(&older, token), RunState::Waiting(_)));
        let running = group(
            &json!({"restoreInPlace": {"confirmTokenUsed": token, "phase": "Restoring", "targetSite": "iad"}}),
        );
        assert!(
            matches!(restore_state(&running, token), RunState::Waiting(t) if t.contains("Restoring (into iad)"))
        );
        let done = group(
            &json!({"restoreInPlace": {"confirmTokenUsed": token, "phase": "Succeeded", "reclonedSites": ["pdx"]}}),
        );
        assert_eq!(
            restore_state(&done, token),
            RunState::Finished { succeeded: true }
        );
        let report = restore_report(&summarize_restore(&done, "nightly-1", token));
        assert!(
            report.contains("recloned: pdx") && report.contains("phase:    Succeeded"),
            "{report}"
        );
    }
}
