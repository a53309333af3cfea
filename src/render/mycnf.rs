//! The generated my.cnf of each site.
//!
//! Merge order, later wins: the operator's overridable defaults, the group's `mysqlConf`,
//! the site's `mysqlConf`, then the enforced settings. Keys are normalised to the hyphen
//! form mysqld also accepts (`sync_binlog` and `sync-binlog` are one key), so a user entry
//! cannot slip past an enforced one by spelling. Each site gets its own file (and its own
//! checksum), so a site override rolls only that site.
//!
//! Enforced, whatever `mysqlConf` says:
//! - GTID replication: `gtid-mode=ON`, `enforce-gtid-consistency=ON`, a binary log
//!   (`skip-log-bin`/`disable-log-bin` are dropped), `log-replica-updates=ON`, and
//!   `skip-replica-start=ON` so a restarted follower waits for the operator to point it at
//!   the current primary;
//! - fence-first boot: `read-only=ON` and `super-read-only=ON`, so every mysqld starts
//!   unwritable and only the operator, after deciding this site is the primary, lifts it;
//! - a unique `server-id` per site;
//! - the clone plugin (reclone and fresh bootstrap use `CLONE INSTANCE`) and
//!   `clone-ddl-timeout` from `cloneTimeout`;
//! - `tmpdir=/tmp`, an emptyDir under the read-only root filesystem;
//! - `port=3306` on every address (`skip-networking` is dropped): the Services, probes and
//!   replication connect there;
//! - with `spec.tls`: the cert-manager Secret's files as `ssl-ca`/`ssl-cert`/`ssl-key` and
//!   `require-secure-transport=ON`.

use crate::digest::hex;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};

use super::RenderError;
use super::deployment::MYSQL_PORT;
use crate::api::failover_group::{MysqlFailoverGroupSpec, SiteSpec};

/// Where the TLS Secret is mounted in the mysql container.
pub const TLS_DIR: &str = "/etc/mysql/tls";
/// Where the site's my.cnf is mounted: the official image's `/etc/my.cnf` includes every
/// `*.cnf` in this directory.
pub const CONF_DIR: &str = "/etc/mysql/conf.d";
/// The file name the site's my.cnf is mounted under.
pub const CONF_FILE: &str = "bloodraven.cnf";

/// Durable-by-default settings a user may override.
const DEFAULTS: [(&str, &str); 4] = [
    ("binlog-expire-logs-seconds", "1209600"),
    ("innodb-flush-log-at-trx-commit", "2"),
    ("log-bin-trust-function-creators", "1"),
    ("sync-binlog", "1"),
];

/// Keys that would turn the binary log off (GTID replication needs it) or close the
/// network listener the Services and probes use.
const STRIPPED: [&str; 3] = ["skip-log-bin", "disable-log-bin", "skip-networking"];

const CLONE_PLUGIN: &str = "mysql_clone.so";

/// One site's rendered my.cnf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// The file's text.
    pub content: String,
    /// Lower-case hex SHA-256 of `content`.
    pub checksum: String,
}

/// A `server-id` for the site that is stable when sites are reordered, added or removed,
/// so such edits do not change (and roll) the other sites. Derived from the group and site
/// names; `render` rejects the (astronomically unlikely) case of two sites colliding.
pub fn server_id(group: &str, site: &str) -> u32 {
    let digest = Sha256::digest(format!("{group}/{site}").as_bytes());
    let word = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    // 0 is not a valid server-id; map onto 1..=u32::MAX.
    word % u32::MAX + 1
}

/// Renders the my.cnf of `site`.
pub fn render_site(
    group: &str,
    spec: &MysqlFailoverGroupSpec,
    site: &SiteSpec,
) -> Result<SiteConfig, RenderError> {
    let mut settings: BTreeMap<String, String> = DEFAULTS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    // PITR archives whole binary logs once closed: `max_binlog_size` bounds how far the
    // archive trails the primary (and each archived object). Before the user's entries, as
    // the reference sets it, so `mysqlConf` may still override it.
    if let Some(pitr) = spec.backup.as_ref().and_then(|b| b.pitr.as_ref())
        && pitr.enabled
    {
        let max_size = pitr.max_binlog_size.trim();
        if max_size.is_empty() || !max_size.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(RenderError::InvalidMysqlConf {
                field: "spec.backup.pitr.maxBinlogSize",
                key: max_size.to_owned(),
            });
        }
        settings.insert("max-binlog-size".to_owned(), max_size.to_owned());
    }
    merge_user(&mut settings, &spec.mysql_conf, "spec.mysqlConf")?;
    merge_user(&mut settings, &site.mysql_conf, "spec.sites[].mysqlConf")?;
    for key in STRIPPED {
        settings.remove(key);
    }
    let plugins = match settings.remove("plugin-load-add") {
        Some(user) if !user.split(';').any(|p| p.trim() == CLONE_PLUGIN) => {
            format!("{CLONE_PLUGIN};{user}")
        }
        Some(user) => user,
        None => CLONE_PLUGIN.to_owned(),
    };
    let mut enforced: Vec<(&str, String)> = vec![
        ("server-id", server_id(group, &site.name).to_string()),
        ("gtid-mode", "ON".to_owned()),
        ("enforce-gtid-consistency", "ON".to_owned()),
        ("log-bin", "mysql-bin".to_owned()),
        ("log-replica-updates", "ON".to_owned()),
        ("skip-replica-start", "ON".to_owned()),
        ("read-only", "ON".to_owned()),
        ("super-read-only", "ON".to_owned()),
        ("plugin-load-add", plugins),
        // `loose-`: `mysqld --initialize` ignores plugin-load-add, and would otherwise abort
        // on the clone plugin's variable as unknown.
        ("loose-clone-ddl-timeout", spec.clone_timeout.to_string()),
        // The Services, probes and replication reach mysqld here.
        ("port", MYSQL_PORT.to_string()),
        ("bind-address", "*".to_owned()),
        // The root filesystem is read-only; /tmp is an emptyDir.
        ("tmpdir", "/tmp".to_owned()),
    ];
    if spec.tls.is_some() {
        enforced.extend([
            ("ssl-ca", format!("{TLS_DIR}/ca.crt")),
            ("ssl-cert", format!("{TLS_DIR}/tls.crt")),
            ("ssl-key", format!("{TLS_DIR}/tls.key")),
            ("require-secure-transport", "ON".to_owned()),
        ]);
    }
    for (key, value) in enforced {
        settings.insert(key.to_owned(), value);
    }

    let mut content = format!(
        "# Generated by bloodraven for site {} of MysqlFailoverGroup {group}. Do not edit:\n\
         # set spec.mysqlConf or spec.sites[].mysqlConf instead.\n[mysqld]\n",
        site.name
    );
    for (key, value) in &settings {
        if value.is_empty() {
            let _ = writeln!(content, "{key}");
        } else {
            let _ = writeln!(content, "{key} = {value}");
        }
    }
    let checksum = hex(&Sha256::digest(content.as_bytes()));
    Ok(SiteConfig { content, checksum })
}

/// Merges user `mysqlConf` entries, rejecting any that could break out of the `key = value`
/// line (a newline, or a key that is not an option name).
fn merge_user(
    settings: &mut BTreeMap<String, String>,
    user: &BTreeMap<String, String>,
    field: &'static str,
) -> Result<(), RenderError> {
    for (key, value) in user {
        let valid_key = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_key || value.contains(['\n', '\r']) {
            return Err(RenderError::InvalidMysqlConf {
                field,
                key: key.clone(),
            });
        }
        settings.insert(key.replace('_', "-"), value.trim().to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::failover_group::{IssuerRef, TlsSpec};

    fn spec() -> MysqlFailoverGroupSpec {
        MysqlFailoverGroupSpec {
            clone_timeout: 3600,
            ..MysqlFailoverGroupSpec::default()
        }
    }

    fn site(name: &str) -> SiteSpec {
        SiteSpec {
            name: name.to_owned(),
            ..SiteSpec::default()
        }
    }

    fn lines(content: &str) -> Vec<&str> {
        content.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn gtid_and_fence_first_settings_are_always_present() {
        let cfg = render_site("orders", &spec(), &site("iad")).unwrap();
        let lines = lines(&cfg.content);
        assert_eq!(lines[0], "[mysqld]");
        for want in [
            "gtid-mode = ON",
            "enforce-gtid-consistency = ON",
            "log-bin = mysql-bin",
            "log-replica-updates = ON",
            "skip-replica-start = ON",
            "read-only = ON",
            "super-read-only = ON",
            "plugin-load-add = mysql_clone.so",
            "loose-clone-ddl-timeout = 3600",
            "sync-binlog = 1",
        ] {
            assert!(lines.contains(&want), "missing {want}:\n{}", cfg.content);
        }
        assert!(!cfg.content.contains("ssl-"), "no TLS without spec.tls");
        assert!(!cfg.content.contains("require-secure-transport"));
    }

    #[test]
    fn user_entries_cannot_weaken_enforced_settings() {
        let mut s = spec();
        s.mysql_conf = BTreeMap::from([
            ("super_read_only".to_owned(), "OFF".to_owned()),
            ("gtid_mode".to_owned(), "OFF".to_owned()),
            ("skip_log_bin".to_owned(), String::new()),
            ("skip_networking".to_owned(), String::new()),
            ("port".to_owned(), "3307".to_owned()),
            ("sync_binlog".to_owned(), "0".to_owned()),
            (
                "plugin_load_add".to_owned(),
                "rpl_semi_sync_source.so".to_owned(),
            ),
        ]);
        let cfg = render_site("orders", &s, &site("iad")).unwrap();
        let lines = lines(&cfg.content);
        assert!(lines.contains(&"super-read-only = ON"));
        assert!(lines.contains(&"gtid-mode = ON"));
        assert!(!cfg.content.contains("skip-log-bin"));
        assert!(!cfg.content.contains("skip-networking"));
        assert!(lines.contains(&"port = 3306"));
        assert!(
            !cfg.content.contains("super_read_only"),
            "keys are normalised"
        );
        // Overridable defaults do take the user's value.
        assert!(lines.contains(&"sync-binlog = 0"));
        assert!(lines.contains(&"plugin-load-add = mysql_clone.so;rpl_semi_sync_source.so"));
    }

    #[test]
    fn tls_enables_certificates_and_secure_transport() {
        let mut s = spec();
        s.tls = Some(TlsSpec {
            issuer_ref: IssuerRef {
                name: "ca".to_owned(),
                ..IssuerRef::default()
            },
            secret_name: None,
        });
        let cfg = render_site("orders", &s, &site("iad")).unwrap();
        let lines = lines(&cfg.content);
        assert!(lines.contains(&"ssl-ca = /etc/mysql/tls/ca.crt"));
        assert!(lines.contains(&"ssl-cert = /etc/mysql/tls/tls.crt"));
        assert!(lines.contains(&"ssl-key = /etc/mysql/tls/tls.key"));
        assert!(lines.contains(&"require-secure-transport = ON"));
    }

    #[test]
    fn site_overrides_win_over_group_entries_and_change_only_that_site() {
        let mut s = spec();
        s.mysql_conf = BTreeMap::from([("max_connections".to_owned(), "500".to_owned())]);
        let iad = site("iad");
        let mut pdx = site("pdx");
        let before_iad = render_site("orders", &s, &iad).unwrap();
        let before_pdx = render_site("orders", &s, &pdx).unwrap();
        pdx.mysql_conf = BTreeMap::from([("max-connections".to_owned(), "800".to_owned())]);
        let after_pdx = render_site("orders", &s, &pdx).unwrap();
        assert!(lines(&after_pdx.content).contains(&"max-connections = 800"));
        assert_ne!(before_pdx.checksum, after_pdx.checksum);
        assert_eq!(before_iad, render_site("orders", &s, &iad).unwrap());
        assert_eq!(before_iad.checksum.len(), 64);
    }

    #[test]
    fn pitr_sets_max_binlog_size_before_user_entries() {
        let mut spec = spec();
        assert!(
            !render_site("orders", &spec, &site("iad"))
                .unwrap()
                .content
                .contains("max-binlog-size")
        );
        spec.backup = Some(
            serde_json::from_value(serde_json::json!({"pitr": {"enabled": true,
                "profileName": "offsite", "maxBinlogSize": "64M"}}))
            .unwrap(),
        );
        let content = render_site("orders", &spec, &site("iad")).unwrap().content;
        assert!(
            lines(&content).contains(&"max-binlog-size = 64M"),
            "{content}"
        );
        spec.mysql_conf
            .insert("max_binlog_size".to_owned(), "1G".to_owned());
        let content = render_site("orders", &spec, &site("iad")).unwrap().content;
        assert!(
            lines(&content).contains(&"max-binlog-size = 1G"),
            "{content}"
        );
        spec.mysql_conf.clear();
        spec.backup
            .as_mut()
            .unwrap()
            .pitr
            .as_mut()
            .unwrap()
            .max_binlog_size = "1\n[client]".to_owned();
        assert!(render_site("orders", &spec, &site("iad")).is_err());
    }

    #[test]
    fn server_ids_differ_per_site_and_are_never_zero() {
        let ids: std::collections::BTreeSet<u32> = ["iad", "pdx", "fra", "sjc"]
            .iter()
            .map(|s| server_id("orders", s))
            .collect();
        assert_eq!(ids.len(), 4);
        assert!(!ids.contains(&0));
        assert_eq!(server_id("orders", "iad"), server_id("orders", "iad"));
    }

    #[test]
    fn entries_that_could_inject_lines_are_rejected() {
        let mut s = spec();
        s.mysql_conf = BTreeMap::from([(
            "max_connections".to_owned(),
            "1\n[client]\npassword = x".to_owned(),
        )]);
        assert!(matches!(
            render_site("orders", &s, &site("iad")),
            Err(RenderError::InvalidMysqlConf { .. })
        ));
        let mut s = spec();
        s.mysql_conf = BTreeMap::from([("[client]".to_owned(), "x".to_owned())]);
        assert!(render_site("orders", &s, &site("iad")).is_err());
    }
}
