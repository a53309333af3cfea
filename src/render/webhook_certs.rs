//! The self-managed webhook certificate (`bloodraven serve --self-managed-certs`): what to
//! do next with the CA, the serving certificate and the CA bundle the webhook
//! configurations carry. Pure: the stored Secret and the published bundles, as facts, and
//! the current time in; one step out. The shell performs the step, reads everything again
//! and asks once more, until the answer is [`Step::Idle`].
//!
//! The rule that makes a rotation invisible to the API server: a serving certificate is
//! only served once the CA that signed it is in the bundle the webhook configurations
//! carry, and a CA leaves the bundle only after every replica has stopped serving
//! certificates it signed.
//! - The Secret holds the signing CA, the serving pair and the bundle to publish, plus a
//!   record of the last publication (the bundle's hash and when it was published).
//! - [`servable`] (every replica) serves the Secret's pair only when that record matches the
//!   bundle and is [`Policy::settle`] old, so the API server has picked the bundle up.
//! - A CA rotation puts the new CA in the bundle beside the old one and signs the new
//!   serving certificate with it in one write; replicas switch once that bundle is
//!   published and settled. The old CA is dropped [`Policy::retire_after`] after that
//!   publication, long after every replica switched.

use std::time::Duration;

/// Lifetimes and delays of the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Lifetime of a serving certificate; renewed when less than a third is left.
    pub serving_validity: Duration,
    /// Lifetime of a CA; replaced when less than a third is left. At least three serving
    /// lifetimes, so a serving certificate is never cut short by its CA.
    pub ca_validity: Duration,
    /// How long after a bundle is published before a certificate it trusts is served: the
    /// time the API server takes to see the webhook configurations change.
    pub settle: Duration,
    /// How long after a bundle is published before the CAs it no longer needs are dropped:
    /// `settle` plus the time every replica takes to pick up the new serving certificate.
    pub retire_after: Duration,
}

impl Policy {
    /// The defaults of `bloodraven serve --self-managed-certs`: 90-day serving
    /// certificates, a 10-year CA.
    pub const DEFAULT: Self = Self {
        serving_validity: Duration::from_secs(90 * 86_400),
        ca_validity: Duration::from_secs(3650 * 86_400),
        settle: Duration::from_secs(10),
        retire_after: Duration::from_secs(600),
    };

    /// Why this policy cannot work, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.serving_validity.is_zero() {
            return Err("the serving certificate validity must be positive".to_owned());
        }
        if self.ca_validity < self.serving_validity * 3 {
            return Err(format!(
                "the CA validity ({}s) must be at least three serving certificate validities ({}s)",
                self.ca_validity.as_secs(),
                self.serving_validity.as_secs() * 3
            ));
        }
        if self.serving_validity / 3 <= self.settle {
            return Err(format!(
                "a third of the serving certificate validity ({}s) must be longer than a bundle takes to settle ({}s)",
                self.serving_validity.as_secs() / 3,
                self.settle.as_secs()
            ));
        }
        if self.retire_after <= self.settle {
            return Err(format!(
                "old CAs must stay in the bundle ({}s) longer than a bundle takes to settle ({}s)",
                self.retire_after.as_secs(),
                self.settle.as_secs()
            ));
        }
        Ok(())
    }
}

/// One certificate as the decision needs it. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// SHA-256 of the DER, hex.
    pub fingerprint: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// The serving certificate of the Secret, when its key matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingFacts {
    pub cert: CertFacts,
    /// Fingerprint of the bundle CA that issued it, when one did.
    pub issuer: Option<String>,
    /// Whether its DNS names are exactly the ones asked for.
    pub names_match: bool,
}

/// When a bundle was last published to every webhook configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The hash of the bundle published (the shell's [`Stored::bundle_hash`] then).
    pub bundle_hash: String,
    /// Unix seconds.
    pub at: i64,
}

/// The Secret, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The signing CA, when its certificate and key are present and belong together.
    pub ca: Option<CertFacts>,
    pub serving: Option<ServingFacts>,
    /// The CAs of the bundle to publish, in order.
    pub bundle: Vec<CertFacts>,
    /// Hash of the bundle's bytes, the same function as [`Published::bundles`].
    pub bundle_hash: String,
    pub published: Option<Publication>,
}

/// Everything the decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `None`: no Secret (or none the decision can use at all).
    pub stored: Option<Stored>,
    /// The hash of each webhook entry's `caBundle` in both configurations (`None`: empty).
    pub published_bundles: Vec<Option<String>>,
}

/// The next thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No usable CA: make a CA and a serving certificate. The bundle is the new CA
    /// followed by `keep` (fingerprints of the stored bundle's unexpired CAs, which serving
    /// certificates other replicas still hold may need until they are retired).
    Bootstrap { reason: String, keep: Vec<String> },
    /// A new serving certificate from the current CA; the bundle does not change.
    RenewServing { reason: String },
    /// A new CA signs a new serving certificate; the bundle becomes the new CA followed by
    /// the current bundle.
    RotateCa { reason: String },
    /// Publish the Secret's bundle to every webhook entry and record the publication.
    Publish { reason: String },
    /// The bundle keeps only these fingerprints (the signing CA's).
    DropRetired { keep: Vec<String> },
    /// Nothing to do before `until` (Unix seconds).
    Idle { until: i64 },
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// When a certificate of lifetime `validity` is due for replacement: a third of it before
/// it expires.
fn due_at(cert: &CertFacts, validity: Duration) -> i64 {
    cert.not_after.saturating_sub(secs(validity) / 3)
}

/// What makes the stored serving certificate unusable with `ca` right now, if anything.
fn serving_problem(stored: &Stored, ca: &CertFacts, now: i64) -> Option<&'static str> {
    match &stored.serving {
        None => Some("no usable serving certificate"),
        Some(s) if s.issuer.as_deref() != Some(ca.fingerprint.as_str()) => {
            Some("the serving certificate is not signed by the CA")
        }
        Some(s) if !s.names_match => Some("the serving certificate names other DNS names"),
        Some(s) if s.cert.not_after <= now => Some("the serving certificate expired"),
        Some(_) => None,
    }
}

/// The next step at `now` (Unix seconds).
pub fn decide(observed: &Observed, policy: &Policy, now: i64) -> Step {
    let Some(stored) = &observed.stored else {
        return Step::Bootstrap {
            reason: "no certificate Secret yet".to_owned(),
            keep: Vec::new(),
        };
    };
    let keep = || -> Vec<String> {
        stored
            .bundle
            .iter()
            .filter(|c| c.not_after > now)
            .map(|c| c.fingerprint.clone())
            .collect()
    };
    let Some(ca) = &stored.ca else {
        return Step::Bootstrap {
            reason: "the Secret has no usable CA".to_owned(),
            keep: keep(),
        };
    };
    if ca.not_after <= now {
        return Step::Bootstrap {
            reason: "the CA expired".to_owned(),
            keep: keep(),
        };
    }
    if !stored
        .bundle
        .iter()
        .any(|c| c.fingerprint == ca.fingerprint)
    {
        return Step::Bootstrap {
            reason: "the bundle does not hold the CA".to_owned(),
            keep: keep(),
        };
    }
    if let Some(reason) = serving_problem(stored, ca, now) {
        return Step::RenewServing {
            reason: reason.to_owned(),
        };
    }
    let everywhere = !observed.published_bundles.is_empty()
        && observed
            .published_bundles
            .iter()
            .all(|b| b.as_deref() == Some(stored.bundle_hash.as_str()));
    let recorded = stored
        .published
        .as_ref()
        .is_some_and(|p| p.bundle_hash == stored.bundle_hash);
    if !everywhere || !recorded {
        let reason = if everywhere {
            "the publication is not recorded"
        } else {
            "a webhook configuration carries another CA bundle"
        };
        return Step::Publish {
            reason: reason.to_owned(),
        };
    }
    if now >= due_at(ca, policy.ca_validity) {
        return Step::RotateCa {
            reason: format!("the CA expires at {}", ca.not_after),
        };
    }
    // `serving_problem` is None, so there is a serving certificate.
    let serving_due = stored
        .serving
        .as_ref()
        .map_or(now, |s| due_at(&s.cert, policy.serving_validity));
    if now >= serving_due {
        return Step::RenewServing {
            reason: "less than a third of the serving certificate's lifetime is left".to_owned(),
        };
    }
    let retired: Vec<&CertFacts> = stored
        .bundle
        .iter()
        .filter(|c| c.fingerprint != ca.fingerprint)
        .collect();
    let published_at = stored.published.as_ref().map_or(now, |p| p.at);
    let retire_at = published_at.saturating_add(secs(policy.retire_after));
    if !retired.is_empty() && (now >= retire_at || retired.iter().all(|c| c.not_after <= now)) {
        return Step::DropRetired {
            keep: vec![ca.fingerprint.clone()],
        };
    }
    let mut until = due_at(ca, policy.ca_validity).min(serving_due);
    if !retired.is_empty() {
        until = until.min(retire_at);
    }
    // The serving certificate is taken up by the replicas once settled; look again then.
    let settled_at = published_at.saturating_add(secs(policy.settle));
    if settled_at > now {
        until = until.min(settled_at);
    }
    Step::Idle { until }
}

/// Whether a replica may serve the Secret's serving certificate now: its issuer is in the
/// bundle, and that bundle was published at least `settle` ago. `Err` says why not.
pub fn servable(stored: &Stored, policy: &Policy, now: i64) -> Result<(), String> {
    let serving = stored
        .serving
        .as_ref()
        .ok_or("no usable serving certificate")?;
    if serving.cert.not_after <= now {
        return Err("the serving certificate expired".to_owned());
    }
    let issuer = serving
        .issuer
        .as_deref()
        .ok_or("the serving certificate's CA is not in the bundle")?;
    if !stored.bundle.iter().any(|c| c.fingerprint == issuer) {
        return Err("the serving certificate's CA is not in the bundle".to_owned());
    }
    let published = stored
        .published
        .as_ref()
        .filter(|p| p.bundle_hash == stored.bundle_hash)
        .ok_or("the bundle is not published yet")?;
    let settled = published.at.saturating_add(secs(policy.settle));
    if now < settled {
        return Err(format!("the bundle settles at {settled}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn policy() -> Policy {
        Policy {
            serving_validity: Duration::from_secs(90 * 86_400),
            ca_validity: Duration::from_secs(900 * 86_400),
            settle: Duration::from_secs(10),
            retire_after: Duration::from_secs(600),
        }
    }

    fn cert(name: &str, from: i64, days: i64) -> CertFacts {
        CertFacts {
            fingerprint: name.to_owned(),
            not_before: from,
            not_after: from + days * DAY,
        }
    }

    /// A steady state at time 0: CA `ca1` (900 days), serving cert (90 days), bundle
    /// `[ca1]` published at 0 everywhere.
    fn steady() -> Observed {
        let ca = cert("ca1", 0, 900);
        Observed {
            stored: Some(Stored {
                ca: Some(ca.clone()),
                serving: Some(ServingFacts {
                    cert: cert("leaf1", 0, 90),
                    issuer: Some("ca1".to_owned()),
                    names_match: true,
                }),
                bundle: vec![ca],
                bundle_hash: "h1".to_owned(),
                published: Some(Publication {
                    bundle_hash: "h1".to_owned(),
                    at: 0,
                }),
            }),
            published_bundles: vec![Some("h1".to_owned()); 3],
        }
    }

    fn stored(o: &mut Observed) -> &mut Stored {
        o.stored.as_mut().expect("stored")
    }

    #[test]
    fn the_defaults_are_a_valid_policy_and_bad_ones_are_refused() {
        assert_eq!(Policy::DEFAULT.check(), Ok(()));
        let mut short_ca = policy();
        short_ca.ca_validity = short_ca.serving_validity * 2;
        assert!(short_ca.check().is_err());
        let mut eager = policy();
        eager.retire_after = eager.settle;
        assert!(eager.check().is_err());
    }

    #[test]
    fn nothing_stored_or_no_usable_ca_bootstraps() {
        let none = Observed {
            stored: None,
            published_bundles: vec![None, None],
        };
        assert!(
            matches!(decide(&none, &policy(), 0), Step::Bootstrap { keep, .. } if keep.is_empty())
        );

        let mut no_ca = steady();
        stored(&mut no_ca).ca = None;
        assert_eq!(
            decide(&no_ca, &policy(), DAY),
            Step::Bootstrap {
                reason: "the Secret has no usable CA".to_owned(),
                keep: vec!["ca1".to_owned()]
            }
        );

        let mut expired = steady();
        assert!(matches!(
            decide(&expired, &policy(), 900 * DAY),
            Step::Bootstrap { keep, .. } if keep.is_empty()
        ));
        stored(&mut expired).bundle.clear();
        assert!(matches!(
            decide(&expired, &policy(), DAY),
            Step::Bootstrap { .. }
        ));
    }

    #[test]
    fn a_bad_serving_certificate_is_replaced_at_once() {
        for breakage in 0..4 {
            let mut o = steady();
            let s = stored(&mut o);
            match breakage {
                0 => s.serving = None,
                1 => s.serving.as_mut().expect("serving").issuer = Some("other".to_owned()),
                2 => s.serving.as_mut().expect("serving").names_match = false,
                _ => s.serving.as_mut().expect("serving").cert.not_after = DAY,
            }
            assert!(
                matches!(decide(&o, &policy(), DAY), Step::RenewServing { .. }),
                "breakage {breakage}"
            );
        }
    }

    #[test]
    fn an_unpublished_or_overwritten_bundle_is_published_before_anything_else() {
        let mut o = steady();
        o.published_bundles[1] = None; // e.g. a Helm upgrade reset one entry
        assert!(matches!(decide(&o, &policy(), DAY), Step::Publish { .. }));

        let mut o = steady();
        stored(&mut o).published = None;
        assert!(matches!(decide(&o, &policy(), DAY), Step::Publish { .. }));

        // Even a CA that is due waits for the current bundle to be out.
        let mut o = steady();
        o.published_bundles.clear();
        stored(&mut o).serving.as_mut().expect("serving").cert = cert("leaf9", 599 * DAY, 90);
        assert!(matches!(
            decide(&o, &policy(), 600 * DAY),
            Step::Publish { .. }
        ));
    }

    #[test]
    fn steady_state_idles_until_the_serving_certificate_is_two_thirds_through() {
        assert_eq!(
            decide(&steady(), &policy(), DAY),
            Step::Idle { until: 60 * DAY }
        );
        assert!(matches!(
            decide(&steady(), &policy(), 60 * DAY),
            Step::RenewServing { .. }
        ));
    }

    #[test]
    fn the_ca_is_rotated_a_third_of_its_lifetime_before_expiry() {
        let mut o = steady();
        // A fresh serving certificate late in the CA's life.
        stored(&mut o).serving.as_mut().expect("serving").cert = cert("leaf9", 599 * DAY, 90);
        assert_eq!(
            decide(&o, &policy(), 599 * DAY),
            Step::Idle { until: 600 * DAY }
        );
        assert!(matches!(
            decide(&o, &policy(), 600 * DAY),
            Step::RotateCa { .. }
        ));
    }

    /// The full rotation as the shell runs it: rotate, publish, settle, switch, retire.
    #[test]
    fn a_ca_rotation_publishes_old_and_new_before_serving_and_retires_the_old_later() {
        let p = policy();
        let t = 600 * DAY;
        let mut o = steady();
        stored(&mut o).serving.as_mut().expect("serving").cert = cert("leaf9", 599 * DAY, 90);
        assert!(matches!(decide(&o, &p, t), Step::RotateCa { .. }));

        // The shell writes: new CA signs a new leaf, bundle [ca2, ca1], not yet published.
        let ca2 = cert("ca2", t, 900);
        {
            let s = stored(&mut o);
            s.ca = Some(ca2.clone());
            s.serving = Some(ServingFacts {
                cert: cert("leaf10", t, 90),
                issuer: Some("ca2".to_owned()),
                names_match: true,
            });
            s.bundle.insert(0, ca2.clone());
            s.bundle_hash = "h2".to_owned();
        }
        // Replicas keep the old certificate: the new bundle is not out.
        assert!(servable(o.stored.as_ref().expect("stored"), &p, t).is_err());
        assert!(matches!(decide(&o, &p, t), Step::Publish { .. }));

        // Published and recorded at t; replicas wait for it to settle.
        o.published_bundles = vec![Some("h2".to_owned()); 3];
        stored(&mut o).published = Some(Publication {
            bundle_hash: "h2".to_owned(),
            at: t,
        });
        let s = o.stored.as_ref().expect("stored");
        assert!(servable(s, &p, t + 5).is_err());
        assert_eq!(servable(s, &p, t + 10), Ok(()));
        assert_eq!(decide(&o, &p, t + 5), Step::Idle { until: t + 10 });
        // The old CA stays until retire_after past the publication.
        assert_eq!(decide(&o, &p, t + 10), Step::Idle { until: t + 600 });
        assert_eq!(
            decide(&o, &p, t + 600),
            Step::DropRetired {
                keep: vec!["ca2".to_owned()]
            }
        );
    }

    #[test]
    fn a_bootstrap_keeps_the_previous_cas_until_they_retire() {
        let mut o = steady();
        stored(&mut o).ca = None;
        let Step::Bootstrap { keep, .. } = decide(&o, &policy(), DAY) else {
            panic!("bootstrap");
        };
        assert_eq!(keep, ["ca1"]);
    }

    #[test]
    fn expired_retired_cas_go_at_once() {
        let mut o = steady();
        stored(&mut o).bundle.push(cert("old", -900 * DAY, 1));
        assert_eq!(
            decide(&o, &policy(), 20),
            Step::DropRetired {
                keep: vec!["ca1".to_owned()]
            }
        );
    }

    #[test]
    fn servable_needs_a_published_settled_bundle_with_the_issuer() {
        let p = policy();
        let s = steady().stored.expect("stored");
        assert_eq!(servable(&s, &p, 10), Ok(()));
        let mut other = s.clone();
        other.bundle_hash = "h9".to_owned();
        assert!(servable(&other, &p, DAY).is_err());
        let mut orphan = s.clone();
        orphan.serving.as_mut().expect("serving").issuer = None;
        assert!(servable(&orphan, &p, DAY).is_err());
        assert!(servable(&s, &p, 90 * DAY).is_err());
    }
}
