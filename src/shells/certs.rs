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

    let leaf_key = KeyPair::generate().map_err(gen_err("serving key"))?;
    let sans: Vec<String> = dns_names
        .iter()
        .cloned()
        .chain(ip_sans.iter().map(ToString::to_string))
        .collect();
    let mut params =
        CertificateParams::new(sans.clone()).map_err(gen_err("subject alternative names"))?;
    params.distinguished_name = name(&sans[0]);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(SERVING_VALIDITY_DAYS);
    let serial = serial(leaf_key.public_key_raw());
    let serial_hex = serial.to_string();
    params.serial_number = Some(serial);
    let leaf = params
        .signed_by(&leaf_key, &issuer)
        .map_err(gen_err("serving certificate"))?;

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
    write_atomic(&written.tls_key, leaf_key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&written.tls_cert, leaf.pem().as_bytes(), 0o644)?;
    Ok(written)
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
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
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

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertsError> {
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
