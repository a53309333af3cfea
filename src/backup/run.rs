//! The life of one `MysqlBackup`: what the reconciler does next, decided from what it
//! observed (the object's status, its Job, the group's failover status) and the time.
//!
//! Pending → Running once the Job exists → Succeeded or Failed once the Job ends. The
//! source is chosen once, when the Job is created, and never moves: a backup that started
//! on a replica finishes there or fails. With no safe source the backup waits, and fails
//! after [`NO_SOURCE_TIMEOUT`] rather than forever.

use std::time::Duration;

use super::source::{self, SourceReason};
use crate::api::failover_group::{SiteRole, SiteSpec};
use crate::failover::{GroupStatus, Timestamp};

/// How long a backup waits for a safe source before it fails (the reference's 30 min).
pub const NO_SOURCE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The phases `status.phase` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }

    /// `None` for an unset or unknown phase (treated as new).
    pub fn parse(text: Option<&str>) -> Option<Self> {
        match text? {
            "Pending" => Some(Self::Pending),
            "Running" => Some(Self::Running),
            "Succeeded" => Some(Self::Succeeded),
            "Failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// The backup's Job, as the watch cache has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Absent,
    Active,
    Succeeded,
    /// With the Job's own account of why (its Failed condition).
    Failed(String),
}

/// Where the source comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// `spec.sourceSiteOverride`.
    Override,
    Automatic(SourceReason),
}

impl Chosen {
    /// The reference's reason strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Override => "override",
            Self::Automatic(reason) => reason.as_str(),
        }
    }
}

/// Why a backup failed without its Job saying so: fixed words, used as Event messages'
/// lead and as the runs metric's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// No safe source for [`NO_SOURCE_TIMEOUT`].
    NoHealthySource,
    /// `sourceSiteOverride` names no site, or a reader.
    InvalidSource,
    /// The Job ended in failure.
    JobFailed,
    /// The Job went away before it finished.
    JobLost,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoHealthySource => "no_healthy_source",
            Self::InvalidSource => "invalid_source",
            Self::JobFailed => "job_failed",
            Self::JobLost => "job_lost",
        }
    }
}

/// What the reconciler does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Terminal already, or nothing changed.
    Nothing,
    /// Stay (or become) Pending, saying why.
    Wait(String),
    /// Create the Job against `site`.
    Start {
        site: String,
        chosen: Chosen,
    },
    /// The Job exists but the status does not say Running yet.
    MarkRunning,
    /// The Job succeeded: read the manifest and record it.
    Finish,
    Fail {
        reason: FailReason,
        message: String,
    },
}

/// What was observed about one backup.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    pub phase: Option<Phase>,
    /// `metadata.creationTimestamp`.
    pub created: Timestamp,
    pub source_override: Option<&'a str>,
    pub sites: &'a [SiteSpec],
    /// The group's failover status; `None` before its first poll.
    pub group: Option<&'a GroupStatus>,
    pub max_lag_seconds: u64,
    pub job: JobState,
}

/// The next step for one backup at `now`.
pub fn next_step(observed: &Observed<'_>, now: Timestamp) -> Step {
    if observed.phase.is_some_and(Phase::is_terminal) {
        return Step::Nothing;
    }
    match &observed.job {
        JobState::Succeeded => return Step::Finish,
        JobState::Failed(why) => {
            return Step::Fail {
                reason: FailReason::JobFailed,
                message: format!("the backup Job failed: {why}"),
            };
        }
        JobState::Active if observed.phase == Some(Phase::Running) => return Step::Nothing,
        JobState::Active => return Step::MarkRunning,
        JobState::Absent if observed.phase == Some(Phase::Running) => {
            return Step::Fail {
                reason: FailReason::JobLost,
                message: "the backup Job was deleted before it finished".to_owned(),
            };
        }
        JobState::Absent => {}
    }
    if let Some(site) = observed.source_override {
        return match observed.sites.iter().find(|s| s.name == site) {
            None => Step::Fail {
                reason: FailReason::InvalidSource,
                message: format!("sourceSiteOverride {site:?} is not a site of the group"),
            },
            Some(s) if s.role == SiteRole::ReadOnly => Step::Fail {
                reason: FailReason::InvalidSource,
                message: format!(
                    "sourceSiteOverride {site:?} is a reader: readers serve a site-local pool and are never backed up from"
                ),
            },
            Some(_) => Step::Start {
                site: site.to_owned(),
                chosen: Chosen::Override,
            },
        };
    }
    let chosen = observed
        .group
        .and_then(|status| source::choose(status, observed.max_lag_seconds));
    if let Some((site, reason)) = chosen {
        return Step::Start {
            site,
            chosen: Chosen::Automatic(reason),
        };
    }
    if now.has_elapsed(observed.created, NO_SOURCE_TIMEOUT) {
        return Step::Fail {
            reason: FailReason::NoHealthySource,
            message: format!(
                "no healthy source for {} min: no replica within {} s of lag and no writable primary",
                NO_SOURCE_TIMEOUT.as_secs() / 60,
                observed.max_lag_seconds
            ),
        };
    }
    Step::Wait(match observed.group {
        None => "waiting for the group's first health poll".to_owned(),
        Some(_) => format!(
            "NoHealthySource: no replica within {} s of lag and no writable primary; waiting",
            observed.max_lag_seconds
        ),
    })
}

/// Bytes for people: `1.2 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    let mut tenths = 0;
    while value >= 1024 && unit + 1 < UNITS.len() {
        tenths = (value % 1024) * 10 / 1024;
        value /= 1024;
        unit += 1;
    }
    if unit == 0 {
        format!("{value} B")
    } else {
        format!("{value}.{tenths} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests;
