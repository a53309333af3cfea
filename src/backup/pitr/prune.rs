//! Which archived binary logs no kept backup can need.
//!
//! A restore from a base backup replays the logs holding transactions the base lacks. So a
//! log whose every GTID is in **every** kept complete backup can serve no restore, and only
//! such a log is pruned. This is a GTID rule, not the original's time rule ("older than the
//! oldest backup's completion"), which deleted transactions committed while that backup
//! ran: they are not in its snapshot, and replaying from it needs them. Because every kept
//! backup must cover the log, a repository shared by several groups prunes nothing of one
//! group on another's backups.
//!
//! Per server, only a prefix of the logs in sequence order is pruned, so the archive never
//! gets a hole, and never a server's newest log: the archiver resumes after the newest
//! archived log, so keeping it is what stops the pruned ones being archived again.

use std::collections::BTreeMap;

use super::ArchivedBinlog;
use crate::failover::gtid::GtidSet;

/// The archived logs (of any servers, in any order) that no backup holding one of `kept`
/// GTID sets needs. With no kept backup nothing is pruned: a restore needs a base, and the
/// next backup may need these logs' neighbours.
pub fn prunable<'a>(archive: &'a [ArchivedBinlog], kept: &[GtidSet]) -> Vec<&'a ArchivedBinlog> {
    if kept.is_empty() {
        return Vec::new();
    }
    let mut by_server: BTreeMap<&str, Vec<&ArchivedBinlog>> = BTreeMap::new();
    for log in archive {
        by_server.entry(&log.server_uuid).or_default().push(log);
    }
    let mut out = Vec::new();
    for logs in by_server.values_mut() {
        // A log whose name carries no sequence cannot be placed in the order: stop there.
        logs.sort_by_key(|log| log.sequence().unwrap_or(u64::MAX));
        let Some((_newest, older)) = logs.split_last() else {
            continue;
        };
        out.extend(
            older
                .iter()
                .take_while(|log| {
                    log.sequence().is_some() && kept.iter().all(|set| set.contains(&log.gtids))
                })
                .copied(),
        );
    }
    out
}
