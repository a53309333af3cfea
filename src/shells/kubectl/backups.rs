//! What `kubectl bloodraven backup`, `verify-backup` and `backups` show and decide. Pure:
//! objects, flags and the current time in, names, objects to create, verdicts and text out.
//!
//! The plugin only creates `MysqlBackup` and `MysqlBackupVerification` objects and reads
//! their status; the operator's reconcilers run the Jobs.

use std::fmt::Write as _;

use k8s_openapi::jiff;
use serde::Serialize;

use super::table::{age, align, shorten};
use crate::api::MysqlFailoverGroup;
use crate::api::backup_run::{MysqlBackup, MysqlBackupSpec};
use crate::api::common::{LocalRef, OptionalNameRef};
use crate::api::failover_group::SiteRole;
use crate::api::verification::{
    MysqlBackupVerification, MysqlBackupVerificationSpec, SanityCheck, SanityExpectation,
};

/// The terminal phases both kinds share.
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";

/// The sanity query's time limit when `--min-rows` asks for an expectation: the schema's
/// default, written out because the expectation object has no default of its own here.
const SANITY_MAX_SECONDS: i32 = 60;

/// `<group>-<profile>-<utc yyyymmddhhmmss>` (`kind` `verify` adds `-verify` before the
/// time), so `kubectl get mb` sorts a profile's runs by time and the name says what it is.
pub fn run_name(group: &str, profile: &str, kind: Option<&str>, now: jiff::Timestamp) -> String {
    let stamp = now.strftime("%Y%m%d%H%M%S");
    match kind {
        Some(kind) => format!("{group}-{profile}-{kind}-{stamp}"),
        None => format!("{group}-{profile}-{stamp}"),
    }
}

/// `spec.triggeredBy`: `kubectl/<kubeconfig user>`, or `kubectl/manual` when the
/// connection names none (in-cluster, a bare token).
pub fn triggered_by(user: Option<&str>) -> String {
    match user.map(str::trim).filter(|u| !u.is_empty()) {
        Some(user) => format!("kubectl/{user}"),
        None => "kubectl/manual".to_owned(),
    }
}

fn profiles(group: &MysqlFailoverGroup) -> Vec<&str> {
    group
        .spec
        .backup
        .iter()
        .flat_map(|b| b.profiles.iter().map(|p| p.name.as_str()))
        .collect()
}

/// Refuses a profile the group does not have, naming the ones it has.
pub fn check_profile(group: &MysqlFailoverGroup, profile: &str) -> Result<(), String> {
    let name = group.metadata.name.as_deref().unwrap_or_default();
    let known = profiles(group);
    if known.contains(&profile) {
        return Ok(());
    }
    if known.is_empty() {
        return Err(format!(
            "group {name} has no backup profiles (spec.backup.profiles is empty)"
        ));
    }
    Err(format!(
        "group {name} has no backup profile {profile} (profiles: {})",
        known.join(", ")
    ))
}

/// Refuses a source site the group does not have, and a read-only reader (the operator
/// never backs up from one).
pub fn check_source_site(group: &MysqlFailoverGroup, site: &str) -> Result<(), String> {
    let name = group.metadata.name.as_deref().unwrap_or_default();
    let Some(spec) = group.spec.sites.iter().find(|s| s.name == site) else {
        let sites: Vec<&str> = group.spec.sites.iter().map(|s| s.name.as_str()).collect();
        return Err(format!(
            "group {name} has no site {site} (sites: {})",
            sites.join(", ")
        ));
    };
    if spec.role == SiteRole::ReadOnly {
        return Err(format!(
            "site {site} is a read-only reader; backups are taken from a primary-candidate or dr-only site"
        ));
    }
    Ok(())
}

/// The MysqlBackup `backup` asks for.
pub fn new_backup(
    name: &str,
    namespace: &str,
    group: &str,
    profile: &str,
    source_site: Option<&str>,
    triggered_by: &str,
) -> MysqlBackup {
    let mut backup = MysqlBackup::new(
        name,
        MysqlBackupSpec {
            failover_group_ref: LocalRef {
                name: group.to_owned(),
            },
            profile_name: profile.to_owned(),
            source_site_override: source_site.map(str::to_owned),
            triggered_by: Some(triggered_by.to_owned()),
        },
    );
    backup.metadata.namespace = Some(namespace.to_owned());
    backup
}

/// What `verify-backup` asks for, besides the names.
#[derive(Debug, Clone, Default)]
pub struct VerificationRequest<'a> {
    pub backup: Option<&'a str>,
    pub sanity_query: Option<&'a str>,
    pub min_rows: Option<u32>,
}

/// The MysqlBackupVerification `verify-backup` asks for. Without a backup `backupRef` is
/// left out: the operator then picks the profile's latest Succeeded backup when it starts.
pub fn new_verification(
    name: &str,
    namespace: &str,
    group: &str,
    profile: &str,
    request: &VerificationRequest<'_>,
    triggered_by: &str,
) -> MysqlBackupVerification {
    let mut verification = MysqlBackupVerification::new(
        name,
        MysqlBackupVerificationSpec {
            failover_group_ref: LocalRef {
                name: group.to_owned(),
            },
            profile_name: profile.to_owned(),
            backup_ref: request
                .backup
                .map(|b| OptionalNameRef { name: b.to_owned() }),
            // The schema's defaults, as the API server would fill them in.
            keep_on_failure: true,
            ttl_seconds_after_finished: 0,
            triggered_by: Some(triggered_by.to_owned()),
            sanity_check: request.sanity_query.map(|query| SanityCheck {
                query: query.to_owned(),
                expect: request.min_rows.map(|n| SanityExpectation {
                    min_rows: Some(i64::from(n)),
                    max_duration_seconds: SANITY_MAX_SECONDS,
                }),
            }),
            ..MysqlBackupVerificationSpec::default()
        },
    );
    verification.metadata.namespace = Some(namespace.to_owned());
    verification
}

/// Refuses a named backup that is not the group's, not the profile's, or not Succeeded
/// (there is nothing to restore yet, or nothing at all).
pub fn check_backup_to_verify(
    backup: &MysqlBackup,
    group: &str,
    profile: &str,
) -> Result<(), String> {
    let name = backup.metadata.name.as_deref().unwrap_or_default();
    let owner = backup.spec.failover_group_ref.name.as_str();
    if owner != group {
        return Err(format!(
            "MysqlBackup {name} belongs to group {owner}, not {group}"
        ));
    }
    if backup.spec.profile_name != profile {
        return Err(format!(
            "MysqlBackup {name} was taken with profile {}, not {profile}",
            backup.spec.profile_name
        ));
    }
    require_succeeded(backup, "verified")
}

/// Refuses a backup that is not Succeeded: there is nothing to `verb` yet, or at all.
pub(super) fn require_succeeded(backup: &MysqlBackup, verb: &str) -> Result<(), String> {
    let name = backup.metadata.name.as_deref().unwrap_or_default();
    let phase = backup
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    if phase != SUCCEEDED {
        return Err(format!(
            "MysqlBackup {name} is {phase}; only a Succeeded backup can be {verb}"
        ));
    }
    Ok(())
}

/// Where a run (a backup or a verification) stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Not finished; the text describes the phase (shown when it changes).
    Waiting(String),
    /// Succeeded or Failed: report it.
    Finished { succeeded: bool },
}

pub(super) fn run_state(phase: Option<&str>, detail: &str, message: Option<&str>) -> RunState {
    match phase {
        Some(SUCCEEDED) => RunState::Finished { succeeded: true },
        Some(FAILED) => RunState::Finished { succeeded: false },
        None => RunState::Waiting("waiting for the operator to take the request".to_owned()),
        Some(phase) => {
            let mut text = format!("phase {phase}{detail}");
            if let Some(message) = message.filter(|m| !m.is_empty()) {
                let _ = write!(text, ": {message}");
            }
            RunState::Waiting(text)
        }
    }
}

pub fn backup_state(backup: &MysqlBackup) -> RunState {
    let status = backup.status.clone().unwrap_or_default();
    let detail = status
        .source_site
        .as_deref()
        .map(|s| format!(" (source {s})"))
        .unwrap_or_default();
    run_state(status.phase.as_deref(), &detail, status.message.as_deref())
}

pub fn verification_state(verification: &MysqlBackupVerification) -> RunState {
    let status = verification.status.clone().unwrap_or_default();
    let detail = status
        .backup_ref
        .as_ref()
        .map(|b| format!(" (backup {})", b.name))
        .unwrap_or_default();
    run_state(status.phase.as_deref(), &detail, status.message.as_deref())
}

/// One MysqlBackup as the plugin reports it (the shape of `-o json|yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSummary {
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub profile: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_site: Option<String>,
    /// RFC 3339, as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gtid_executed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The creation time, which orders the list (a Pending backup has no start time).
    #[serde(skip)]
    created: Option<jiff::Timestamp>,
}

pub fn summarize_backup(backup: &MysqlBackup) -> BackupSummary {
    let status = backup.status.clone().unwrap_or_default();
    BackupSummary {
        namespace: backup.metadata.namespace.clone().unwrap_or_default(),
        name: backup.metadata.name.clone().unwrap_or_default(),
        group: backup.spec.failover_group_ref.name.clone(),
        profile: backup.spec.profile_name.clone(),
        phase: status.phase,
        triggered_by: backup.spec.triggered_by.clone(),
        source_site: status.source_site,
        start_time: status.start_time,
        completion_time: status.completion_time,
        location: status.location,
        size: status.size,
        size_bytes: status.size_bytes,
        gtid_executed: status.gtid_executed,
        message: status.message,
        created: backup.metadata.creation_timestamp.as_ref().map(|t| t.0),
    }
}

/// The group's backups (of `profile`, when given), newest first.
pub fn group_backups(
    backups: &[MysqlBackup],
    group: &str,
    profile: Option<&str>,
) -> Vec<BackupSummary> {
    let mut summaries: Vec<BackupSummary> = backups
        .iter()
        .filter(|b| b.spec.failover_group_ref.name == group)
        .filter(|b| profile.is_none_or(|p| b.spec.profile_name == p))
        .map(summarize_backup)
        .collect();
    summaries.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| b.name.cmp(&a.name)));
    summaries
}

/// Bytes for people, in binary units (what `status.size` holds when the operator set it).
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Precision is irrelevant at one decimal; the cast only feeds the display.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = "B";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

fn size_cell(b: &BackupSummary) -> String {
    match (&b.size, b.size_bytes) {
        (Some(size), _) if !size.is_empty() => size.clone(),
        (_, Some(bytes)) => human_bytes(bytes),
        _ => "-".to_owned(),
    }
}

fn age_cell(time: Option<&str>, now: jiff::Timestamp) -> String {
    match time {
        None => "-".to_owned(),
        Some(t) => t
            .parse::<jiff::Timestamp>()
            .map_or_else(|_| t.to_owned(), |then| format!("{} ago", age(now, then))),
    }
}

fn cell(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

/// `backups`: one row per backup; `-o json` has the full GTID sets and locations.
pub fn render_backups_table(backups: &[BackupSummary], now: jiff::Timestamp) -> String {
    if backups.is_empty() {
        return "No MysqlBackups found.\n".to_owned();
    }
    let header = [
        "NAME",
        "PROFILE",
        "PHASE",
        "STARTED",
        "COMPLETED",
        "SIZE",
        "SOURCE",
        "GTID SET",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for b in backups {
        rows.push(vec![
            b.name.clone(),
            b.profile.clone(),
            cell(b.phase.as_deref()),
            age_cell(b.start_time.as_deref(), now),
            age_cell(b.completion_time.as_deref(), now),
            size_cell(b),
            cell(b.source_site.as_deref()),
            b.gtid_executed
                .as_deref()
                .filter(|g| !g.is_empty())
                .map_or_else(|| "-".to_owned(), shorten),
        ]);
    }
    align(&rows)
}

fn field(text: &mut String, name: &str, value: Option<String>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        let _ = writeln!(text, "  {name:<15}{value}");
    }
}

/// The report of one backup: its phase, then what the operator recorded.
pub fn backup_report(b: &BackupSummary) -> String {
    let mut text = format!(
        "MysqlBackup {}/{}: {} (group {}, profile {})\n",
        b.namespace,
        b.name,
        b.phase.as_deref().unwrap_or("requested"),
        b.group,
        b.profile
    );
    field(&mut text, "source site:", b.source_site.clone());
    field(&mut text, "started:", b.start_time.clone());
    field(&mut text, "completed:", b.completion_time.clone());
    field(&mut text, "location:", b.location.clone());
    let size = match (b.size.as_deref(), b.size_bytes) {
        (Some(size), Some(bytes)) => Some(format!("{size} ({bytes} bytes)")),
        (None, Some(bytes)) => Some(format!("{} ({bytes} bytes)", human_bytes(bytes))),
        (Some(size), None) => Some(size.to_owned()),
        (None, None) => None,
    };
    field(&mut text, "size:", size);
    field(&mut text, "gtid executed:", b.gtid_executed.clone());
    field(&mut text, "message:", b.message.clone());
    text
}

/// One MysqlBackupVerification as the plugin reports it (the shape of `-o json|yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSummary {
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub profile: String,
    /// The backup asked for; unset means the profile's latest Succeeded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The backup the operator restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sanity_result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sanity_error: Option<String>,
    /// The last binlog event replayed: `file:position (time)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_through: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub fn summarize_verification(v: &MysqlBackupVerification) -> VerificationSummary {
    let status = v.status.clone().unwrap_or_default();
    let replayed = status.replayed_through_binlog.as_ref().and_then(|r| {
        let file = r.file.as_deref()?;
        let mut text = match r.position {
            Some(pos) => format!("{file}:{pos}"),
            None => file.to_owned(),
        };
        if let Some(at) = &r.timestamp {
            let _ = write!(text, " ({at})");
        }
        Some(text)
    });
    VerificationSummary {
        namespace: v.metadata.namespace.clone().unwrap_or_default(),
        name: v.metadata.name.clone().unwrap_or_default(),
        group: v.spec.failover_group_ref.name.clone(),
        profile: v.spec.profile_name.clone(),
        requested_backup: v
            .spec
            .backup_ref
            .as_ref()
            .map(|b| b.name.clone())
            .filter(|n| !n.is_empty()),
        phase: status.phase,
        backup: status.backup_ref.as_ref().map(|b| b.name.clone()),
        location: status.backup_ref.and_then(|b| b.location),
        start_time: status.start_time,
        completion_time: status.completion_time,
        duration_seconds: status.duration_seconds,
        sanity_result: status
            .sanity_check
            .as_ref()
            .and_then(|s| s.result_row.clone()),
        sanity_error: status.sanity_check.and_then(|s| s.error),
        replayed_through: replayed,
        message: status.message,
    }
}

pub fn verification_report(v: &VerificationSummary) -> String {
    let mut text = format!(
        "MysqlBackupVerification {}/{}: {} (group {}, profile {})\n",
        v.namespace,
        v.name,
        v.phase.as_deref().unwrap_or("requested"),
        v.group,
        v.profile
    );
    let backup = v.backup.clone().or_else(|| {
        Some(
            v.requested_backup
                .clone()
                .unwrap_or_else(|| "the latest Succeeded backup of the profile".to_owned()),
        )
    });
    field(&mut text, "backup:", backup);
    field(&mut text, "location:", v.location.clone());
    field(&mut text, "started:", v.start_time.clone());
    field(&mut text, "completed:", v.completion_time.clone());
    field(
        &mut text,
        "duration:",
        v.duration_seconds.map(|s| format!("{s}s")),
    );
    field(&mut text, "replayed to:", v.replayed_through.clone());
    field(&mut text, "sanity result:", v.sanity_result.clone());
    field(&mut text, "sanity error:", v.sanity_error.clone());
    field(&mut text, "message:", v.message.clone());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().expect("a time")
    }

    fn group() -> MysqlFailoverGroup {
        serde_saphyr::from_str(
            r"
apiVersion: shipstream.io/v1alpha1
kind: MysqlFailoverGroup
metadata: {name: orders, namespace: shop}
spec:
  sites:
    - {name: iad, role: primary-candidate, lbIP: 10.0.0.1, taintNodeSelector: {zone: a}}
    - {name: dr, role: dr-only}
    - {name: reader, role: read-only}
  dns: {hostname: orders.example.com}
  backup:
    profiles:
      - {name: nightly, storage: {type: S3, s3: {bucket: b, credentialsSecret: s3}}}
      - {name: hourly, storage: {type: PVC, pvc: {size: 10Gi}}}
",
        )
        .expect("a group")
    }

    fn backup(name: &str, group: &str, profile: &str, status: &str) -> MysqlBackup {
        serde_saphyr::from_str(&format!(
            r"
apiVersion: shipstream.io/v1alpha1
kind: MysqlBackup
metadata: {{name: {name}, namespace: shop, creationTimestamp: '2026-12-02T10:00:00Z'}}
spec: {{failoverGroupRef: {{name: {group}}}, profileName: {profile}, triggeredBy: manual}}
status: {status}
"
        ))
        .expect("a backup")
    }

    #[test]
    fn names_carry_the_group_the_profile_and_the_utc_time() {
        let now = t("2026-12-02T19:04:05.9Z");
        assert_eq!(
            run_name("orders", "nightly", None, now),
            "orders-nightly-20261202190405"
        );
        assert_eq!(
            run_name("orders", "nightly", Some("verify"), now),
            "orders-nightly-verify-20261202190405"
        );
        assert_eq!(triggered_by(Some("alice")), "kubectl/alice");
        assert_eq!(triggered_by(Some(" ")), "kubectl/manual");
        assert_eq!(triggered_by(None), "kubectl/manual");
    }

    #[test]
    fn profiles_and_source_sites_are_checked_against_the_group() {
        let g = group();
        assert_eq!(check_profile(&g, "hourly"), Ok(()));
        assert_eq!(
            check_profile(&g, "weekly"),
            Err("group orders has no backup profile weekly (profiles: nightly, hourly)".to_owned())
        );
        let mut bare = g.clone();
        bare.spec.backup = None;
        assert!(
            check_profile(&bare, "nightly")
                .is_err_and(|e| e.contains("spec.backup.profiles is empty"))
        );
        assert_eq!(check_source_site(&g, "dr"), Ok(()));
        assert!(check_source_site(&g, "reader").is_err_and(|e| e.contains("read-only reader")));
        assert!(
            check_source_site(&g, "sfo")
                .is_err_and(|e| e.contains("has no site sfo (sites: iad, dr, reader)"))
        );
    }

    #[test]
    fn the_backup_spec_is_what_the_crd_names() {
        let b = new_backup(
            "orders-nightly-1",
            "shop",
            "orders",
            "nightly",
            Some("dr"),
            "kubectl/alice",
        );
        let json = serde_json::to_value(&b).expect("json");
        assert_eq!(json["apiVersion"], "shipstream.io/v1alpha1");
        assert_eq!(json["kind"], "MysqlBackup");
        assert_eq!(
            json["spec"],
            serde_json::json!({"failoverGroupRef": {"name": "orders"}, "profileName": "nightly",
                               "sourceSiteOverride": "dr", "triggeredBy": "kubectl/alice"})
        );
    }

    #[test]
    fn a_verification_without_a_backup_leaves_the_choice_to_the_operator() {
        let latest = new_verification(
            "v",
            "shop",
            "orders",
            "nightly",
            &VerificationRequest::default(),
            "kubectl/manual",
        );
        let json = serde_json::to_value(&latest).expect("json");
        assert!(json["spec"].get("backupRef").is_none(), "{json}");
        assert!(json["spec"].get("sanityCheck").is_none(), "{json}");
        let named = new_verification(
            "v",
            "shop",
            "orders",
            "nightly",
            &VerificationRequest {
                backup: Some("orders-nightly-1"),
                sanity_query: Some("SELECT COUNT(*) FROM shop.orders"),
                min_rows: Some(10),
            },
            "kubectl/manual",
        );
        let json = serde_json::to_value(&named).expect("json");
        assert_eq!(json["spec"]["backupRef"]["name"], "orders-nightly-1");
        assert_eq!(
            json["spec"]["sanityCheck"],
            serde_json::json!({"query": "SELECT COUNT(*) FROM shop.orders",
                               "expect": {"minRows": 10, "maxDurationSeconds": 60}})
        );
    }

    #[test]
    fn only_a_succeeded_backup_of_the_group_and_profile_is_verified() {
        let ok = backup("b1", "orders", "nightly", "{phase: Succeeded}");
        assert_eq!(check_backup_to_verify(&ok, "orders", "nightly"), Ok(()));
        assert_eq!(
            check_backup_to_verify(&ok, "billing", "nightly"),
            Err("MysqlBackup b1 belongs to group orders, not billing".to_owned())
        );
        assert!(
            check_backup_to_verify(&ok, "orders", "hourly")
                .is_err_and(|e| e.contains("profile nightly, not hourly"))
        );
        let running = backup("b2", "orders", "nightly", "{phase: Running}");
        assert!(
            check_backup_to_verify(&running, "orders", "nightly")
                .is_err_and(|e| e.contains("b2 is Running"))
        );
    }

    #[test]
    fn states_follow_the_phase() {
        let state = |status: &str| backup_state(&backup("b", "orders", "nightly", status));
        assert_eq!(
            state("{}"),
            RunState::Waiting("waiting for the operator to take the request".to_owned())
        );
        assert_eq!(
            state("{phase: Running, sourceSite: pdx, message: dumping}"),
            RunState::Waiting("phase Running (source pdx): dumping".to_owned())
        );
        assert_eq!(
            state("{phase: Succeeded}"),
            RunState::Finished { succeeded: true }
        );
        assert_eq!(
            state("{phase: Failed}"),
            RunState::Finished { succeeded: false }
        );
    }

    #[test]
    fn the_list_is_the_groups_newest_first_and_its_table_is_short() {
        let mut older = backup(
            "orders-nightly-20261201000000",
            "orders",
            "nightly",
            "{phase: Succeeded, startTime: '2026-12-02T10:00:00Z', completionTime: '2026-12-02T10:05:00Z', sourceSite: pdx, sizeBytes: 1288490188, gtidExecuted: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-100'}",
        );
        older.metadata.creation_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t("2026-12-01T00:00:00Z")),
        );
        let newer = backup(
            "orders-hourly-20261202100000",
            "orders",
            "hourly",
            "{phase: Pending}",
        );
        let other = backup("billing-nightly-1", "billing", "nightly", "{}");
        let all = [older, other, newer];
        let list = group_backups(&all, "orders", None);
        let names: Vec<&str> = list.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "orders-hourly-20261202100000",
                "orders-nightly-20261201000000"
            ]
        );
        assert_eq!(group_backups(&all, "orders", Some("nightly")).len(), 1);
        let table = render_backups_table(&list, t("2026-12-02T10:10:00Z"));
        let expected = "\
NAME                            PROFILE   PHASE       STARTED   COMPLETED   SIZE      SOURCE   GTID SET
orders-hourly-20261202100000    hourly    Pending     -         -           -         -        -
orders-nightly-20261201000000   nightly   Succeeded   10m ago   5m0s ago    1.2 GiB   pdx      3e11fa47-71ca-11e1-9e33-...
";
        assert_eq!(table, expected);
        assert_eq!(
            render_backups_table(&[], t("2026-12-02T10:10:00Z")),
            "No MysqlBackups found.\n"
        );
    }

    #[test]
    fn the_report_names_location_size_gtids_and_message() {
        let b = summarize_backup(&backup(
            "b1",
            "orders",
            "nightly",
            "{phase: Succeeded, location: 's3://b/orders/b1/', size: 1.2 GiB, sizeBytes: 1288490188, gtidExecuted: 'uuid:1-5', message: done}",
        ));
        assert_eq!(
            backup_report(&b),
            "\
MysqlBackup shop/b1: Succeeded (group orders, profile nightly)
  location:      s3://b/orders/b1/
  size:          1.2 GiB (1288490188 bytes)
  gtid executed: uuid:1-5
  message:       done
"
        );
        let json = serde_json::to_value(&b).expect("json");
        assert_eq!(json["sizeBytes"], 1_288_490_188_i64);
        assert_eq!(json["gtidExecuted"], "uuid:1-5");
        assert!(json.get("created").is_none());
    }

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(2048), "2.0 KiB");
        assert_eq!(human_bytes(1_288_490_188), "1.2 GiB");
    }
}
