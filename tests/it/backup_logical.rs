//! The logical backup method against real MySQL 9.7 servers (see `support::mysql`): a
//! parallel dump from one server, a load into another, and the failure paths.
//!
//! Artifacts go through [`MapStore`], an in-memory sink and source. The real store (S3 or
//! file, with compression and encryption) is tested on its own elsewhere; this one only
//! checks, as the real one does, that what comes back is what its record says.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bloodraven::adapters::mysql::{
    Credentials, DumpOptions, GtidHistory, LoadOptions, LogicalEndpoint, LogicalError, dump, load,
};
use bloodraven::backup::logical::{LogicalDump, table_checksum};
use bloodraven::digest::sha256_hex;
use bloodraven::error::{Categorized, Category};
use bloodraven::ports::artifacts::{ArtifactError, ArtifactSink, ArtifactSource, StoredArtifact};
use futures_util::future::BoxFuture;
use mysql_async::prelude::Queryable;

use crate::support::mysql::{MysqlCluster, MysqlInstance, ROOT_USER};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

/// A hook run on every data chunk put (the kill test kills the source from it).
type PutHook = Box<dyn Fn(&str) + Send + Sync>;

/// Artifacts in memory, keyed like the real store; `get` checks size and digest.
#[derive(Default)]
struct MapStore {
    objects: Mutex<HashMap<String, Vec<u8>>>,
    on_data_put: Option<PutHook>,
}

impl MapStore {
    fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(key).cloned()
    }

    fn len(&self) -> usize {
        self.objects.lock().unwrap().len()
    }

    fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }
}

impl ArtifactSink for MapStore {
    fn put(
        &self,
        key: String,
        plain: Vec<u8>,
    ) -> BoxFuture<'_, Result<StoredArtifact, ArtifactError>> {
        Box::pin(async move {
            if key.starts_with("data/")
                && let Some(hook) = &self.on_data_put
            {
                hook(&key);
            }
            let artifact = StoredArtifact {
                key: key.clone(),
                plain_bytes: plain.len() as u64,
                stored_bytes: plain.len() as u64,
                sha256: sha256_hex(&plain),
            };
            let previous = self.objects.lock().unwrap().insert(key.clone(), plain);
            if previous.is_some() {
                return Err(ArtifactError::Storage {
                    key,
                    message: "written twice".into(),
                });
            }
            Ok(artifact)
        })
    }
}

impl ArtifactSource for MapStore {
    fn get<'a>(
        &'a self,
        artifact: &'a StoredArtifact,
    ) -> BoxFuture<'a, Result<Vec<u8>, ArtifactError>> {
        Box::pin(async move {
            let key = artifact.key.clone();
            let bytes = self
                .bytes(&key)
                .ok_or_else(|| ArtifactError::Missing { key: key.clone() })?;
            if bytes.len() as u64 != artifact.plain_bytes || sha256_hex(&bytes) != artifact.sha256 {
                return Err(ArtifactError::Integrity {
                    key,
                    check: "sha256",
                    message: "the object does not match its record".into(),
                });
            }
            Ok(bytes)
        })
    }
}

fn endpoint(instance: &MysqlInstance) -> LogicalEndpoint {
    LogicalEndpoint::new(instance.address(), Credentials::new(ROOT_USER, ""))
}

/// `@@GLOBAL.gtid_executed` without the line breaks (which `mysql -B` prints as `\n`).
fn gtids(instance: &MysqlInstance) -> Result<String, Box<dyn Error + Send + Sync>> {
    Ok(instance
        .sql("SELECT @@GLOBAL.gtid_executed")?
        .replace("\\n", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect())
}

fn user_schemas(instance: &MysqlInstance) -> Result<String, Box<dyn Error + Send + Sync>> {
    Ok(instance.sql(
        "SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME NOT IN ('mysql','sys','information_schema','performance_schema')",
    )?)
}

const TYPES_SCHEMA: &str = r#"
CREATE DATABASE shop;
USE shop;
SET SESSION cte_max_recursion_depth = 20000;
CREATE TABLE shop.audit (id INT AUTO_INCREMENT PRIMARY KEY, type_id INT);
CREATE TABLE shop.types (
  id INT AUTO_INCREMENT PRIMARY KEY,
  j JSON, b BLOB, bin BINARY(4), vb VARBINARY(16), bits BIT(10), b64 BIT(64),
  dec1 DECIMAL(30,10),
  f FLOAT, d DOUBLE, dt DATETIME(6), ts TIMESTAMP(6) NULL, txt TEXT, vc VARCHAR(100),
  gs DOUBLE AS (d * 2) STORED,
  gv VARCHAR(120) AS (CONCAT(vc, '!')) VIRTUAL
) DEFAULT CHARSET=utf8mb4;
INSERT INTO shop.types (j, b, bin, vb, bits, b64, dec1, f, d, dt, ts, txt, vc) VALUES
 ('{"a": [1, 2.5, "x\\ty"], "e": "😀", "n": null}', 0x00FF5C0A09221A, 0x00010203, 0x5C4E,
  b'1010101010', 0xFFFFFFFFFFFFFFFF, 12345678901234567890.0123456789, 1.2345678, 2.718281828459045,
  '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999999',
  'tab\there\nnewline \\N back\\slash \r\0 😀🚀', '\\N'),
 (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 ('[]', '', 0x00000000, '', b'0', b'0', -0.0000000001, -3.4e38, 1e-300,
  '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '', 'N'),
 ('{"big": 1.7976931348623157e308}', REPEAT(0x5C, 3000), 0xFFFFFFFF, 0x0A0D09,
  b'1111111111', 0x8000000000000001, 0.5, 0.1, 0.1, '9999-12-31 23:59:59.999999', NULL, 'NULL', '');
CREATE TABLE shop.more (id INT PRIMARY KEY, g GEOMETRY, p POINT SRID 4326, y YEAR,
  t TIME(6), e ENUM('a','b','ü'), st SET('x','y','z'), dmax DOUBLE, dec65 DECIMAL(65,30),
  vec VECTOR(3), lt LONGTEXT CHARACTER SET latin1, inv INT INVISIBLE) DEFAULT CHARSET=utf8mb4;
INSERT INTO shop.more (id, g, p, y, t, e, st, dmax, dec65, vec, lt, inv) VALUES
 (1, ST_GeomFromText('LINESTRING(0 0, 1 1.5)'), ST_GeomFromText('POINT(45 9)', 4326), 2155,
  '-838:59:59.000000', 'ü', 'x,z', 1.7976931348623157e308,
  12345678901234567890123456789012345.123456789012345678901234567890,
  STRING_TO_VECTOR('[1.5, -2, 3.25]'), 'café latin1', 7),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, -0.0, NULL, NULL, NULL, NULL),
 (3, ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(-45 -9)', 4326), 1901,
  '00:00:00.000001', 'a', '', 4.9e-324, -0.000000000000000000000000000001,
  STRING_TO_VECTOR('[0,0,0]'), '', -1);
CREATE TABLE shop.seqd (x INT NOT NULL, id INT NOT NULL AUTO_INCREMENT, PRIMARY KEY (x),
  KEY by_id (id), KEY by_x (x, id));
INSERT INTO shop.seqd (x) VALUES (10), (20), (5);
CREATE TABLE shop.empty (id INT PRIMARY KEY, v VARCHAR(10));
CREATE TABLE shop.nopk (a INT, b VARCHAR(20));
INSERT INTO shop.nopk VALUES (1, 'x'), (1, 'x'), (NULL, NULL), (2, '\\N');
CREATE TABLE shop.composite (k1 VARCHAR(20), k2 INT, v TEXT, PRIMARY KEY (k1, k2),
  UNIQUE KEY uk (k2), KEY kv (v(10)));
INSERT INTO shop.composite
  WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 19999)
  SELECT CONCAT('k', n % 97, '✓'), n, REPEAT(CHAR(65 + n % 26), 40 + n % 30) FROM seq;
CREATE TABLE shop.big (id BIGINT PRIMARY KEY, a INT NOT NULL, s CHAR(32), x DOUBLE);
CREATE TABLE shop.child (id INT PRIMARY KEY, type_id INT, note VARCHAR(10), KEY kn (note),
  CONSTRAINT fk_type FOREIGN KEY (type_id) REFERENCES shop.types (id));
INSERT INTO shop.child VALUES (1, 1, 'a'), (2, 3, NULL);
INSERT INTO shop.big
  WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 999)
  SELECT a.n * 1000 + b.n + 1, (a.n * 7 + b.n) % 1000, LEFT(SHA2(a.n * 1000 + b.n, 256), 32), (a.n * 1000 + b.n) / 7
  FROM seq a CROSS JOIN seq b;
-- Indexed after the rows are in: much faster than with the rows (see backup::logical::ddl).
ALTER TABLE shop.big ADD KEY ka (a), ADD KEY ks (s);
CREATE VIEW shop.z_base AS SELECT id, vc FROM shop.types;
CREATE VIEW shop.a_top AS SELECT COUNT(*) AS c FROM shop.z_base;
CREATE TRIGGER shop.types_ai AFTER INSERT ON shop.types FOR EACH ROW
  INSERT INTO shop.audit (type_id) VALUES (NEW.id);
CREATE PROCEDURE shop.count_types(OUT n INT) SELECT COUNT(*) INTO n FROM shop.types;
CREATE FUNCTION shop.twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
CREATE EVENT shop.nightly ON SCHEDULE EVERY 1 DAY STARTS '2099-01-01 00:00:00'
  DO DELETE FROM shop.audit WHERE id < 0;
CREATE DATABASE `odd schema-1`;
CREATE TABLE `odd schema-1`.`t.x/../y` (id INT PRIMARY KEY, v VARCHAR(10));
INSERT INTO `odd schema-1`.`t.x/../y` VALUES (1, 'a'), (2, NULL);
"#;

const TYPES_TABLES: &str = "shop.audit, shop.types, shop.more, shop.seqd, shop.empty, shop.nopk, shop.composite, \
                            shop.big, shop.child, `odd schema-1`.`t.x/../y`";

/// `SHOW CREATE TABLE` of every table: the load must recreate them exactly (indexes added
/// after the data included).
fn creates(instance: &MysqlInstance) -> Result<String, Box<dyn Error + Send + Sync>> {
    let mut out = String::new();
    for table in TYPES_TABLES.split(", ") {
        out.push_str(&instance.sql(&format!("SHOW CREATE TABLE {table}"))?);
        out.push('\n');
    }
    Ok(out)
}

fn counts(instance: &MysqlInstance) -> Result<String, Box<dyn Error + Send + Sync>> {
    let mut out = String::new();
    for table in TYPES_TABLES.split(", ") {
        out.push_str(&instance.sql(&format!("SELECT '{table}', COUNT(*) FROM {table}"))?);
        out.push('\n');
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_logical_round_trips_every_type_and_object() -> TestResult {
    let cluster = MysqlCluster::start(2)?;
    let (source, target) = (cluster.get(0)?, cluster.get(1)?);
    let started = Instant::now();
    source.sql(TYPES_SCHEMA)?;
    eprintln!(
        "generated the schema (1,000,000-row table) in {:?}",
        started.elapsed()
    );

    let store = MapStore::default();
    let options = DumpOptions {
        threads: 4,
        chunk_bytes: 1 << 20,
        ..DumpOptions::default()
    };
    let started = Instant::now();
    let dumped = dump(&endpoint(source), &store, &options).await?;
    let dump_time = started.elapsed();
    check_dump(source, &store, &dumped, dump_time)?;
    // The description survives the manifest's JSON.
    let json = serde_json::to_string(&dumped)?;
    let dumped: LogicalDump = serde_json::from_str(&json)?;

    let started = Instant::now();
    let report = load(&endpoint(target), &store, &dumped, &LoadOptions::default()).await?;
    let load_time = started.elapsed();
    eprintln!("load: {} rows in {load_time:?}", report.rows());
    let loaded_big = report
        .tables
        .iter()
        .find(|t| t.table == "big")
        .expect("big loaded");
    assert_eq!(loaded_big.rows, 1_000_000);
    assert_eq!(report.rows(), dumped.rows());

    // Values compared as text too, generated columns included.
    let all_types = "SELECT id, j, HEX(b), HEX(bin), HEX(vb), bits + 0, b64 + 0, dec1, \
                     CAST(f AS DOUBLE), d, dt, ts, txt, vc, gs, gv FROM shop.types ORDER BY id";
    assert_eq!(target.sql(all_types)?, source.sql(all_types)?);
    let all_more = "SELECT id, HEX(g), HEX(p), y, t, e, st, dmax, dec65, HEX(vec), lt, inv \
                    FROM shop.more ORDER BY id";
    assert_eq!(target.sql(all_more)?, source.sql(all_more)?);
    assert_eq!(
        target.sql(&format!("CHECKSUM TABLE {TYPES_TABLES}"))?,
        source.sql(&format!("CHECKSUM TABLE {TYPES_TABLES}"))?
    );
    assert_eq!(counts(target)?, counts(source)?);
    assert_eq!(creates(target)?, creates(source)?);
    assert_eq!(gtids(target)?, dumped.gtid_executed);
    assert_eq!(report.gtid_executed, dumped.gtid_executed);
    check_objects(source, target)
}

fn check_dump(
    source: &MysqlInstance,
    store: &MapStore,
    dumped: &LogicalDump,
    dump_time: Duration,
) -> TestResult {
    let big = dumped
        .tables()
        .find(|(_, t)| t.name == "big")
        .map(|(_, t)| t.clone())
        .expect("big dumped");
    let big_bytes: u64 = big.chunks.iter().map(|c| c.artifact.plain_bytes).sum();
    eprintln!(
        "dump: {} rows, {} artifacts in {dump_time:?}; big: {} chunks, {big_bytes} bytes",
        dumped.rows(),
        store.len(),
        big.chunks.len()
    );
    assert_eq!(big.rows, 1_000_000);
    assert!(big.chunks.len() >= 4, "big is split: {}", big.chunks.len());
    assert!(
        big.chunks
            .iter()
            .all(|c| c.artifact.plain_bytes < (1 << 20) + 4096),
        "chunks are cut by size"
    );
    assert_eq!(dumped.gtid_executed, gtids(source)?);
    assert!(!dumped.gtid_executed.is_empty());
    let keys = store.keys();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("data/odd%20schema%2D1/t%2Ex%2F%2E%2E%2Fy/")),
        "hostile names are escaped: {keys:?}"
    );
    assert!(
        keys.iter()
            .all(|k| k.starts_with("data/") || k.starts_with("ddl/"))
    );
    let shop = dumped
        .schemas
        .iter()
        .find(|s| s.name == "shop")
        .expect("shop");
    assert_eq!(shop.views.len(), 2);
    assert_eq!(shop.routines.len(), 2);
    assert_eq!(shop.triggers.len(), 1);
    assert_eq!(shop.events.len(), 1);
    let types = shop
        .tables
        .iter()
        .find(|t| t.name == "types")
        .expect("types");
    assert!(
        types
            .columns
            .iter()
            .all(|c| c.name != "gs" && c.name != "gv"),
        "generated columns are not dumped"
    );
    let empty = shop
        .tables
        .iter()
        .find(|t| t.name == "empty")
        .expect("empty");
    assert!(empty.chunks.is_empty() && empty.rows == 0);
    Ok(())
}

/// Views, routines, triggers and events exist on the target and work.
fn check_objects(source: &MysqlInstance, target: &MysqlInstance) -> TestResult {
    assert_eq!(target.sql("SELECT c FROM shop.a_top")?, "4");
    assert_eq!(target.sql("SELECT shop.twice(21)")?, "42");
    assert_eq!(target.sql("CALL shop.count_types(@n); SELECT @n")?, "4");
    let events = "SELECT EVENT_NAME, STATUS, TIME_ZONE, EVENT_DEFINITION, INTERVAL_VALUE, \
                  STARTS, SQL_MODE FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'shop'";
    assert_eq!(target.sql(events)?, source.sql(events)?);
    let routines = "SELECT ROUTINE_NAME, ROUTINE_DEFINITION, SQL_MODE, DEFINER \
                    FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop' \
                    ORDER BY ROUTINE_NAME";
    assert_eq!(target.sql(routines)?, source.sql(routines)?);
    // The trigger did not fire on the load (audit matched) and fires now.
    let audit_before: u64 = target.sql("SELECT COUNT(*) FROM shop.audit")?.parse()?;
    target.sql("INSERT INTO shop.types (vc) VALUES ('after')")?;
    let audit_after: u64 = target.sql("SELECT COUNT(*) FROM shop.audit")?.parse()?;
    assert_eq!(audit_after, audit_before + 1);
    assert_eq!(
        target.sql("SELECT gv FROM shop.types WHERE vc = 'after'")?,
        "after!"
    );
    Ok(())
}

const BANK_SCHEMA: &str = "
CREATE DATABASE bank;
USE bank;
CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL);
CREATE TABLE bank.ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, src INT, dst INT, amount INT);
CREATE TABLE bank.filler (id INT PRIMARY KEY, pad CHAR(64));
INSERT INTO bank.accounts
  WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 100)
  SELECT n, 1000 FROM seq;
INSERT INTO bank.filler
  WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 999)
  SELECT a.n * 1000 + b.n, LEFT(SHA2(a.n * 1000 + b.n, 256), 32) FROM seq a CROSS JOIN seq b WHERE a.n < 150;
";

const BANK_TABLES: &str = "bank.accounts, bank.ledger, bank.filler";

/// Commits transfers (two balance updates and a ledger row per transaction) until told to
/// stop; returns how many it committed.
async fn transfer_loop(address: String, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) -> TestResult {
    let opts = mysql_async::Opts::from_url(&format!("mysql://{ROOT_USER}@{address}"))?;
    let mut conn = mysql_async::Conn::new(opts).await?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    while !stop.load(Ordering::Relaxed) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let src = state % 100 + 1;
        let dst = (state >> 16) % 100 + 1;
        let amount = (state >> 32) % 50 + 1;
        conn.query_drop(format!(
            "START TRANSACTION; \
             UPDATE bank.accounts SET balance = balance - {amount} WHERE id = {src}; \
             UPDATE bank.accounts SET balance = balance + {amount} WHERE id = {dst}; \
             INSERT INTO bank.ledger (src, dst, amount) VALUES ({src}, {dst}, {amount}); \
             COMMIT"
        ))
        .await?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    conn.disconnect().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_logical_is_consistent_under_concurrent_writes() -> TestResult {
    let cluster = MysqlCluster::start(3)?;
    let (source, target, replica) = (cluster.get(0)?, cluster.get(1)?, cluster.get(2)?);
    source.sql(BANK_SCHEMA)?;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn(transfer_loop(source.address(), stop.clone(), done.clone()));
    while done.load(Ordering::Relaxed) < 50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = MapStore::default();
    let options = DumpOptions {
        threads: 4,
        chunk_bytes: 64 << 10,
        ..DumpOptions::default()
    };
    let before = done.load(Ordering::Relaxed);
    let dumped = dump(&endpoint(source), &store, &options).await?;
    let during = done.load(Ordering::Relaxed) - before;
    // Keep writing a little after the snapshot, so the source moves past it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await??;
    eprintln!(
        "{during} transfers committed during the dump, {} in all",
        done.load(Ordering::Relaxed)
    );
    assert!(during > 0, "the writer committed during the dump");
    assert!(
        gtids(source)? != dumped.gtid_executed,
        "the source moved on"
    );

    load(&endpoint(target), &store, &dumped, &LoadOptions::default()).await?;
    assert_eq!(
        target.sql("SELECT SUM(balance) FROM bank.accounts")?,
        "100000"
    );
    assert_eq!(gtids(target)?, dumped.gtid_executed);

    // The source's state at exactly the dump's GTID set: a replica that stops there.
    let set = &dumped.gtid_executed;
    replica.sql(&format!(
        "SET GLOBAL replica_parallel_workers = 1; \
         CHANGE REPLICATION SOURCE TO SOURCE_HOST = '127.0.0.1', SOURCE_PORT = {}, \
           SOURCE_USER = 'repl', SOURCE_PASSWORD = 'repl', SOURCE_AUTO_POSITION = 1, \
           SOURCE_SSL = 0, GET_SOURCE_PUBLIC_KEY = 1; \
         START REPLICA UNTIL SQL_AFTER_GTIDS = '{set}'",
        source.port()
    ))?;
    assert_eq!(
        replica.sql(&format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{set}', 60)"))?,
        "0"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    replica.sql("STOP REPLICA")?;
    assert_eq!(
        gtids(replica)?,
        *set,
        "the replica stopped exactly at the dump's set"
    );
    assert_eq!(
        target.sql(&format!("CHECKSUM TABLE {BANK_TABLES}"))?,
        replica.sql(&format!("CHECKSUM TABLE {BANK_TABLES}"))?
    );
    assert_eq!(
        target.sql("SELECT COUNT(*) FROM bank.ledger")?,
        replica.sql("SELECT COUNT(*) FROM bank.ledger")?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_logical_load_refuses_unsafe_targets_and_bad_chunks() -> TestResult {
    let cluster = MysqlCluster::start(2)?;
    let (source, target) = (cluster.get(0)?, cluster.get(1)?);
    source.sql(
        "CREATE DATABASE shop; CREATE DATABASE other; USE shop; \
         CREATE TABLE other.t (id INT PRIMARY KEY); INSERT INTO other.t VALUES (1); \
         CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(40)); \
         INSERT INTO shop.t WITH RECURSIVE seq(n) AS \
           (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 999) SELECT n, LEFT(SHA2(n, 256), 32) FROM seq",
    )?;
    let store = MapStore::default();
    let dumped = dump(&endpoint(source), &store, &DumpOptions::default()).await?;
    let options = LoadOptions::default();

    // local_infile is OFF and the account may not turn it on: refused, naming the setting.
    target.sql(
        "SET GLOBAL local_infile = OFF; SET SESSION sql_log_bin = 0; \
         CREATE USER loader@'127.0.0.1'; \
         GRANT SELECT, SESSION_VARIABLES_ADMIN ON *.* TO loader@'127.0.0.1'",
    )?;
    let mut limited = endpoint(target);
    limited.credentials = Credentials::new("loader", "");
    let error = load(&limited, &store, &dumped, &options)
        .await
        .expect_err("an account that may not set local_infile is refused");
    assert!(matches!(error, LogicalError::Refused { .. }), "{error}");
    assert!(error.to_string().contains("local_infile=ON"), "{error}");
    assert_eq!(user_schemas(target)?, "NULL");
    assert_eq!(gtids(target)?, "");

    // A schema of the dump exists: refused, nothing written.
    target.sql("CREATE DATABASE shop")?;
    let (schemas, history) = (user_schemas(target)?, gtids(target)?);
    let error = load(&endpoint(target), &store, &dumped, &options)
        .await
        .expect_err("a target with the schema is refused");
    assert!(matches!(error, LogicalError::Refused { .. }), "{error}");
    assert!(error.to_string().contains("`shop`"), "{error}");
    assert_eq!(error.category(), Category::Refused);
    assert_eq!((user_schemas(target)?, gtids(target)?), (schemas, history));

    // A target with a history of its own: refused unless told to reset it.
    target.sql("DROP DATABASE shop")?;
    let error = load(&endpoint(target), &store, &dumped, &options)
        .await
        .expect_err("a target with transactions is refused");
    assert!(
        error.to_string().contains("gtid_executed is not empty"),
        "{error}"
    );
    assert_eq!(user_schemas(target)?, "NULL");
    assert_eq!(target.sql("SELECT @@GLOBAL.local_infile")?, "0");

    // A record that does not match its object fails with the store's message.
    let mut wrong_record = dumped.clone();
    wrong_record.schemas[1].tables[0].chunks[0].artifact.sha256 = "0".repeat(64);
    let reset = LoadOptions {
        history: GtidHistory::FromDump { reset: true },
        ..LoadOptions::default()
    };
    let error = load(&endpoint(target), &store, &wrong_record, &reset)
        .await
        .expect_err("a wrong record fails");
    assert!(matches!(error, LogicalError::Artifact { .. }), "{error}");
    assert!(error.to_string().contains("sha256 check failed"), "{error}");
    assert_eq!(
        target.sql("SELECT @@GLOBAL.local_infile")?,
        "0",
        "restored after a failure"
    );

    // A chunk with a row less than its record (its digests made to match) fails, naming it.
    target.sql("DROP DATABASE IF EXISTS shop; DROP DATABASE IF EXISTS other")?;
    let (short, key) = short_chunk(&dumped, &store).await?;
    let error = load(&endpoint(target), &store, &short, &reset)
        .await
        .expect_err("a short chunk fails");
    let text = error.to_string();
    assert!(matches!(error, LogicalError::Mismatch { .. }), "{text}");
    assert!(text.contains(&key) && text.contains("998 rows"), "{text}");
    assert!(text.contains("`shop`.`t`"), "{text}");
    assert_eq!(
        target.sql("SELECT COUNT(*) FROM shop.t")?,
        "0",
        "nothing of it loaded"
    );

    // And the real dump loads, with local_infile turned back OFF afterwards.
    target.sql("DROP DATABASE IF EXISTS shop; DROP DATABASE IF EXISTS other")?;
    let report = load(&endpoint(target), &store, &dumped, &reset).await?;
    assert_eq!(report.rows(), 1000);
    assert_eq!(target.sql("SELECT @@GLOBAL.local_infile")?, "0");
    assert_eq!(gtids(target)?, dumped.gtid_executed);
    assert_eq!(
        target.sql("CHECKSUM TABLE shop.t, other.t")?,
        source.sql("CHECKSUM TABLE shop.t, other.t")?
    );
    Ok(())
}

/// `dumped` with its `shop.t` chunk replaced by one a row short, stored, and with digests
/// that match it (so only the row count can tell); returns the new chunk's key.
async fn short_chunk(
    dumped: &LogicalDump,
    store: &MapStore,
) -> Result<(LogicalDump, String), Box<dyn Error + Send + Sync>> {
    let mut short = dumped.clone();
    let table = &mut short.schemas[1].tables[0];
    assert_eq!(table.name, "t");
    let original = &table.chunks[0];
    let mut bytes = store.bytes(&original.artifact.key).expect("chunk stored");
    bytes.pop();
    let cut = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes.truncate(cut);
    let key = original.artifact.key.replace(".tsv", "-short.tsv");
    table.chunks[0].artifact = store.put(key.clone(), bytes.clone()).await?;
    table.chunks[0].plain_sha256 = sha256_hex(&bytes);
    table.checksum = table_checksum(
        table
            .chunks
            .iter()
            .map(|c| (c.plain_sha256.as_str(), c.rows)),
    );
    Ok((short, key))
}

/// `shop.big`, 200,000 rows of about 270 bytes: 54 MB, far more than the socket buffers
/// can hold, so a worker still reads from the server when it dies or hangs.
fn wide_table(source: &MysqlInstance) -> TestResult {
    source.sql(
        "CREATE DATABASE shop; USE shop; \
         CREATE TABLE shop.big (id INT PRIMARY KEY, pad CHAR(255)); \
         SET SESSION cte_max_recursion_depth = 2000; \
         INSERT INTO shop.big WITH RECURSIVE seq(n) AS \
           (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 999) \
           SELECT a.n * 1000 + b.n, LEFT(REPEAT(SHA2(b.n, 256), 4), 255) \
           FROM seq a CROSS JOIN seq b WHERE a.n < 200",
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_logical_killed_source_fails_dump_clearly() -> TestResult {
    let cluster = MysqlCluster::start(1)?;
    let source = cluster.get(0)?;
    wide_table(source)?;
    let pid = source.mysqld_pid()?;
    let puts = AtomicU64::new(0);
    let store = MapStore {
        on_data_put: Some(Box::new(move |_key: &str| {
            if puts.fetch_add(1, Ordering::Relaxed) == 2 {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        })),
        ..MapStore::default()
    };
    let options = DumpOptions {
        threads: 2,
        chunk_bytes: 64 << 10,
        statement_timeout: Duration::from_secs(20),
        ..DumpOptions::default()
    };
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        dump(&endpoint(source), &store, &options),
    )
    .await
    .expect("the dump returns within a bound");
    let error = outcome.expect_err("a killed source fails the dump");
    let text = error.to_string();
    eprintln!("failed after {:?}: {text}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        text.contains("`shop`.`big`") && text.contains("chunk"),
        "{text}"
    );
    assert!(
        matches!(error.category(), Category::Unavailable),
        "{text}: {:?}",
        error.category()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_logical_hung_source_times_out_dump() -> TestResult {
    let cluster = MysqlCluster::start(1)?;
    let source = cluster.get(0)?;
    wide_table(source)?;
    let pid = source.mysqld_pid()?;
    let puts = AtomicU64::new(0);
    let store = MapStore {
        // A hung server: the socket stays open, nothing answers.
        on_data_put: Some(Box::new(move |_key: &str| {
            if puts.fetch_add(1, Ordering::Relaxed) == 0 {
                let _ = std::process::Command::new("kill")
                    .args(["-STOP", &pid.to_string()])
                    .status();
            }
        })),
        ..MapStore::default()
    };
    let options = DumpOptions {
        threads: 2,
        chunk_bytes: 64 << 10,
        statement_timeout: Duration::from_secs(2),
        ..DumpOptions::default()
    };
    let started = Instant::now();
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        dump(&endpoint(source), &store, &options),
    )
    .await
    .expect("the dump returns within a bound");
    source.sigcont()?;
    let error = outcome.expect_err("a hung source fails the dump");
    let text = error.to_string();
    eprintln!("failed after {:?}: {text}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(10), "{text}");
    assert!(
        text.contains("`shop`.`big`") && text.contains("chunk"),
        "{text}"
    );
    assert_eq!(error.category(), Category::Timeout, "{text}");
    Ok(())
}
