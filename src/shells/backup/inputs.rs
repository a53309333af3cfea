//! Where the backup commands get what is not on their command line: database
//! credentials, the passphrase and the repository. Secrets come from files or the
//! environment only, never from flags, which `ps` and shell history would keep.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::error::BackupError;
use crate::adapters::mysql::{ClientTls, Credentials};
use crate::adapters::storage::{ObjectRepository, S3Settings};
use crate::backup::logical::SchemaFilter;
use crate::ports::artifacts::BlobStore;

pub const USER_ENV: &str = "BLOODRAVEN_MYSQL_USER";
pub const PASSWORD_ENV: &str = "BLOODRAVEN_MYSQL_PASSWORD";
pub const PASSPHRASE_ENV: &str = "BLOODRAVEN_BACKUP_PASSPHRASE";

/// Which user schemas a logical backup takes, or a restore loads (`--include-schema`,
/// `--exclude-schema`, each repeatable). A name that is not there is an error.
#[derive(Debug, Clone, Default, Args)]
pub struct SchemaFlags {
    /// Only this schema (repeat for more; logical backups). A name the server (for a
    /// backup) or the backup (for a restore) does not hold is an error.
    #[arg(long = "include-schema", value_name = "SCHEMA")]
    pub include: Vec<String>,
    /// Leave this schema out (repeat for more; logical backups).
    #[arg(long = "exclude-schema", value_name = "SCHEMA")]
    pub exclude: Vec<String>,
}

impl SchemaFlags {
    pub fn filter(&self) -> SchemaFilter {
        SchemaFilter {
            include: self.include.clone(),
            exclude: self.exclude.clone(),
        }
    }
}

/// Where a replay reads the archived binary logs: beside the backup by default, or in a
/// repository of their own (the group's PITR profile, when it is not the backup's).
#[derive(Debug, Clone, Default, Args)]
pub struct ArchiveFlags {
    /// The repository holding the archived binary logs (its `binlogs/`), when it is not
    /// the backup's: s3://bucket/prefix or file:///path.
    #[arg(id = "binlogs_from", long = "binlogs-from", value_name = "URL")]
    pub from: Option<String>,
    /// S3 endpoint of --binlogs-from (default: the backup repository's).
    #[arg(
        id = "binlogs_s3_endpoint",
        long = "binlogs-s3-endpoint",
        value_name = "URL",
        requires = "binlogs_from"
    )]
    pub s3_endpoint: Option<String>,
    /// S3 region of --binlogs-from (default: the backup repository's).
    #[arg(
        id = "binlogs_s3_region",
        long = "binlogs-s3-region",
        value_name = "REGION",
        requires = "binlogs_from"
    )]
    pub s3_region: Option<String>,
    /// S3 credentials of --binlogs-from, as for --s3-credentials-dir (default: the backup
    /// repository's).
    #[arg(
        id = "binlogs_s3_credentials_dir",
        long = "binlogs-s3-credentials-dir",
        value_name = "DIR",
        requires = "binlogs_from"
    )]
    pub s3_credentials_dir: Option<PathBuf>,
    /// File holding the passphrase of the archived logs (default: the backup's).
    #[arg(
        id = "binlogs_passphrase_file",
        long = "binlogs-passphrase-file",
        value_name = "FILE",
        requires = "binlogs_from"
    )]
    pub passphrase_file: Option<PathBuf>,
}

/// The archive a replay reads, opened.
pub struct Archive {
    pub store: Arc<dyn BlobStore>,
    /// The passphrase of its sealed logs, if any.
    pub secret: Option<Vec<u8>>,
}

impl ArchiveFlags {
    /// The archive. Without --binlogs-from it is the backup's: `backup_store`, opened
    /// with `s3`, and the passphrase in `backup_passphrase_file`; with it, each setting
    /// not given falls back to the backup's.
    pub fn open(
        &self,
        backup_store: &Arc<dyn BlobStore>,
        s3: &S3Flags,
        backup_passphrase_file: Option<&Path>,
    ) -> Result<Archive, BackupError> {
        let Some(url) = &self.from else {
            return Ok(Archive {
                store: backup_store.clone(),
                secret: passphrase(backup_passphrase_file, "--passphrase-file")?,
            });
        };
        let flags = S3Flags {
            s3_endpoint: self.s3_endpoint.clone().or_else(|| s3.s3_endpoint.clone()),
            s3_region: self.s3_region.clone().or_else(|| s3.s3_region.clone()),
            s3_credentials_dir: self
                .s3_credentials_dir
                .clone()
                .or_else(|| s3.s3_credentials_dir.clone()),
        };
        let secret = match &self.passphrase_file {
            Some(file) => passphrase(Some(file), "--binlogs-passphrase-file")?,
            None => passphrase(backup_passphrase_file, "--passphrase-file")?,
        };
        Ok(Archive {
            store: flags.open(url)?,
            secret,
        })
    }
}

/// How to log in to MySQL.
#[derive(Debug, Clone, Args)]
pub struct MysqlLogin {
    /// File holding the MySQL user name (default: $BLOODRAVEN_MYSQL_USER, else root).
    #[arg(long, value_name = "FILE")]
    pub user_file: Option<PathBuf>,
    /// File holding the MySQL password (default: $BLOODRAVEN_MYSQL_PASSWORD, else none).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// TLS to MySQL: `required` (the default; the certificate is verified when
    /// --mysql-ca is given) or `off`.
    #[arg(long, value_name = "MODE", default_value = "required")]
    pub mysql_tls: TlsMode,
    /// PEM CA that signs the server certificate.
    #[arg(long, value_name = "FILE")]
    pub mysql_ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    Required,
    Off,
}

impl MysqlLogin {
    pub fn credentials(&self) -> Result<Credentials, BackupError> {
        let user = match &self.user_file {
            Some(path) => read_secret(path, "--user-file")?,
            None => std::env::var(USER_ENV).unwrap_or_else(|_| "root".to_owned()),
        };
        let password = match &self.password_file {
            Some(path) => read_secret(path, "--password-file")?,
            None => std::env::var(PASSWORD_ENV).unwrap_or_default(),
        };
        Ok(Credentials::new(user, password))
    }

    pub fn tls(&self) -> ClientTls {
        match self.mysql_tls {
            TlsMode::Off => ClientTls::Off,
            TlsMode::Required => ClientTls::Required {
                ca: self.mysql_ca.clone(),
            },
        }
    }
}

/// Where the repository is.
#[derive(Debug, Clone, Args)]
#[allow(clippy::struct_field_names)] // the fields are the `--s3-*` flags, named alike
pub struct S3Flags {
    /// S3 endpoint for S3-compatible servers (default: $AWS_ENDPOINT_URL, else AWS).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: $AWS_REGION, else us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// A directory holding the S3 credentials as files named like the variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN` and
    /// `AWS_REGION`): a mounted credentials Secret. Default: the environment.
    #[arg(long, value_name = "DIR")]
    pub s3_credentials_dir: Option<PathBuf>,
}

impl S3Flags {
    pub fn open(&self, url: &str) -> Result<Arc<dyn BlobStore>, BackupError> {
        let mut settings = S3Settings {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            ..S3Settings::default()
        };
        if let Some(dir) = &self.s3_credentials_dir {
            if !dir.is_dir() {
                return Err(BackupError::Input(format!(
                    "--s3-credentials-dir {}: not a directory",
                    dir.display()
                )));
            }
            settings = settings.with_credentials(|key| {
                let path = dir.join(key);
                path.is_file()
                    .then(|| read_secret(&path, "--s3-credentials-dir").ok())
                    .flatten()
                    .filter(|value| !value.is_empty())
            });
        }
        Ok(Arc::new(ObjectRepository::open(url, &settings)?))
    }
}

/// The passphrase from `file`, else from the environment; `None` when neither is set.
pub fn passphrase(file: Option<&Path>, flag: &str) -> Result<Option<Vec<u8>>, BackupError> {
    if let Some(path) = file {
        let text = read_secret(path, flag)?;
        if text.is_empty() {
            return Err(BackupError::Input(format!(
                "{flag} {}: the file is empty",
                path.display()
            )));
        }
        return Ok(Some(text.into_bytes()));
    }
    Ok(std::env::var(PASSPHRASE_ENV)
        .ok()
        .filter(|p| !p.is_empty())
        .map(String::into_bytes))
}

/// A secret file's contents without its trailing newline.
fn read_secret(path: &Path, flag: &str) -> Result<String, BackupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BackupError::Input(format!("{flag} {}: {e}", path.display())))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// Where MySQL's client programs are (the point-in-time tools run them).
#[derive(Debug, Clone, Args)]
pub struct ToolFlags {
    /// The `mysqlbinlog` program.
    #[arg(long, value_name = "PATH", default_value = "mysqlbinlog")]
    pub mysqlbinlog: PathBuf,
    /// The `mysql` client program.
    #[arg(long, value_name = "PATH", default_value = "mysql")]
    pub mysql: PathBuf,
}

impl ToolFlags {
    pub fn tools(&self) -> crate::adapters::mysql::MysqlTools {
        crate::adapters::mysql::MysqlTools {
            mysqlbinlog: self.mysqlbinlog.clone(),
            mysql: self.mysql.clone(),
        }
    }
}

/// A private scratch directory (mode 0700), removed with everything in it on drop.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new(purpose: &str) -> Result<Self, BackupError> {
        use std::os::unix::fs::DirBuilderExt as _;
        let mut random = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .map_err(|_| BackupError::Runtime("the system random source failed".to_owned()))?;
        let suffix = crate::digest::hex(&random);
        let path = std::env::temp_dir().join(format!("bloodraven-{purpose}-{suffix}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| BackupError::Runtime(format!("creating {}: {e}", path.display())))?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Where a run in a pod leaves its result for the operator when the repository is on a
/// volume the operator does not mount: the container's termination message, which the
/// kubelet copies into the pod's status.
#[derive(Debug, Clone, Default, Args)]
pub struct TerminationLog {
    /// Also write the run's record (a backup's manifest, a restore's or a verification's
    /// record) as compact JSON to FILE, e.g. the container's `/dev/termination-log`. A
    /// record longer than the kubelet keeps (4096 bytes) is not written, so a reader never
    /// sees a cut one.
    #[arg(long, value_name = "FILE")]
    pub termination_log: Option<PathBuf>,
}

/// The most of a container's termination message the kubelet keeps.
pub const TERMINATION_LOG_MAX_BYTES: usize = 4096;

impl TerminationLog {
    /// Writes `record` when asked and when it fits. Best effort: the record's home is the
    /// repository, and a run never fails because the message could not be left.
    pub fn write<T: serde::Serialize>(&self, record: &T) {
        let Some(path) = &self.termination_log else {
            return;
        };
        let bytes = match serde_json::to_vec(record) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode the termination record");
                return;
            }
        };
        if bytes.len() > TERMINATION_LOG_MAX_BYTES {
            tracing::warn!(
                bytes = bytes.len(),
                limit = TERMINATION_LOG_MAX_BYTES,
                "the record is longer than a termination message keeps; not written"
            );
            return;
        }
        if let Err(e) = std::fs::write(path, &bytes) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the termination record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_left_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("termination-log");
        let log = TerminationLog {
            termination_log: Some(path.clone()),
        };
        log.write(&serde_json::json!({"id": "b-1", "gtidExecuted": "u:1-5"}));
        let left: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(left["id"], "b-1");

        // One the kubelet would cut is not written: the earlier file stays as it was, and
        // a fresh path gets nothing.
        let too_long = serde_json::json!({"gtidExecuted": "x".repeat(TERMINATION_LOG_MAX_BYTES)});
        log.write(&too_long);
        assert_eq!(std::fs::read(&path).unwrap().len(), 35);
        let fresh = TerminationLog {
            termination_log: Some(dir.path().join("fresh")),
        };
        fresh.write(&too_long);
        assert!(!dir.path().join("fresh").exists());
        // Not asked: nothing to do.
        TerminationLog::default().write(&too_long);
    }
}
