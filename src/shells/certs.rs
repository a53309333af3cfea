//! `bloodraven certs generate`: a CA and a serving certificate for the webhooks.
//!
//! For clusters without cert-manager (see `certs/README.md`). Keys are ECDSA P-256; the
//! serving certificate is valid for a year and the CA for ten, so rotation is a matter of
//! running the command again with `--ca-cert`/`--ca-key` and letting the server reload.

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::{Categorized, Category};

const CA_VALIDITY_DAYS: i64 = 3650;
const SERVING_VALIDITY_DAYS: i64 = 365;

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("give at least one --dns name or IP address for the serving certificate")]
    NoNames,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
}

impl Categorized for CertsError {
    fn category(&self) -> Category {
        match self {
            Self::NoNames => Category::InvalidInput,
            Self::Io { .. } => Category::Unavailable,
            Self::Generate { .. } => Category::Config,
        }
    }
}

/// The files written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedCerts {
    pub ca_cert: PathBuf,
    /// Only when a new CA was created.
    pub ca_key: Option<PathBuf>,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Hex serial number of the serving certificate.
    pub serial: String,
}

/// Writes `ca.crt`, `ca.key` (when it created the CA), `tls.crt` and `tls.key` (PEM; key
/// files mode 0600) to `out`. With `ca = Some((cert, key))` the serving certificate is
/// signed by that CA and its certificate is copied to `out/ca.crt`. Each file is replaced
/// atomically, so a server polling `out` never reads half a file.
pub fn generate_certs(
    out: &Path,
    dns_names: &[String],
    ip_sans: &[IpAddr],
    ca: Option<(&Path, &Path)>,
) -> Result<GeneratedCerts, CertsError> {
    if dns_names.is_empty() && ip_sans.is_empty() {
        return Err(CertsError::NoNames);
    }
    fs::create_dir_all(out).map_err(|source| io_err(out, source))?;
    let now = OffsetDateTime::now_utc();

    let (issuer, ca_pem, ca_key_pem) = match ca {
        Some((cert_path, key_path)) => load_ca(cert_path, key_path)?,
        None => new_ca(now)?,
    };

    let leaf = issue_serving(
        &issuer,
        &sans_of(dns_names, ip_sans),
        now,
        serving_validity(),
    )?;
    let serial_hex = leaf.serial.clone();

    let written = GeneratedCerts {
        ca_cert: out.join("ca.crt"),
        ca_key: ca_key_pem.as_ref().map(|_| out.join("ca.key")),
        tls_cert: out.join("tls.crt"),
        tls_key: out.join("tls.key"),
        serial: serial_hex,
    };
    if let (Some(path), Some(pem)) = (&written.ca_key, &ca_key_pem) {
        write_atomic(path, pem.as_bytes(), 0o600)?;
    }
    write_atomic(&written.ca_cert, ca_pem.as_bytes(), 0o644)?;
    // Key first: a reader that sees the new certificate then finds its key already there.
    write_atomic(&written.tls_key, leaf.key_pem.as_bytes(), 0o600)?;
    write_atomic(&written.tls_cert, leaf.cert_pem.as_bytes(), 0o644)?;
    Ok(written)
}

fn serving_validity() -> std::time::Duration {
    std::time::Duration::from_secs(u64::try_from(SERVING_VALIDITY_DAYS * 86_400).unwrap_or(0))
}

fn sans_of(dns_names: &[String], ip_sans: &[IpAddr]) -> Vec<String> {
    dns_names
        .iter()
        .cloned()
        .chain(ip_sans.iter().map(ToString::to_string))
        .collect()
}

/// A PEM certificate and its PEM key, made in memory.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// Hex serial number.
    pub serial: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// The clock skew a new certificate tolerates: it is valid from this long before `now`.
const BACKDATE: Duration = Duration::hours(1);

/// A new self-signed CA valid for `validity` from `now`.
pub fn issue_ca(now: OffsetDateTime, validity: std::time::Duration) -> Result<Issued, CertsError> {
    let (_, cert_pem, key_pem) = new_ca_with(now, validity)?;
    let serial = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .ok()
        .and_then(|(_, pem)| {
            pem.parse_x509()
                .ok()
                .map(|c| c.raw_serial_as_string().replace(':', ""))
        })
        .unwrap_or_default();
    Ok(Issued {
        cert_pem,
        key_pem: key_pem.unwrap_or_default(),
        serial,
    })
}

/// A serving certificate for `sans` (DNS names or IP addresses) signed by the CA in
/// `ca_cert_pem`/`ca_key_pem`, valid for `validity` from `now` but never past the CA.
pub fn issue_serving_with_ca(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    sans: &[String],
    now: OffsetDateTime,
    validity: std::time::Duration,
) -> Result<Issued, CertsError> {
    let key = KeyPair::from_pem(ca_key_pem).map_err(gen_err("CA key"))?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, key).map_err(gen_err("CA certificate"))?;
    let ca_not_after = x509_parser::pem::parse_x509_pem(ca_cert_pem.as_bytes())
        .ok()
        .and_then(|(_, pem)| {
            pem.parse_x509()
                .ok()
                .map(|c| c.validity().not_after.timestamp())
        })
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    let wanted = now + to_time(validity);
    let not_after = ca_not_after.map_or(wanted, |limit| wanted.min(limit));
    issue_serving_until(&issuer, sans, now, not_after)
}

fn to_time(d: std::time::Duration) -> Duration {
    Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2))
}

fn issue_serving(
    issuer: &Issuer<'_, KeyPair>,
    sans: &[String],
    now: OffsetDateTime,
    validity: std::time::Duration,
) -> Result<Issued, CertsError> {
    issue_serving_until(issuer, sans, now, now + to_time(validity))
}

fn issue_serving_until(
    issuer: &Issuer<'_, KeyPair>,
    sans: &[String],
    now: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Issued, CertsError> {
    let Some(first) = sans.first() else {
        return Err(CertsError::NoNames);
    };
    let leaf_key = KeyPair::generate().map_err(gen_err("serving key"))?;
    let mut params =
        CertificateParams::new(sans.to_vec()).map_err(gen_err("subject alternative names"))?;
    params.distinguished_name = name(first);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = not_after;
    let serial = serial(leaf_key.public_key_raw());
    let serial_hex = serial.to_string();
    params.serial_number = Some(serial);
    let leaf = params
        .signed_by(&leaf_key, issuer)
        .map_err(gen_err("serving certificate"))?;
    Ok(Issued {
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
        serial: serial_hex,
    })
}

type Ca = (Issuer<'static, KeyPair>, String, Option<String>);

fn gen_err(what: &'static str) -> impl Fn(rcgen::Error) -> CertsError {
    move |source| CertsError::Generate { what, source }
}

/// An existing CA: its issuer and certificate PEM.
fn load_ca(cert_path: &Path, key_path: &Path) -> Result<Ca, CertsError> {
    let cert_pem = read(cert_path)?;
    let key = KeyPair::from_pem(&read(key_path)?).map_err(gen_err("CA key"))?;
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(gen_err("CA certificate"))?;
    Ok((issuer, cert_pem, None))
}

/// A new self-signed CA: its issuer, certificate PEM and key PEM.
fn new_ca(now: OffsetDateTime) -> Result<Ca, CertsError> {
    new_ca_with(
        now,
        std::time::Duration::from_secs(u64::try_from(CA_VALIDITY_DAYS * 86_400).unwrap_or(0)),
    )
}

fn new_ca_with(now: OffsetDateTime, validity: std::time::Duration) -> Result<Ca, CertsError> {
    let key = KeyPair::generate().map_err(gen_err("CA key"))?;
    let key_pem = key.serialize_pem();
    let mut params = CertificateParams::default();
    params.distinguished_name = name("bloodraven webhook CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + to_time(validity);
    params.serial_number = Some(serial(key.public_key_raw()));
    let certified = CertifiedIssuer::self_signed(params, key).map_err(gen_err("CA certificate"))?;
    let pem = certified.pem();
    // The issuer as read back from the encoded certificate, exactly as `load_ca` sees it.
    let key = KeyPair::from_pem(&key_pem).map_err(gen_err("CA key"))?;
    let issuer = Issuer::from_ca_cert_pem(&pem, key).map_err(gen_err("CA certificate"))?;
    Ok((issuer, pem, Some(key_pem)))
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A positive 16-byte serial derived from the public key and the current time, so two
/// certificates generated in a row always differ.
fn serial(public_key: &[u8]) -> SerialNumber {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = Sha256::new()
        .chain_update(public_key)
        .chain_update(nanos.to_be_bytes())
        .finalize();
    let mut bytes = digest[..16].to_vec();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn read(path: &Path) -> Result<String, CertsError> {
    fs::read_to_string(path).map_err(|source| io_err(path, source))
}

fn io_err(path: &Path, source: std::io::Error) -> CertsError {
    CertsError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertsError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|source| io_err(&tmp, source))?;
    // `mode` only applies to new files; a leftover temporary file keeps its own.
    fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|source| io_err(&tmp, source))?;
    file.write_all(bytes)
        .map_err(|source| io_err(&tmp, source))?;
    file.sync_all().map_err(|source| io_err(&tmp, source))?;
    fs::rename(&tmp, path).map_err(|source| io_err(path, source))
}
