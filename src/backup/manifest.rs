//! What a backup repository holds and how it is laid out.
//!
//! ```text
//! <root>/backups/<id>/started.json    written first: id, method, source, start time
//! <root>/backups/<id>/data/...        the method's artifacts (chunks, DDL, archive parts)
//! <root>/backups/<id>/contents.json   the artifact list, sealed like every artifact
//! <root>/backups/<id>/manifest.json   written LAST: a backup without it is not complete
//! <root>/backups/<id>/failed.json     written instead of the manifest when a run fails
//! <root>/binlogs/<file>               archived binary logs (PITR)
//! <root>/verifications/<name>.json    a verification's outcome (`backup verify --record-as`)
//! ```
//!
//! The manifest is plain JSON so `list` and retention need no passphrase. Everything a
//! restore acts on comes from `contents.json`, which is sealed (authenticated) in an
//! encrypted backup and must agree with the manifest: a manifest edited in the store can
//! hide a backup, never change what is restored.

use serde::{Deserialize, Serialize};

use crate::backup::logical::LogicalDump;
use crate::failover::Timestamp;
use crate::ports::artifacts::StoredArtifact;

pub const BACKUPS_DIR: &str = "backups";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const CONTENTS_FILE: &str = "contents.json";
pub const STARTED_FILE: &str = "started.json";
pub const FAILED_FILE: &str = "failed.json";
/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;
/// Bound on reading a manifest or a marker: they are small.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// How the backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Rows and DDL, restorable into any server of the same major version.
    Logical,
    /// A CLONE of the data directory, restorable by starting mysqld on it.
    Clone,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logical => "logical",
            Self::Clone => "clone",
        }
    }
}

/// How the artifacts were sealed; what a reader needs besides the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionParams {
    /// `AES-256-GCM`.
    pub cipher: String,
    /// `argon2id`.
    pub kdf: String,
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
    /// Lower-case hex of the backup's KDF salt (shared by all its artifacts).
    pub salt: String,
}

/// The completion record of one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub method: Method,
    /// `host:port` of the server the backup was taken from.
    pub source: String,
    /// Its `server_uuid`: the binary-log archive a point-in-time restore continues from.
    #[serde(default)]
    pub source_uuid: String,
    pub server_version: String,
    /// `gtid_executed` at the snapshot: exactly the transactions the backup holds.
    pub gtid_executed: String,
    pub started_at: String,
    pub finished_at: String,
    /// Total bytes of the artifacts before compression and encryption.
    pub plain_bytes: u64,
    /// Total bytes stored.
    pub stored_bytes: u64,
    pub artifacts: u64,
    /// `zstd`.
    pub compression: String,
    pub encryption: Option<EncryptionParams>,
    /// Where the artifact list is, and how to check it.
    pub contents: StoredArtifact,
}

/// What a backup holds, as the restore acts on it: sealed like every artifact, so in an
/// encrypted backup it is authenticated, and it repeats the manifest's identity so an
/// edited manifest is caught.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contents {
    pub id: String,
    pub gtid_executed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical: Option<LogicalDump>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical: Option<PhysicalArchive>,
}

/// A CLONE of the data directory as one tar stream, cut into parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalArchive {
    pub server_version: String,
    /// In stream order.
    pub parts: Vec<StoredArtifact>,
}

impl Contents {
    /// Every artifact the backup consists of (besides this list itself).
    pub fn artifacts(&self) -> Vec<&StoredArtifact> {
        let mut out = Vec::new();
        if let Some(dump) = &self.logical {
            for schema in &dump.schemas {
                out.push(&schema.ddl);
                for table in &schema.tables {
                    out.push(&table.ddl);
                    out.extend(table.chunks.iter().map(|c| &c.artifact));
                }
                for object in schema
                    .views
                    .iter()
                    .chain(&schema.routines)
                    .chain(&schema.triggers)
                    .chain(&schema.events)
                {
                    out.push(&object.artifact);
                }
            }
        }
        if let Some(archive) = &self.physical {
            out.extend(archive.parts.iter());
        }
        out
    }
}

/// The marker written when a backup starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub id: String,
    pub method: Method,
    pub source: String,
    pub started_at: String,
}

/// The marker written when a backup fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    pub id: String,
    pub failed_at: String,
    /// The error's category (`unavailable`, `timeout`, …).
    pub category: String,
    pub message: String,
}

/// The key of `file` in backup `id`.
pub fn backup_key(id: &str, file: &str) -> String {
    format!("{BACKUPS_DIR}/{id}/{file}")
}

/// A new backup's id: its UTC start time, sortable, then a random suffix so two backups
/// started in the same second never share a directory.
pub fn new_id(started: Timestamp, random: u16) -> String {
    let text = started.rfc3339(); // 2026-12-02T15:30:00Z
    let compact: String = text.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{compact}-{random:04x}")
}

/// Whether `id` is one this module could have made: ids become object keys, so anything
/// else (a `..`, a slash) found in a listing is ignored, never acted on.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_start_time_and_are_valid() {
        let a = new_id(Timestamp::from_millis(1_764_689_400_000), 0xffff);
        let b = new_id(Timestamp::from_millis(1_764_689_401_000), 0);
        assert_eq!(a, "20251202T153000Z-ffff");
        assert!(a < b);
        assert!(is_valid_id(&a) && is_valid_id(&b));
    }

    #[test]
    fn hostile_ids_are_not_valid() {
        for id in ["", "..", "a/b", "a b", "x\n", &"a".repeat(65)] {
            assert!(!is_valid_id(id), "{id:?}");
        }
    }

    #[test]
    fn manifest_json_is_camel_case_and_round_trips() {
        let manifest = Manifest {
            format: FORMAT,
            id: "20251202T153000Z-0001".into(),
            method: Method::Logical,
            source: "db:3306".into(),
            source_uuid: String::new(),
            server_version: "9.7.0".into(),
            gtid_executed: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5".into(),
            started_at: "2025-12-02T15:30:00Z".into(),
            finished_at: "2025-12-02T15:31:00Z".into(),
            plain_bytes: 10,
            stored_bytes: 5,
            artifacts: 1,
            compression: "zstd".into(),
            encryption: None,
            contents: StoredArtifact {
                key: CONTENTS_FILE.into(),
                plain_bytes: 1,
                stored_bytes: 1,
                sha256: "00".into(),
            },
        };
        let json = serde_json::to_value(&manifest).expect("json");
        assert_eq!(json["gtidExecuted"], manifest.gtid_executed);
        assert_eq!(json["method"], "logical");
        let back: Manifest = serde_json::from_value(json).expect("parse");
        assert_eq!(back, manifest);
    }
}
