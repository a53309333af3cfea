//! The standalone config file (`group.yaml`): MysqlFailoverGroup field names for the shared
//! settings, plus what Kubernetes would otherwise provide (addresses, credentials, where to
//! listen and keep state, the failover hook).
//!
//! ```yaml
//! sites:
//!   - {name: iad, role: primary-candidate, address: "10.0.0.1:3306"}
//!   - {name: pdx, address: "10.0.1.1:3306", sidecar: "http://10.0.1.1:9101"}
//! pollInterval: 2s
//! failureThreshold: 3
//! recoveryThreshold: 2
//! failoverCooldown: 5m
//! splitBrainPolicy: {sitePriorities: [iad, pdx]}
//! replication: {maxLagSeconds: 300, tls: true}
//! plannedFailover: {maxLagWait: 5m, drainTimeout: 30s, onCooldown: reject}
//! credentials:
//!   operator: {user: bloodraven, passwordFile: operator.password}
//!   replication: {userEnv: REPL_USER, passwordEnv: REPL_PASSWORD}
//! listen: 127.0.0.1:8080
//! stateFile: state.json
//! hook: {command: [/usr/local/bin/flip-dns], timeout: 10s}
//! probeTimeout: 1s          # standalone only: bound on one probe, connect included
//! livenessInterval: 250ms   # standalone only: active-primary check between polls; 0 = off
//! backup:                   # optional: POST /backup, GET /backups, and a schedule
//!   repository: s3://bucket/prefix   # or file:///path (S3 keys from AWS_* variables)
//!   every: 24h              # 0 or absent: only on request
//!   method: logical         # or clone (the server's filesystem must be shared)
//!   threads: 4
//!   passphraseFile: backup.passphrase  # or passphraseEnv; absent: not encrypted
//!   retention: {count: 7, maxAgeDays: 0, minKeep: 1, maxFailedKeep: 10}
//! sidecarAuth:              # optional: asking each site's sidecar when its probe fails
//!   tokenFile: sidecar.token  # the token the sidecars require
//!   caFile: ca.crt          # for https sidecar URLs: the CA their certificates chain to
//! binlogArchive:            # optional: the PITR archiver, following the active primary
//!   interval: 60s
//!   rotate: false           # true: close the current log each pass (archive ≤ 1 interval behind)
//!   prune: false            # true: hourly, delete archived logs every complete backup in that repository holds
//!   mysqlbinlog: /usr/bin/mysqlbinlog
//! ```
//!
//! Only `sites` and `credentials` are required. Relative paths are relative to the config
//! file's directory. The hook gets `BLOODRAVEN_NEW_PRIMARY_SITE`,
//! `BLOODRAVEN_NEW_PRIMARY_ADDRESS` and `BLOODRAVEN_OLD_PRIMARY_SITE` in its environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_path_to_error::Segment;

use crate::adapters::mysql::Credentials;
use crate::api::duration::parse_go_duration;
use crate::control::LoopConfig;
use crate::error::{Categorized, Category};
use crate::failover::settings::{GroupSettings, SiteSettings};
use crate::failover::{GroupPolicy, OnCooldown, SiteRole};
use crate::policy::manifest::{Document, parse_stream};

/// A config file that cannot be used, with where the problem is.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ConfigError {
    /// `file:line:column`, or `file` alone.
    pub location: String,
    pub message: String,
}

impl Categorized for ConfigError {
    fn category(&self) -> Category {
        Category::Config
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    sites: Vec<RawSite>,
    poll_interval: Option<String>,
    failure_threshold: Option<u32>,
    recovery_threshold: Option<u32>,
    failover_cooldown: Option<String>,
    split_brain_policy: Option<RawSplitBrain>,
    replication: Option<RawReplication>,
    planned_failover: Option<RawPlanned>,
    credentials: RawCredentials,
    listen: Option<String>,
    state_file: Option<PathBuf>,
    hook: Option<RawHook>,
    /// Standalone only: bound on one probe (connect included).
    probe_timeout: Option<String>,
    /// Standalone only: how often the active primary is checked between polls (`0`: off).
    liveness_interval: Option<String>,
    /// Scheduled backups of the group.
    backup: Option<RawBackup>,
    /// The point-in-time archiver, reading the active primary's binary logs.
    binlog_archive: Option<RawArchive>,
    /// How to call the sites' sidecars (`sites[].sidecar`).
    sidecar_auth: Option<RawSidecarAuth>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSidecarAuth {
    token_file: PathBuf,
    ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawBackup {
    /// `s3://bucket/prefix` or `file:///path` (relative file paths: to this file).
    repository: String,
    /// How often (Go duration); `0` or absent: only on `POST /backup`.
    every: Option<String>,
    #[serde(default)]
    method: Option<crate::backup::manifest::Method>,
    threads: Option<usize>,
    passphrase_file: Option<PathBuf>,
    passphrase_env: Option<String>,
    retention: Option<RawRetention>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRetention {
    count: Option<u32>,
    max_age_days: Option<u32>,
    min_keep: Option<u32>,
    max_failed_keep: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArchive {
    /// Default: `backup.repository`.
    repository: Option<String>,
    /// Default 60s.
    interval: Option<String>,
    /// Default: `mysqlbinlog` on PATH.
    mysqlbinlog: Option<PathBuf>,
    /// Default: `mysql` on PATH (used by restores).
    mysql: Option<PathBuf>,
    /// Close the primary's current log on each pass when it holds transactions, so the
    /// archive is at most one interval behind (default false: logs are archived once
    /// the server closes them).
    #[serde(default)]
    rotate: bool,
    /// Hourly, delete the archived logs every complete backup in the archive's repository
    /// holds (default false).
    #[serde(default)]
    prune: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSite {
    name: String,
    #[serde(default = "default_role")]
    role: SiteRole,
    address: String,
    /// The site's sidecar (`http://host:port` or `https://...`), asked for its view of
    /// this site's MySQL when our probe of it fails.
    sidecar: Option<String>,
}

fn default_role() -> SiteRole {
    SiteRole::PrimaryCandidate
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSplitBrain {
    #[serde(default)]
    site_priorities: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawReplication {
    max_lag_seconds: Option<u64>,
    /// `SOURCE_SSL=1` for replication channels and clone (default true).
    tls: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPlanned {
    max_lag_wait: Option<String>,
    drain_timeout: Option<String>,
    on_cooldown: Option<OnCooldown>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCredentials {
    operator: RawCredential,
    replication: RawCredential,
}

/// A user name and password as a config file gives them (shared with the sidecar's file).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawCredential {
    user: Option<String>,
    user_file: Option<PathBuf>,
    user_env: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawHook {
    command: Vec<String>,
    timeout: Option<String>,
}

/// One site's connection details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    pub name: String,
    pub address: String,
    /// The site's sidecar base URL, when it has one.
    pub sidecar: Option<String>,
}

/// How the sites' sidecars are called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidecarAuthConfig {
    /// Re-read on every call, so a rotated token needs no restart.
    pub token_file: PathBuf,
    pub ca_file: Option<PathBuf>,
}

/// The post-failover hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    pub command: Vec<String>,
    pub timeout: Duration,
}

/// A validated standalone configuration.
#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    pub policy: GroupPolicy,
    pub loop_config: LoopConfig,
    pub sites: Vec<SiteConfig>,
    pub operator: Credentials,
    pub replication: Credentials,
    pub replication_tls: bool,
    pub probe_timeout: Duration,
    pub listen: SocketAddr,
    pub state_file: PathBuf,
    pub hook: Option<HookConfig>,
    pub backup: Option<BackupConfig>,
    pub binlog_archive: Option<ArchiveConfig>,
    /// `replication.maxLagSeconds`: how far behind a replica may be to be backed up.
    pub max_lag_seconds: u64,
    pub sidecar_auth: Option<SidecarAuthConfig>,
}

/// Scheduled backups.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    pub repository: String,
    /// `None`: only on request.
    pub every: Option<Duration>,
    pub method: crate::backup::manifest::Method,
    pub threads: usize,
    pub passphrase: Option<Vec<u8>>,
    pub retention: crate::backup::retention::RetentionPolicy,
}

/// The binary-log archiver.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    pub repository: String,
    pub interval: Duration,
    pub rotate: bool,
    pub prune: bool,
    pub tools: crate::adapters::mysql::MysqlTools,
}

const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_LIVENESS: Duration = Duration::from_millis(250);
const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<StandaloneConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        location: file.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse(&file, &text, base)
}

/// Parses config `text` (named `file` in errors); relative paths resolve against `base`.
pub fn parse(file: &str, text: &str, base: &Path) -> Result<StandaloneConfig, ConfigError> {
    let (raw, document) = read_document::<RawConfig>(file, text)?;
    Builder {
        file,
        document: &document,
        base,
    }
    .build(&raw)
}

/// Parses one YAML document into `T`, locating any error at `file:line:column`. Shared with
/// the sidecar's config file, so both read and report the same way.
pub(crate) fn read_document<T: serde::de::DeserializeOwned>(
    file: &str,
    text: &str,
) -> Result<(T, Document), ConfigError> {
    let stream = parse_stream(Some(file), text);
    if let Some(e) = stream.errors.first() {
        return Err(ConfigError {
            location: e.location.to_string(),
            message: e.message.clone(),
        });
    }
    let [document] = stream.documents.as_slice() else {
        return Err(ConfigError {
            location: file.to_owned(),
            message: format!(
                "expected exactly one YAML document, found {}",
                stream.documents.len()
            ),
        });
    };
    let raw: T = serde_path_to_error::deserialize(&document.value).map_err(|e| {
        let pointer = pointer_of(e.path());
        ConfigError {
            location: locate(file, document, &pointer),
            message: format!("{}: {}", display_pointer(&pointer), e.inner()),
        }
    })?;
    Ok((raw, document.clone()))
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    let mut pointer = String::new();
    for segment in path {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push_str(&crate::policy::manifest::escape_pointer_token(key));
            }
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

fn display_pointer(pointer: &str) -> String {
    if pointer.is_empty() {
        "(top level)".to_owned()
    } else {
        pointer.to_owned()
    }
}

fn locate(file: &str, document: &Document, pointer: &str) -> String {
    match document.position(pointer) {
        Some(p) => format!("{file}:{}:{}", p.line, p.column + 1),
        None => format!("{file}:{}", document.line_of(pointer)),
    }
}

/// The settings shared with the operator, as this file spells them.
fn settings(raw: &RawConfig) -> GroupSettings {
    GroupSettings {
        sites: raw
            .sites
            .iter()
            .map(|s| SiteSettings {
                name: s.name.clone(),
                role: s.role,
                address: s.address.clone(),
            })
            .collect(),
        poll_interval: raw.poll_interval.clone(),
        failure_threshold: raw.failure_threshold,
        recovery_threshold: raw.recovery_threshold,
        failover_cooldown: raw.failover_cooldown.clone(),
        site_priorities: raw
            .split_brain_policy
            .as_ref()
            .map(|p| p.site_priorities.clone())
            .unwrap_or_default(),
        max_lag_seconds: raw.replication.as_ref().and_then(|r| r.max_lag_seconds),
        max_lag_wait: raw
            .planned_failover
            .as_ref()
            .and_then(|p| p.max_lag_wait.clone()),
        drain_timeout: raw
            .planned_failover
            .as_ref()
            .and_then(|p| p.drain_timeout.clone()),
        on_cooldown: raw.planned_failover.as_ref().and_then(|p| p.on_cooldown),
    }
}

/// Resolves values of one parsed config file: durations, relative paths, secrets from files
/// or the environment, each error located in the file.
pub(crate) struct Builder<'a> {
    pub(crate) file: &'a str,
    pub(crate) document: &'a Document,
    pub(crate) base: &'a Path,
}

impl Builder<'_> {
    pub(crate) fn error(&self, pointer: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            location: locate(self.file, self.document, pointer),
            message: format!("{pointer}: {}", message.into()),
        }
    }

    pub(crate) fn duration(
        &self,
        pointer: &str,
        text: Option<&String>,
    ) -> Result<Option<Duration>, ConfigError> {
        text.map(|t| parse_go_duration(t).map_err(|e| self.error(pointer, e)))
            .transpose()
    }

    pub(crate) fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn build(&self, raw: &RawConfig) -> Result<StandaloneConfig, ConfigError> {
        let checked = settings(raw)
            .check()
            .map_err(|e| self.error(&e.pointer, e.message))?;
        let sites = raw
            .sites
            .iter()
            .map(|s| SiteConfig {
                name: s.name.clone(),
                address: s.address.clone(),
                sidecar: s.sidecar.clone(),
            })
            .collect();
        let sidecar_auth = self.sidecar_auth(raw)?;
        let replication_tls = raw.replication.as_ref().and_then(|r| r.tls).unwrap_or(true);
        let (loop_config, probe_timeout) = self.timing(raw, checked.poll_interval)?;
        let policy = checked.policy;
        let listen_text = raw.listen.as_deref().unwrap_or("127.0.0.1:8080");
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|e| self.error("/listen", format!("{listen_text:?} is not ip:port: {e}")))?;
        let state_file = self.path(
            raw.state_file
                .as_deref()
                .unwrap_or_else(|| Path::new("bloodraven-state.json")),
        );
        let hook = match &raw.hook {
            None => None,
            Some(h) => {
                if h.command.is_empty() || h.command[0].is_empty() {
                    return Err(self.error("/hook/command", "must name a program"));
                }
                let timeout = self
                    .duration("/hook/timeout", h.timeout.as_ref())?
                    .unwrap_or(DEFAULT_HOOK_TIMEOUT);
                Some(HookConfig {
                    command: h.command.clone(),
                    timeout,
                })
            }
        };
        let backup = raw.backup.as_ref().map(|b| self.backup(b)).transpose()?;
        let binlog_archive = match &raw.binlog_archive {
            None => None,
            Some(a) => Some(self.archive(a, backup.as_ref())?),
        };
        let max_lag_seconds = raw
            .replication
            .as_ref()
            .and_then(|r| r.max_lag_seconds)
            .unwrap_or(300);
        Ok(StandaloneConfig {
            backup,
            binlog_archive,
            max_lag_seconds,
            policy,
            loop_config,
            sites,
            operator: self.credential("/credentials/operator", &raw.credentials.operator)?,
            replication: self
                .credential("/credentials/replication", &raw.credentials.replication)?,
            replication_tls,
            probe_timeout,
            listen,
            state_file,
            hook,
            sidecar_auth,
        })
    }

    /// `sidecarAuth`, required as soon as one site names a sidecar (sidecars refuse calls
    /// without their token); each sidecar URL must be `http(s)://host:port`.
    fn sidecar_auth(&self, raw: &RawConfig) -> Result<Option<SidecarAuthConfig>, ConfigError> {
        let mut any = false;
        for (i, site) in raw.sites.iter().enumerate() {
            let Some(url) = &site.sidecar else { continue };
            any = true;
            let pointer = format!("/sites/{i}/sidecar");
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| self.error(&pointer, format!("{url:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https")
                || parsed.host_str().is_none()
                || parsed.path() != "/"
            {
                return Err(self.error(&pointer, "must be http(s)://host:port, without a path"));
            }
        }
        match (&raw.sidecar_auth, any) {
            (None, true) => Err(self.error(
                "/sidecarAuth",
                "sites name sidecars, so the token they require is needed (sidecarAuth.tokenFile)",
            )),
            (None, false) => Ok(None),
            (Some(a), _) => Ok(Some(SidecarAuthConfig {
                token_file: self.path(&a.token_file),
                ca_file: a.ca_file.as_deref().map(|p| self.path(p)),
            })),
        }
    }

    fn repository(&self, pointer: &str, url: &str) -> Result<String, ConfigError> {
        let url = match url.strip_prefix("file://") {
            Some(path) if !path.starts_with('/') => {
                format!("file://{}", self.path(Path::new(path)).display())
            }
            _ => url.to_owned(),
        };
        crate::adapters::storage::RepositoryUrl::parse(&url)
            .map_err(|e| self.error(pointer, e.to_string()))?;
        Ok(url)
    }

    fn backup(&self, raw: &RawBackup) -> Result<BackupConfig, ConfigError> {
        let repository = self.repository("/backup/repository", &raw.repository)?;
        let every = self
            .duration("/backup/every", raw.every.as_ref())?
            .filter(|d| !d.is_zero());
        let passphrase = match (&raw.passphrase_file, &raw.passphrase_env) {
            (None, None) => None,
            (Some(f), None) => Some(self.read_secret("/backup/passphraseFile", f)?),
            (None, Some(v)) => Some(self.read_env("/backup/passphraseEnv", v)?),
            (Some(_), Some(_)) => {
                return Err(self.error(
                    "/backup",
                    "set at most one of passphraseFile, passphraseEnv",
                ));
            }
        };
        if passphrase.as_deref() == Some("") {
            return Err(self.error("/backup", "the passphrase is empty"));
        }
        let threads = raw.threads.unwrap_or(4);
        if threads == 0 {
            return Err(self.error("/backup/threads", "must be at least 1"));
        }
        let retention = raw.retention.as_ref();
        Ok(BackupConfig {
            repository,
            every,
            method: raw
                .method
                .unwrap_or(crate::backup::manifest::Method::Logical),
            threads,
            passphrase: passphrase.map(String::into_bytes),
            retention: crate::backup::retention::RetentionPolicy {
                count: retention.and_then(|r| r.count).unwrap_or(7),
                max_age_days: retention.and_then(|r| r.max_age_days).unwrap_or(0),
                min_keep: retention.and_then(|r| r.min_keep).unwrap_or(1),
                max_failed_keep: retention.and_then(|r| r.max_failed_keep).unwrap_or(10),
            },
        })
    }

    fn archive(
        &self,
        raw: &RawArchive,
        backup: Option<&BackupConfig>,
    ) -> Result<ArchiveConfig, ConfigError> {
        let repository = match (&raw.repository, backup) {
            (Some(url), _) => self.repository("/binlogArchive/repository", url)?,
            (None, Some(b)) => b.repository.clone(),
            (None, None) => {
                return Err(self.error(
                    "/binlogArchive/repository",
                    "required when there is no backup section to share a repository with",
                ));
            }
        };
        let interval = self
            .duration("/binlogArchive/interval", raw.interval.as_ref())?
            .unwrap_or(Duration::from_secs(60));
        if interval.is_zero() {
            return Err(self.error("/binlogArchive/interval", "must be positive"));
        }
        let tool = |p: &Option<PathBuf>, default: &str| {
            p.as_deref()
                .map_or_else(|| PathBuf::from(default), |p| self.path(p))
        };
        Ok(ArchiveConfig {
            repository,
            interval,
            rotate: raw.rotate,
            prune: raw.prune,
            tools: crate::adapters::mysql::MysqlTools {
                mysqlbinlog: tool(&raw.mysqlbinlog, "mysqlbinlog"),
                mysql: tool(&raw.mysql, "mysql"),
            },
        })
    }

    /// The standalone-only timing: the shared settings fixed `poll_interval` already.
    fn timing(
        &self,
        raw: &RawConfig,
        poll_interval: Duration,
    ) -> Result<(LoopConfig, Duration), ConfigError> {
        let mut loop_config = LoopConfig {
            poll_interval,
            ..LoopConfig::default()
        };
        let probe_timeout = self
            .duration("/probeTimeout", raw.probe_timeout.as_ref())?
            .unwrap_or(DEFAULT_PROBE_TIMEOUT);
        if probe_timeout.is_zero() {
            return Err(self.error("/probeTimeout", "must be positive"));
        }
        // The outer bound sits just above the adapter's own deadline.
        loop_config.probe_deadline = probe_timeout + Duration::from_millis(500);
        loop_config.liveness_interval =
            match self.duration("/livenessInterval", raw.liveness_interval.as_ref())? {
                Some(d) if d.is_zero() => None,
                Some(d) => Some(d),
                None => Some(DEFAULT_LIVENESS),
            };
        Ok((loop_config, probe_timeout))
    }

    pub(crate) fn credential(
        &self,
        pointer: &str,
        raw: &RawCredential,
    ) -> Result<Credentials, ConfigError> {
        let user = match (&raw.user, &raw.user_file, &raw.user_env) {
            (Some(u), None, None) => u.clone(),
            (None, Some(f), None) => self.read_secret(&format!("{pointer}/userFile"), f)?,
            (None, None, Some(v)) => self.read_env(&format!("{pointer}/userEnv"), v)?,
            _ => {
                return Err(self.error(pointer, "set exactly one of user, userFile, userEnv"));
            }
        };
        if user.is_empty() {
            return Err(self.error(pointer, "the user name is empty"));
        }
        let password = match (&raw.password_file, &raw.password_env) {
            (None, None) => String::new(),
            (Some(f), None) => self.read_secret(&format!("{pointer}/passwordFile"), f)?,
            (None, Some(v)) => self.read_env(&format!("{pointer}/passwordEnv"), v)?,
            (Some(_), Some(_)) => {
                return Err(self.error(pointer, "set at most one of passwordFile, passwordEnv"));
            }
        };
        Ok(Credentials::new(user, password))
    }

    pub(crate) fn read_secret(&self, pointer: &str, path: &Path) -> Result<String, ConfigError> {
        let full = self.path(path);
        std::fs::read_to_string(&full)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
            .map_err(|e| self.error(pointer, format!("cannot read {}: {e}", full.display())))
    }

    pub(crate) fn read_env(&self, pointer: &str, name: &str) -> Result<String, ConfigError> {
        std::env::var(name)
            .map_err(|_| self.error(pointer, format!("environment variable {name} is not set")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
sites:
  - {name: iad, role: primary-candidate, address: \"127.0.0.1:3306\"}
  - {name: pdx, address: \"127.0.0.1:3307\"}
pollInterval: 500ms
failureThreshold: 4
failoverCooldown: 30s
splitBrainPolicy: {sitePriorities: [pdx]}
replication: {maxLagSeconds: 60, tls: false}
plannedFailover: {maxLagWait: 1m, drainTimeout: 2s, onCooldown: defer}
credentials:
  operator: {user: root}
  replication: {user: repl, passwordFile: repl.pw}
listen: 127.0.0.1:9999
stateFile: state.json
hook: {command: [/bin/true], timeout: 3s}
";

    #[test]
    fn parses_every_field() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        std::fs::write(dir.path().join("repl.pw"), "s3cret\n").ok();
        let config = parse("group.yaml", GOOD, dir.path());
        let config = match config {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(config.sites.len(), 2);
        assert_eq!(config.policy.sites[1].role, SiteRole::PrimaryCandidate);
        assert_eq!(config.loop_config.poll_interval, Duration::from_millis(500));
        assert_eq!(config.policy.failure_threshold, 4);
        assert_eq!(config.policy.recovery_threshold, 2);
        assert_eq!(config.policy.failover_cooldown, Duration::from_secs(30));
        assert_eq!(config.policy.site_priorities, vec!["pdx".to_owned()]);
        assert_eq!(config.policy.max_lag_seconds, 60);
        assert_eq!(config.policy.max_lag_wait, Duration::from_secs(60));
        assert_eq!(config.policy.drain_timeout, Duration::from_secs(2));
        assert_eq!(config.policy.on_cooldown, OnCooldown::Defer);
        assert!(!config.replication_tls);
        assert_eq!(config.replication.password, "s3cret");
        assert_eq!(config.operator.password, "");
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.state_file, dir.path().join("state.json"));
        assert_eq!(config.hook.map(|h| h.timeout), Some(Duration::from_secs(3)));
    }

    #[test]
    fn backup_and_archive_sections_resolve_and_default() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("repl.pw"), "s3cret\n").expect("write");
        std::fs::write(dir.path().join("backup.pass"), "phrase\n").expect("write");
        let text = format!(
            "{GOOD}backup:\n  repository: file://backups\n  every: 1h\n  passphraseFile: backup.pass\n  retention: {{count: 3}}\nbinlogArchive: {{rotate: true, prune: true}}\n"
        );
        let config = parse("group.yaml", &text, dir.path()).expect("parses");
        let backup = config.backup.expect("backup");
        assert_eq!(
            backup.repository,
            format!("file://{}", dir.path().join("backups").display())
        );
        assert_eq!(backup.every, Some(Duration::from_secs(3600)));
        assert_eq!(backup.passphrase.as_deref(), Some(&b"phrase"[..]));
        assert_eq!((backup.retention.count, backup.retention.min_keep), (3, 1));
        let archive = config.binlog_archive.expect("archive");
        assert_eq!(
            archive.repository, backup.repository,
            "shares the backup repository"
        );
        assert_eq!(archive.interval, Duration::from_secs(60));
        assert!(archive.rotate);
        assert!(archive.prune);
    }

    #[test]
    fn site_sidecars_need_a_url_and_the_token() {
        let with_sidecar = GOOD.replace(
            "address: \"127.0.0.1:3307\"}",
            "address: \"127.0.0.1:3307\", sidecar: \"http://127.0.0.1:9101\"}",
        );
        assert_ne!(with_sidecar, GOOD);
        let e = error_of(&with_sidecar);
        assert!(e.contains("/sidecarAuth") && e.contains("tokenFile"), "{e}");
        let e = error_of(&format!(
            "{}sidecarAuth: {{tokenFile: t}}\n",
            with_sidecar.replace("http://127.0.0.1:9101", "127.0.0.1:9101")
        ));
        assert!(e.contains("/sites/1/sidecar"), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("repl.pw"), "s3cret\n").expect("write");
        let config = parse(
            "group.yaml",
            &format!("{with_sidecar}sidecarAuth: {{tokenFile: sidecar.token}}\n"),
            dir.path(),
        )
        .expect("parses");
        assert_eq!(config.sites[0].sidecar, None);
        assert_eq!(
            config.sites[1].sidecar.as_deref(),
            Some("http://127.0.0.1:9101")
        );
        assert_eq!(
            config.sidecar_auth.map(|a| a.token_file),
            Some(dir.path().join("sidecar.token"))
        );
    }

    #[test]
    fn bad_backup_settings_are_located() {
        let e = error_of(&format!("{GOOD}backup: {{repository: \"gs://x\"}}\n"));
        assert!(
            e.contains("/backup/repository") && e.contains("expected s3://"),
            "{e}"
        );
        let e = error_of(&format!("{GOOD}binlogArchive: {{interval: 5s}}\n"));
        assert!(e.contains("/binlogArchive/repository"), "{e}");
        let e = error_of(&format!(
            "{GOOD}backup: {{repository: \"file:///b\", threads: 0}}\n"
        ));
        assert!(e.contains("/backup/threads"), "{e}");
    }

    fn error_of(text: &str) -> String {
        match parse("group.yaml", text, Path::new("/nonexistent")) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn unknown_field_is_located() {
        let text = GOOD.replace("pollInterval: 500ms", "pollIntervall: 500ms");
        let e = error_of(&text);
        assert!(e.starts_with("group.yaml:4:"), "{e}");
        assert!(e.contains("pollIntervall"), "{e}");
    }

    #[test]
    fn bad_values_are_located() {
        let e = error_of(&GOOD.replace("500ms", "5 parsecs"));
        assert!(
            e.starts_with("group.yaml:4:") && e.contains("/pollInterval"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("\"127.0.0.1:3307\"", "nowhere"));
        assert!(
            e.starts_with("group.yaml:3:") && e.contains("/sites/1/address"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("failureThreshold: 4", "failureThreshold: many"));
        assert!(
            e.starts_with("group.yaml:5:") && e.contains("/failureThreshold"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("sitePriorities: [pdx]", "sitePriorities: [sfo]"));
        assert!(e.contains("/splitBrainPolicy/sitePriorities/0"), "{e}");
        let e = error_of(&GOOD.replace(
            "passwordFile: repl.pw",
            "passwordEnv: BLOODRAVEN_TEST_UNSET_VAR",
        ));
        assert!(e.contains("BLOODRAVEN_TEST_UNSET_VAR"), "{e}");
    }
}
