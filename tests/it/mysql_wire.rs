//! The dump's row reader (`adapters::mysql::wire`) against a real MySQL 9.7 server: every
//! login path `caching_sha2_password` has (the cached scramble, the full login over TLS,
//! the full login with the server's RSA key over plain TCP), TLS with and without a CA,
//! refusals, rows read back exactly as `mysql_async` reads them (NULLs, empty strings,
//! a value split over several protocol frames), and a connection that stays usable after a
//! SQL error or an abandoned result.

use std::error::Error;
use std::path::PathBuf;

use bloodraven::adapters::mysql::{ClientTls, Credentials, WireConn, WireError, WireTarget};
use mysql_async::prelude::Queryable;

use crate::support::mysql::{MysqlCluster, MysqlInstance};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

const USER: &str = "wire";
const PASSWORD: &str = "wire-s3cret";

async fn connect(
    server: &MysqlInstance,
    password: &str,
    tls: &ClientTls,
) -> Result<WireConn, WireError> {
    let credentials = Credentials::new(USER, password);
    WireConn::connect(&WireTarget {
        host: "127.0.0.1",
        port: server.port(),
        credentials: &credentials,
        tls,
    })
    .await
}

/// Every row of `sql` through the wire client.
async fn rows(conn: &mut WireConn, sql: &str) -> Result<Vec<Vec<Option<Vec<u8>>>>, WireError> {
    conn.query(sql).await?;
    let mut out = Vec::new();
    while let Some(row) = conn.next_row().await? {
        out.push(row.fields().map(|f| f.map(<[u8]>::to_vec)).collect());
    }
    Ok(out)
}

/// The same rows through the driver, as bytes.
async fn driver_rows(
    server: &MysqlInstance,
    sql: &str,
) -> Result<Vec<Vec<Option<Vec<u8>>>>, Box<dyn Error + Send + Sync>> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(server.port())
        .user(Some(USER))
        .pass(Some(PASSWORD))
        .prefer_socket(false);
    let mut conn = mysql_async::Conn::new(opts).await?;
    let rows: Vec<mysql_async::Row> = conn.query(sql).await?;
    conn.disconnect().await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            row.unwrap()
                .into_iter()
                .map(|value| match value {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(bytes) => Some(bytes),
                    other => Some(other.as_sql(true).into_bytes()),
                })
                .collect()
        })
        .collect())
}

fn server_ca(server: &MysqlInstance) -> PathBuf {
    server.dir().join("data").join("ca.pem")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_wire_logs_in_every_way_and_reads_rows_as_the_driver_does() -> TestResult {
    let cluster = MysqlCluster::start(2)?;
    let server = cluster.get(0)?;
    let other = cluster.get(1)?;
    server.sql(&format!(
        "SET GLOBAL max_allowed_packet = 64 * 1024 * 1024; \
         CREATE USER '{USER}'@'%' IDENTIFIED WITH caching_sha2_password BY '{PASSWORD}'; \
         GRANT ALL ON *.* TO '{USER}'@'%'; \
         CREATE DATABASE w; \
         CREATE TABLE w.t (id INT PRIMARY KEY, s VARCHAR(20), b LONGBLOB, d DATETIME(6)); \
         INSERT INTO w.t VALUES (1, '', NULL, '2026-12-03 10:11:12.131415'), \
                                (2, NULL, x'00fffe0a09', NULL), \
                                (3, 'tab\\there', REPEAT('z', 17 * 1024 * 1024), '1000-01-01 00:00:00')"
    ))?;
    let insecure = ClientTls::Required { ca: None };

    // Nothing cached yet: the first login over plain TCP asks for the server's RSA key.
    let mut plain = connect(server, PASSWORD, &ClientTls::Off).await?;
    // Cached now: the scramble alone logs in.
    let mut cached = connect(server, PASSWORD, &ClientTls::Off).await?;
    // The cache emptied (a password change clears the account's entry): the full login
    // over TLS sends the password inside TLS.
    server.sql(&format!(
        "ALTER USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'"
    ))?;
    let mut secured = connect(server, PASSWORD, &insecure).await?;
    let cipher: Vec<Vec<Option<Vec<u8>>>> =
        rows(&mut secured, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").await?;
    assert!(
        cipher[0][1].as_ref().is_some_and(|c| !c.is_empty()),
        "the session is not encrypted: {cipher:?}"
    );

    let sql = "SELECT id, s, b, d FROM w.t ORDER BY id";
    let expected = driver_rows(server, sql).await?;
    assert_eq!(expected.len(), 3);
    for conn in [&mut plain, &mut cached, &mut secured] {
        let read = rows(conn, sql).await?;
        assert_eq!(read, expected, "rows differ from the driver's");
    }
    // The 17 MiB value crossed a frame boundary and came back whole.
    assert_eq!(
        expected[2][2].as_ref().map(Vec::len),
        Some(17 * 1024 * 1024)
    );

    // A SQL error leaves the connection usable.
    let missing = rows(&mut plain, "SELECT * FROM w.nothing").await;
    assert!(
        matches!(&missing, Err(WireError::Server(e)) if e.code == 1146),
        "{missing:?}"
    );
    // A result abandoned after one row is read to its end before the next statement.
    plain.query(sql).await?;
    assert!(plain.next_row().await?.is_some());
    plain.exec("SET @x = 1").await?;
    assert_eq!(
        rows(&mut plain, "SELECT @x").await?,
        vec![vec![Some(b"1".to_vec())]]
    );
    // A statement without rows is not a query.
    assert!(plain.query("DO 1").await.is_err());
    plain.quit().await;

    // A wrong password is the server's refusal, with its code.
    let refused = connect(server, "wrong", &ClientTls::Off).await;
    assert!(
        matches!(&refused, Err(WireError::Server(e)) if e.code == 1045),
        "{:?}",
        refused.err()
    );
    // A CA that did not sign the server's certificate fails TLS, before any login.
    let foreign = connect(
        server,
        PASSWORD,
        &ClientTls::Required {
            ca: Some(server_ca(other)),
        },
    )
    .await;
    assert!(
        matches!(&foreign, Err(WireError::Tls(m)) if m.contains("certificate")),
        "{:?}",
        foreign.err()
    );
    // A CA file that does not exist is named.
    let absent = connect(
        server,
        PASSWORD,
        &ClientTls::Required {
            ca: Some(PathBuf::from("/nonexistent/ca.pem")),
        },
    )
    .await;
    assert!(
        matches!(&absent, Err(WireError::Tls(m)) if m.contains("/nonexistent/ca.pem")),
        "{:?}",
        absent.err()
    );
    // A server that demands TLS refuses the plain login.
    server.sql("SET GLOBAL require_secure_transport = ON")?;
    let insecure_refused = connect(server, PASSWORD, &ClientTls::Off).await;
    assert!(
        matches!(&insecure_refused, Err(WireError::Server(e)) if e.code == 3159),
        "{:?}",
        insecure_refused.err()
    );
    Ok(())
}
