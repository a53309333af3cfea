//! The `mysql_async` implementation of [`crate::ports::mysql::MysqlSite`].
//!
//! [`MysqlSiteClient`] drives one server. It keeps no connection between calls: each call
//! opens one, bounds the connect and every statement by a deadline
//! ([`MysqlSiteConfig::probe_timeout`] for probes, [`MysqlSiteConfig::op_timeout`] for the
//! rest), and discards the connection after a timeout. So a hung (`SIGSTOP`ped) server fails a
//! probe with [`crate::ports::mysql::DbError::Timeout`] and can never freeze the poll loop,
//! and a closed port fails fast with [`crate::ports::mysql::DbError::Refused`].

mod backup_server;
mod client;
mod clone;
mod config;
mod drain;
mod logical;
mod probe;
mod session;
mod sql_text;
mod users;
mod wire;

pub use backup_server::{
    BackupServer, BinaryLog, BinlogError, CloneSnapshot, MysqlTools, QueryAnswer, QueryError,
};
pub use client::MysqlSiteClient;
pub use config::{ClientTls, Credentials, MysqlConfigError, MysqlSiteConfig};
pub use logical::{
    DumpOptions, GtidHistory, LoadOptions, LoadReport, LogicalEndpoint, LogicalError, TableLoad,
    dump, load,
};
pub use users::RoleUsers;
pub use wire::{Row as WireRow, ServerError, WireConn, WireError, WireTarget};
