//! `MysqlSiteClient` against real MySQL 9.7 servers (see `support::mysql`). Each test starts
//! its own servers, so tests can run in parallel and a failure cannot leak state.

use std::error::Error;
use std::time::{Duration, Instant};

use bloodraven::adapters::mysql::{
    ClientTls, Credentials, MysqlSiteClient, MysqlSiteConfig, RoleUsers,
};
use bloodraven::failover::gtid::GtidSet;
use bloodraven::failover::observe::ReplicaStatus;
use bloodraven::ports::mysql::{DbError, DrainOutcome, MysqlSite};
use mysql_async::prelude::Queryable;

use crate::support::mysql::{MysqlCluster, MysqlInstance, REPL_PASSWORD, REPL_USER, ROOT_USER};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

fn client(
    instance: &MysqlInstance,
    site: &str,
) -> Result<MysqlSiteClient, Box<dyn Error + Send + Sync>> {
    let mut config = MysqlSiteConfig::new(
        site,
        instance.address(),
        Credentials::new(ROOT_USER, ""),
        Credentials::new(REPL_USER, REPL_PASSWORD),
    );
    config.probe_timeout = PROBE_TIMEOUT;
    config.connect_timeout = PROBE_TIMEOUT;
    config.op_timeout = Duration::from_secs(10);
    config.clone_timeout = Duration::from_secs(60);
    Ok(MysqlSiteClient::new(config)?)
}

/// A primary and a replica replicating from it (through the adapter's `replicate_from`).
struct Pair {
    cluster: MysqlCluster,
    primary: MysqlSiteClient,
    replica: MysqlSiteClient,
}

impl Pair {
    async fn start() -> Result<Self, Box<dyn Error + Send + Sync>> {
        let cluster = MysqlCluster::start(2)?;
        let primary = client(cluster.get(0)?, "iad")?;
        let replica = client(cluster.get(1)?, "pdx")?;
        replica.replicate_from(&primary.endpoint(), true).await?;
        wait_replicating(&replica).await?;
        Ok(Self {
            cluster,
            primary,
            replica,
        })
    }

    fn primary_server(&self) -> Result<&MysqlInstance, Box<dyn Error + Send + Sync>> {
        Ok(self.cluster.get(0)?)
    }

    fn replica_server(&self) -> Result<&MysqlInstance, Box<dyn Error + Send + Sync>> {
        Ok(self.cluster.get(1)?)
    }
}

/// Polls until both replication threads run (bounded).
async fn wait_replicating(site: &MysqlSiteClient) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let probe = site.probe().await?;
        if probe
            .replica
            .as_ref()
            .is_some_and(ReplicaStatus::replicating)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{} never started replicating: {probe:?}", site.address()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn gtid_of(site: &MysqlSiteClient) -> Result<GtidSet, Box<dyn Error + Send + Sync>> {
    Ok(site.probe().await?.gtid_executed)
}

fn expect_read_only_error(result: Result<String, impl std::fmt::Display>) -> TestResult {
    match result {
        Ok(out) => Err(format!("write succeeded on a fenced server: {out}").into()),
        Err(e) if e.to_string().contains("ERROR 1290") => Ok(()),
        Err(e) => Err(format!("expected ERROR 1290, got: {e}").into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_primary_and_replica() -> TestResult {
    let pair = Pair::start().await?;
    pair.primary_server()?
        .sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1)")?;
    let primary = pair.primary.probe().await?;
    assert!(
        !primary.read_only && !primary.super_read_only,
        "{primary:?}"
    );
    assert!(
        primary.replica.is_none(),
        "a primary has no channel: {primary:?}"
    );
    assert!(!primary.gtid_executed.is_empty());
    assert!(
        primary
            .gtid_executed
            .to_string()
            .starts_with(&primary.server_uuid)
    );

    assert!(
        pair.replica
            .wait_for_gtid(&primary.gtid_executed, Duration::from_secs(5))
            .await?
    );
    let replica = pair.replica.probe().await?;
    assert!(
        replica.read_only && replica.super_read_only,
        "replicate_from fences: {replica:?}"
    );
    assert_ne!(replica.server_uuid, primary.server_uuid);
    assert!(replica.gtid_executed.contains(&primary.gtid_executed));
    let status = replica.replica.ok_or("the replica has no channel")?;
    assert!(status.io_running && status.sql_running, "{status:?}");
    assert_eq!(status.source_host, "127.0.0.1");
    assert_eq!(status.source_port, pair.primary_server()?.port());
    // Caught up, but the lag is clock arithmetic on second boundaries: 0 or 1 on a busy box.
    assert!(
        status.seconds_behind_source.is_some_and(|lag| lag <= 2),
        "{status:?}"
    );
    assert!(status.retrieved_gtid_set.contains(&primary.gtid_executed));

    // 8.4+ tagged GTIDs come through probe and wait_for_gtid intact.
    pair.primary_server()?.sql(
        "SET gtid_next = 'AUTOMATIC:orders'; CREATE DATABASE tagged; SET gtid_next = 'AUTOMATIC'",
    )?;
    let tagged = pair.primary.probe().await?.gtid_executed;
    assert!(tagged.to_string().contains(":orders:1"), "{tagged}");
    assert!(
        pair.replica
            .wait_for_gtid(&tagged, Duration::from_secs(5))
            .await?
    );
    assert!(pair.replica.probe().await?.gtid_executed.contains(&tagged));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_without_tls_uses_the_source_public_key() -> TestResult {
    let cluster = MysqlCluster::start(2)?;
    let primary = client(cluster.get(0)?, "iad")?;
    let mut config = client(cluster.get(1)?, "pdx")?.config().clone();
    config.replication_tls = false;
    let replica = MysqlSiteClient::new(config)?;
    replica.replicate_from(&primary.endpoint(), true).await?;
    wait_replicating(&replica).await?;
    let mut conn = app_session(cluster.get(1)?.port()).await?;
    let status: mysql_async::Row = conn
        .query_first("SHOW REPLICA STATUS")
        .await?
        .ok_or("no replica status")?;
    let ssl: Option<String> = status.get("Source_SSL_Allowed");
    assert_eq!(ssl.as_deref(), Some("No"));
    conn.disconnect().await?;
    cluster.get(0)?.sql("CREATE DATABASE plain")?;
    assert!(
        replica
            .wait_for_gtid(&gtid_of(&primary).await?, Duration::from_secs(5))
            .await?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_blocks_writes_while_replication_applies() -> TestResult {
    let pair = Pair::start().await?;
    let (primary_server, replica_server) = (pair.primary_server()?, pair.replica_server()?);
    primary_server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)")?;
    // The replica is fenced by replicate_from: direct writes fail, replicated ones apply.
    expect_read_only_error(replica_server.sql("CREATE DATABASE errant"))?;
    primary_server.sql("INSERT INTO app.t VALUES (1), (2)")?;
    assert!(
        pair.replica
            .wait_for_gtid(&gtid_of(&pair.primary).await?, Duration::from_secs(5))
            .await?
    );
    assert_eq!(replica_server.sql("SELECT COUNT(*) FROM app.t")?, "2");

    pair.primary.fence().await?;
    let fenced = pair.primary.probe().await?;
    assert!(fenced.super_read_only && fenced.read_only, "{fenced:?}");
    expect_read_only_error(primary_server.sql("INSERT INTO app.t VALUES (3)"))?;
    expect_read_only_error(primary_server.sql("CREATE USER x IDENTIFIED BY 'x'"))?;

    pair.primary.unfence().await?;
    let open = pair.primary.probe().await?;
    assert!(!open.super_read_only && !open.read_only, "{open:?}");
    primary_server.sql("INSERT INTO app.t VALUES (3)")?;
    Ok(())
}

async fn app_session(port: u16) -> Result<mysql_async::Conn, Box<dyn Error + Send + Sync>> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some(ROOT_USER))
        .prefer_socket(false);
    Ok(mysql_async::Conn::new(opts).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_app_connections_spares_replication_threads() -> TestResult {
    let pair = Pair::start().await?;
    let primary_port = pair.primary_server()?.port();
    let mut sessions = vec![
        app_session(primary_port).await?,
        app_session(primary_port).await?,
    ];
    for session in &mut sessions {
        session.query_drop("SELECT 1").await?;
    }
    let processlist = pair.primary_server()?.sql("SHOW PROCESSLIST")?;
    assert!(processlist.contains("Binlog Dump GTID"), "{processlist}");

    let mut ids = Vec::new();
    for session in &mut sessions {
        ids.push(session.id());
    }
    let sweep = pair.primary.kill_app_connections(None).await?;
    assert_eq!(sweep.killed, 2, "exactly the two app sessions");
    assert_eq!(sweep.older, 0, "no watermark, nothing counted as older");
    assert_eq!(
        sweep.newest_id,
        ids.iter().copied().max().map(u64::from),
        "the highest id killed"
    );
    for session in &mut sessions {
        assert!(
            session.query_drop("SELECT 1").await.is_err(),
            "an app session survived"
        );
    }
    let processlist = pair.primary_server()?.sql("SHOW PROCESSLIST")?;
    assert!(
        processlist.contains("Binlog Dump GTID"),
        "dump thread killed: {processlist}"
    );

    // On the replica the applier threads ("system user") must survive too.
    let replica_sweep = pair.replica.kill_app_connections(None).await?;
    assert_eq!(replica_sweep.killed, 0);
    pair.primary_server()?.sql("CREATE DATABASE after_kill")?;
    assert!(
        pair.replica
            .wait_for_gtid(&gtid_of(&pair.primary).await?, Duration::from_secs(5))
            .await?
    );
    let status = pair.replica.probe().await?.replica.ok_or("channel lost")?;
    assert!(status.replicating(), "{status:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_makes_the_replica_writable_and_returns_its_set() -> TestResult {
    let pair = Pair::start().await?;
    pair.primary_server()?
        .sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)")?;
    let primary_set = gtid_of(&pair.primary).await?;
    assert!(
        pair.replica
            .wait_for_gtid(&primary_set, Duration::from_secs(5))
            .await?
    );

    let started = Instant::now();
    let promotion = pair.replica.promote().await?;
    let took = started.elapsed();
    assert!(
        promotion.contains(&primary_set),
        "{promotion} lacks {primary_set}"
    );
    let probe = pair.replica.probe().await?;
    assert_eq!(probe.gtid_executed, promotion);
    assert!(!probe.read_only && !probe.super_read_only, "{probe:?}");
    assert!(
        probe.replica.is_none(),
        "RESET REPLICA ALL leaves no channel: {probe:?}"
    );
    pair.replica_server()?
        .sql("INSERT INTO app.t VALUES (42)")?;
    assert!(took < Duration::from_secs(2), "promotion took {took:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_gtid_reports_applied_and_missing_sets() -> TestResult {
    let pair = Pair::start().await?;
    pair.primary_server()?.sql("CREATE DATABASE app")?;
    let primary_set = gtid_of(&pair.primary).await?;
    assert!(
        pair.replica
            .wait_for_gtid(&primary_set, Duration::from_secs(5))
            .await?
    );

    let missing = GtidSet::parse("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee:1-3")?;
    let started = Instant::now();
    assert!(
        !pair
            .replica
            .wait_for_gtid(&missing, Duration::from_millis(300))
            .await?
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_secs(2),
        "{took:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_relay_log_applies_a_backlog_behind_a_stopped_sql_thread() -> TestResult {
    let pair = Pair::start().await?;
    let (primary_server, replica_server) = (pair.primary_server()?, pair.replica_server()?);
    assert_eq!(
        pair.primary.drain_relay_log(Duration::from_secs(1)).await?,
        DrainOutcome::NotAReplica
    );

    primary_server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)")?;
    assert!(
        pair.replica
            .wait_for_gtid(&gtid_of(&pair.primary).await?, Duration::from_secs(5))
            .await?
    );
    replica_server.sql("STOP REPLICA SQL_THREAD")?;
    let inserts: Vec<String> = (1..=50)
        .map(|i| format!("INSERT INTO app.t VALUES ({i})"))
        .collect();
    primary_server.sql(&inserts.join(";"))?;
    let primary_set = gtid_of(&pair.primary).await?;
    // Wait for the I/O thread to have received everything: a backlog, not yet applied.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = pair.replica.probe().await?;
        let status = probe.replica.ok_or("channel lost")?;
        if status.retrieved_gtid_set.contains(&primary_set) {
            assert!(!status.sql_running);
            assert!(
                !probe.gtid_executed.contains(&primary_set),
                "no backlog to drain"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the I/O thread never caught up: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let outcome = pair
        .replica
        .drain_relay_log(Duration::from_secs(10))
        .await?;
    let took = started.elapsed();
    assert_eq!(outcome, DrainOutcome::Drained);
    assert!(took < Duration::from_secs(3), "drain took {took:?}");
    let probe = pair.replica.probe().await?;
    assert!(probe.gtid_executed.contains(&primary_set));
    assert!(
        probe.replica.is_some_and(|r| r.sql_running),
        "the SQL thread was restarted"
    );
    assert_eq!(replica_server.sql("SELECT COUNT(*) FROM app.t")?, "50");

    // A backlog the SQL thread cannot apply (a duplicate key) exhausts the bounded budget.
    replica_server.sql("STOP REPLICA SQL_THREAD; SET GLOBAL super_read_only = OFF; INSERT INTO app.t VALUES (51); SET GLOBAL super_read_only = ON")?;
    primary_server.sql("INSERT INTO app.t VALUES (51)")?;
    let primary_set = gtid_of(&pair.primary).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pair
        .replica
        .probe()
        .await?
        .replica
        .ok_or("channel lost")?
        .retrieved_gtid_set
        .contains(&primary_set)
    {
        assert!(
            Instant::now() < deadline,
            "the I/O thread never received the conflict"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let outcome = pair
        .replica
        .drain_relay_log(Duration::from_millis(800))
        .await?;
    let took = started.elapsed();
    assert_eq!(outcome, DrainOutcome::BudgetExhausted);
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(3),
        "{took:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_replaces_an_errant_gtid_with_the_donor_set() -> TestResult {
    let pair = Pair::start().await?;
    let replica_server = pair.replica_server()?;
    pair.primary_server()?.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1)")?;
    assert!(
        pair.replica
            .wait_for_gtid(&gtid_of(&pair.primary).await?, Duration::from_secs(5))
            .await?
    );
    // An errant transaction: written on the replica with the fence lifted.
    replica_server.sql(
        "SET GLOBAL super_read_only = OFF; CREATE DATABASE errant; SET GLOBAL super_read_only = ON",
    )?;
    let before = pair.replica.probe().await?;
    let primary_set = gtid_of(&pair.primary).await?;
    assert!(
        !primary_set.contains(&before.gtid_executed),
        "no errant GTID was created"
    );

    let started = Instant::now();
    pair.replica.clone_from(&pair.primary.endpoint()).await?;
    let took = started.elapsed();

    assert_eq!(
        replica_server.supervisor_restarts(),
        1,
        "the supervisor restarted mysqld"
    );
    let after = pair.replica.probe().await?;
    assert_eq!(
        after.server_uuid, before.server_uuid,
        "clone keeps server_uuid"
    );
    assert_eq!(after.gtid_executed, primary_set, "the errant GTID is gone");
    assert!(
        after.super_read_only,
        "fenced again after the clone: {after:?}"
    );
    let databases = replica_server.sql("SHOW DATABASES")?;
    assert!(
        !databases.contains("errant") && databases.contains("app"),
        "{databases}"
    );
    wait_replicating(&pair.replica).await?;
    pair.primary_server()?.sql("INSERT INTO app.t VALUES (2)")?;
    assert!(
        pair.replica
            .wait_for_gtid(&gtid_of(&pair.primary).await?, Duration::from_secs(5))
            .await?
    );
    assert!(took < Duration::from_secs(30), "clone took {took:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_times_out_within_the_probe_bound() -> TestResult {
    let cluster = MysqlCluster::start(1)?;
    let server = cluster.get(0)?;
    let site = client(server, "iad")?;
    site.probe().await?;

    server.sigstop()?;
    for _ in 0..2 {
        let started = Instant::now();
        let result = site.probe().await;
        let took = started.elapsed();
        assert!(matches!(result, Err(DbError::Timeout { .. })), "{result:?}");
        assert!(
            took >= PROBE_TIMEOUT && took < PROBE_TIMEOUT + Duration::from_millis(400),
            "{took:?}"
        );
    }
    let started = Instant::now();
    let fenced = site.fence().await;
    assert!(matches!(fenced, Err(DbError::Timeout { .. })), "{fenced:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "connect is bounded for operations too"
    );

    server.sigcont()?;
    let probe = site.probe().await?;
    assert!(!probe.read_only);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_refused_fast_and_comes_back() -> TestResult {
    let cluster = MysqlCluster::start(1)?;
    let server = cluster.get(0)?;
    let site = client(server, "iad")?;
    let uuid = site.probe().await?.server_uuid;

    server.kill9()?;
    let started = Instant::now();
    let result = site.probe().await;
    let took = started.elapsed();
    assert!(matches!(result, Err(DbError::Refused { .. })), "{result:?}");
    // Far below the probe timeout: a refusal is a fact, it needs no waiting.
    assert!(took < Duration::from_millis(200), "refusal took {took:?}");

    server.restart()?;
    assert_eq!(site.probe().await?.server_uuid, uuid);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_users_are_created_idempotently_and_can_log_in() -> TestResult {
    let cluster = MysqlCluster::start(1)?;
    let server = cluster.get(0)?;
    let site = client(server, "iad")?;
    let mut users = RoleUsers {
        operator: Some(Credentials::new("bloodraven", "op-pass")),
        app: Some(Credentials::new("app", "it's a \\ secret")),
        read_only: Some(Credentials::new("reader", "read-pass")),
        monitor: Some(Credentials::new("monitor", "mon-pass")),
        backup: Some(Credentials::new("backup", "backup-pass")),
        replication: Some(Credentials::new("replicator", "repl-pass")),
        ..RoleUsers::default()
    };
    site.create_role_users(&users).await?;
    site.create_role_users(&users).await?;

    server.sql("CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY)")?;
    server.sql_as("app", "it's a \\ secret", "INSERT INTO app.t VALUES (1)")?;
    assert_eq!(
        server.sql_as("reader", "read-pass", "SELECT COUNT(*) FROM app.t")?,
        "1"
    );
    assert!(
        server
            .sql_as("reader", "read-pass", "INSERT INTO app.t VALUES (2)")
            .is_err()
    );
    server.sql_as("monitor", "mon-pass", "SHOW REPLICA STATUS")?;
    server.sql_as("backup", "backup-pass", "SELECT COUNT(*) FROM app.t")?;
    server.sql_as("replicator", "repl-pass", "SELECT 1")?;
    server.sql_as("bloodraven", "op-pass", "SET GLOBAL super_read_only = OFF")?;
    // The application cannot lift a fence.
    let lift = server.sql_as(
        "app",
        "it's a \\ secret",
        "SET GLOBAL super_read_only = OFF",
    );
    assert!(
        lift.is_err_and(|e| e.to_string().contains("ERROR 1227")),
        "app may set globals"
    );

    // A rotated password replaces the old one.
    users.app = Some(Credentials::new("app", "rotated"));
    site.create_role_users(&users).await?;
    assert!(
        server
            .sql_as("app", "it's a \\ secret", "SELECT 1")
            .is_err()
    );
    server.sql_as("app", "rotated", "SELECT 1")?;
    let accounts = server.sql("SELECT COUNT(*) FROM mysql.user WHERE user = 'app'")?;
    assert_eq!(accounts, "1");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_reaches_a_server_that_requires_secure_transport() -> TestResult {
    let cluster = MysqlCluster::start(1)?;
    let server = cluster.get(0)?;
    server.sql("SET GLOBAL require_secure_transport = ON")?;

    let plain = client(server, "iad")?;
    let refused = plain.probe().await;
    assert!(
        matches!(&refused, Err(DbError::Query { message, .. }) if message.contains("3159")),
        "{refused:?}"
    );

    let mut config = plain.config().clone();
    config.client_tls = ClientTls::Required { ca: None };
    let tls = MysqlSiteClient::new(config)?;
    let probe = tls.probe().await?;
    assert!(!probe.read_only);
    Ok(())
}

/// A client that reconnects after a kill pass gets a larger connection id, so a pass given
/// the first pass's newest id tells sessions from before it apart from those after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_passes_tell_older_sessions_from_reconnected_ones() -> TestResult {
    let pair = Pair::start().await?;
    let port = pair.primary_server()?.port();
    let mut first = app_session(port).await?;
    first.query_drop("SELECT 1").await?;
    // The harness's own `mysql` client sessions can linger a moment after it exits; the
    // pass would count them. Wait until `first` is the only client session.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let others: Option<u64> = first
            .query_first(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
                 AND USER NOT IN ('system user', 'event_scheduler') \
                 AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon')",
            )
            .await?;
        if others == Some(0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{others:?} other client sessions stay"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sweep = pair.primary.kill_app_connections(None).await?;
    assert_eq!(sweep.killed, 1);
    let watermark = sweep.newest_id.ok_or("the pass reports the id it killed")?;
    assert_eq!(watermark, u64::from(first.id()));

    let mut reconnected = app_session(port).await?;
    reconnected.query_drop("SELECT 1").await?;
    assert!(u64::from(reconnected.id()) > watermark, "ids only grow");
    let sweep = pair.primary.kill_app_connections(Some(watermark)).await?;
    assert_eq!(sweep.killed, 1, "the reconnected session is killed too");
    assert_eq!(sweep.older, 0, "but it is not older than the watermark");

    let mut another = app_session(port).await?;
    another.query_drop("SELECT 1").await?;
    let sweep = pair.primary.kill_app_connections(Some(u64::MAX)).await?;
    assert_eq!((sweep.killed, sweep.older), (1, 1));
    Ok(())
}
