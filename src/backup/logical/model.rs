//! The description of one logical dump. It is embedded in the backup manifest (JSON,
//! camelCase), and it is all a load needs besides the artifacts themselves.

use sha2::{Digest as _, Sha256};

use crate::ports::artifacts::StoredArtifact;

/// Bumped when the chunk format or the layout changes incompatibly.
pub const LOGICAL_FORMAT_VERSION: u32 = 1;

/// One consistent dump of a server's user schemas.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogicalDump {
    pub format_version: u32,
    /// `@@version` of the source.
    pub server_version: String,
    /// `@@GLOBAL.gtid_executed` at the snapshot, whitespace removed: exactly the transactions
    /// the dumped data contains.
    pub gtid_executed: String,
    /// The chunk size the dump aimed at (plain bytes).
    pub chunk_bytes: u64,
    pub schemas: Vec<SchemaDump>,
}

/// One schema: its own DDL, its tables with their data, and its other objects.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaDump {
    pub name: String,
    /// `CREATE DATABASE …`.
    pub ddl: StoredArtifact,
    pub tables: Vec<TableDump>,
    pub views: Vec<DdlObject>,
    /// Stored procedures and functions.
    pub routines: Vec<DdlObject>,
    pub triggers: Vec<DdlObject>,
    pub events: Vec<DdlObject>,
}

/// One base table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableDump {
    pub name: String,
    /// `CREATE TABLE …`.
    pub ddl: StoredArtifact,
    /// The columns each row of a chunk holds, in order (generated columns are left out:
    /// the server computes them again).
    pub columns: Vec<ColumnSpec>,
    /// Rows in all chunks.
    pub rows: u64,
    /// [`table_checksum`] of the chunks, in primary-key order.
    pub checksum: String,
    /// In primary-key order (scan order for a table without one).
    pub chunks: Vec<ChunkDump>,
}

/// How one dumped column is written into a chunk and read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnSpec {
    pub name: String,
    pub encoding: ColumnEncoding,
}

/// The text form of a column value in a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ColumnEncoding {
    /// The server's text form in utf8mb4 (numbers, temporal values in UTC, strings, JSON).
    Text,
    /// Upper-case hex of the bytes (`HEX()` / `UNHEX()`): binary strings, BLOBs, spatial and
    /// vector values, which are not text in any character set.
    Hex,
    /// A FLOAT read as a DOUBLE (`CAST(… AS DOUBLE)`): the server prints a FLOAT with six
    /// significant digits, which do not read back as the same float; the double's
    /// shortest form does, and loads into the FLOAT column as is.
    Float,
    /// The decimal value (`CAST(… AS UNSIGNED)`): BIT, whose text form is raw bytes that a
    /// BIT column would not read back as the same number.
    Unsigned,
}

/// One chunk of a table's rows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkDump {
    pub artifact: StoredArtifact,
    pub rows: u64,
    /// Lower-case hex SHA-256 of the plain chunk bytes (the stored digest is of the
    /// compressed, encrypted object, which differs from run to run).
    pub plain_sha256: String,
}

/// One DDL object other than a table: a view, routine, trigger or event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DdlObject {
    pub name: String,
    /// The `sql_mode` the object was created under (routines, triggers and events keep it
    /// and run with it), to recreate it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_mode: Option<String>,
    /// The time zone an event was created in (its schedule is read in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The `CREATE …` statement.
    pub artifact: StoredArtifact,
}

impl LogicalDump {
    /// Rows in all tables.
    pub fn rows(&self) -> u64 {
        self.tables().map(|(_, t)| t.rows).sum()
    }

    /// Every table with its schema name, in dump order.
    pub fn tables(&self) -> impl Iterator<Item = (&str, &TableDump)> {
        self.schemas
            .iter()
            .flat_map(|s| s.tables.iter().map(move |t| (s.name.as_str(), t)))
    }
}

/// The checksum of a table: SHA-256 over the plain SHA-256 of each chunk, in order, each
/// followed by the chunk's row count. A load recomputes it from the chunks it read, so a
/// chunk missing from (or moved within) the description is caught as well as a changed one.
pub fn table_checksum<'a>(chunks: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let mut hasher = Sha256::new();
    for (plain_sha256, rows) in chunks {
        hasher.update(plain_sha256.as_bytes());
        hasher.update(b":");
        hasher.update(rows.to_string().as_bytes());
        hasher.update(b"\n");
    }
    crate::digest::hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(key: &str) -> StoredArtifact {
        StoredArtifact {
            key: key.to_owned(),
            plain_bytes: 3,
            stored_bytes: 40,
            sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn serializes_camel_case_and_round_trips() {
        let dump = LogicalDump {
            format_version: LOGICAL_FORMAT_VERSION,
            server_version: "9.7.4".into(),
            gtid_executed: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5".into(),
            chunk_bytes: 8 << 20,
            schemas: vec![SchemaDump {
                name: "shop".into(),
                ddl: artifact("ddl/shop/schema.sql"),
                tables: vec![TableDump {
                    name: "orders".into(),
                    ddl: artifact("ddl/shop/tables/orders.sql"),
                    columns: vec![ColumnSpec {
                        name: "id".into(),
                        encoding: ColumnEncoding::Unsigned,
                    }],
                    rows: 2,
                    checksum: table_checksum([("x", 2)]),
                    chunks: vec![ChunkDump {
                        artifact: artifact("data/shop/orders/00000-0000.tsv"),
                        rows: 2,
                        plain_sha256: "x".into(),
                    }],
                }],
                views: vec![],
                routines: vec![DdlObject {
                    name: "p".into(),
                    sql_mode: Some("STRICT_TRANS_TABLES".into()),
                    time_zone: None,
                    artifact: artifact("ddl/shop/routines/procedure.p.sql"),
                }],
                triggers: vec![],
                events: vec![],
            }],
        };
        let json = serde_json::to_string(&dump).expect("serializes");
        for field in [
            "formatVersion",
            "gtidExecuted",
            "plainSha256",
            "sqlMode",
            "plainBytes",
        ] {
            assert!(json.contains(field), "{field} missing in {json}");
        }
        assert!(json.contains("\"encoding\":\"unsigned\""), "{json}");
        let back: LogicalDump = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, dump);
        assert_eq!(back.rows(), 2);
    }

    #[test]
    fn table_checksum_depends_on_order_and_counts() {
        let a = table_checksum([("aa", 1), ("bb", 2)]);
        assert_ne!(a, table_checksum([("bb", 2), ("aa", 1)]));
        assert_ne!(a, table_checksum([("aa", 1), ("bb", 3)]));
        assert_ne!(a, table_checksum([("aa", 1)]));
        assert_eq!(a, table_checksum([("aa", 1), ("bb", 2)]));
    }
}
