//! Which backups a prune deletes, and why.
//!
//! A successful backup is kept if any rule keeps it: among the newest `count`, younger
//! than `max_age_days`, or among the newest `min_keep` (the floor). The newest successful
//! backup is kept whatever the policy, failed backups beyond the newest
//! `max_failed_keep` go, and in-progress backups are never touched. Every rule keeps a
//! newest-first prefix of its kind, so the kept set is a prefix too and planning again on
//! what remains deletes nothing.

use std::time::Duration;

use crate::api::backup::{BackupProfile, RetentionPolicy as SpecPolicy};
use crate::error::{Categorized, Category};
use crate::failover::Timestamp;

const DAY: Duration = Duration::from_secs(86_400);

/// How a backup ended, or that it has not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Succeeded,
    Failed,
    InProgress,
}

/// One backup as a prune sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    pub id: String,
    /// When it finished (for an in-progress backup: when it started; it is never deleted).
    pub finished_at: Timestamp,
    pub outcome: Outcome,
}

/// The retention rules; 0 disables `count` and `max_age_days`, as in the CRD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetentionPolicy {
    pub count: u32,
    pub max_age_days: u32,
    pub min_keep: u32,
    pub max_failed_keep: u32,
}

/// A policy field out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("{field} is {value}; it must be 0 or more")]
    Negative { field: &'static str, value: i64 },
}

impl Categorized for RetentionError {
    fn category(&self) -> Category {
        Category::InvalidInput
    }
}

impl RetentionPolicy {
    /// The CRD's `retentionPolicy`; unset `count` and `maxAgeDays` are disabled.
    pub fn from_spec(spec: &SpecPolicy) -> Result<Self, RetentionError> {
        Ok(Self {
            count: non_negative("retentionPolicy.count", spec.count.unwrap_or(0))?,
            max_age_days: non_negative(
                "retentionPolicy.maxAgeDays",
                spec.max_age_days.unwrap_or(0),
            )?,
            min_keep: non_negative("retentionPolicy.minKeep", spec.min_keep)?,
            max_failed_keep: non_negative("retentionPolicy.maxFailedKeep", spec.max_failed_keep)?,
        })
    }

    /// The legacy `retention: N`: count N, minKeep 1, maxFailedKeep 10.
    pub fn from_legacy(retention: i32) -> Result<Self, RetentionError> {
        Ok(Self {
            count: non_negative("retention", retention)?,
            max_age_days: 0,
            min_keep: 1,
            max_failed_keep: 10,
        })
    }

    /// A profile's policy: `retentionPolicy` when set, else the legacy `retention`.
    pub fn from_profile(profile: &BackupProfile) -> Result<Self, RetentionError> {
        match &profile.retention_policy {
            Some(spec) => Self::from_spec(spec),
            None => Self::from_legacy(profile.retention),
        }
    }
}

fn non_negative(field: &'static str, value: i32) -> Result<u32, RetentionError> {
    u32::try_from(value).map_err(|_| RetentionError::Negative {
        field,
        value: i64::from(value),
    })
}

/// Why a backup survives a prune; a backup may have several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeepReason {
    /// The newest successful backup, kept whatever the policy.
    NewestSuccess,
    /// Among the newest `count` successful backups.
    Count,
    /// Younger than `max_age_days`.
    MaxAge,
    /// Among the newest `min_keep` successful backups.
    MinKeep,
    /// Among the newest `max_failed_keep` failed backups.
    FailedKeep,
    /// Still running.
    InProgress,
}

/// Why a backup is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeleteReason {
    /// A successful backup no rule keeps: `rank` among successes (1 = newest), beyond
    /// `count` and `min_keep`, and `age` not younger than `max_age_days`.
    Expired { rank: usize, age: Duration },
    /// A failed backup beyond the newest `max_failed_keep` (`rank` 1 = newest failure).
    ExcessFailed { rank: usize },
}

impl std::fmt::Display for DeleteReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Expired { rank, age } => write!(
                f,
                "successful backup #{rank} (newest first), {} days old: outside count, maxAgeDays and minKeep",
                age.as_secs() / DAY.as_secs()
            ),
            Self::ExcessFailed { rank } => {
                write!(
                    f,
                    "failed backup #{rank} (newest first): beyond maxFailedKeep"
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub id: String,
    pub reason: DeleteReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub id: String,
    pub reasons: Vec<KeepReason>,
}

/// The outcome of planning a prune: every record lands in exactly one list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePlan {
    pub delete: Vec<Deletion>,
    pub keep: Vec<Kept>,
}

/// Plans a prune of `records` under `policy` at `now`. Pure: deletes nothing itself.
pub fn plan(records: &[BackupRecord], policy: &RetentionPolicy, now: Timestamp) -> PrunePlan {
    // Newest first; the id breaks ties so equal timestamps rank the same on every run,
    // which keeps a repeated prune from picking a different victim.
    let mut order: Vec<&BackupRecord> = records.iter().collect();
    order.sort_by(|a, b| {
        b.finished_at
            .cmp(&a.finished_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    let max_age = DAY.saturating_mul(policy.max_age_days);
    let mut plan = PrunePlan::default();
    let (mut successes, mut failures) = (0usize, 0usize);
    for record in order {
        let mut reasons = Vec::new();
        let delete = match record.outcome {
            Outcome::InProgress => {
                reasons.push(KeepReason::InProgress);
                None
            }
            Outcome::Failed => {
                failures += 1;
                if failures <= widen(policy.max_failed_keep) {
                    reasons.push(KeepReason::FailedKeep);
                    None
                } else {
                    Some(DeleteReason::ExcessFailed { rank: failures })
                }
            }
            Outcome::Succeeded => {
                successes += 1;
                let age = now.since(record.finished_at);
                if successes == 1 {
                    reasons.push(KeepReason::NewestSuccess);
                }
                if successes <= widen(policy.count) {
                    reasons.push(KeepReason::Count);
                }
                if policy.max_age_days > 0 && age < max_age {
                    reasons.push(KeepReason::MaxAge);
                }
                if successes <= widen(policy.min_keep) {
                    reasons.push(KeepReason::MinKeep);
                }
                reasons.is_empty().then_some(DeleteReason::Expired {
                    rank: successes,
                    age,
                })
            }
        };
        let id = record.id.clone();
        match delete {
            Some(reason) => plan.delete.push(Deletion { id, reason }),
            None => plan.keep.push(Kept { id, reasons }),
        }
    }
    plan
}

fn widen(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests;
