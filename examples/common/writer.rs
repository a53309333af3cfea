//! A client that writes one row per tick to whichever site accepts writes, and remembers
//! every acknowledged id: the counter app of the local playground and the failover
//! benchmark's probe of write availability.
//!
//! Behaviour of a well-behaved application with a small pool: it keeps one connection per
//! site, writes to the site that last accepted a write, and on a read-only error or a lost
//! connection tries the other sites. A lost connection is re-opened at most once per
//! `RECONNECT_BACKOFF`, as connection pools do, so a fenced primary whose sessions are being
//! killed is not hammered with new ones.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};

/// `ER_OPTION_PREVENTS_STATEMENT`: read_only / super_read_only.
const ER_READ_ONLY: u16 = 1290;
const ER_DUP_ENTRY: u16 = 1062;
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

pub struct SiteTarget {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// One acknowledged write.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub id: u64,
    pub site: usize,
    pub at: Instant,
    pub wall_ms: u64,
}

pub struct Writer {
    sites: Vec<SiteTarget>,
    opts: Vec<Opts>,
    conns: Vec<Option<Conn>>,
    connecting: Vec<Option<tokio::task::JoinHandle<Option<Conn>>>>,
    retry_after: Vec<Option<Instant>>,
    preferred: usize,
    next_id: u64,
    table: String,
}

pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
}

impl Writer {
    /// `table` is `db.table` with `id BIGINT PRIMARY KEY, site VARCHAR(64)`.
    pub fn new(sites: Vec<SiteTarget>, user: &str, password: &str, table: &str) -> Self {
        let opts = sites
            .iter()
            .map(|s| {
                OptsBuilder::default()
                    .ip_or_hostname(s.host.clone())
                    .tcp_port(s.port)
                    .user(Some(user.to_owned()))
                    .pass(Some(password.to_owned()))
                    .prefer_socket(false)
                    .into()
            })
            .collect();
        let n = sites.len();
        Self {
            sites,
            opts,
            conns: (0..n).map(|_| None).collect(),
            connecting: (0..n).map(|_| None).collect(),
            retry_after: vec![None; n],
            preferred: 0,
            next_id: 1,
            table: table.to_owned(),
        }
    }

    pub fn site_name(&self, index: usize) -> &str {
        &self.sites[index].name
    }

    pub fn site_index(&self, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| s.name == name)
    }

    /// Continues numbering after the largest id any reachable site holds.
    pub async fn start_after_existing(&mut self) {
        let mut max = 0u64;
        for i in 0..self.sites.len() {
            let sql = format!("SELECT COALESCE(MAX(id), 0) FROM {}", self.table);
            if let Ok(Some(Some(m))) = self.query_first::<Option<u64>>(i, &sql).await {
                max = max.max(m);
            }
        }
        self.next_id = max + 1;
    }

    /// The connection to site `i` if one is open. Otherwise starts opening one in the
    /// background (at most once per backoff) and returns `None`, so a hung site never
    /// blocks writes to the others.
    async fn conn(&mut self, i: usize) -> Option<&mut Conn> {
        if self.conns[i].is_none() {
            match self.connecting[i].take() {
                Some(task) if !task.is_finished() => {
                    self.connecting[i] = Some(task);
                    return None;
                }
                Some(task) => {
                    if let Ok(Some(c)) = task.await {
                        self.conns[i] = Some(c);
                        self.retry_after[i] = None;
                    } else {
                        self.retry_after[i] = Some(Instant::now() + RECONNECT_BACKOFF);
                        return None;
                    }
                }
                None => {
                    if self.retry_after[i].is_some_and(|t| Instant::now() < t) {
                        return None;
                    }
                    let opts = self.opts[i].clone();
                    self.connecting[i] = Some(tokio::spawn(async move {
                        tokio::time::timeout(CALL_TIMEOUT, Conn::new(opts))
                            .await
                            .ok()?
                            .ok()
                    }));
                    return None;
                }
            }
        }
        self.conns[i].as_mut()
    }

    /// Like [`Self::conn`], but waits for the connection (set-up and verification only).
    async fn conn_now(&mut self, i: usize) -> Option<&mut Conn> {
        self.retry_after[i] = None;
        for _ in 0..50 {
            if self.conn(i).await.is_some() {
                break;
            }
            if self.connecting[i].is_none() && self.retry_after[i].is_some() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.conns[i].as_mut()
    }

    fn lose(&mut self, i: usize) {
        // Dropping a Conn without disconnect is fine for a dead peer.
        self.conns[i] = None;
        self.retry_after[i] = Some(Instant::now() + RECONNECT_BACKOFF);
    }

    async fn query_first<T: mysql_async::prelude::FromRow + Send + 'static>(
        &mut self,
        i: usize,
        sql: &str,
    ) -> Result<Option<T>, ()> {
        let conn = self.conn_now(i).await.ok_or(())?;
        match tokio::time::timeout(CALL_TIMEOUT, conn.query_first::<T, _>(sql)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(mysql_async::Error::Server(_))) => Err(()),
            _ => {
                self.lose(i);
                Err(())
            }
        }
    }

    /// One write attempt: the preferred site first, then the others. Returns the ack.
    pub async fn tick(&mut self) -> Option<Ack> {
        let n = self.sites.len();
        for offset in 0..n {
            let i = (self.preferred + offset) % n;
            let id = self.next_id;
            let sql = format!(
                "INSERT INTO {} (id, site) VALUES ({id}, '{}')",
                self.table, self.sites[i].name
            );
            let Some(conn) = self.conn(i).await else {
                continue;
            };
            match tokio::time::timeout(CALL_TIMEOUT, conn.query_drop(sql)).await {
                Ok(Ok(())) => {
                    self.preferred = i;
                    self.next_id += 1;
                    return Some(Ack {
                        id,
                        site: i,
                        at: Instant::now(),
                        wall_ms: wall_ms(),
                    });
                }
                Ok(Err(mysql_async::Error::Server(e))) if e.code == ER_DUP_ENTRY => {
                    // An earlier attempt whose answer was lost did commit; not acknowledged.
                    self.next_id += 1;
                }
                Ok(Err(mysql_async::Error::Server(e))) if e.code == ER_READ_ONLY => {}
                Ok(Err(mysql_async::Error::Server(_))) => {}
                _ => self.lose(i),
            }
        }
        None
    }

    /// Which of `ids` the site at `index` does not hold (`None`: the site did not answer).
    pub async fn missing_on(&mut self, index: usize, ids: &[u64]) -> Option<Vec<u64>> {
        self.conns[index] = None;
        self.retry_after[index] = None;
        let sql = format!("SELECT id FROM {}", self.table);
        let conn = self.conn_now(index).await?;
        let present: Vec<u64> = tokio::time::timeout(Duration::from_secs(10), conn.query(sql))
            .await
            .ok()?
            .ok()?;
        let present: std::collections::HashSet<u64> = present.into_iter().collect();
        Some(
            ids.iter()
                .copied()
                .filter(|id| !present.contains(id))
                .collect(),
        )
    }

    /// The index of a site that accepts writes now, if any.
    pub async fn writable_site(&mut self) -> Option<usize> {
        for i in 0..self.sites.len() {
            self.conns[i] = None;
            self.retry_after[i] = None;
            if let Ok(Some(0u8)) = self.query_first::<u8>(i, "SELECT @@GLOBAL.read_only").await {
                return Some(i);
            }
        }
        None
    }
}

/// The longest gap between consecutive acks, and where it started.
pub fn longest_gap(acks: &[Ack]) -> Option<(Duration, Ack, Ack)> {
    acks.windows(2)
        .map(|w| (w[1].at.duration_since(w[0].at), w[0], w[1]))
        .max_by_key(|(gap, _, _)| *gap)
}
