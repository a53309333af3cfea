//! `MysqlFailoverGroup.status`: what the operator observed. Written only by the operator;
//! field names and types follow the original so tools that read its status keep working.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::dragonfly::DragonflyStatus;

/// What the operator observed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MysqlFailoverGroupStatus {
    /// The current writable primary-candidate site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_site: Option<String>,
    /// Per-site observations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<SiteStatus>,
    /// `Ready`, `Degraded`, `RecoveryPending` and `Bootstrapping`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// When the last failover happened (the anti-flap record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_failover: Option<String>,
    /// The site the last failover promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover_target: Option<String>,
    /// The promoted site's GTID set, captured just before it became writable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_gtid_executed: Option<String>,
    /// Phase of an ordered update, empty when none runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_phase: Option<String>,
    /// Monotonic counter bumped on every authoritative change of the active site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_generation: Option<i64>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last or current planned failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_failover: Option<PlannedFailoverStatus>,
    /// The `initFromBackup` restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStatus>,
    /// The last or current `restoreInPlace` run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_in_place: Option<RestoreInPlaceStatus>,
    /// One entry per backup schedule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backup_schedules: Vec<BackupScheduleStatus>,
    /// Completion time of the last successful backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_backup_time: Option<String>,
    /// Binlog archiving for point-in-time recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrStatus>,
    /// The Dragonfly cache, when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dragonfly: Option<DragonflyStatus>,
    /// The failover core's persisted memory (written ahead of every failover action), so a
    /// restarted or newly elected operator resumes mid-operation. Operator-internal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_state: Option<FailoverStateRecord>,
}

/// The failover core's state as stored in the status, with the fencing data beside it.
///
/// Every write goes through the `/status` subresource with a resourceVersion
/// precondition; `revision` tells a writer whether a conflicting write was someone else's
/// failover state (a newer leader: stop) or only a spec or metadata edit (retry).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverStateRecord {
    /// Bumped by one on every save of the state.
    #[serde(default)]
    pub revision: i64,
    /// The operator replica that wrote this revision.
    #[serde(default)]
    pub writer: String,
    /// The serialized engine state; its shape is internal to the operator and may change
    /// between releases, so the schema does not prune it.
    #[serde(default)]
    #[schemars(schema_with = "preserved_object")]
    pub state: serde_json::Value,
}

/// An object whose fields the API server keeps as written.
fn preserved_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// What the operator last saw of one site.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteStatus {
    /// Site name.
    #[serde(default)]
    pub name: String,
    /// `writable`, `read-only`, `unreachable` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the site last answered a poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_seen: Option<String>,
    /// Whether both replication threads run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicating: Option<bool>,
    /// Replication lag in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_behind_source: Option<i64>,
    /// The site's `gtid_executed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid_executed: Option<String>,
    /// The host the site replicates from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_host: Option<String>,
    /// Empty, `RecoveryInProgress` or `RecoveryBlocked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_state: Option<String>,
    /// Transactions the site has that the active site lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergent_gtid: Option<String>,
    /// How many transactions `divergentGtid` holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergent_transaction_count: Option<i64>,
}

/// Dragonfly's part of a planned failover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFailoverDragonflyStatus {
    /// Whether Dragonfly took part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Whether client sessions survived; unset when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_preserved: Option<bool>,
    /// How the target was promoted (takeover or replica-of-no-one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_method: Option<String>,
    /// Seconds spent waiting for the target to catch up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_wait_seconds: Option<i64>,
    /// When the sync wait started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub sync_wait_start_time: Option<String>,
    /// The source's replication offset when draining started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_offset_at_drain: Option<i64>,
    /// The target's replication offset when it was promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_offset_at_promotion: Option<i64>,
    /// Whether capturing the source offset failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_capture_failed: Option<bool>,
    /// Machine-readable reason of the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The last or current planned failover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFailoverStatus {
    /// Pending, Deferred, Validating, Draining, WaitingForLag, ..., Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Machine-readable reason of the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The site being promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The primary being demoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_primary: Option<String>,
    /// The source's GTID set when it was fenced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_gtid_at_fence: Option<String>,
    /// The target's GTID set when it was promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_gtid_at_promotion: Option<String>,
    /// When the switchover started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub start_time: Option<String>,
    /// When draining started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub drain_start_time: Option<String>,
    /// The drain timeout in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<String>,
    /// When waiting for lag started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub lag_wait_start_time: Option<String>,
    /// The lag wait in effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lag_wait: Option<String>,
    /// When the switchover ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub completion_time: Option<String>,
    /// Whole seconds from start to completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// Transactions lost; zero by construction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions_lost: Option<i64>,
    /// When a deferred request is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub retry_after: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Dragonfly's part of the switchover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dragonfly: Option<PlannedFailoverDragonflyStatus>,
}

/// One restore Job run (`initFromBackup`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// Pending, Running, Succeeded or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The restore Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// The site restored into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_site: Option<String>,
    /// When the restore started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub start_time: Option<String>,
    /// When the restore ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub completion_time: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The dump's GTID set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_gtid_executed: Option<String>,
    /// The dump's binlog file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_binlog_file: Option<String>,
    /// The dump's binlog position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_binlog_pos: Option<i64>,
    /// Size of the restored dump in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_size_bytes: Option<i64>,
    /// The target's GTID set after the restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_gtid_executed: Option<String>,
    /// The target's binlog file after the restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_binlog_file: Option<String>,
    /// The target's binlog position after the restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_binlog_pos: Option<i64>,
    /// The `stopDatetime` binlogs were replayed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr_stop_datetime: Option<String>,
    /// Binlog files replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr_replayed_binlog_count: Option<i32>,
    /// The last binlog file replayed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr_replayed_binlog_file: Option<String>,
    /// The other sites the failover loop accepted for a reclone after the load (the
    /// restored data reaches them only by a clone). Not in the original.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recloned_sites: Vec<String>,
}

/// The last or current `restoreInPlace` run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreInPlaceStatus {
    /// The `confirm` token of the last accepted run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_token_used: Option<String>,
    /// `full` or `schema:<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(flatten)]
    pub run: RestoreStatus,
}

/// One backup schedule's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupScheduleStatus {
    /// Schedule name.
    pub name: String,
    /// The CronJob that runs the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_job_name: Option<String>,
    /// When the schedule last fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_schedule_time: Option<String>,
    /// When a backup of the schedule last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_successful_time: Option<String>,
    /// The newest MysqlBackup of the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_name: Option<String>,
    /// Its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_phase: Option<String>,
    /// The newest successful MysqlBackup of the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_backup_name: Option<String>,
    /// The retry attempt of the newest backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_retry_attempt: Option<i32>,
    /// When a failed backup is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub next_retry_time: Option<String>,
}

/// Binlog archiving for point-in-time recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PitrStatus {
    /// Whether archiving is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The profile binlogs are archived to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    /// First event time of the oldest archived binlog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub oldest_archived_time: Option<String>,
    /// Last event time of the newest archived binlog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub newest_archived_time: Option<String>,
    /// When a binlog was last archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_archived_time: Option<String>,
    /// Archived binlog files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_file_count: Option<i32>,
    /// Archived bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_bytes: Option<i64>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
