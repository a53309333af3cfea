//! The life of one restore of a group: `spec.initFromBackup` (once, into a new group's
//! first primary) or `spec.restoreInPlace` (each time its `confirm` token moves on).
//! What the reconciler does next is decided here from what it observed and the time.
//!
//! Both load the backup into the active primary, which must be writable:
//! 1. **Begin**: the primary is checked writable; the run is recorded (the in-place
//!    token is spent here, before anything is touched, so a replayed token never runs).
//! 2. **Fence** (in place only): the primary's pods lose their role label, so no Service
//!    sends clients to data that is being replaced.
//! 3. **Load**: a Job runs `bloodraven backup restore`. Meanwhile the group's failover
//!    loop is stopped ([`frozen`]): a failover in the middle of a load would promote a
//!    replica holding the old data and leave the load writing into a fenced server.
//! 4. **Resume**: the loop runs again and every other site is handed to a reclone,
//!    since the restored data reaches no replica by replication (it is loaded without
//!    binary logging and the primary's GTID history is reset to the backup's).
//! 5. Succeeded once every peer was accepted for a reclone; Failed when the Job fails
//!    or goes away (the loop resumes either way: a group is never left unprotected).
//!
//! An in-place run of one schema ([`RestoreScope::Schema`]) is lighter: the group keeps
//! serving and its loop keeps running (no fence, no freeze), Begin creates the Job at
//! once, and the load is binary-logged, so the drop and the load reach every peer by
//! replication and none is recloned. A failover during such a load makes the old primary
//! read-only or unreachable, so the Job fails and the run with it: nothing is promoted
//! from under a load that cannot be stopped.

use serde::{Deserialize, Serialize};

use crate::backup::run::JobState;
use crate::failover::{GroupStatus, SiteState, Timestamp};

/// Where restore records live in the repository.
pub const RESTORES_DIR: &str = "restores";

/// What a restore Job did, as `backup restore --record-as NAME` writes it to
/// `restores/NAME.json` in the repository: how the operator learns what a point-in-time
/// replay replayed without reading pod logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRecord {
    pub format: u32,
    pub name: String,
    pub backup_id: String,
    pub finished_at: String,
    /// The archived binary logs replayed, in order (empty without a replay).
    pub replayed_binlogs: Vec<String>,
    /// The target's `gtid_executed` after the restore.
    pub gtid_executed: String,
}

/// The key of restore record `name`.
pub fn restore_record_key(name: &str) -> String {
    format!("{RESTORES_DIR}/{name}.json")
}

/// Which restore field drives the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreKind {
    /// `spec.initFromBackup`: one-shot, into a group that holds no data yet.
    InitFromBackup,
    /// `spec.restoreInPlace`: destructive, re-armed by a newer `confirm` token.
    InPlace,
}

impl RestoreKind {
    /// The `restore_kind` vocabulary of the reference's metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InitFromBackup => "init_from_backup",
            Self::InPlace => "in_place",
        }
    }
}

/// What an in-place run replaces: `status.restoreInPlace.scope`. An `initFromBackup` run
/// is always [`Self::Full`] here, whatever schemas it loads: it loads unlogged into a new
/// primary and its peers are recloned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreScope {
    /// Every user schema: fenced, loaded unlogged with the loop stopped, peers recloned.
    Full,
    /// This one schema, dropped and loaded binary-logged while the group serves.
    Schema(String),
}

impl RestoreScope {
    const SCHEMA_PREFIX: &str = "schema:";

    /// The recorded `scope`. Absent or unknown reads as [`Self::Full`]: runs recorded
    /// before the field existed were all full, and full is the careful reading (the loop
    /// stays stopped and the peers are recloned).
    pub fn parse(text: Option<&str>) -> Self {
        text.and_then(|t| t.strip_prefix(Self::SCHEMA_PREFIX))
            .filter(|name| !name.is_empty())
            .map_or(Self::Full, |name| Self::Schema(name.to_owned()))
    }

    /// Whether the run fences the primary, stops the loop and reclones the peers.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full)
    }
}

impl std::fmt::Display for RestoreScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full => f.write_str("full"),
            Self::Schema(name) => write!(f, "{}{name}", Self::SCHEMA_PREFIX),
        }
    }
}

/// The phases of `status.restore` / `status.restoreInPlace`. `initFromBackup` shows
/// Pending/Running/Succeeded/Failed; `restoreInPlace` shows each stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePhase {
    Pending,
    /// In place: the token is spent and the primary is being fenced.
    Fencing,
    /// The Job is loading (`Running` for `initFromBackup`, `Restoring` in place).
    Loading,
    /// The Job succeeded; the loop runs again and the peers are being recloned (none for
    /// a one-schema run: they follow by replication).
    Resuming,
    Succeeded,
    Failed,
}

impl RestorePhase {
    pub fn as_str(self, kind: RestoreKind) -> &'static str {
        match (self, kind) {
            (Self::Pending, _) => "Pending",
            (Self::Fencing, _) => "Fencing",
            (Self::Loading, RestoreKind::InitFromBackup) => "Running",
            (Self::Loading, RestoreKind::InPlace) => "Restoring",
            (Self::Resuming, _) => "Resuming",
            (Self::Succeeded, _) => "Succeeded",
            (Self::Failed, _) => "Failed",
        }
    }

    /// `None` for an unset or unknown phase (the in-place `""` and `Preflight` included:
    /// nothing was touched yet in either).
    pub fn parse(text: Option<&str>) -> Option<Self> {
        match text? {
            "Pending" => Some(Self::Pending),
            "Fencing" => Some(Self::Fencing),
            "Running" | "Restoring" => Some(Self::Loading),
            "Resuming" => Some(Self::Resuming),
            "Succeeded" => Some(Self::Succeeded),
            "Failed" => Some(Self::Failed),
            _ => None,
        }
    }

    fn in_progress(self) -> bool {
        matches!(self, Self::Fencing | Self::Loading | Self::Resuming)
    }
}

/// Why a restore failed: fixed words, the runs metric's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreFailure {
    /// The inputs cannot make a Job (the reference's `RestoreBuildFailed`).
    BuildFailed,
    JobFailed,
    JobLost,
}

impl RestoreFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuildFailed => "build_failed",
            Self::JobFailed => "job_failed",
            Self::JobLost => "job_lost",
        }
    }
}

/// What was observed about the group's restore of one kind.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub kind: RestoreKind,
    pub phase: Option<RestorePhase>,
    /// A run is asked for: `initFromBackup` is set, or the in-place `confirm` token is
    /// newer than the one last spent.
    pub armed: bool,
    /// `status.*.targetSite` of the current run.
    pub target: Option<&'a str>,
    /// The current run's recorded scope once it has begun; before, the scope the spec
    /// asks for.
    pub scope: &'a RestoreScope,
    /// The group's failover status; `None` while its loop is not running.
    pub group: Option<&'a GroupStatus>,
    /// The current run's Job.
    pub job: JobState,
    /// Peers already accepted for a reclone in this run.
    pub recloned: &'a [String],
    /// Every site of the group, in spec order.
    pub sites: &'a [String],
}

/// What the reconciler does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Nothing can start yet; the message says why.
    Wait(String),
    /// The active site is not writable: the reference's `RestoreTargetUnavailable`.
    TargetUnavailable(String),
    /// Record a new run against `target` in phase `then` (in place, the token is spent):
    /// [`RestorePhase::Fencing`] for a full in-place run; [`RestorePhase::Loading`], the
    /// Job created at once, for `initFromBackup` and a one-schema run, which fence nothing.
    Begin {
        target: String,
        then: RestorePhase,
    },
    /// In place, once the loop has stopped: fence the target's pods and create the Job.
    FenceAndLoad,
    /// The Job succeeded: phase Resuming (the loop may run again).
    Resume,
    /// Hand these peers to a reclone (the loop is running again).
    Reclone(Vec<String>),
    /// Every peer was accepted for a reclone.
    Finish,
    Fail {
        reason: RestoreFailure,
        message: String,
    },
}

/// Whether the group's failover loop must stay stopped: from the spent token (or the
/// started init run) until the Job has succeeded or failed. Never for a one-schema run:
/// the group keeps serving, and its peers need the loop to keep them replicating.
pub fn frozen(phase: Option<RestorePhase>, scope: &RestoreScope, job: &JobState) -> bool {
    match phase {
        Some(RestorePhase::Fencing) => true,
        Some(RestorePhase::Loading) => scope.is_full() && matches!(job, JobState::Active),
        _ => false,
    }
}

/// The next step of one restore. `loop_running` says whether the group's failover loop
/// runs now (the manager stops it while [`frozen`]).
pub fn next_step(observed: &Observed<'_>, loop_running: bool) -> Step {
    match observed.phase {
        Some(RestorePhase::Fencing) if !loop_running => Step::FenceAndLoad,
        Some(RestorePhase::Fencing) => Step::Wait("waiting for the failover loop to stop".into()),
        Some(RestorePhase::Loading) => match &observed.job {
            JobState::Active => Step::Nothing,
            JobState::Succeeded => Step::Resume,
            JobState::Failed(why) => Step::Fail {
                reason: RestoreFailure::JobFailed,
                message: format!("the restore Job failed: {why}"),
            },
            JobState::Absent => Step::Fail {
                reason: RestoreFailure::JobLost,
                message: "the restore Job is gone before it finished (deleted, or never created)"
                    .into(),
            },
        },
        // The binary-logged load reaches the peers by replication: nothing to reclone.
        Some(RestorePhase::Resuming) if !observed.scope.is_full() => Step::Finish,
        Some(RestorePhase::Resuming) => resume(observed),
        Some(RestorePhase::Succeeded | RestorePhase::Failed) if !observed.armed => Step::Nothing,
        // Once done, `initFromBackup` never runs again; in place, `armed` means a newer token.
        Some(RestorePhase::Succeeded | RestorePhase::Failed)
            if observed.kind == RestoreKind::InitFromBackup =>
        {
            Step::Nothing
        }
        None | Some(RestorePhase::Pending | RestorePhase::Succeeded | RestorePhase::Failed) => {
            if observed.armed {
                begin(observed)
            } else {
                Step::Nothing
            }
        }
    }
}

fn begin(observed: &Observed<'_>) -> Step {
    let Some(group) = observed.group else {
        return Step::Wait("waiting for the group's first health poll".into());
    };
    let Some(active) = group.active_site.as_deref() else {
        return match observed.kind {
            RestoreKind::InitFromBackup => {
                Step::Wait("waiting for the bootstrap to choose the first primary".into())
            }
            RestoreKind::InPlace => {
                Step::TargetUnavailable("the group has no active primary to restore into".into())
            }
        };
    };
    let state = group
        .sites
        .iter()
        .find(|s| s.name == active)
        .map_or(SiteState::Unknown, |s| s.state);
    let planned = group
        .planned_failover
        .as_ref()
        .is_some_and(|p| p.phase.is_running());
    if state != SiteState::Writable || planned {
        let why = if state == SiteState::Writable {
            "a planned failover owns the topology".to_owned()
        } else {
            format!("it is {}", state.as_str())
        };
        return Step::TargetUnavailable(format!(
            "the active site {active} cannot take a restore now: {why}"
        ));
    }
    let then = if observed.kind == RestoreKind::InPlace && observed.scope.is_full() {
        RestorePhase::Fencing
    } else {
        RestorePhase::Loading
    };
    Step::Begin {
        target: active.to_owned(),
        then,
    }
}

fn resume(observed: &Observed<'_>) -> Step {
    let Some(group) = observed.group else {
        return Step::Wait("the restore finished; waiting for the failover loop to start".into());
    };
    let target = observed.target.unwrap_or_default();
    let pending: Vec<String> = observed
        .sites
        .iter()
        .filter(|s| s.as_str() != target && !observed.recloned.contains(s))
        .cloned()
        .collect();
    if pending.is_empty() {
        return Step::Finish;
    }
    // A reclone needs a donor the loop has confirmed writable; until then the request
    // would only be refused.
    let donor_ready = group.active_site.as_deref() == Some(target)
        && group
            .sites
            .iter()
            .any(|s| s.name == target && s.state == SiteState::Writable);
    if donor_ready {
        Step::Reclone(pending)
    } else {
        Step::Wait(format!(
            "the restore finished; waiting for {target} to be confirmed writable to reclone {}",
            pending.join(", ")
        ))
    }
}

/// Whether `confirm` is newer than `used`: both RFC 3339. An unparsable token is never
/// newer (the admission webhook refuses it; here it is simply not acted on).
pub fn token_is_newer(confirm: &str, used: Option<&str>) -> bool {
    let Some(confirm) = Timestamp::parse_rfc3339(confirm) else {
        return false;
    };
    match used {
        None | Some("") => true,
        Some(used) => Timestamp::parse_rfc3339(used).is_none_or(|used| confirm > used),
    }
}

/// Whether a run is in progress (between Begin and its ending).
pub fn in_progress(phase: Option<RestorePhase>) -> bool {
    phase.is_some_and(RestorePhase::in_progress)
}

#[cfg(test)]
mod tests;
