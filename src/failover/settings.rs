//! A group's failover settings as a user writes them (the `MysqlFailoverGroup` field names)
//! and the one set of checks that turns them into a [`GroupPolicy`].
//!
//! Both shells come through here: standalone mode from its config file, the operator from
//! a `MysqlFailoverGroup` spec. Errors carry a JSON pointer relative to the spec (or to the
//! standalone file, which uses the same names), so each shell can say where the problem is.

use std::time::Duration;

use super::policy::{GroupPolicy, OnCooldown, SitePolicy, SiteRole};
use crate::api::duration::parse_go_duration;
use crate::api::failover_group::{MysqlFailoverGroupSpec, SiteSpec};
use crate::error::{Categorized, Category};
use crate::failover::address::HostPort;

/// The shortest poll interval accepted: below it the loop would only burn CPU.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// `pollInterval` when unset.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// One site as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSettings {
    pub name: String,
    pub role: SiteRole,
    /// `host:port` the other sites replicate from (an address in standalone mode, the
    /// site's internal Service in a cluster).
    pub address: String,
}

/// The failover settings of one group; `None` means "unset, use the default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSettings {
    pub sites: Vec<SiteSettings>,
    pub poll_interval: Option<String>,
    pub failure_threshold: Option<u32>,
    pub recovery_threshold: Option<u32>,
    pub failover_cooldown: Option<String>,
    /// `splitBrainPolicy.sitePriorities`.
    pub site_priorities: Vec<String>,
    /// `replication.maxLagSeconds`.
    pub max_lag_seconds: Option<u64>,
    /// `plannedFailover.maxLagWait`.
    pub max_lag_wait: Option<String>,
    /// `plannedFailover.drainTimeout`.
    pub drain_timeout: Option<String>,
    /// `plannedFailover.onCooldown`.
    pub on_cooldown: Option<OnCooldown>,
}

/// Settings that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct SettingsError {
    /// JSON pointer to the offending field, relative to the spec.
    pub pointer: String,
    pub message: String,
}

impl Categorized for SettingsError {
    fn category(&self) -> Category {
        Category::Config
    }
}

/// What checked settings give the failover core and its loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSettings {
    pub policy: GroupPolicy,
    pub poll_interval: Duration,
}

fn error(pointer: impl Into<String>, message: impl Into<String>) -> SettingsError {
    SettingsError {
        pointer: pointer.into(),
        message: message.into(),
    }
}

fn duration(pointer: &str, text: Option<&String>) -> Result<Option<Duration>, SettingsError> {
    text.map(|t| parse_go_duration(t).map_err(|e| error(pointer, e)))
        .transpose()
}

fn at_least_one(pointer: &str, value: Option<u32>) -> Result<Option<u32>, SettingsError> {
    match value {
        Some(0) => Err(error(pointer, "must be at least 1")),
        other => Ok(other),
    }
}

impl GroupSettings {
    /// The settings of a `MysqlFailoverGroup` spec; `address` gives the `host:port` the
    /// other sites reach each site at (its internal Service in a cluster). The spec's
    /// defaults are already applied by the API server, so every field is set.
    pub fn from_spec(spec: &MysqlFailoverGroupSpec, address: impl Fn(&SiteSpec) -> String) -> Self {
        // A negative count is as unusable as zero, and reported the same way.
        let count = |n: i32| Some(u32::try_from(n).unwrap_or(0));
        // An absent `plannedFailover` is not defaulted field by field by the API server:
        // the core's own defaults apply.
        let planned = spec.planned_failover.as_ref();
        Self {
            sites: spec
                .sites
                .iter()
                .map(|site| SiteSettings {
                    name: site.name.clone(),
                    role: site.role,
                    address: address(site),
                })
                .collect(),
            poll_interval: Some(spec.poll_interval.clone()),
            failure_threshold: count(spec.failure_threshold),
            recovery_threshold: count(spec.recovery_threshold),
            failover_cooldown: Some(spec.failover_cooldown.clone()),
            site_priorities: spec
                .split_brain_policy
                .as_ref()
                .map(|p| p.site_priorities.clone())
                .unwrap_or_default(),
            max_lag_seconds: Some(u64::try_from(spec.replication.max_lag_seconds).unwrap_or(0)),
            max_lag_wait: planned.map(|p| p.max_lag_wait.clone()),
            drain_timeout: planned.map(|p| p.drain_timeout.clone()),
            on_cooldown: planned.map(|p| p.on_cooldown),
        }
    }

    /// Checks every setting and builds the policy; the first problem found is returned.
    pub fn check(&self) -> Result<CheckedSettings, SettingsError> {
        self.check_sites()?;
        let mut policy = GroupPolicy::with_sites(
            self.sites
                .iter()
                .map(|s| SitePolicy {
                    name: s.name.clone(),
                    role: s.role,
                    address: s.address.clone(),
                })
                .collect(),
        );
        if let Some(n) = at_least_one("/failureThreshold", self.failure_threshold)? {
            policy.failure_threshold = n;
        }
        if let Some(n) = at_least_one("/recoveryThreshold", self.recovery_threshold)? {
            policy.recovery_threshold = n;
        }
        if let Some(d) = duration("/failoverCooldown", self.failover_cooldown.as_ref())? {
            policy.failover_cooldown = d;
        }
        for (i, p) in self.site_priorities.iter().enumerate() {
            if policy.role(p) != Some(SiteRole::PrimaryCandidate) {
                return Err(error(
                    format!("/splitBrainPolicy/sitePriorities/{i}"),
                    format!("{p:?} is not a primary-candidate site"),
                ));
            }
        }
        policy.site_priorities.clone_from(&self.site_priorities);
        if let Some(lag) = self.max_lag_seconds {
            policy.max_lag_seconds = lag;
        }
        if let Some(d) = duration("/plannedFailover/maxLagWait", self.max_lag_wait.as_ref())? {
            policy.max_lag_wait = d;
        }
        if let Some(d) = duration("/plannedFailover/drainTimeout", self.drain_timeout.as_ref())? {
            policy.drain_timeout = d;
        }
        if let Some(c) = self.on_cooldown {
            policy.on_cooldown = c;
        }
        let poll_interval = duration("/pollInterval", self.poll_interval.as_ref())?
            .unwrap_or(DEFAULT_POLL_INTERVAL);
        if poll_interval < MIN_POLL_INTERVAL {
            return Err(error("/pollInterval", "must be at least 10ms"));
        }
        Ok(CheckedSettings {
            policy,
            poll_interval,
        })
    }

    fn check_sites(&self) -> Result<(), SettingsError> {
        if self.sites.len() < 2 {
            return Err(error("/sites", "at least 2 sites are needed"));
        }
        if self.sites.iter().filter(|s| s.role.is_candidate()).count() < 2 {
            return Err(error(
                "/sites",
                "at least 2 sites must be primary-candidate",
            ));
        }
        for (i, site) in self.sites.iter().enumerate() {
            let valid_name = !site.name.is_empty()
                && site
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_name {
                return Err(error(
                    format!("/sites/{i}/name"),
                    "must be non-empty letters, digits, '-' or '_'",
                ));
            }
            if self.sites[..i].iter().any(|s| s.name == site.name) {
                return Err(error(
                    format!("/sites/{i}/name"),
                    format!("duplicate site name {:?}", site.name),
                ));
            }
            if let Err(e) = HostPort::parse(&site.address) {
                return Err(error(format!("/sites/{i}/address"), e.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(name: &str, role: SiteRole) -> SiteSettings {
        SiteSettings {
            name: name.to_owned(),
            role,
            address: format!("{name}.db:3306"),
        }
    }

    fn two_sites() -> GroupSettings {
        GroupSettings {
            sites: vec![
                site("iad", SiteRole::PrimaryCandidate),
                site("pdx", SiteRole::PrimaryCandidate),
            ],
            ..GroupSettings::default()
        }
    }

    fn pointer_of(settings: &GroupSettings) -> String {
        settings
            .check()
            .err()
            .map(|e| e.pointer)
            .unwrap_or_default()
    }

    #[test]
    fn unset_fields_take_the_reference_defaults() {
        let checked = two_sites().check().expect("valid");
        let defaults = GroupPolicy::default();
        assert_eq!(checked.poll_interval, DEFAULT_POLL_INTERVAL);
        assert_eq!(checked.policy.failure_threshold, defaults.failure_threshold);
        assert_eq!(checked.policy.failover_cooldown, defaults.failover_cooldown);
        assert_eq!(checked.policy.sites.len(), 2);
    }

    #[test]
    fn set_fields_reach_the_policy() {
        let mut s = two_sites();
        s.failure_threshold = Some(5);
        s.failover_cooldown = Some("10m".to_owned());
        s.site_priorities = vec!["pdx".to_owned()];
        s.drain_timeout = Some("1m30s".to_owned());
        s.on_cooldown = Some(OnCooldown::Defer);
        s.poll_interval = Some("500ms".to_owned());
        let checked = s.check().expect("valid");
        assert_eq!(checked.policy.failure_threshold, 5);
        assert_eq!(checked.policy.failover_cooldown, Duration::from_secs(600));
        assert_eq!(checked.policy.site_priorities, ["pdx"]);
        assert_eq!(checked.policy.drain_timeout, Duration::from_secs(90));
        assert_eq!(checked.policy.on_cooldown, OnCooldown::Defer);
        assert_eq!(checked.poll_interval, Duration::from_millis(500));
    }

    #[test]
    fn a_spec_with_its_defaults_checks_like_the_standalone_file() {
        let spec: MysqlFailoverGroupSpec = serde_json::from_value(serde_json::json!({
            "image": "mysql:9.7.0",
            "sites": [{"name": "iad", "lbIP": "10.0.0.1"}, {"name": "pdx", "lbIP": "10.0.0.2"}],
            "credentials": {"operatorSecret": "op"},
            "dns": {"hostname": "db.example.com"},
            "failoverCooldown": "10m",
            "failureThreshold": 4,
            "splitBrainPolicy": {"sitePriorities": ["pdx"]}
        }))
        .expect("a valid spec");
        let settings =
            GroupSettings::from_spec(&spec, |s| format!("mysql-g-{}-internal:3306", s.name));
        let checked = settings.check().expect("valid");
        assert_eq!(checked.policy.failover_cooldown, Duration::from_secs(600));
        assert_eq!(checked.policy.failure_threshold, 4);
        assert_eq!(checked.policy.site_priorities, ["pdx"]);
        assert_eq!(checked.policy.sites[1].address, "mysql-g-pdx-internal:3306");
        assert_eq!(checked.poll_interval, DEFAULT_POLL_INTERVAL);

        let mut negative = spec.clone();
        negative.failure_threshold = -1;
        let e = GroupSettings::from_spec(&negative, |_| "h:1".to_owned()).check();
        assert_eq!(
            e.err().map(|e| e.pointer).as_deref(),
            Some("/failureThreshold")
        );
    }

    #[test]
    fn each_bad_setting_is_located() {
        let mut s = two_sites();
        s.sites.truncate(1);
        assert_eq!(pointer_of(&s), "/sites");

        let mut s = two_sites();
        s.sites[1].role = SiteRole::DrOnly;
        assert_eq!(pointer_of(&s), "/sites");

        let mut s = two_sites();
        s.sites[1].name = "iad".to_owned();
        assert_eq!(pointer_of(&s), "/sites/1/name");

        let mut s = two_sites();
        s.sites[0].name = "i a d".to_owned();
        assert_eq!(pointer_of(&s), "/sites/0/name");

        let mut s = two_sites();
        s.sites[1].address = "nowhere".to_owned();
        assert_eq!(pointer_of(&s), "/sites/1/address");

        let mut s = two_sites();
        s.failure_threshold = Some(0);
        assert_eq!(pointer_of(&s), "/failureThreshold");

        let mut s = two_sites();
        s.recovery_threshold = Some(0);
        assert_eq!(pointer_of(&s), "/recoveryThreshold");

        let mut s = two_sites();
        s.failover_cooldown = Some("5 parsecs".to_owned());
        assert_eq!(pointer_of(&s), "/failoverCooldown");

        let mut s = two_sites();
        s.site_priorities = vec!["iad".to_owned(), "sfo".to_owned()];
        assert_eq!(pointer_of(&s), "/splitBrainPolicy/sitePriorities/1");

        let mut s = two_sites();
        s.max_lag_wait = Some("soon".to_owned());
        assert_eq!(pointer_of(&s), "/plannedFailover/maxLagWait");

        let mut s = two_sites();
        s.poll_interval = Some("1ms".to_owned());
        assert_eq!(pointer_of(&s), "/pollInterval");
    }
}
