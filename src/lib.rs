//! bloodraven: a MySQL async-replication failover operator, admission webhooks and a
//! manifest linter, in one binary.
//!
//! The module tree follows **observe → decide → act**, so a file's place says what it may
//! touch:
//!
//! | module | may touch | holds |
//! |---|---|---|
//! | [`api`] | nothing | the `shipstream.io/v1alpha1` types and CRD rendering |
//! | [`failover`] | nothing: pure functions, time passed in | the failover core: the state machine, GTID set algebra, settings checks, the leader-lease rule |
//! | [`policy`] | nothing: pure functions | the policy engine: manifest parsing, the rule catalog, report rendering |
//! | [`backup`] | nothing: pure functions | the backup cores: the artifact codec (zstd, the sealed AES-256-GCM format, digests), the repository layout and manifest, the retention and point-in-time planners, the backup source choice, the logical method's dump model, chunk format and planning |
//! | [`render`] | nothing: pure functions | the operator's desired cluster for a group: its objects (Deployments, PVCs, my.cnf ConfigMap, Services, PodDisruptionBudget, DNSEndpoint), the no-op check before an apply, the status projection and the platform rules (pod labels, node taints) of a failover decision; the self-managed webhook certificate's next step (renew, rotate the CA, publish, retire) |
//! | [`ports`] | nothing | the narrow traits every side effect goes through |
//! | [`adapters`] | the outside world | implementations of [`ports`]: MySQL (with the logical dump and load, binary logs and CLONE); the backup repository (S3 and files through `object_store`); the Kubernetes API (the cluster cache admission reads, the operator's object caches and server-side apply, the status store, cluster reactions, the Lease, credential Secrets, the self-managed webhook certificate's Secret and `caBundle`s) |
//! | [`control`] | only [`ports`] | async loops that run observe → decide → act: the failover loop, child-object reconcile, leader election; the backup repository's artifact sink, source and catalog |
//! | [`sim`] | nothing | a deterministic simulated world that drives the real engine |
//! | [`shells`] | everything | front doors: the CLI, the kubectl plugin, the HTTPS server (and its self-managed certificate), the Kubernetes operator, standalone mode |
//! | [`telemetry`] | process globals | tracing set-up and Prometheus metrics |
//!
//! One engine, several shells: the CLI, the `/lint` endpoint and the admission webhooks
//! share [`policy::rules`]; standalone mode and the Kubernetes operator share
//! [`failover`] through [`control`]. The pure cores depend only downwards: [`failover`] and
//! [`policy`] stand alone (on [`api`]'s data types), and [`render`] reads the failover
//! core's output types to project a decision onto the cluster; each is testable on its own.

pub mod adapters;
pub mod api;
pub mod backup;
pub mod control;
pub mod digest;
pub mod error;
pub mod failover;
pub mod policy;
pub mod ports;
pub mod render;
pub mod shells;
pub mod sim;
pub mod telemetry;
