//! The annotations a user (or `kubectl bloodraven`) writes on a `MysqlFailoverGroup` to ask
//! the operator for something, and their parsing. Pure: the operator shell reads the
//! annotation, hands the parsed request to the failover core and removes the annotation.

use std::time::Duration;

use crate::api::duration::parse_go_duration;

/// `<site>[:maxLagWait=<duration>]`: a zero-loss switchover to `<site>`.
pub const PLANNED_FAILOVER: &str = "bloodraven.shipstream.io/planned-failover";
/// `<site>:<divergent GTID prefix, 8+ characters>` to discard a site's divergent
/// transactions, or `<site>:confirm=<group name>` for a reclone with no recorded divergence.
pub const RECLONE_SITE: &str = "bloodraven.shipstream.io/reclone-site";

/// `enabled` renders `bloodraven sidecar` into every site pod. Opt-in for now: in a cluster
/// the operator does not yet serve the sidecar's `/active-site` nor create its token
/// Secret, so a group whose sites cannot reach each other's sidecars would fence itself
/// on the lease alone (see `docs/sidecar.md`).
pub const SIDECAR: &str = "bloodraven.shipstream.io/sidecar";

/// Whether `group` opted in to the sidecar.
pub fn sidecar_enabled(group: &crate::api::MysqlFailoverGroup) -> bool {
    group
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(SIDECAR))
        .is_some_and(|v| v == "enabled")
}

/// A planned failover request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFailoverRequest {
    pub target: String,
    pub max_lag_wait: Option<Duration>,
}

/// How a reclone request proves the user means it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecloneProof {
    /// The start of the site's recorded divergent GTID set (at least 8 characters).
    DivergencePrefix(String),
    /// `confirm=<group name>`.
    GroupName(String),
}

/// A reclone request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecloneRequest {
    pub site: String,
    pub proof: RecloneProof,
}

/// An annotation value that cannot be acted on; the message says why, for the
/// `RecloneRejected` / `PlannedFailoverRejected` Event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}={value:?}: {reason}")]
pub struct AnnotationError {
    pub annotation: &'static str,
    pub value: String,
    pub reason: String,
}

fn refuse(annotation: &'static str, value: &str, reason: impl Into<String>) -> AnnotationError {
    AnnotationError {
        annotation,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Parses `bloodraven.shipstream.io/planned-failover`.
pub fn planned_failover(value: &str) -> Result<PlannedFailoverRequest, AnnotationError> {
    let value_trimmed = value.trim();
    let (target, option) = match value_trimmed.split_once(':') {
        Some((t, o)) => (t.trim(), Some(o.trim())),
        None => (value_trimmed, None),
    };
    if target.is_empty() {
        return Err(refuse(PLANNED_FAILOVER, value, "no target site"));
    }
    let max_lag_wait = match option {
        None => None,
        Some(option) => {
            let wait = option.strip_prefix("maxLagWait=").ok_or_else(|| {
                refuse(
                    PLANNED_FAILOVER,
                    value,
                    "the only option is maxLagWait=<duration>",
                )
            })?;
            Some(parse_go_duration(wait).map_err(|e| refuse(PLANNED_FAILOVER, value, e))?)
        }
    };
    Ok(PlannedFailoverRequest {
        target: target.to_owned(),
        max_lag_wait,
    })
}

/// The shortest divergent-GTID prefix accepted: long enough that a typo or a guess does
/// not match, short enough to type.
pub const MIN_DIVERGENCE_PREFIX: usize = 8;

/// Parses `bloodraven.shipstream.io/reclone-site`.
pub fn reclone(value: &str) -> Result<RecloneRequest, AnnotationError> {
    let (site, proof) = value
        .trim()
        .split_once(':')
        .ok_or_else(|| refuse(RECLONE_SITE, value, "expected <site>:<proof>"))?;
    let site = site.trim();
    if site.is_empty() {
        return Err(refuse(RECLONE_SITE, value, "no site"));
    }
    let proof = proof.trim();
    let proof = if let Some(group) = proof.strip_prefix("confirm=") {
        RecloneProof::GroupName(group.to_owned())
    } else if proof.chars().count() >= MIN_DIVERGENCE_PREFIX {
        RecloneProof::DivergencePrefix(proof.to_owned())
    } else {
        return Err(refuse(
            RECLONE_SITE,
            value,
            format!(
                "the divergent GTID prefix must have at least {MIN_DIVERGENCE_PREFIX} characters"
            ),
        ));
    };
    Ok(RecloneRequest {
        site: site.to_owned(),
        proof,
    })
}

impl RecloneRequest {
    /// Checks the proof against what the operator knows: the group's name and the site's
    /// recorded divergent GTID set (`None`: no divergence recorded).
    pub fn confirmed(&self, group: &str, divergent_gtid: Option<&str>) -> Result<(), String> {
        match (&self.proof, divergent_gtid) {
            (RecloneProof::GroupName(name), _) if name == group => Ok(()),
            (RecloneProof::GroupName(name), _) => {
                Err(format!("confirm={name} does not name this group ({group})"))
            }
            (RecloneProof::DivergencePrefix(prefix), Some(divergent))
                if divergent.starts_with(prefix.as_str()) =>
            {
                Ok(())
            }
            (RecloneProof::DivergencePrefix(_), Some(_)) => Err(format!(
                "the prefix does not match site {}'s divergent GTID set",
                self.site
            )),
            (RecloneProof::DivergencePrefix(_), None) => Err(format!(
                "site {} has no recorded divergence; use {}:confirm=<group>",
                self.site, self.site
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_failover_takes_a_site_and_an_optional_lag_wait() {
        assert_eq!(
            planned_failover("pdx"),
            Ok(PlannedFailoverRequest {
                target: "pdx".to_owned(),
                max_lag_wait: None
            })
        );
        assert_eq!(
            planned_failover(" pdx:maxLagWait=30s ").map(|r| r.max_lag_wait),
            Ok(Some(Duration::from_secs(30)))
        );
        for bad in ["", ":maxLagWait=1s", "pdx:soon", "pdx:maxLagWait=forever"] {
            assert!(planned_failover(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reclone_needs_a_proof_that_matches() {
        let by_name = reclone("pdx:confirm=orders").expect("valid");
        assert_eq!(by_name.confirmed("orders", None), Ok(()));
        assert!(by_name.confirmed("billing", None).is_err());

        let by_prefix = reclone("pdx:3e11fa47-71ca").expect("valid");
        assert_eq!(
            by_prefix.confirmed("orders", Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:23")),
            Ok(())
        );
        assert!(
            by_prefix
                .confirmed("orders", Some("aaaaaaaa-71ca:1"))
                .is_err()
        );
        assert!(by_prefix.confirmed("orders", None).is_err());

        for bad in ["pdx", ":confirm=orders", "pdx:3e11", ""] {
            assert!(reclone(bad).is_err(), "{bad:?}");
        }
    }
}
