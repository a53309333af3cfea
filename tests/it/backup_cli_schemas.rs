//! Restoring some schemas of a backup (`backup restore --include-schema/--exclude-schema`),
//! end to end with the real binary against real MySQL 9.7 servers: a per-schema restore
//! into a live primary that replicates to a real replica, and a carve-out into a new
//! server. What landed is read back with the `mysql` client.

use crate::backup_cli::{
    Repo, checksums, create, file_repo, gtid_executed, ok_json, restore, seed,
};
use crate::support::mysql::{MysqlCluster, MysqlInstance};
use crate::support::tools::output_text;

fn user_schemas(server: &MysqlInstance) -> String {
    server
        .sql(
            "SELECT GROUP_CONCAT(SCHEMA_NAME ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA \
             WHERE SCHEMA_NAME NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')",
        )
        .expect("schemas")
        .trim()
        .to_owned()
}

fn tenant_rows(server: &MysqlInstance) -> String {
    server
        .sql("SELECT GROUP_CONCAT(id ORDER BY id) FROM tenant_b.t")
        .expect("tenant_b")
        .trim()
        .to_owned()
}

fn wait_caught_up(replica: &MysqlInstance, primary: &MysqlInstance) {
    let set = gtid_executed(primary);
    assert_eq!(
        replica
            .sql(&format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{set}', 60)"))
            .expect("wait")
            .trim(),
        "0",
        "the replica reached {set}"
    );
}

/// Refused before anything is touched: a name the backup lacks, a history reset, a
/// point-in-time replay cut to one schema.
fn refusals_touch_nothing(repo: &Repo, id: &str, primary: &MysqlInstance) {
    let before = gtid_executed(primary);
    for (extra, says) in [
        (
            &["--include-schema", "shopp", "--replace-schemas"][..],
            "shopp",
        ),
        (
            &[
                "--include-schema",
                "shop",
                "--replace-schemas",
                "--reset-gtids",
            ][..],
            "--reset-gtids",
        ),
        (
            &[
                "--include-schema",
                "shop",
                "--replace-schemas",
                "--until-time",
                "2999-01-01T00:00:00Z",
            ][..],
            "cannot be cut to some schemas",
        ),
    ] {
        let refused = restore(repo, id, primary, extra);
        assert!(!refused.status.success(), "{extra:?} succeeded");
        assert!(
            output_text(&refused).contains(says),
            "{extra:?}: {}",
            output_text(&refused)
        );
    }

    assert_eq!(gtid_executed(primary), before, "nothing was written");
}

#[test]
fn backup_cli_per_schema_restore_replaces_one_schema_and_replicates() {
    let cluster = MysqlCluster::start(3).expect("mysql");
    let (primary, replica, fresh) = (
        cluster.get(0).expect("0"),
        cluster.get(1).expect("1"),
        cluster.get(2).expect("2"),
    );
    replica
        .sql(&format!(
            "CHANGE REPLICATION SOURCE TO SOURCE_HOST = '127.0.0.1', SOURCE_PORT = {}, \
               SOURCE_USER = 'repl', SOURCE_PASSWORD = 'repl', SOURCE_AUTO_POSITION = 1, \
               SOURCE_SSL = 0, GET_SOURCE_PUBLIC_KEY = 1; START REPLICA",
            primary.port()
        ))
        .expect("replication");
    seed(primary);
    primary
        .sql(
            "CREATE DATABASE tenant_b; CREATE TABLE tenant_b.t (id INT PRIMARY KEY); \
             INSERT INTO tenant_b.t VALUES (1), (2);",
        )
        .expect("tenant_b");
    let repo = file_repo();
    let manifest = create(&repo, primary, &[]);
    let id = manifest["id"].as_str().expect("id").to_owned();
    let shop_at_backup = checksums(primary);

    // After the backup: shop loses rows (the mistake to undo), tenant_b and a new schema
    // move on (what a per-schema restore must leave alone).
    primary
        .sql(
            "DELETE FROM shop.orders WHERE id <= 100; INSERT INTO tenant_b.t VALUES (3); \
             CREATE DATABASE scratch; CREATE TABLE scratch.t (id INT PRIMARY KEY);",
        )
        .expect("writes after the backup");
    wait_caught_up(replica, primary);
    assert_ne!(checksums(replica), shop_at_backup);
    let before = gtid_executed(primary);

    refusals_touch_nothing(&repo, &id, primary);

    let restored = ok_json(&restore(
        &repo,
        &id,
        primary,
        &["--include-schema", "shop", "--replace-schemas"],
    ));
    assert_eq!(
        restored["schemas"],
        serde_json::json!(["shop"]),
        "{restored}"
    );
    assert_eq!(
        restored["droppedSchemas"],
        serde_json::json!(["shop"]),
        "{restored}"
    );
    assert_eq!(checksums(primary), shop_at_backup);
    assert_eq!(tenant_rows(primary), "1,2,3", "tenant_b left as it was");
    assert_eq!(user_schemas(primary), "scratch,shop,tenant_b");
    // The load was binlogged under the primary's own GTIDs: its history only grew, and
    // the replica followed by replication alone.
    let after = gtid_executed(primary);
    assert_eq!(
        primary
            .sql(&format!("SELECT GTID_SUBSET('{before}', '{after}')"))
            .expect("subset")
            .trim(),
        "1"
    );
    assert_ne!(after, before);
    wait_caught_up(replica, primary);
    assert_eq!(checksums(replica), shop_at_backup);
    assert_eq!(tenant_rows(replica), "1,2,3");
    assert_eq!(
        replica
            .sql("SELECT CONCAT(SERVICE_STATE) FROM performance_schema.replication_applier_status")
            .expect("applier")
            .trim(),
        "ON",
        "replication kept running"
    );

    // A carve-out into a new server: only tenant_b, unlogged, with the backup's history.
    let carved = ok_json(&restore(&repo, &id, fresh, &["--exclude-schema", "shop"]));
    assert_eq!(
        carved["schemas"],
        serde_json::json!(["tenant_b"]),
        "{carved}"
    );
    assert_eq!(user_schemas(fresh), "tenant_b");
    assert_eq!(tenant_rows(fresh), "1,2");
    assert_eq!(
        gtid_executed(fresh),
        manifest["gtidExecuted"].as_str().expect("gtid")
    );
}
