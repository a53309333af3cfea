//! `bloodraven serve --self-managed-certs`: the binary keeps its own webhook certificate.
//!
//! Every replica runs [`SelfManagedCerts::run`]: it reads the one Secret and the two
//! webhook configurations, asks [`crate::render::webhook_certs::decide`] for the next step
//! and performs it (a CA, a serving certificate, a bundle, a publication), until there is
//! nothing to do; then it copies the Secret's serving pair into `--cert-dir` once
//! [`crate::render::webhook_certs::servable`] allows, where the server's [`CertStore`]
//! poll picks it up as it does any mounted certificate (there is one reload mechanism, not
//! two). Writes are conditional on what was read, so with several replicas one write wins
//! and the others read the result.
//!
//! [`CertStore`]: super::tls::CertStore

use crate::digest::sha256_hex;
use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::adapters::kube::webhook_certs::{
    CertSecret, CertSecretStore, Published, WebhookCertError, WebhookConfigs,
};
use crate::error::{Categorized, Category};
use crate::render::webhook_certs::{
    CertFacts, Observed, Policy, Publication, ServingFacts, Step, Stored, decide, servable,
};
use crate::shells::certs::{CertsError, issue_ca, issue_serving_with_ca, write_atomic};

use super::tls::{CA_FILE, CERT_FILE, KEY_FILE};

/// Keys of the Secret.
pub const CA_CERT_KEY: &str = "ca.crt";
pub const CA_KEY_KEY: &str = "ca.key";
pub const BUNDLE_KEY: &str = "ca-bundle.crt";
/// The hash of the bundle last published to every webhook entry, and when (RFC 3339).
pub const PUBLISHED_HASH_ANNOTATION: &str = "bloodraven.shipstream.io/ca-bundle-sha256";
pub const PUBLISHED_AT_ANNOTATION: &str = "bloodraven.shipstream.io/ca-bundle-published-at";

/// Steps taken in one pass at most; a healthy pass needs three (write, publish, idle).
const MAX_STEPS: usize = 8;

/// What `--self-managed-certs` is told.
#[derive(Debug, Clone)]
pub struct SelfManagedOptions {
    pub namespace: String,
    pub secret: String,
    /// DNS names of the serving certificate (the Service's names).
    pub dns_names: Vec<String>,
    pub validating_webhook: String,
    pub mutating_webhook: String,
    pub policy: Policy,
    /// How often every replica looks at the Secret.
    pub check_interval: Duration,
    /// Where the serving pair is written for the server to load.
    pub cert_dir: PathBuf,
    /// Testing: a pause between deciding to publish a bundle and publishing it, so a test
    /// can see that no replica serves a certificate the published bundle does not trust
    /// yet. Zero in production.
    pub publish_delay: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SelfManagedError {
    #[error(transparent)]
    Kube(#[from] WebhookCertError),
    #[error(transparent)]
    Certs(#[from] CertsError),
    #[error("the Secret's {key}: {message}")]
    Stored { key: &'static str, message: String },
    #[error("no serving certificate to serve after {0:?}: {1}")]
    NotReady(Duration, String),
    #[error("{0}")]
    Options(String),
}

impl Categorized for SelfManagedError {
    fn category(&self) -> Category {
        match self {
            Self::Kube(e) => e.category(),
            Self::Certs(e) => e.category(),
            Self::Stored { .. } => Category::Internal,
            Self::NotReady(..) => Category::Timeout,
            Self::Options(_) => Category::Config,
        }
    }
}

/// The Secret's PEMs beside the facts the decision reads.
#[derive(Debug, Clone)]
struct Parsed {
    stored: Stored,
    bundle_pems: Vec<(String, String)>,
}

/// The certificate keeper of one replica.
#[derive(Debug, Clone)]
pub struct SelfManagedCerts {
    opts: SelfManagedOptions,
    secrets: CertSecretStore,
    webhooks: WebhookConfigs,
}

/// Unix seconds now.
fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl SelfManagedCerts {
    pub fn new(client: &kube::Client, opts: SelfManagedOptions) -> Result<Self, SelfManagedError> {
        opts.policy.check().map_err(SelfManagedError::Options)?;
        if opts.dns_names.is_empty() {
            return Err(SelfManagedError::Options(
                "--self-managed-certs needs at least one --cert-dns name".to_owned(),
            ));
        }
        Ok(Self {
            secrets: CertSecretStore::new(client.clone(), &opts.namespace, &opts.secret),
            webhooks: WebhookConfigs::new(
                client.clone(),
                &opts.validating_webhook,
                &opts.mutating_webhook,
            ),
            opts,
        })
    }

    /// Runs passes until the serving pair is in `--cert-dir`, at most `limit`.
    pub async fn wait_until_servable(&self, limit: Duration) -> Result<(), SelfManagedError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let last = match self.pass().await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(why)) => why,
                Err(e) => {
                    tracing::warn!(error = %e, "self-managed certificate: pass failed");
                    e.to_string()
                }
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(SelfManagedError::NotReady(limit, last));
            }
            tokio::time::sleep(Duration::from_millis(500).min(self.opts.check_interval)).await;
        }
    }

    /// Looks again every `check_interval` until `shutdown` flips.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.opts.check_interval) => {}
                _ = shutdown.changed() => return,
            }
            match self.pass().await {
                Ok(Ok(true)) => {
                    tracing::info!("self-managed certificate: new serving certificate installed");
                }
                Ok(Ok(false)) => {}
                Ok(Err(why)) => {
                    tracing::debug!(%why, "self-managed certificate: keeping the current serving certificate");
                }
                Err(e) => {
                    tracing::warn!(error = %e, category = %e.category(), "self-managed certificate: pass failed; retrying");
                }
            }
        }
    }

    /// One pass: steps until idle, then installs the Secret's pair if it may be served.
    /// `Ok(Ok(changed))`: the pair in `--cert-dir` is the Secret's; `Ok(Err(why))`: it may
    /// not be served yet.
    pub async fn pass(&self) -> Result<Result<bool, String>, SelfManagedError> {
        let span = tracing::info_span!(
            "self_managed_certs",
            namespace = %self.opts.namespace,
            secret = %self.opts.secret
        );
        async {
            let mut secret = self.secrets.read().await?;
            for _ in 0..MAX_STEPS {
                let published = self.webhooks.bundles().await?;
                let parsed = parse(&secret, &self.opts.dns_names);
                let observed = Observed {
                    stored: parsed.as_ref().map(|p| p.stored.clone()),
                    published_bundles: published.entries().map(|b| b.map(sha256_hex)).collect(),
                };
                let now = now_secs();
                let step = decide(&observed, &self.opts.policy, now);
                if let Step::Idle { .. } = step {
                    break;
                }
                tracing::info!(?step, "self-managed certificate: step");
                match self
                    .perform(&step, &secret, parsed.as_ref(), &published)
                    .await
                {
                    Ok(()) => {}
                    Err(SelfManagedError::Kube(WebhookCertError::Conflict { what })) => {
                        tracing::info!(%what, "another replica wrote first; reading again");
                    }
                    Err(e) => return Err(e),
                }
                secret = self.secrets.read().await?;
            }
            self.install(&secret)
        }
        .instrument(span)
        .await
    }

    async fn perform(
        &self,
        step: &Step,
        secret: &CertSecret,
        parsed: Option<&Parsed>,
        published: &Published,
    ) -> Result<(), SelfManagedError> {
        let now = OffsetDateTime::now_utc();
        let policy = &self.opts.policy;
        let mut next = secret.clone();
        match step {
            Step::Idle { .. } => return Ok(()),
            Step::Bootstrap { reason, keep } => {
                tracing::warn!(%reason, "self-managed certificate: making a new CA");
                let ca = issue_ca(now, policy.ca_validity)?;
                let leaf = issue_serving_with_ca(
                    &ca.cert_pem,
                    &ca.key_pem,
                    &self.opts.dns_names,
                    now,
                    policy.serving_validity,
                )?;
                let mut bundle = ca.cert_pem.clone();
                for (fingerprint, pem) in parsed.map_or(&[][..], |p| p.bundle_pems.as_slice()) {
                    if keep.contains(fingerprint) {
                        bundle.push_str(pem);
                    }
                }
                set_ca(&mut next, &ca.cert_pem, &ca.key_pem);
                set_serving(&mut next, &leaf.cert_pem, &leaf.key_pem);
                next.data.insert(BUNDLE_KEY.to_owned(), bundle.into_bytes());
            }
            Step::RenewServing { reason } => {
                tracing::info!(%reason, "self-managed certificate: renewing the serving certificate");
                let (ca_cert, ca_key) = ca_pems(secret)?;
                let leaf = issue_serving_with_ca(
                    &ca_cert,
                    &ca_key,
                    &self.opts.dns_names,
                    now,
                    policy.serving_validity,
                )?;
                set_serving(&mut next, &leaf.cert_pem, &leaf.key_pem);
            }
            Step::RotateCa { reason } => {
                tracing::info!(%reason, "self-managed certificate: rotating the CA (the old one stays in the bundle)");
                let ca = issue_ca(now, policy.ca_validity)?;
                let leaf = issue_serving_with_ca(
                    &ca.cert_pem,
                    &ca.key_pem,
                    &self.opts.dns_names,
                    now,
                    policy.serving_validity,
                )?;
                let mut bundle = ca.cert_pem.clone();
                for (_, pem) in parsed.map_or(&[][..], |p| p.bundle_pems.as_slice()) {
                    bundle.push_str(pem);
                }
                set_ca(&mut next, &ca.cert_pem, &ca.key_pem);
                set_serving(&mut next, &leaf.cert_pem, &leaf.key_pem);
                next.data.insert(BUNDLE_KEY.to_owned(), bundle.into_bytes());
            }
            Step::DropRetired { keep } => {
                let bundle: String = parsed
                    .map_or(&[][..], |p| p.bundle_pems.as_slice())
                    .iter()
                    .filter(|(fingerprint, _)| keep.contains(fingerprint))
                    .map(|(_, pem)| pem.as_str())
                    .collect();
                tracing::info!("self-managed certificate: dropping retired CAs from the bundle");
                next.data.insert(BUNDLE_KEY.to_owned(), bundle.into_bytes());
            }
            Step::Publish { reason } => {
                let bundle = secret.data.get(BUNDLE_KEY).cloned().unwrap_or_default();
                tracing::info!(%reason, "self-managed certificate: publishing the CA bundle to the webhook configurations");
                if !self.opts.publish_delay.is_zero() {
                    tokio::time::sleep(self.opts.publish_delay).await;
                }
                // A replica that read the Secret before another one changed it must not
                // publish the older bundle over the newer one: look once more first. (The
                // publication record below is conditional too, and the next pass repairs a
                // bundle that still lost the race.)
                let fresh = self.secrets.read().await?;
                if fresh.resource_version != secret.resource_version {
                    return Err(WebhookCertError::Conflict {
                        what: format!("Secret {}/{}", self.opts.namespace, self.opts.secret),
                    }
                    .into());
                }
                self.webhooks.publish(published, &bundle).await?;
                next.annotations
                    .insert(PUBLISHED_HASH_ANNOTATION.to_owned(), sha256_hex(&bundle));
                next.annotations.insert(
                    PUBLISHED_AT_ANNOTATION.to_owned(),
                    k8s_openapi::jiff::Timestamp::now()
                        .round(k8s_openapi::jiff::Unit::Second)
                        .map_or_else(|_| String::new(), |t| t.to_string()),
                );
            }
        }
        self.secrets.write(&next).await?;
        Ok(())
    }

    /// Copies the Secret's pair into `--cert-dir` when it may be served and differs from
    /// the files there, with the CA bundle as `ca.crt` (what the operator publishes to the
    /// sidecars: during a CA rotation both CAs, as the webhooks get them).
    fn install(&self, secret: &CertSecret) -> Result<Result<bool, String>, SelfManagedError> {
        let Some(parsed) = parse(secret, &self.opts.dns_names) else {
            return Ok(Err("no certificate Secret yet".to_owned()));
        };
        if let Err(why) = servable(&parsed.stored, &self.opts.policy, now_secs()) {
            // What is installed already keeps serving.
            return Ok(Err(why));
        }
        let (Some(cert), Some(key)) = (secret.data.get(CERT_FILE), secret.data.get(KEY_FILE))
        else {
            return Ok(Err("no serving pair".to_owned()));
        };
        let dir = &self.opts.cert_dir;
        std::fs::create_dir_all(dir).map_err(|source| CertsError::Io {
            path: dir.clone(),
            source,
        })?;
        if let Some(bundle) = secret
            .data
            .get(BUNDLE_KEY)
            .or_else(|| secret.data.get(CA_CERT_KEY))
            && std::fs::read(dir.join(CA_FILE)).ok().as_ref() != Some(bundle)
        {
            write_atomic(&dir.join(CA_FILE), bundle, 0o644)?;
        }
        let same = std::fs::read(dir.join(CERT_FILE)).ok().as_ref() == Some(cert)
            && std::fs::read(dir.join(KEY_FILE)).ok().as_ref() == Some(key);
        if same {
            return Ok(Ok(false));
        }
        // Key first: the server's poll ignores a pair that does not match until both
        // files are new.
        write_atomic(&dir.join(KEY_FILE), key, 0o600)?;
        write_atomic(&dir.join(CERT_FILE), cert, 0o644)?;
        Ok(Ok(true))
    }
}

fn set_ca(secret: &mut CertSecret, cert: &str, key: &str) {
    secret
        .data
        .insert(CA_CERT_KEY.to_owned(), cert.as_bytes().to_vec());
    secret
        .data
        .insert(CA_KEY_KEY.to_owned(), key.as_bytes().to_vec());
}

fn set_serving(secret: &mut CertSecret, cert: &str, key: &str) {
    secret
        .data
        .insert(CERT_FILE.to_owned(), cert.as_bytes().to_vec());
    secret
        .data
        .insert(KEY_FILE.to_owned(), key.as_bytes().to_vec());
}

fn ca_pems(secret: &CertSecret) -> Result<(String, String), SelfManagedError> {
    let text = |key: &'static str| -> Result<String, SelfManagedError> {
        let bytes = secret.data.get(key).ok_or(SelfManagedError::Stored {
            key,
            message: "missing".to_owned(),
        })?;
        String::from_utf8(bytes.clone()).map_err(|e| SelfManagedError::Stored {
            key,
            message: e.to_string(),
        })
    };
    Ok((text(CA_CERT_KEY)?, text(CA_KEY_KEY)?))
}

/// One certificate's facts and the identifiers that tie a leaf to its CA.
struct Cert {
    facts: CertFacts,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    public_key: Vec<u8>,
    dns_names: Vec<String>,
}

fn parse_cert(der: &[u8]) -> Option<Cert> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut subject_key_id = None;
    let mut authority_key_id = None;
    let mut dns_names = Vec::new();
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    if let GeneralName::DNSName(n) = name {
                        dns_names.push((*n).to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Some(Cert {
        facts: CertFacts {
            fingerprint: sha256_hex(der),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        },
        subject: cert.subject().as_raw().to_vec(),
        issuer: cert.issuer().as_raw().to_vec(),
        subject_key_id,
        authority_key_id,
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        dns_names,
    })
}

/// Every certificate of a PEM text, with its own PEM block.
fn pem_certs(pem: &[u8]) -> Vec<(Cert, String)> {
    x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .filter_map(|p| {
            let cert = parse_cert(&p.contents)?;
            let block = pem_block(&p.contents);
            Some((cert, block))
        })
        .collect()
}

fn pem_block(der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Whether the PEM key's public key is `public_key`.
fn key_matches(key_pem: Option<&Vec<u8>>, public_key: &[u8]) -> bool {
    key_pem
        .and_then(|k| std::str::from_utf8(k).ok())
        .and_then(|k| rcgen::KeyPair::from_pem(k).ok())
        .is_some_and(|k| k.public_key_raw() == public_key)
}

/// The Secret as facts; `None` when it does not exist.
fn parse(secret: &CertSecret, dns_names: &[String]) -> Option<Parsed> {
    secret.resource_version.as_ref()?;
    let ca = secret
        .data
        .get(CA_CERT_KEY)
        .and_then(|pem| pem_certs(pem).into_iter().next())
        .map(|(c, _)| c)
        .filter(|c| key_matches(secret.data.get(CA_KEY_KEY), &c.public_key));
    let bundle_bytes = secret.data.get(BUNDLE_KEY).cloned().unwrap_or_default();
    let bundle = pem_certs(&bundle_bytes);
    let serving = secret
        .data
        .get(CERT_FILE)
        .and_then(|pem| pem_certs(pem).into_iter().next())
        .map(|(c, _)| c)
        .filter(|c| key_matches(secret.data.get(KEY_FILE), &c.public_key))
        .map(|leaf| {
            let issuer = bundle
                .iter()
                .map(|(c, _)| c)
                .find(|ca| {
                    ca.subject == leaf.issuer
                        && (leaf.authority_key_id.is_none()
                            || leaf.authority_key_id == ca.subject_key_id)
                })
                .map(|ca| ca.facts.fingerprint.clone());
            let mut want: Vec<&str> = dns_names.iter().map(String::as_str).collect();
            let mut have: Vec<&str> = leaf.dns_names.iter().map(String::as_str).collect();
            want.sort_unstable();
            have.sort_unstable();
            ServingFacts {
                cert: leaf.facts.clone(),
                issuer,
                names_match: want == have,
            }
        });
    let published = match (
        secret.annotations.get(PUBLISHED_HASH_ANNOTATION),
        secret
            .annotations
            .get(PUBLISHED_AT_ANNOTATION)
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok()),
    ) {
        (Some(hash), Some(at)) => Some(Publication {
            bundle_hash: hash.clone(),
            at: at.as_second(),
        }),
        _ => None,
    };
    Some(Parsed {
        stored: Stored {
            ca: ca.map(|c| c.facts),
            serving,
            bundle: bundle.iter().map(|(c, _)| c.facts.clone()).collect(),
            bundle_hash: sha256_hex(&bundle_bytes),
            published,
        },
        bundle_pems: bundle
            .into_iter()
            .map(|(c, pem)| (c.facts.fingerprint, pem))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bootstrapped_secret_parses_back_into_consistent_facts() {
        let now = OffsetDateTime::now_utc();
        let names = vec!["hook.ns.svc".to_owned()];
        let ca = issue_ca(now, Duration::from_secs(3000)).expect("ca");
        let leaf = issue_serving_with_ca(
            &ca.cert_pem,
            &ca.key_pem,
            &names,
            now,
            Duration::from_secs(1000),
        )
        .expect("leaf");
        let mut secret = CertSecret {
            resource_version: Some("1".to_owned()),
            ..CertSecret::default()
        };
        set_ca(&mut secret, &ca.cert_pem, &ca.key_pem);
        set_serving(&mut secret, &leaf.cert_pem, &leaf.key_pem);
        secret
            .data
            .insert(BUNDLE_KEY.to_owned(), ca.cert_pem.clone().into_bytes());
        let parsed = parse(&secret, &names).expect("parsed");
        let ca_facts = parsed.stored.ca.clone().expect("ca facts");
        let serving = parsed.stored.serving.clone().expect("serving");
        assert_eq!(
            serving.issuer.as_deref(),
            Some(ca_facts.fingerprint.as_str())
        );
        assert!(serving.names_match);
        assert_eq!(parsed.stored.bundle, vec![ca_facts.clone()]);
        assert!((serving.cert.not_after - now.unix_timestamp() - 1000).abs() <= 1);
        // The bundle's PEM block round-trips to the same bytes.
        assert_eq!(parsed.bundle_pems[0].1, ca.cert_pem.replace("\r\n", "\n"));
        // Other names, a foreign key: noticed.
        assert!(
            !parse(&secret, &["other.svc".to_owned()])
                .expect("p")
                .stored
                .serving
                .expect("s")
                .names_match
        );
        let other = issue_ca(now, Duration::from_secs(3000)).expect("ca");
        secret
            .data
            .insert(CA_KEY_KEY.to_owned(), other.key_pem.into_bytes());
        assert!(parse(&secret, &names).expect("p").stored.ca.is_none());
        // A serving certificate capped at its CA's end.
        let capped = issue_serving_with_ca(
            &ca.cert_pem,
            &ca.key_pem,
            &names,
            now,
            Duration::from_secs(9000),
        )
        .expect("leaf");
        let (c, _) = pem_certs(capped.cert_pem.as_bytes())
            .into_iter()
            .next()
            .expect("cert");
        assert_eq!(c.facts.not_after, ca_facts.not_after);
    }
}
