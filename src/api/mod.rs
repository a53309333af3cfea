//! The `shipstream.io/v1alpha1` API types and CRD rendering. Data only.

pub mod annotations;
pub mod backup;
pub mod backup_run;
pub mod common;
pub mod crd;
pub mod dragonfly;
pub mod duration;
pub mod failover_group;
pub mod failover_group_status;
pub mod restore;
pub mod verification;

pub use backup_run::MysqlBackup;
pub use failover_group::MysqlFailoverGroup;
pub use verification::MysqlBackupVerification;

/// The API group of every bloodraven resource.
pub const GROUP: &str = "shipstream.io";
/// The only served version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of every bloodraven resource.
pub const API_VERSION: &str = "shipstream.io/v1alpha1";
