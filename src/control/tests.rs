//! The loop's own contract, against scripted in-memory sites: state persisted before any
//! action runs, actions stopped after a failed fatal one, requests answered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::failover::gtid::GtidSet;
use crate::failover::observe::{ReplicaStatus, SiteProbe};
use crate::failover::{EngineState, GroupPolicy, Request, SitePolicy, SiteRole};
use futures_util::future::BoxFuture;

use crate::ports::hook::NoHook;
use crate::ports::mysql::{DbError, DrainOutcome, MysqlSite, SourceEndpoint};
use crate::ports::sidecar::SidecarStatus;
use crate::ports::state::{MemoryStateStore, StateStore, StoreError};

type Log = Arc<Mutex<Vec<String>>>;

struct FakeSite {
    name: &'static str,
    address: String,
    log: Log,
    inner: Mutex<FakeState>,
}

struct FakeState {
    process: Process,
    read_only: bool,
    replica_of: Option<u16>,
    fail_fence: bool,
}

/// How the fake server's process behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Process {
    Running,
    /// Connections are refused.
    Down,
    /// Stopped (SIGSTOP): every call hangs.
    Stopped,
}

impl FakeSite {
    fn new(name: &'static str, port: u16, log: &Log, primary: bool) -> Self {
        Self {
            name,
            address: format!("127.0.0.1:{port}"),
            log: Arc::clone(log),
            inner: Mutex::new(FakeState {
                process: Process::Running,
                read_only: !primary,
                replica_of: (!primary).then_some(3306),
                fail_fence: false,
            }),
        }
    }

    fn record(&self, what: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{what}", self.name));
    }

    /// Never returns while the site is hung.
    async fn hang_if_stopped(&self) {
        let process = self.inner.lock().unwrap().process;
        if process == Process::Stopped {
            std::future::pending::<()>().await;
        }
    }

    fn refused(&self) -> DbError {
        DbError::Refused {
            address: self.address.clone(),
        }
    }
}

impl MysqlSite for FakeSite {
    fn address(&self) -> &str {
        &self.address
    }

    async fn probe(&self) -> Result<SiteProbe, DbError> {
        self.hang_if_stopped().await;
        let s = self.inner.lock().unwrap();
        if s.process != Process::Running {
            return Err(self.refused());
        }
        Ok(SiteProbe {
            server_uuid: "3e11fa47-71ca-11e1-9e33-c80aa9429562".to_owned(),
            read_only: s.read_only,
            super_read_only: s.read_only,
            gtid_executed: GtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5").unwrap(),
            gtid_purged: GtidSet::default(),
            replica: s.replica_of.map(|port| ReplicaStatus {
                source_host: "127.0.0.1".to_owned(),
                source_port: port,
                io_running: true,
                sql_running: true,
                seconds_behind_source: Some(0),
                retrieved_gtid_set: GtidSet::default(),
            }),
        })
    }

    async fn fence(&self) -> Result<(), DbError> {
        self.record("fence");
        self.hang_if_stopped().await;
        let mut s = self.inner.lock().unwrap();
        if s.process != Process::Running || s.fail_fence {
            return Err(self.refused());
        }
        s.read_only = true;
        Ok(())
    }

    async fn kill_app_connections(
        &self,
        _opened_by: Option<u64>,
    ) -> Result<crate::failover::SessionSweep, DbError> {
        self.record("kill");
        self.hang_if_stopped().await;
        if self.inner.lock().unwrap().process == Process::Running {
            Ok(crate::failover::SessionSweep::default())
        } else {
            Err(self.refused())
        }
    }

    async fn drain_relay_log(&self, _budget: Duration) -> Result<DrainOutcome, DbError> {
        self.record("drain");
        Ok(DrainOutcome::Drained)
    }

    async fn promote(&self) -> Result<GtidSet, DbError> {
        self.record("promote");
        let mut s = self.inner.lock().unwrap();
        s.read_only = false;
        s.replica_of = None;
        Ok(GtidSet::parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5").unwrap())
    }

    async fn unfence(&self) -> Result<(), DbError> {
        self.record("unfence");
        self.inner.lock().unwrap().read_only = false;
        Ok(())
    }

    async fn replicate_from(&self, _source: &SourceEndpoint, _reset: bool) -> Result<(), DbError> {
        self.record("replicate_from");
        Ok(())
    }

    async fn wait_for_gtid(&self, _set: &GtidSet, _timeout: Duration) -> Result<bool, DbError> {
        self.record("wait_for_gtid");
        Ok(true)
    }

    async fn clone_from(&self, _donor: &SourceEndpoint) -> Result<(), DbError> {
        self.record("clone");
        Ok(())
    }
}

/// Records every save into the shared log, so its order against actions is visible.
struct RecordingStore {
    log: Log,
    inner: MemoryStateStore,
}

impl StateStore for RecordingStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<EngineState>, StoreError>> {
        self.inner.load()
    }

    fn save<'a>(&'a self, state: &'a EngineState) -> BoxFuture<'a, Result<(), StoreError>> {
        let in_flight: Vec<&str> = state.in_flight.iter().map(|a| a.kind.name()).collect();
        self.log
            .lock()
            .unwrap()
            .push(format!("save:{}", in_flight.join(",")));
        self.inner.save(state)
    }
}

async fn group(log: &Log) -> (FailoverLoop<FakeSite>, ControlHandle, [Arc<FakeSite>; 2]) {
    group_with(log, LoopConfig::default(), None, None).await
}

/// [`group`] with the loop's deadlines and, if given, the best-effort deadline.
async fn group_with(
    log: &Log,
    config: LoopConfig,
    best_effort: Option<Duration>,
    iad_sidecar: Option<Arc<dyn SidecarStatus>>,
) -> (FailoverLoop<FakeSite>, ControlHandle, [Arc<FakeSite>; 2]) {
    let iad = Arc::new(FakeSite::new("iad", 3306, log, true));
    let pdx = Arc::new(FakeSite::new("pdx", 3307, log, false));
    let mut policy = GroupPolicy::with_sites(
        [("iad", 3306), ("pdx", 3307)]
            .iter()
            .map(|(name, port)| SitePolicy {
                name: (*name).to_owned(),
                role: SiteRole::PrimaryCandidate,
                address: format!("127.0.0.1:{port}"),
            })
            .collect(),
    );
    if let Some(deadline) = best_effort {
        policy.best_effort_deadline = deadline;
    }
    let sites = [("iad", &iad, 3306), ("pdx", &pdx, 3307)]
        .into_iter()
        .map(|(name, site, port)| SiteHandle {
            name: name.to_owned(),
            site: Arc::clone(site),
            endpoint: SourceEndpoint {
                host: "127.0.0.1".to_owned(),
                port,
            },
            sidecar: if name == "iad" {
                iad_sidecar.clone()
            } else {
                None
            },
        })
        .collect();
    let (failover_loop, handle) = FailoverLoop::new(LoopParts {
        sites,
        policy,
        config,
        store: Arc::new(RecordingStore {
            log: Arc::clone(log),
            inner: MemoryStateStore::new(),
        }),
        hook: Arc::new(NoHook),
        observers: Vec::new(),
    })
    .await
    .unwrap();
    (failover_loop, handle, [iad, pdx])
}

#[tokio::test]
async fn a_refused_primary_is_replaced_with_the_state_saved_before_promoting() {
    let log: Log = Arc::default();
    let (mut failover_loop, handle, [iad, _pdx]) = group(&log).await;
    for _ in 0..3 {
        failover_loop.poll_once().await;
    }
    assert_eq!(failover_loop.state().active_site.as_deref(), Some("iad"));
    iad.inner.lock().unwrap().process = Process::Down;
    // First refusal: a fast re-probe is asked for.
    let wait = failover_loop.poll_once().await;
    assert!(wait < Duration::from_secs(1), "{wait:?}");
    for _ in 0..3 {
        failover_loop.poll_once().await;
    }
    let status = handle.status().unwrap();
    assert_eq!(status.active_site.as_deref(), Some("pdx"));
    let log = log.lock().unwrap().clone();
    let promote = log.iter().position(|l| l == "pdx:promote").unwrap();
    let save = log
        .iter()
        .position(|l| l.starts_with("save:") && l.contains("promote"))
        .unwrap();
    assert!(
        save < promote,
        "state saved before the promote ran: {log:?}"
    );
}

#[tokio::test]
async fn actions_after_a_failed_fatal_one_do_not_run() {
    let log: Log = Arc::default();
    let (mut failover_loop, handle, [iad, _pdx]) = group(&log).await;
    for _ in 0..3 {
        failover_loop.poll_once().await;
    }
    // A planned failover fences the source with a fatal fence; its session kill follows.
    iad.inner.lock().unwrap().fail_fence = true;
    let submit = {
        let handle = handle.clone();
        tokio::spawn(async move {
            handle
                .submit(Request::PlannedFailover {
                    target: "pdx".to_owned(),
                    max_lag_wait: None,
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    while !submit.is_finished() {
        failover_loop.poll_once().await;
        tokio::task::yield_now().await;
    }
    let reply = submit.await.unwrap().unwrap();
    assert!(matches!(reply, Reply::Accepted { .. }), "{reply:?}");
    let log = log.lock().unwrap().clone();
    assert!(log.contains(&"iad:fence".to_owned()), "{log:?}");
    assert!(
        !log.contains(&"iad:kill".to_owned()),
        "the kill after a failed fatal fence ran: {log:?}"
    );
}

#[tokio::test]
async fn requests_for_unknown_sites_are_rejected() {
    let log: Log = Arc::default();
    let (mut failover_loop, handle, _) = group(&log).await;
    failover_loop.poll_once().await;
    let submit = {
        let handle = handle.clone();
        tokio::spawn(async move {
            handle
                .submit(Request::Reclone {
                    site: "sfo".to_owned(),
                })
                .await
        })
    };
    while !submit.is_finished() {
        failover_loop.poll_once().await;
        tokio::task::yield_now().await;
    }
    let reply = submit.await.unwrap().unwrap();
    assert!(
        matches!(&reply, Reply::Rejected { reason } if reason.contains("sfo")),
        "{reply:?}"
    );
}

/// A hung old primary costs one best-effort deadline, not one per call: after its fence
/// times out, the session kill that would follow is not attempted.
#[tokio::test]
async fn a_hung_site_gets_one_best_effort_call_per_decision() {
    let log: Log = Arc::default();
    let config = LoopConfig {
        probe_deadline: Duration::from_millis(50),
        liveness_interval: None,
        ..LoopConfig::default()
    };
    let (mut failover_loop, handle, [iad, _pdx]) =
        group_with(&log, config, Some(Duration::from_millis(50)), None).await;
    for _ in 0..3 {
        failover_loop.poll_once().await;
    }
    iad.inner.lock().unwrap().process = Process::Stopped;
    for _ in 0..20 {
        failover_loop.poll_once().await;
        if handle.status().unwrap().active_site.as_deref() == Some("pdx") {
            break;
        }
    }
    assert_eq!(handle.status().unwrap().active_site.as_deref(), Some("pdx"));
    let log = log.lock().unwrap().clone();
    assert!(log.contains(&"iad:fence".to_owned()), "{log:?}");
    assert!(
        !log.contains(&"iad:kill".to_owned()),
        "a kill was sent to a site whose fence had just timed out: {log:?}"
    );
}

/// A sidecar that answers with a fixed view after `delay` (forever: never).
struct FakeSidecar {
    read_only: bool,
    delay: Option<Duration>,
    calls: Mutex<u32>,
}

impl SidecarStatus for FakeSidecar {
    fn status(&self) -> crate::ports::sidecar::StatusFuture<'_> {
        *self.calls.lock().unwrap() += 1;
        Box::pin(async move {
            match self.delay {
                None => std::future::pending::<()>().await,
                Some(d) => tokio::time::sleep(d).await,
            }
            Ok(Some(crate::failover::SidecarReport {
                site: "iad".to_owned(),
                read_only: self.read_only,
                super_read_only: self.read_only,
                age: Duration::from_millis(500),
            }))
        })
    }
}

async fn down_primary_with_sidecar(sidecar: Arc<FakeSidecar>) -> (Option<String>, u32) {
    let log: Log = Arc::default();
    let config = LoopConfig {
        probe_deadline: Duration::from_millis(200),
        ..LoopConfig::default()
    };
    let (mut failover_loop, handle, [iad, _pdx]) = group_with(
        &log,
        config,
        None,
        Some(Arc::clone(&sidecar) as Arc<dyn SidecarStatus>),
    )
    .await;
    for _ in 0..3 {
        failover_loop.poll_once().await;
    }
    assert_eq!(failover_loop.state().active_site.as_deref(), Some("iad"));
    assert_eq!(
        *sidecar.calls.lock().unwrap(),
        0,
        "asked only after a failed probe"
    );
    iad.inner.lock().unwrap().process = Process::Down;
    for _ in 0..6 {
        failover_loop.poll_once().await;
    }
    let calls = *sidecar.calls.lock().unwrap();
    (handle.status().unwrap().active_site, calls)
}

#[tokio::test(start_paused = true)]
async fn a_sidecar_reporting_writable_holds_the_failover_and_a_silent_one_changes_nothing() {
    let writable = Arc::new(FakeSidecar {
        read_only: false,
        delay: Some(Duration::from_millis(10)),
        calls: Mutex::new(0),
    });
    let (active, calls) = down_primary_with_sidecar(writable).await;
    assert_eq!(
        active.as_deref(),
        Some("iad"),
        "promoted past a writable site"
    );
    assert!(calls >= 3, "{calls}");
    // A sidecar that never answers is cut off at the probe deadline: the failover goes
    // ahead exactly as without one.
    let silent = Arc::new(FakeSidecar {
        read_only: false,
        delay: None,
        calls: Mutex::new(0),
    });
    let (active, calls) = down_primary_with_sidecar(silent).await;
    assert_eq!(active.as_deref(), Some("pdx"));
    assert!(calls >= 1, "{calls}");
    let fenced = Arc::new(FakeSidecar {
        read_only: true,
        delay: Some(Duration::from_millis(10)),
        calls: Mutex::new(0),
    });
    let (active, _) = down_primary_with_sidecar(fenced).await;
    assert_eq!(active.as_deref(), Some("pdx"));
}
