//! Point-in-time recovery, the pure part: what an archived binary log holds, and which
//! archived logs a restore to a target must replay.
//!
//! The archiver records, for each closed binary log, the GTIDs it holds (the next log's
//! `Previous_gtids` minus its own) and the time span of its events. A restore first loads
//! a base backup, whose `gtid_executed` becomes the target's `gtid_purged`; then it replays
//! archived logs from the first one that holds a transaction the base lacks, in order, up
//! to the target. The replay is bounded on the GTID side by `--include-gtids` (exactly the
//! transactions up to the target, the base's own skipped by GTID auto-skip) or on the time
//! side by `--stop-datetime`.

mod prune;
mod scan;

pub use prune::prunable;
pub use scan::{BinlogScan, ScanError, scan_events};

use serde::{Deserialize, Serialize};

use crate::backup::manifest::EncryptionParams;
use crate::failover::Timestamp;
use crate::failover::gtid::GtidSet;
use crate::ports::artifacts::StoredArtifact;

/// The directory archived binary logs live under, per source server UUID.
pub const BINLOGS_DIR: &str = "binlogs";

/// One archived binary log, as its index object records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchivedBinlog {
    /// `binlog.000042`.
    pub name: String,
    /// The server that wrote it.
    pub server_uuid: String,
    /// The GTIDs in this file alone.
    pub gtids: GtidSet,
    /// `Previous_gtids` of this file: everything before it.
    pub previous_gtids: GtidSet,
    /// Unix seconds of its first and last events (0 for an empty log).
    pub first_event: u32,
    pub last_event: u32,
    pub bytes: u64,
    /// The file in parts, in order, each through the backup codec.
    pub parts: Vec<StoredArtifact>,
    pub encryption: Option<EncryptionParams>,
}

impl ArchivedBinlog {
    /// The file's sequence number, from its name's numeric extension.
    pub fn sequence(&self) -> Option<u64> {
        self.name.rsplit_once('.')?.1.parse().ok()
    }
}

/// How far a point-in-time restore goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// Exactly these transactions (with the base's): MySQL's `--include-gtids`.
    Gtids(GtidSet),
    /// Every transaction committed before this instant.
    Time(Timestamp),
    /// Everything archived after the base (a verification's `pointInTime.mode: latest`).
    Latest,
}

/// What a point-in-time restore replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayPlan {
    /// The archived logs to replay, in order.
    pub binlogs: Vec<ArchivedBinlog>,
    /// `--include-gtids` for a GTID target.
    pub include_gtids: Option<GtidSet>,
    /// `--stop-datetime` (UTC) for a time target.
    pub stop_at: Option<Timestamp>,
}

/// A `stopDatetime` as the CRDs take it: RFC 3339, or `YYYY-MM-DD HH:MM:SS` read as UTC
/// (the reference's two forms; the second is what `mysqlbinlog --stop-datetime` prints).
pub fn parse_stop_datetime(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    Timestamp::parse_rfc3339(text).or_else(|| {
        let (date, time) = text.split_once(' ')?;
        // Only the bare form: an offset or zone after the time would be read wrongly as UTC.
        let plain = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == ':')
        };
        (plain(date) && plain(time) && date.len() == 10 && time.len() == 8)
            .then(|| Timestamp::parse_rfc3339(&format!("{date}T{time}Z")))
            .flatten()
    })
}

/// Why a point-in-time restore cannot reach its target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PitrError {
    #[error("the archive has no binary logs of the backup's source")]
    NoArchive,
    #[error(
        "the archive cannot reach the target: transactions {missing} are in no archived binary log"
    )]
    Unreachable { missing: String },
    #[error(
        "the archive has a gap: transactions {missing} after the base backup and before the target are in no archived binary log"
    )]
    Gap { missing: String },
    #[error("the target {target} is before the base backup ({base})")]
    BeforeBase { target: String, base: String },
}

/// The earliest time a replay from a backup that finished at `finished_at` (its manifest's
/// RFC 3339 text) may stop at. A whole-second time stands for its whole second: manifests
/// keep seconds, cut down, so the backup may have finished up to 999 ms later, and a
/// target inside that second could fall before its snapshot (the restore would then hold
/// more than was asked for). `None` for text that is not a time: no bound is no answer.
pub fn earliest_stop(finished_at: &str) -> Option<Timestamp> {
    let at = Timestamp::parse_rfc3339(finished_at)?;
    Some(if at.as_millis() % 1000 == 0 {
        at.plus(std::time::Duration::from_millis(999))
    } else {
        at
    })
}

/// Plans the replay from a base backup holding `base` to `target`, over `archive` (any
/// order; other servers' logs are ignored by the caller or here by the chain check).
pub fn plan_replay(
    base: &GtidSet,
    archive: &[ArchivedBinlog],
    target: &RecoveryTarget,
    base_finished: Timestamp,
) -> Result<ReplayPlan, PitrError> {
    if archive.is_empty() {
        return Err(PitrError::NoArchive);
    }
    let mut logs: Vec<&ArchivedBinlog> = archive.iter().collect();
    logs.sort_by_key(|log| (log.sequence(), log.name.clone()));
    // The logs that hold something the base lacks, in order. Everything in the archive
    // before the first of them is already in the base.
    let needed: Vec<&ArchivedBinlog> = logs
        .iter()
        .copied()
        .skip_while(|log| base.contains(&log.gtids))
        .collect();
    let archived = needed
        .iter()
        .fold(GtidSet::new(), |all, log| all.union(&log.gtids));
    match target {
        RecoveryTarget::Gtids(wanted) => {
            if base.contains(wanted) {
                // Nothing to replay: the base already holds the target. A target that is
                // a strict subset of the base cannot be reached by replaying forwards.
                if wanted.contains(base) {
                    return Ok(ReplayPlan {
                        binlogs: Vec::new(),
                        include_gtids: Some(wanted.clone()),
                        stop_at: None,
                    });
                }
                return Err(PitrError::BeforeBase {
                    target: wanted.to_string(),
                    base: base.to_string(),
                });
            }
            let missing = wanted.subtract(base).subtract(&archived);
            if !missing.is_empty() {
                return Err(PitrError::Unreachable {
                    missing: missing.to_string(),
                });
            }
            // Replay in order until the target is reached; the log that reaches it is the
            // last one (its transactions past the target are cut by --include-gtids).
            let mut have = base.clone();
            let mut binlogs = Vec::new();
            for log in needed {
                if have.contains(wanted) {
                    break;
                }
                have = have.union(&log.gtids);
                binlogs.push(log.clone());
            }
            check_chain(base, &binlogs)?;
            Ok(ReplayPlan {
                binlogs,
                include_gtids: Some(wanted.union(base)),
                stop_at: None,
            })
        }
        RecoveryTarget::Latest => {
            let binlogs: Vec<ArchivedBinlog> = needed.into_iter().cloned().collect();
            check_chain(base, &binlogs)?;
            Ok(ReplayPlan {
                binlogs,
                include_gtids: None,
                stop_at: None,
            })
        }
        RecoveryTarget::Time(at) => {
            if *at < base_finished {
                return Err(PitrError::BeforeBase {
                    target: at.rfc3339(),
                    base: base_finished.rfc3339(),
                });
            }
            let seconds = at.as_millis() / 1000;
            let binlogs: Vec<ArchivedBinlog> = needed
                .iter()
                .take_while(|log| u64::from(log.first_event) <= seconds)
                .map(|log| (*log).clone())
                .collect();
            check_chain(base, &binlogs)?;
            Ok(ReplayPlan {
                binlogs,
                include_gtids: None,
                stop_at: Some(*at),
            })
        }
    }
}

/// Every log must start where the base plus the logs before it end: a log whose
/// `Previous_gtids` holds transactions that neither the base nor an earlier log has means
/// an archived log is missing in between.
fn check_chain(base: &GtidSet, binlogs: &[ArchivedBinlog]) -> Result<(), PitrError> {
    let mut have = base.clone();
    for log in binlogs {
        let missing = log.previous_gtids.subtract(&have);
        if !missing.is_empty() {
            return Err(PitrError::Gap {
                missing: missing.to_string(),
            });
        }
        have = have.union(&log.gtids);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
